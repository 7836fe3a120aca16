"""The directory the sandbox serves: divisions, users in every state (departed agents among them), managers,
unit and business-unit settings, activity codes, presence definitions, retention; and that departed
agents' history is served until they left while nothing of the other agents changes.

In process (Starlette TestClient, manual clock); the official SDK reads the same routes in
``test_sdk_official_client.py``.
"""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from starlette.testclient import TestClient

from wfm_pipeline import wire
from wfm_pipeline.sandbox.app import create_app
from wfm_pipeline.sandbox.cli import build_parser, config_from_args
from wfm_pipeline.sandbox.config import ClientSpec, ManualClock, SandboxConfig, default_clients
from wfm_pipeline.sandbox.errors import dumps, format_ts
from wfm_pipeline.sandbox.jobs import (
    AdherenceItem,
    AdherenceJob,
    UserDetailsJob,
    adherence_document,
    user_details_page,
)
from wfm_pipeline.sandbox.org import (
    GENESYS_SYSTEM_PRESENCE_IDS,
    OrgConfig,
    SandboxOrg,
    User,
    default_departed_agents,
)

SEED = 11
HISTORY_START = date(2024, 1, 1)
NOW = datetime(2025, 6, 12, 15, 30, tzinfo=UTC)  # after every departure of these orgs
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)
LIMITED = "limited-client"  # holds only wfm:agent:view
SECRET = "limited-secret"


@dataclass
class Api:
    client: TestClient
    clock: ManualClock
    org: SandboxOrg
    tokens: dict[str, str]

    def get(self, path: str, client_id: str = wire.SANDBOX_CLIENT_ID, **params: Any) -> Any:
        if client_id not in self.tokens:
            secret = wire.SANDBOX_CLIENT_SECRET if client_id == wire.SANDBOX_CLIENT_ID else SECRET
            reply = self.client.post(
                wire.TOKEN_PATH, auth=(client_id, secret), data={"grant_type": "client_credentials"}
            )
            self.tokens[client_id] = reply.json()["access_token"]
        return self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {self.tokens[client_id]}"}
        )

    def ok(self, path: str, **params: Any) -> Any:
        reply = self.get(path, **params)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        self.get(wire.USERS_PATH)  # a token
        token = self.tokens[wire.SANDBOX_CLIENT_ID]
        reply = self.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code in (200, 202), reply.text
        return reply.json()


def api(**org_options: Any) -> Api:
    org_config = OrgConfig(seed=SEED, agents=40, history_start=HISTORY_START, **org_options)
    clients = default_clients()
    clients[LIMITED] = ClientSpec(SECRET, frozenset({wire.PERMISSION_WFM_AGENT_VIEW}))
    config = SandboxConfig(profile="fast", seed=SEED, agents=40, history_start=HISTORY_START, clients=clients)
    org, clock = SandboxOrg(org_config), ManualClock(NOW)
    client = TestClient(create_app(config, org=org, clock=clock), base_url="http://localhost")
    return Api(client, clock, org, {})


@pytest.fixture(scope="module")
def shared() -> Api:
    return api()


def user_of(org: SandboxOrg, user_id: str) -> User:
    user = org.user(user_id)
    assert user is not None
    return user


def departed_at(org: SandboxOrg, user_id: str) -> datetime:
    moment = user_of(org, user_id).departed_at
    assert moment is not None
    return moment


def all_pages(a: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every entity of a paged listing, following nextUri as a client would."""
    entities, page = [], a.ok(path, pageSize=7, **params)
    while True:
        entities += page["entities"]
        if "nextUri" not in page:
            return entities
        next_path, _, query = page["nextUri"].partition("?")
        page = a.ok(next_path, **dict(pair.split("=") for pair in query.split("&")))


def assert_error(reply: Any, status: int, code: str) -> str:
    assert reply.status_code == status, reply.text
    assert reply.json()["code"] == code
    message: str = reply.json()["message"]
    return message


# --- config -------------------------------------------------------------------------------------------


def test_departed_agents_default_to_a_small_share_and_are_configurable() -> None:
    assert [default_departed_agents(n) for n in (1, 19, 20, 60, 300, 5000)] == [0, 0, 1, 1, 6, 100]
    assert SandboxOrg(OrgConfig(agents=300)).departed_agents == 6
    assert len(SandboxOrg(OrgConfig(agents=300, departed_agents=0)).departed_agent_ids()) == 0
    with pytest.raises(ValueError):
        SandboxOrg(OrgConfig(agents=30, departed_agents=-1))
    with pytest.raises(ZoneInfoNotFoundError):
        SandboxOrg(OrgConfig(agents=30, default_time_zone="Mars/Olympus"))
    assert SandboxOrg(OrgConfig(agents=30)).default_time_zone == "America/Chicago"  # the first BU's


def test_cli_flags_reach_the_served_org() -> None:
    args = build_parser().parse_args(
        [
            "--agents",
            "30",
            "--departed-agents",
            "3",
            "--default-time-zone",
            "Asia/Tokyo",
            "--retention-days",
            "400",
            "--without",
            "fixed_system_presence_ids",
        ]
    )
    config = config_from_args(args)
    assert (config.departed_agents, config.default_time_zone, config.retention_days) == (3, "Asia/Tokyo", 400)
    assert not config.behaviours.fixed_system_presence_ids
    assert config.behaviours.empty_download_urls_while_processing
    client = TestClient(create_app(config, clock=ManualClock(NOW)), base_url="http://localhost")
    token = client.post(
        wire.TOKEN_PATH,
        auth=(wire.SANDBOX_CLIENT_ID, wire.SANDBOX_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(wire.DATA_RETENTION_PATH, headers=headers).json()["retentionDays"] == 400
    deleted = client.get(wire.USERS_PATH, params={"state": "deleted"}, headers=headers).json()
    assert deleted["total"] == 3
    truth = client.get("/sandbox/truth/org").json()
    assert {agent["timeZone"] for agent in truth["departedAgents"]} == {"Asia/Tokyo"}
    presences = client.get(wire.PRESENCE_DEFINITIONS_PATH, headers=headers).json()["entities"]
    assert not {p["id"] for p in presences} & set(GENESYS_SYSTEM_PRESENCE_IDS.values())
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--default-time-zone", "Mars/Olympus"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--without", "no_such_behaviour"])


# --- departed agents: history until they left, nothing else changes -----------------------------------


def test_departed_agents_change_nothing_served_of_the_other_agents() -> None:
    """The org with departed agents serves every other agent's bytes as the org without them: pages of
    a user-details job over the agents, adherence files, truth timelines, directory entries."""
    without = SandboxOrg(OrgConfig(seed=13, agents=24, departed_agents=0))
    with_departed = SandboxOrg(OrgConfig(seed=13, agents=24, departed_agents=5))
    assert with_departed.agent_ids() == without.agent_ids()
    start = datetime(2024, 3, 8, tzinfo=UTC)
    job = UserDetailsJob(
        "x", "x", start, start + timedelta(days=3), tuple(without.agent_ids()), (), (), "asc",
        start, start, start, FAR_FUTURE, FAR_FUTURE,
    )  # fmt: skip
    pages = [dumps(user_details_page(org, job, 0, 1000)) for org in (without, with_departed)]
    assert pages[0] == pages[1]
    for mu in without.management_units:
        members = tuple(without.agent_ids(mu.id))
        item = AdherenceItem(mu.id, start, start + timedelta(days=7), members, True, True)
        adherence = AdherenceJob("x", "x", mu.time_zone, (item,), start, start, FAR_FUTURE, 60.0)
        files = [dumps(adherence_document(org, adherence, item)) for org in (without, with_departed)]
        assert files[0] == files[1]
    month_end = start + timedelta(days=31)
    for user_id in without.agent_ids():
        assert without.user(user_id) == with_departed.user(user_id)
        assert without.presence(user_id, start, month_end) == with_departed.presence(
            user_id, start, month_end
        )


def test_a_departed_agents_history_ends_at_its_departure(shared: Api) -> None:
    org = shared.org
    departed = org.departed_agent_ids()
    assert len(departed) == 1
    for user_id in departed:
        user = user_of(org, user_id)
        assert (user.state, user.management_unit_id, user.time_zone) == (
            "deleted",
            None,
            org.default_time_zone,
        )
        left = departed_at(org, user_id)
        assert (
            left.astimezone(ZoneInfo(org.default_time_zone)).time() == datetime.min.time()
        )  # local midnight
        history = org.presence(user_id, left - timedelta(days=30), left + timedelta(days=60))
        assert history[-1].end == left and all(span.start < left for span in history)
        assert any(span.system_presence == "ON_QUEUE" for span in history)  # it worked before it left
        routing = org.routing(user_id, left - timedelta(days=30), left + timedelta(days=60))
        assert routing and max(span.end for span in routing) <= left
        assert org.presence(user_id, left, left + timedelta(days=60)) == []
        assert org.routing(user_id, left, left + timedelta(days=60)) == []
        assert org.schedule(user_id, left, left + timedelta(days=60)) == []
        assert all(user_id not in org.agent_ids(mu.id) for mu in org.management_units)


def test_a_departed_agents_days_are_local_days_of_the_default_time_zone() -> None:
    """The same agent in an org whose default zone is Tokyo works the same wall-clock shifts, in Tokyo."""
    chicago = SandboxOrg(OrgConfig(seed=SEED, agents=40, history_start=HISTORY_START))
    tokyo = SandboxOrg(replace(chicago.config, default_time_zone="Asia/Tokyo"))
    (user_id,) = chicago.departed_agent_ids()
    start, end = datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 2, 15, tzinfo=UTC)  # no DST change

    def wall_clock(org: SandboxOrg) -> list[tuple[datetime, datetime, str]]:
        zone = ZoneInfo(org.default_time_zone)
        return [
            (
                a.start.astimezone(zone).replace(tzinfo=None),
                a.end.astimezone(zone).replace(tzinfo=None),
                a.category,
            )
            for a in org.schedule(user_id, start - timedelta(days=2), end + timedelta(days=2))
        ]

    shifts = wall_clock(chicago)
    assert shifts and shifts == wall_clock(tokyo)
    assert chicago.schedule(user_id, start, end) != tokyo.schedule(user_id, start, end)


def test_user_details_jobs_serve_departed_agents_until_they_left_and_no_unit_lists_them(shared: Api) -> None:
    org = shared.org
    (user_id,) = org.departed_agent_ids()
    left = departed_at(org, user_id)
    start, end = left - timedelta(days=3), left + timedelta(days=3)
    job_id = shared.post(wire.USER_DETAILS_JOBS_PATH, {"interval": f"{format_ts(start)}/{format_ts(end)}"})[
        "jobId"
    ]
    shared.clock.advance(60)  # past the fast profile's job latency
    documents, cursor = [], None
    while True:
        page = shared.ok(
            wire.USER_DETAILS_JOB_RESULTS_PATH.format(job_id=job_id),
            pageSize=100,
            **({"cursor": cursor} if cursor else {}),
        )
        documents += page["userDetails"]
        cursor = page.get("cursor")
        if not cursor:
            break
    mine = [d for d in documents if d["userId"] == user_id]
    presence = [r for d in mine for r in d.get("primaryPresence", [])]
    routing = [r for d in mine for r in d.get("routingStatus", [])]
    assert presence and routing
    assert max(r["endTime"] for r in presence + routing) <= format_ts(left)
    truth = shared.client.get(
        "/sandbox/truth/timeline",
        params={"userId": user_id, "start": format_ts(start), "end": format_ts(end)},
    ).json()
    assert sorted(presence, key=lambda r: r["startTime"]) == truth["primaryPresence"]
    assert sorted(routing, key=lambda r: r["startTime"]) == truth["routingStatus"]
    for mu in org.management_units:
        members = shared.ok(wire.MANAGEMENT_UNIT_USERS_PATH.format(management_unit_id=mu.id))["entities"]
        assert user_id not in {m["id"] for m in members}
    # No unit, no adherence: asking a unit's adherence for the departed agent leaves it out.
    mu = org.management_units[0]
    members = org.agent_ids(mu.id)[:1]
    item = {
        "managementUnitId": mu.id,
        "startDate": format_ts(start),
        "endDate": format_ts(start + timedelta(days=1)),
        "userIds": [*members, user_id],
    }
    job = shared.post(wire.ADHERENCE_BULK_PATH, {"timeZone": mu.time_zone, "items": [item]})["job"]
    shared.clock.advance(60)  # past the fast profile's job latency
    (url,) = shared.ok(wire.ADHERENCE_BULK_JOB_PATH.format(job_id=job["id"]))["downloadUrls"]
    assert [u["userId"] for u in shared.client.get(url).json()["userResults"]] == members
    truth_org = shared.client.get("/sandbox/truth/org").json()
    assert truth_org["departedAgents"] == [
        {"id": user_id, "timeZone": org.default_time_zone, "departedAt": format_ts(left)}
    ]
    assert all(user_id not in mu["userIds"] for mu in truth_org["managementUnits"])


# --- users, managers, divisions -----------------------------------------------------------------------


def test_users_are_listed_by_state_active_by_default(shared: Api) -> None:
    org = shared.org
    by_state = {state: all_pages(shared, wire.USERS_PATH, state=state) for state in wire.USER_STATES}
    everyone = all_pages(shared, wire.USERS_PATH, state=wire.USER_STATE_ANY)
    assert all_pages(shared, wire.USERS_PATH) == by_state["active"]  # Genesys's default
    assert all_pages(shared, wire.USERS_PATH, state="INACTIVE") == by_state["inactive"]
    assert sorted(u["id"] for u in everyone) == sorted(u["id"] for users in by_state.values() for u in users)
    for state, users in by_state.items():
        assert users and {u["state"] for u in users} == {state}
    assert [u["id"] for u in by_state["deleted"]] == org.departed_agent_ids()
    members = set(org.agent_ids())
    assert {u["id"] for u in by_state["inactive"]} <= members  # still in their unit
    assert len(by_state["inactive"]) < len(members) / 10
    # ?id= answers those users in the requested state only.
    departed, active = by_state["deleted"][0]["id"], by_state["active"][0]["id"]
    assert [u["id"] for u in shared.ok(wire.USERS_PATH, id=f"{departed},{active}")["entities"]] == [active]
    listed = shared.ok(wire.USERS_PATH, id=f"{departed},{active}", state=wire.USER_STATE_ANY)["entities"]
    assert [u["id"] for u in listed] == [departed, active]
    assert_error(shared.get(wire.USERS_PATH, state="retired"), 400, wire.ERROR_INVALID_VALUE)


def test_every_agent_is_managed_by_its_units_supervisor_and_every_division_exists(shared: Api) -> None:
    org = shared.org
    everyone = {u["id"]: u for u in all_pages(shared, wire.USERS_PATH, state=wire.USER_STATE_ANY)}
    divisions = all_pages(shared, wire.DIVISIONS_PATH)
    division_ids = {d["id"] for d in divisions}
    assert [d["homeDivision"] for d in divisions].count(True) == 1
    assert len(divisions) == 1 + len(org.business_units)
    for mu in org.management_units:
        unit = shared.ok(wire.MANAGEMENT_UNIT_PATH.format(management_unit_id=mu.id))
        supervisor = everyone[mu.supervisor_id]
        assert supervisor["state"] == "active" and supervisor["id"] not in org.agent_ids()
        assert supervisor["division"]["id"] == unit["division"]["id"]
        for member in org.agent_ids(mu.id):
            assert everyone[member]["manager"]["id"] == mu.supervisor_id
            assert everyone[member]["department"] == mu.name
            assert everyone[member]["division"]["id"] == unit["division"]["id"]
    for user in everyone.values():
        assert user["division"]["id"] in division_ids
        assert user["title"] and user["department"] and user["email"]
        if "manager" in user:
            assert everyone[user["manager"]["id"]]["state"] == "active"
    # One head of operations manages the supervisors and has no manager.
    (head,) = [u["id"] for u in everyone.values() if "manager" not in u]
    assert {everyone[mu.supervisor_id]["manager"]["id"] for mu in org.management_units} == {head}
    bus = shared.ok(wire.BUSINESS_UNITS_PATH)["entities"]
    assert {bu["division"]["id"] for bu in bus} <= division_ids
    assert_error(shared.get(wire.DIVISIONS_PATH, LIMITED), 403, wire.ERROR_MISSING_PERMISSIONS)


# --- unit and business-unit settings ------------------------------------------------------------------


def test_management_unit_settings_come_only_with_expand_and_thresholds_differ(shared: Api) -> None:
    org = shared.org
    thresholds = []
    for mu in org.management_units:
        path = wire.MANAGEMENT_UNIT_PATH.format(management_unit_id=mu.id)
        assert "settings" not in shared.ok(path)
        adherence = shared.ok(path, expand=wire.MANAGEMENT_UNIT_EXPAND_SETTINGS)["settings"]["adherence"]
        assert set(adherence) == {
            "severeAlertThresholdMinutes",
            "adherenceTargetPercent",
            "adherenceExceptionThresholdSeconds",
            "nonOnQueueActivitiesEquivalent",
            "trackOnQueueActivity",
            "ignoredActivityCategories",
        }
        assert set(adherence["ignoredActivityCategories"]["values"]) <= set(wire.ACTIVITY_CATEGORIES)
        thresholds.append(adherence["adherenceExceptionThresholdSeconds"])
    assert len(set(thresholds)) == len(thresholds) and all(60 <= t <= 300 for t in thresholds)
    message = assert_error(
        shared.get(wire.MANAGEMENT_UNIT_PATH.format(management_unit_id=org.management_units[0].id), LIMITED),
        403,
        wire.ERROR_MISSING_PERMISSIONS,
    )
    assert wire.PERMISSION_MANAGEMENT_UNIT_VIEW in message
    directory = shared.client.get("/sandbox/truth/directory").json()
    assert [mu["adherenceExceptionThresholdSeconds"] for mu in directory["managementUnits"]] == thresholds


def test_business_unit_settings_come_only_with_expand(shared: Api) -> None:
    for bu in shared.org.business_units:
        path = wire.BUSINESS_UNIT_PATH.format(business_unit_id=bu.id)
        assert "settings" not in shared.ok(path)
        settings = shared.ok(path, expand=wire.BUSINESS_UNIT_EXPAND_SETTINGS)["settings"]
        first_unit = next(mu for mu in shared.org.management_units if mu.business_unit_id == bu.id)
        assert (settings["timeZone"], settings["startDayOfWeek"]) == (
            first_unit.time_zone,
            first_unit.start_day_of_week,
        )
    assert_error(
        shared.get(wire.BUSINESS_UNIT_PATH.format(business_unit_id="nope")), 404, wire.ERROR_NOT_FOUND
    )


# --- activity codes -----------------------------------------------------------------------------------


def test_every_activity_code_schedules_and_adherence_use_is_listed_for_the_units_business_unit(
    shared: Api,
) -> None:
    org = shared.org
    start = datetime(2024, 3, 4, tzinfo=UTC)
    for mu in org.management_units:
        listed = shared.ok(
            wire.BUSINESS_UNIT_ACTIVITY_CODES_PATH.format(business_unit_id=mu.business_unit_id)
        )
        codes = {code["id"]: code for code in listed["entities"]}
        used: set[str] = set()
        item = AdherenceItem(mu.id, start, start + timedelta(days=7), tuple(org.agent_ids(mu.id)), True, True)
        job = AdherenceJob("x", "x", mu.time_zone, (item,), start, start, FAR_FUTURE, 60.0)
        for result in adherence_document(org, job, item)["userResults"]:
            for exception in result["exceptionInfo"]:
                used.add(exception["scheduledActivityCodeId"])
                used.update(
                    [exception["actualActivityCodeId"]] if "actualActivityCodeId" in exception else []
                )
        for user_id in org.agent_ids(mu.id):
            used.update(a.activity_code_id for a in org.schedule(user_id, start, start + timedelta(days=28)))
        assert len(used) >= 5 and used <= set(codes), used - set(codes)
        for code_id in used:
            assert codes[code_id]["active"] and codes[code_id]["category"] in wire.ACTIVITY_CATEGORIES
        presence_ids = {p.id for p in org.presence_definitions}
        assert all(p["id"] in presence_ids for code in codes.values() for p in code["secondaryPresences"])
    assert_error(
        shared.get(wire.BUSINESS_UNIT_ACTIVITY_CODES_PATH.format(business_unit_id="nope")),
        404,
        wire.ERROR_NOT_FOUND,
    )


def test_activity_codes_through_the_download_service() -> None:
    a = api()
    path = wire.BUSINESS_UNIT_ACTIVITY_CODES_PATH.format(business_unit_id=a.org.business_units[1].id)
    inline = a.ok(path)
    linked = a.ok(path, forceDownloadService="TRUE")
    assert list(linked) == ["downloadUrl"] and linked["downloadUrl"].startswith("http://localhost/sandbox/")
    assert a.ok(path, forceDownloadService="false") == inline
    assert a.client.get(linked["downloadUrl"]).json() == inline  # no Bearer needed: presigned
    tampered = linked["downloadUrl"].replace("signature=", "signature=0")
    assert "SignatureDoesNotMatch" in a.client.get(tampered).text
    a.clock.advance(601)  # the fast profile's download_url_ttl_seconds is 600
    expired = a.client.get(linked["downloadUrl"])
    assert expired.status_code == 403 and "AccessDenied" in expired.text
    assert_error(a.get(path, forceDownloadService="maybe"), 400, wire.ERROR_INVALID_VALUE)
    message = assert_error(a.get(path, LIMITED), 403, wire.ERROR_MISSING_PERMISSIONS)
    assert wire.PERMISSION_ACTIVITY_CODE_VIEW in message


# --- presence definitions, retention --------------------------------------------------------------------


def test_a_deactivated_presence_is_listed_only_when_asked_for_and_still_in_the_history(shared: Api) -> None:
    org = shared.org
    active = shared.ok(wire.PRESENCE_DEFINITIONS_PATH)["entities"]
    assert (
        shared.ok(wire.PRESENCE_DEFINITIONS_PATH, deactivated=wire.PRESENCE_DEACTIVATED_FALSE)["entities"]
        == active
    )
    deactivated = shared.ok(wire.PRESENCE_DEFINITIONS_PATH, deactivated=wire.PRESENCE_DEACTIVATED_TRUE)[
        "entities"
    ]
    assert shared.ok(wire.PRESENCE_DEFINITIONS_PATH, deactivated="true")["entities"] == deactivated
    assert deactivated and all(p["deactivated"] and p["type"] == "User" for p in deactivated)
    assert not any(p["deactivated"] for p in active)
    assert sorted(p["id"] for p in active + deactivated) == sorted(p.id for p in org.presence_definitions)
    assert_error(shared.get(wire.PRESENCE_DEFINITIONS_PATH, deactivated="yes"), 400, wire.ERROR_INVALID_VALUE)
    # A pipeline listing only active definitions would orphan ids the history holds.
    gone = {p["id"] for p in deactivated}
    start = datetime(2024, 5, 6, tzinfo=UTC)
    served = {
        span.organization_presence_id
        for user_id in org.agent_ids()
        for span in org.presence(user_id, start, start + timedelta(days=7))
    }
    assert gone & served


def test_system_presences_have_genesyss_ids_and_the_orgs_own_do_not(shared: Api) -> None:
    listed = [
        *shared.ok(wire.PRESENCE_DEFINITIONS_PATH)["entities"],
        *shared.ok(wire.PRESENCE_DEFINITIONS_PATH, deactivated=wire.PRESENCE_DEACTIVATED_TRUE)["entities"],
    ]
    system = {p["systemPresence"]: p["id"] for p in listed if p["type"] == "System"}
    assert system == dict(GENESYS_SYSTEM_PRESENCE_IDS)
    assert system["OnQueue"] == "e08eaf1b-ee47-4fa9-a231-1200e284798f"
    own = [p["id"] for p in listed if p["type"] == "User"]
    assert own and not set(own) & set(GENESYS_SYSTEM_PRESENCE_IDS.values())
    # the history names the same ids
    start = datetime(2024, 5, 6, tzinfo=UTC)
    served = {
        span.organization_presence_id
        for user_id in shared.org.agent_ids()[:5]
        for span in shared.org.presence(user_id, start, start + timedelta(days=7))
    }
    assert GENESYS_SYSTEM_PRESENCE_IDS["OnQueue"] in served


def test_data_retention_is_configurable_and_needs_its_permission() -> None:
    a = api(retention_days=400)
    retention = a.ok(wire.DATA_RETENTION_PATH)
    assert retention["retentionDays"] == 400 and retention["dateCreated"] == "2024-01-01T00:00:00.000Z"
    message = assert_error(a.get(wire.DATA_RETENTION_PATH, LIMITED), 403, wire.ERROR_MISSING_PERMISSIONS)
    assert wire.PERMISSION_DATA_RETENTION_VIEW in message
    assert api().ok(wire.DATA_RETENTION_PATH)["retentionDays"] == 1825


# --- truth, laziness ------------------------------------------------------------------------------------


def test_the_directory_truth_is_what_the_api_serves(shared: Api) -> None:
    truth = shared.client.get("/sandbox/truth/directory").json()
    served = {u["id"]: u for u in all_pages(shared, wire.USERS_PATH, state=wire.USER_STATE_ANY)}
    assert [u["id"] for u in truth["users"]] == list(served)
    for user in truth["users"]:
        assert user["state"] == served[user["id"]]["state"]
        assert user["managerId"] == served[user["id"]].get("manager", {}).get("id")
        assert user["divisionId"] == served[user["id"]]["division"]["id"]
    assert truth["retentionDays"] == shared.ok(wire.DATA_RETENTION_PATH)["retentionDays"]
    deactivated = shared.ok(wire.PRESENCE_DEFINITIONS_PATH, deactivated="TRUE")["entities"]
    assert truth["deactivatedPresenceIds"] == [p["id"] for p in deactivated]


def test_building_and_listing_the_directory_of_a_large_org_generates_no_timelines() -> None:
    tracemalloc.start()
    try:
        org = SandboxOrg(OrgConfig(seed=9, agents=5_000))
        _, built_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert org.departed_agents == 100 and built_peak < 1_000_000
    assert len(org.user_ids()) == 5_000 + 100 + len(org.management_units) + 1
    assert org.timelines.cache_info().currsize == 0  # type: ignore[attr-defined]
