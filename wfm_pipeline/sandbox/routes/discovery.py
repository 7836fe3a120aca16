"""Discovery routes: business units, management units and their users, users, presence definitions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wfm_pipeline import wire
from wfm_pipeline.sandbox.errors import json_response, not_found
from wfm_pipeline.sandbox.routes.api import api
from wfm_pipeline.sandbox.state import Caller, SandboxState
from wfm_pipeline.sandbox.validation import query_int


def division_ref(division_id: str) -> dict[str, str]:
    return {"id": division_id, "selfUri": f"/api/v2/authorization/divisions/{division_id}"}


def business_unit_json(bu: Any) -> dict[str, Any]:
    return {
        "id": bu.id,
        "name": bu.name,
        "authorized": True,
        "division": division_ref(bu.division_id),
        "selfUri": f"{wire.BUSINESS_UNITS_PATH}/{bu.id}",
    }


def management_unit_json(sandbox: SandboxState, mu: Any) -> dict[str, Any]:
    return {
        "id": mu.id,
        "name": mu.name,
        "businessUnit": {
            "id": mu.business_unit_id,
            "selfUri": f"{wire.BUSINESS_UNITS_PATH}/{mu.business_unit_id}",
        },
        "startDayOfWeek": mu.start_day_of_week,
        "timeZone": mu.time_zone,
        "division": division_ref(sandbox.mu_division[mu.id]),
        "version": 1,
        "selfUri": f"{wire.MANAGEMENT_UNITS_PATH}/{mu.id}",
    }


async def list_business_units(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    return json_response({"entities": [business_unit_json(bu) for bu in sandbox.org.business_units]})


async def list_bu_management_units(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    bu_id = request.path_params["business_unit_id"]
    if bu_id not in {bu.id for bu in sandbox.org.business_units}:
        raise not_found(f"Business unit {bu_id} was not found.")
    units = [
        management_unit_json(sandbox, mu)
        for mu in sandbox.org.management_units
        if mu.business_unit_id == bu_id
    ]
    return json_response({"entities": units})


async def list_management_units(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    units = [management_unit_json(sandbox, mu) for mu in sandbox.org.management_units]
    return json_response({"entities": units, "selfUri": wire.MANAGEMENT_UNITS_PATH})


async def get_management_unit(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    mu = sandbox.org.management_unit(request.path_params["management_unit_id"])
    if mu is None:
        raise not_found("Management unit not found.")
    return json_response(management_unit_json(sandbox, mu))


async def list_management_unit_users(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    mu_id = request.path_params["management_unit_id"]
    if sandbox.org.management_unit(mu_id) is None:
        raise not_found(f"Management unit {mu_id} was not found.")
    users = [
        {"id": user_id, "selfUri": f"{wire.USERS_PATH}/{user_id}"} for user_id in sandbox.org.agent_ids(mu_id)
    ]
    return json_response({"entities": users})


def user_json(sandbox: SandboxState, user_id: str) -> dict[str, Any]:
    agent = sandbox.org.agent(user_id)
    if agent is None:  # callers list only ids the org knows
        raise LookupError(f"user {user_id} is not an agent of the sandbox org")
    return {
        "id": agent.id,
        "name": agent.name,
        "division": division_ref(sandbox.mu_division[agent.management_unit_id]),
        "email": agent.email,
        "state": "active",
        "username": agent.email,
        "version": 1,
        "acdAutoAnswer": False,
        "selfUri": f"{wire.USERS_PATH}/{agent.id}",
    }


async def list_users(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    limits = sandbox.base_limits
    page_size = query_int(request, "pageSize", limits.users_default_page_size, 1, limits.users_max_page_size)
    page_number = query_int(request, "pageNumber", 1, 1, 1_000_000)
    wanted = [i for i in request.query_params.get("id", "").split(",") if i]
    user_ids = [i for i in wanted if sandbox.org.agent(i) is not None] if wanted else sandbox.org.agent_ids()
    total = len(user_ids)
    page_count = max(1, -(-total // page_size))
    chunk = user_ids[(page_number - 1) * page_size : page_number * page_size]

    def page_uri(number: int) -> str:
        return f"{wire.USERS_PATH}?pageSize={page_size}&pageNumber={number}"

    body: dict[str, Any] = {
        "entities": [user_json(sandbox, user_id) for user_id in chunk],
        "pageSize": page_size,
        "pageNumber": page_number,
        "total": total,
        "firstUri": page_uri(1),
        "selfUri": page_uri(page_number),
        "lastUri": page_uri(page_count),
        "pageCount": page_count,
    }
    if page_number < page_count:
        body["nextUri"] = page_uri(page_number + 1)
    if page_number > 1:
        body["previousUri"] = page_uri(page_number - 1)
    return json_response(body)


async def list_presence_definitions(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    entities = [
        {
            "id": p.id,
            "name": p.name,
            "type": getattr(p, "type", "System"),
            "languageLabels": {"en_US": p.name},
            "systemPresence": p.system_presence,
            "divisionId": "*",
            "deactivated": False,
            "selfUri": f"{wire.PRESENCE_DEFINITIONS_PATH}/{p.id}",
        }
        for p in sandbox.org.presence_definitions
    ]
    return json_response({"entities": entities, "total": len(entities), "pageCount": 1})


def routes() -> list[Route]:
    p = wire
    return [
        Route(p.BUSINESS_UNITS_PATH, api(list_business_units), methods=["GET"]),
        Route(p.BUSINESS_UNIT_MANAGEMENT_UNITS_PATH, api(list_bu_management_units), methods=["GET"]),
        Route(p.MANAGEMENT_UNITS_PATH, api(list_management_units), methods=["GET"]),
        Route(p.MANAGEMENT_UNITS_PATH + "/{management_unit_id}", api(get_management_unit), methods=["GET"]),
        Route(
            p.MANAGEMENT_UNIT_USERS_PATH,
            api(list_management_unit_users, p.PERMISSION_WFM_AGENT_VIEW),
            methods=["GET"],
        ),
        Route(p.USERS_PATH, api(list_users), methods=["GET"]),
        Route(p.PRESENCE_DEFINITIONS_PATH, api(list_presence_definitions), methods=["GET"]),
    ]
