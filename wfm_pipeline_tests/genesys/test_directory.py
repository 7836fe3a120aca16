"""The org's directory (divisions, users, business and management units, activity codes, presence
definitions, data retention) read from payloads built with the official SDK's models and serialized by the
SDK itself (``ApiClient.sanitize_for_serialization``), so the client's field names are the SDK's."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import PureCloudPlatformClientV2 as sdk
import pytest

from wfm_pipeline import wire
from wfm_pipeline.genesys import (
    ActivityCode,
    BusinessUnit,
    ClientSettings,
    Division,
    GenesysClient,
    ManagementUnitSettings,
    PermissionDeniedError,
    PresenceDefinition,
    UnexpectedResponseError,
    User,
)
from wfm_pipeline_tests.genesys.fake_genesys import FakeGenesys, error

Handler = Callable[[httpx.Request], httpx.Response]
DOWNLOAD_HOST = "dl.test"


def uid(number: int) -> str:
    return str(uuid.UUID(int=number))


def on_the_wire(model: Any) -> Any:
    """The JSON the SDK sends for ``model`` (camelCase names from its ``attribute_map``)."""
    return sdk.ApiClient().sanitize_for_serialization(model)


def sdk_model(cls: type[Any], **attributes: Any) -> Any:
    model = cls()
    for name, value in attributes.items():
        setattr(model, name, value)
    return model


def served(model: Any) -> Handler:
    return lambda request: httpx.Response(200, json=on_the_wire(model))


class Directory:
    """Routes by exact path (requests recorded); the rest (tokens, limits discovery) goes to FakeGenesys."""

    def __init__(self) -> None:
        self.fake = FakeGenesys()
        self.routes: dict[str, Handler] = {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        handler = self.routes.get(request.url.path)
        if handler is None:
            return self.fake(request)
        self.requests.append(request)
        return handler(request)

    def params(self, path: str) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests if r.url.path == path]


@pytest.fixture
def directory() -> Directory:
    return Directory()


@pytest.fixture
def make_client(
    tmp_path: Path, directory: Directory, fake_settings: ClientSettings
) -> Iterator[Callable[..., GenesysClient]]:
    clients: list[GenesysClient] = []

    def make(**overrides: object) -> GenesysClient:
        settings = fake_settings.with_overrides(**overrides)
        client = GenesysClient(settings, tmp_path / "state", transport=httpx.MockTransport(directory))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# --- users and divisions: paging ---------------------------------------------------------------------------
def sdk_user(number: int, state: str, manager: int | None = None) -> Any:
    return sdk_model(
        sdk.User,
        id=uid(number),
        name=f"Agent {number}",
        email=f"agent{number}@example.com",
        state=state,
        division=sdk_model(sdk.Division, id=uid(900), name="Home"),
        department="Support" if number % 2 else None,
        title="Agent",
        manager=None if manager is None else sdk_model(sdk.User, id=uid(manager)),
    )


def paged_listing(listing_class: type[Any], entities: list[Any]) -> Handler:
    """A pageSize/pageNumber listing of ``entities`` as Genesys pages it."""

    def page(request: httpx.Request) -> httpx.Response:
        size, number = int(request.url.params["pageSize"]), int(request.url.params["pageNumber"])
        chunk = entities[(number - 1) * size : number * size]
        page_count = -(-len(entities) // size)
        listing = sdk_model(
            listing_class,
            entities=chunk,
            page_size=size,
            page_number=number,
            total=len(entities),
            page_count=page_count,
        )
        return httpx.Response(200, json=on_the_wire(listing))

    return page


def test_users_are_read_from_every_page_in_every_state(
    directory: Directory, make_client: Callable[..., GenesysClient]
) -> None:
    users = [
        sdk_user(1, "active"),
        sdk_user(2, "active", manager=1),
        sdk_user(3, "inactive", manager=1),
        sdk_user(4, "deleted", manager=2),
        sdk_user(5, "active"),
    ]
    directory.routes[wire.USERS_PATH] = paged_listing(sdk.UserEntityListing, users)

    found = make_client(users_page_size=2).users()

    assert directory.params(wire.USERS_PATH) == [
        {"state": "any", "pageSize": "2", "pageNumber": str(number)} for number in (1, 2, 3)
    ]
    assert [user.id for user in found] == [uid(n) for n in range(1, 6)]
    assert {user.state for user in found} == set(wire.USER_STATES)
    assert found[2] == User(
        id=uid(3),
        name="Agent 3",
        email="agent3@example.com",
        state="inactive",
        division_id=uid(900),
        department="Support",
        title="Agent",
        manager_id=uid(1),
    )
    assert (found[0].manager_id, found[1].department) == (None, None)


def test_divisions_follow_the_page_count(
    directory: Directory, make_client: Callable[..., GenesysClient]
) -> None:
    divisions = [sdk_model(sdk.AuthzDivision, id=uid(n), name=f"Division {n}") for n in range(30)]
    directory.routes[wire.DIVISIONS_PATH] = paged_listing(sdk.AuthzDivisionEntityListing, divisions)

    found = make_client().divisions()

    assert found == [Division(uid(n), f"Division {n}") for n in range(30)]
    assert [p["pageNumber"] for p in directory.params(wire.DIVISIONS_PATH)] == ["1", "2"]


# --- business and management units -------------------------------------------------------------------------
def test_business_units_take_their_time_zone_from_the_expanded_settings(
    directory: Directory, make_client: Callable[..., GenesysClient]
) -> None:
    division = sdk_model(sdk.DivisionReference, id=uid(900))
    listing = sdk_model(
        sdk.BusinessUnitListing,
        entities=[sdk_model(sdk.BusinessUnitListItem, id=uid(10), name="EMEA", division=division)],
    )
    unit = sdk_model(
        sdk.BusinessUnitResponse,
        id=uid(10),
        name="EMEA",
        division=division,
        settings=sdk_model(
            sdk.BusinessUnitSettingsResponse, time_zone="Europe/Berlin", start_day_of_week="Monday"
        ),
    )
    unit_path = wire.BUSINESS_UNIT_PATH.format(business_unit_id=uid(10))
    directory.routes[wire.BUSINESS_UNITS_PATH] = served(listing)
    directory.routes[unit_path] = served(unit)

    assert make_client().business_units() == [
        BusinessUnit(uid(10), "EMEA", uid(900), "Europe/Berlin", "Monday")
    ]
    assert directory.params(unit_path) == [{"expand": "settings"}]


def sdk_management_unit(threshold_seconds: int) -> Any:
    adherence = sdk_model(
        sdk.AdherenceSettings,
        severe_alert_threshold_minutes=15,
        adherence_target_percent=90,
        adherence_exception_threshold_seconds=threshold_seconds,
        non_on_queue_activities_equivalent=True,
        track_on_queue_activity=False,
    )
    return sdk_model(
        sdk.ManagementUnit,
        id=uid(20),
        name="Support Berlin",
        business_unit=sdk_model(sdk.BusinessUnitReference, id=uid(10)),
        start_day_of_week="Monday",
        time_zone="Europe/Berlin",
        settings=sdk_model(sdk.ManagementUnitSettingsResponse, adherence=adherence),
        division=sdk_model(sdk.DivisionReference, id=uid(900)),
    )


def test_management_unit_settings_carry_the_adherence_thresholds(
    directory: Directory, make_client: Callable[..., GenesysClient]
) -> None:
    unit_path = wire.MANAGEMENT_UNIT_PATH.format(management_unit_id=uid(20))
    directory.routes[unit_path] = served(sdk_management_unit(threshold_seconds=300))

    assert make_client().management_unit_settings([uid(20)]) == [
        ManagementUnitSettings(
            id=uid(20),
            name="Support Berlin",
            business_unit_id=uid(10),
            time_zone="Europe/Berlin",
            start_day_of_week="Monday",
            division_id=uid(900),
            adherence_target_percent=90,
            adherence_exception_threshold_seconds=300,
            severe_alert_threshold_minutes=15,
            non_on_queue_activities_equivalent=True,
            track_on_queue_activity=False,
        )
    ]
    assert directory.params(unit_path) == [{"expand": "settings"}]


# --- activity codes: inline or through the download service ---------------------------------------------
ACTIVITY_CODES = [
    sdk_model(
        sdk.BusinessUnitActivityCode,
        id="0",  # a default code
        name="On Queue",
        active=True,
        default_code=True,
        category="OnQueueWork",
        length_in_minutes=60,
        counts_as_paid_time=True,
        counts_as_work_time=True,
        secondary_presences=[
            sdk_model(sdk.SecondaryPresence, id=uid(31)),
            sdk_model(sdk.SecondaryPresence, id=uid(32)),
        ],
    ),
    sdk_model(sdk.BusinessUnitActivityCode, id=uid(40), name="Coaching", category="Meeting"),
]


@pytest.mark.parametrize("via_download", [False, True], ids=["inline", "download-url"])
def test_activity_codes_inline_or_from_the_download_url(
    directory: Directory, make_client: Callable[..., GenesysClient], via_download: bool
) -> None:
    full = sdk_model(sdk.BusinessUnitActivityCodeListing, entities=ACTIVITY_CODES)
    codes_path = wire.BUSINESS_UNIT_ACTIVITY_CODES_PATH.format(business_unit_id=uid(10))
    if via_download:
        url = f"http://{DOWNLOAD_HOST}/wfm/activitycodes.json?X-Amz-Signature=abc"
        directory.routes[codes_path] = served(
            sdk_model(sdk.BusinessUnitActivityCodeListing, download_url=url)
        )
        directory.routes["/wfm/activitycodes.json"] = served(full)
    else:
        directory.routes[codes_path] = served(full)

    assert make_client().activity_codes(uid(10)) == [
        ActivityCode(uid(10), "0", "On Queue", "OnQueueWork", True, True, 60, True, True, (uid(31), uid(32))),
        ActivityCode(uid(10), uid(40), "Coaching", "Meeting", None, None, None, None, None, ()),
    ]
    downloads = [r for r in directory.requests if r.url.host == DOWNLOAD_HOST]
    assert len(downloads) == int(via_download)
    assert all("Authorization" not in r.headers for r in downloads)  # presigned: no Bearer leaks there


# --- presence definitions -----------------------------------------------------------------------------------
def test_presence_definitions_merge_the_active_and_the_deactivated_listings(
    directory: Directory, make_client: Callable[..., GenesysClient]
) -> None:
    available = sdk_model(
        sdk.OrganizationPresenceDefinition,
        id=uid(50),
        type="System",
        language_labels={"en_US": "Available", "de_DE": "Verfügbar"},
        system_presence="Available",
        deactivated=False,
    )
    lunch = sdk_model(
        sdk.OrganizationPresenceDefinition, id=uid(51), name="Lunch", type="User", system_presence="Meal"
    )
    old_break = sdk_model(
        sdk.OrganizationPresenceDefinition,
        id=uid(52),
        language_labels={"en_US": "Coffee"},
        system_presence="Break",
        type="User",
    )  # no ``deactivated`` field: the listing it came from says it
    listings = {
        wire.PRESENCE_DEACTIVATED_FALSE: [available, lunch],
        wire.PRESENCE_DEACTIVATED_TRUE: [old_break],
    }

    def by_query(request: httpx.Request) -> httpx.Response:
        entities = listings[request.url.params["deactivated"]]
        listing = sdk_model(
            sdk.OrganizationPresenceDefinitionEntityListing, entities=entities, total=len(entities)
        )
        return httpx.Response(200, json=on_the_wire(listing))

    directory.routes[wire.PRESENCE_DEFINITIONS_PATH] = by_query

    assert make_client().presence_definitions() == [
        PresenceDefinition(uid(50), "Available", "Available", "System", False),
        PresenceDefinition(uid(51), "Lunch", "Meal", "User", False),
        PresenceDefinition(uid(52), "Coffee", "Break", "User", True),
    ]
    assert directory.params(wire.PRESENCE_DEFINITIONS_PATH) == [
        {"deactivated": "FALSE"},
        {"deactivated": "TRUE"},
    ]


# --- data retention -----------------------------------------------------------------------------------------
def test_data_retention_days(directory: Directory, make_client: Callable[..., GenesysClient]) -> None:
    directory.routes[wire.DATA_RETENTION_PATH] = served(
        sdk_model(sdk.AnalyticsDataRetentionResponse, retention_days=760)
    )
    assert make_client().data_retention_days() == 760


# --- what the client refuses --------------------------------------------------------------------------------
def with_field(model: Any, change: Callable[[dict[str, Any]], None]) -> Handler:
    """``model`` on the wire with ``change`` applied (values the SDK's setters would not let through)."""
    body = on_the_wire(model)
    change(body)
    return lambda request: httpx.Response(200, json=body)


def first_entity(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body["entities"][0].__setitem__(key, value)


MALFORMED: dict[str, tuple[str, Handler, Callable[[GenesysClient], object], tuple[str, ...]]] = {
    "unknown user state": (
        wire.USERS_PATH,
        with_field(
            sdk_model(sdk.UserEntityListing, entities=[sdk_user(1, "active")], page_count=1),
            first_entity("state", "suspended"),
        ),
        GenesysClient.users,
        (f"user {uid(1)}", "state", "'suspended'"),
    ),
    "threshold not an integer": (
        wire.MANAGEMENT_UNIT_PATH.format(management_unit_id=uid(20)),
        with_field(
            sdk_management_unit(threshold_seconds=300),
            lambda body: body["settings"]["adherence"].__setitem__(
                "adherenceExceptionThresholdSeconds", "300"
            ),
        ),
        lambda client: client.management_unit_settings([uid(20)]),
        ("settings.adherence.adherenceExceptionThresholdSeconds", "'300'"),
    ),
    "unknown activity category": (
        wire.BUSINESS_UNIT_ACTIVITY_CODES_PATH.format(business_unit_id=uid(10)),
        with_field(
            sdk_model(sdk.BusinessUnitActivityCodeListing, entities=ACTIVITY_CODES[:1]),
            first_entity("category", "Lunch"),
        ),
        lambda client: client.activity_codes(uid(10)),
        ("activity code 0", "category", "'Lunch'"),
    ),
    "analytics spelling of a system presence": (
        wire.PRESENCE_DEFINITIONS_PATH,
        with_field(
            sdk_model(
                sdk.OrganizationPresenceDefinitionEntityListing,
                entities=[sdk_model(sdk.OrganizationPresenceDefinition, id=uid(50), name="Queue")],
            ),
            first_entity("systemPresence", "ON_QUEUE"),
        ),
        GenesysClient.presence_definitions,
        (f"presence definition {uid(50)}", "systemPresence", "'ON_QUEUE'"),
    ),
    "page count missing": (
        wire.DIVISIONS_PATH,
        served(sdk_model(sdk.AuthzDivisionEntityListing, entities=[])),
        GenesysClient.divisions,
        ("pageCount", "None"),
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_value_names_the_endpoint_the_entity_and_the_field(
    directory: Directory, make_client: Callable[..., GenesysClient], case: str
) -> None:
    path, handler, read, named = MALFORMED[case]
    directory.routes[path] = handler
    with pytest.raises(UnexpectedResponseError) as caught:
        read(make_client())
    assert f"GET {path}" in str(caught.value)
    for part in named:
        assert part in str(caught.value)


def test_403_is_permission_denied_naming_the_permission(
    directory: Directory, make_client: Callable[..., GenesysClient]
) -> None:
    directory.routes[wire.DIVISIONS_PATH] = lambda request: error(
        403,
        wire.ERROR_MISSING_PERMISSIONS,
        f"Unable to perform the requested action. You are missing the following permission(s): "
        f"{wire.PERMISSION_DIVISION_VIEW}",
    )
    with pytest.raises(PermissionDeniedError) as caught:
        make_client().divisions()
    assert caught.value.missing_permissions == (wire.PERMISSION_DIVISION_VIEW,)
    assert len(directory.requests) == 1  # a 403 is not retried
