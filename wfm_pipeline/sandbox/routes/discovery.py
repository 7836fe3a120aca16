"""Discovery routes: business units, management units (with their settings) and their users, the user
directory in every state, presence definitions (active or deactivated)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wfm_pipeline import wire
from wfm_pipeline.sandbox.errors import bad_request, json_response, not_found
from wfm_pipeline.sandbox.org import AdherenceSettings, BusinessUnit, ManagementUnit, SandboxOrg, User
from wfm_pipeline.sandbox.routes.api import api
from wfm_pipeline.sandbox.state import Caller, SandboxState
from wfm_pipeline.sandbox.validation import query_bool, query_int, query_list

ItemT = TypeVar("ItemT")


def division_ref(division_id: str) -> dict[str, str]:
    return {"id": division_id, "selfUri": f"{wire.DIVISIONS_PATH}/{division_id}"}


def user_ref(user_id: str) -> dict[str, str]:
    return {"id": user_id, "selfUri": f"{wire.USERS_PATH}/{user_id}"}


def expands(request: Request, value: str) -> bool:
    """Whether ``?expand=`` names ``value`` (e.g. wire.MANAGEMENT_UNIT_EXPAND_SETTINGS)."""
    return value in query_list(request, "expand")


def paged_listing(
    request: Request,
    items: Sequence[ItemT],
    entity: Callable[[ItemT], dict[str, Any]],
    path: str,
    sizes: tuple[int, int],
    kept_params: tuple[str, ...] = (),
) -> dict[str, Any]:
    """An ``*EntityListing`` page (pageSize/pageNumber, default and maximum page size ``sizes``); the
    page URIs repeat ``kept_params`` as the request gave them, so following ``nextUri`` keeps its filter.
    ``nextUri`` is absent on the last page, ``previousUri`` on the first."""
    default_size, max_size = sizes
    page_size = query_int(request, "pageSize", default_size, 1, max_size)
    page_number = query_int(request, "pageNumber", 1, 1, 1_000_000)
    page_count = max(1, -(-len(items) // page_size))
    kept = "".join(
        f"&{name}={request.query_params[name]}" for name in kept_params if name in request.query_params
    )

    def page_uri(number: int) -> str:
        return f"{path}?pageSize={page_size}&pageNumber={number}{kept}"

    body: dict[str, Any] = {
        "entities": [entity(item) for item in items[(page_number - 1) * page_size : page_number * page_size]],
        "pageSize": page_size,
        "pageNumber": page_number,
        "total": len(items),
        "firstUri": page_uri(1),
        "selfUri": page_uri(page_number),
        "lastUri": page_uri(page_count),
        "pageCount": page_count,
    }
    if page_number < page_count:
        body["nextUri"] = page_uri(page_number + 1)
    if page_number > 1:
        body["previousUri"] = page_uri(page_number - 1)
    return body


def business_unit_json(bu: BusinessUnit) -> dict[str, Any]:
    return {
        "id": bu.id,
        "name": bu.name,
        "authorized": True,
        "division": division_ref(bu.division_id),
        "selfUri": f"{wire.BUSINESS_UNITS_PATH}/{bu.id}",
    }


def adherence_settings_json(settings: AdherenceSettings) -> dict[str, Any]:
    """``AdherenceSettings`` as the SDK names its fields."""
    return {
        "severeAlertThresholdMinutes": settings.severe_alert_threshold_minutes,
        "adherenceTargetPercent": settings.target_percent,
        "adherenceExceptionThresholdSeconds": settings.exception_threshold_seconds,
        "nonOnQueueActivitiesEquivalent": settings.non_on_queue_activities_equivalent,
        "trackOnQueueActivity": settings.track_on_queue_activity,
        "ignoredActivityCategories": {"values": list(settings.ignored_activity_categories)},
    }


def management_unit_json(org: SandboxOrg, mu: ManagementUnit, with_settings: bool = False) -> dict[str, Any]:
    business_unit = org.business_unit(mu.business_unit_id)
    assert business_unit is not None  # every unit's business unit is in the org
    body: dict[str, Any] = {
        "id": mu.id,
        "name": mu.name,
        "businessUnit": {
            "id": mu.business_unit_id,
            "selfUri": f"{wire.BUSINESS_UNITS_PATH}/{mu.business_unit_id}",
        },
        "startDayOfWeek": mu.start_day_of_week,
        "timeZone": mu.time_zone,
        "division": division_ref(business_unit.division_id),
        "version": 1,
        "selfUri": f"{wire.MANAGEMENT_UNITS_PATH}/{mu.id}",
    }
    if with_settings:
        body["settings"] = {"adherence": adherence_settings_json(mu.adherence), "metadata": {"version": 1}}
    return body


async def list_business_units(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    return json_response({"entities": [business_unit_json(bu) for bu in sandbox.org.business_units]})


async def list_bu_management_units(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    bu_id = request.path_params["business_unit_id"]
    if sandbox.org.business_unit(bu_id) is None:
        raise not_found(f"Business unit {bu_id} was not found.")
    units = [
        management_unit_json(sandbox.org, mu)
        for mu in sandbox.org.management_units
        if mu.business_unit_id == bu_id
    ]
    return json_response({"entities": units})


async def list_management_units(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    units = [management_unit_json(sandbox.org, mu) for mu in sandbox.org.management_units]
    return json_response({"entities": units, "selfUri": wire.MANAGEMENT_UNITS_PATH})


async def get_management_unit(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    mu = sandbox.org.management_unit(request.path_params["management_unit_id"])
    if mu is None:
        raise not_found("Management unit not found.")
    return json_response(
        management_unit_json(sandbox.org, mu, expands(request, wire.MANAGEMENT_UNIT_EXPAND_SETTINGS))
    )


async def list_management_unit_users(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    mu_id = request.path_params["management_unit_id"]
    if sandbox.org.management_unit(mu_id) is None:
        raise not_found(f"Management unit {mu_id} was not found.")
    return json_response({"entities": [user_ref(user_id) for user_id in sandbox.org.agent_ids(mu_id)]})


def user_json(user: User) -> dict[str, Any]:
    """A ``User`` as the SDK names its fields; ``manager`` only when the user has one."""
    body: dict[str, Any] = {
        "id": user.id,
        "name": user.name,
        "division": division_ref(user.division_id),
        "department": user.department,
        "email": user.email,
        "state": user.state,
        "title": user.title,
        "username": user.email,
    }
    if user.manager_id is not None:
        body["manager"] = user_ref(user.manager_id)
    body.update({"version": 1, "acdAutoAnswer": False, "selfUri": f"{wire.USERS_PATH}/{user.id}"})
    return body


def requested_user_states(request: Request) -> tuple[str, ...]:
    """The states ``?state=`` asks for: one of wire.USER_STATES, or all for wire.USER_STATE_ANY; active
    when absent, as Genesys."""
    raw = request.query_params.get("state") or "active"
    state = raw.lower()
    if state == wire.USER_STATE_ANY:
        return wire.USER_STATES
    if state not in wire.USER_STATES:
        allowed = ", ".join((*wire.USER_STATES, wire.USER_STATE_ANY))
        raise bad_request(
            f"state: value [{raw}] is not valid; allowable values are: {allowed}",
            wire.ERROR_INVALID_VALUE,
            "state",
        )
    return (state,)


async def list_users(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    """``UserEntityListing`` of the users in the requested state (``?id=`` limits it to those ids); only
    the page's users are built."""
    org, limits = sandbox.org, sandbox.base_limits
    states = requested_user_states(request)
    wanted = query_list(request, "id")
    if wanted:
        user_ids = [i for i in wanted if (user := org.user(i)) is not None and user.state in states]
    else:
        user_ids = org.user_ids(states)

    def entity(user_id: str) -> dict[str, Any]:
        user = org.user(user_id)
        assert user is not None  # listed ids are the org's
        return user_json(user)

    sizes = (limits.users_default_page_size, limits.users_max_page_size)
    return json_response(paged_listing(request, user_ids, entity, wire.USERS_PATH, sizes, ("state",)))


async def list_presence_definitions(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    """``OrganizationPresenceDefinitionEntityListing``: ``deactivated=TRUE`` lists the deactivated
    definitions, ``FALSE`` (and no value: modelled, UNCERTAIN) the active ones."""
    deactivated = query_bool(request, "deactivated", False)
    entities = [
        {
            "id": p.id,
            "name": p.name,
            "type": p.type,
            "languageLabels": {"en_US": p.name},
            "systemPresence": p.system_presence,
            "divisionId": "*",
            "deactivated": p.deactivated,
            "selfUri": f"{wire.PRESENCE_DEFINITIONS_PATH}/{p.id}",
        }
        for p in sandbox.org.presence_definitions
        if p.deactivated == deactivated
    ]
    return json_response({"entities": entities, "total": len(entities), "pageCount": 1})


def routes() -> list[Route]:
    p = wire
    return [
        Route(p.BUSINESS_UNITS_PATH, api(list_business_units), methods=["GET"]),
        Route(p.BUSINESS_UNIT_MANAGEMENT_UNITS_PATH, api(list_bu_management_units), methods=["GET"]),
        Route(p.MANAGEMENT_UNITS_PATH, api(list_management_units), methods=["GET"]),
        Route(
            p.MANAGEMENT_UNIT_PATH,
            api(get_management_unit, p.PERMISSION_MANAGEMENT_UNIT_VIEW),
            methods=["GET"],
        ),
        Route(
            p.MANAGEMENT_UNIT_USERS_PATH,
            api(list_management_unit_users, p.PERMISSION_WFM_AGENT_VIEW),
            methods=["GET"],
        ),
        Route(p.USERS_PATH, api(list_users), methods=["GET"]),
        Route(p.PRESENCE_DEFINITIONS_PATH, api(list_presence_definitions), methods=["GET"]),
    ]
