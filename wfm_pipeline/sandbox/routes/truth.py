"""Truth routes (no auth; for tests and benchmarks): the org model, its directory, schedules and timelines,
unclipped."""

from __future__ import annotations

from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wfm_pipeline import wire
from wfm_pipeline.sandbox.errors import bad_request, format_ts, json_response, not_found, parse_ts
from wfm_pipeline.sandbox.jobs import presence_record, routing_record
from wfm_pipeline.sandbox.state import sandbox_of


async def truth_org(request: Request) -> Response:
    org = sandbox_of(request).org
    return json_response(
        {
            "businessUnits": [
                {"id": bu.id, "name": bu.name, "divisionId": bu.division_id} for bu in org.business_units
            ],
            "managementUnits": [
                {
                    "id": mu.id,
                    "name": mu.name,
                    "businessUnitId": mu.business_unit_id,
                    "timeZone": mu.time_zone,
                    "userIds": org.agent_ids(mu.id),
                }
                for mu in org.management_units
            ],
            # In no unit, so not above: their local days are in the default time zone; nothing of them
            # starts or lasts past departedAt.
            "departedAgents": [
                {"id": user.id, "timeZone": user.time_zone, "departedAt": format_ts(user.departed_at)}
                for user in map(org.user, org.departed_agent_ids())
                if user is not None and user.departed_at is not None
            ],
            "defaultTimeZone": org.default_time_zone,
        }
    )


async def truth_directory(request: Request) -> Response:
    """Every user in every state (management unit, manager, division, the zone of its days), the units'
    adherence settings, the activity code ids per business unit, the deactivated presence definitions and
    the retention, straight from the org model."""
    org = sandbox_of(request).org
    users = [user for user in map(org.user, org.user_ids()) if user is not None]
    return json_response(
        {
            "users": [
                {
                    "id": user.id,
                    "name": user.name,
                    "state": user.state,
                    "managementUnitId": user.management_unit_id,
                    "managerId": user.manager_id,
                    "divisionId": user.division_id,
                    "timeZone": user.time_zone,
                    "departedAt": None if user.departed_at is None else format_ts(user.departed_at),
                }
                for user in users
            ],
            "managementUnits": [
                {
                    "id": mu.id,
                    "supervisorId": mu.supervisor_id,
                    "adherenceExceptionThresholdSeconds": mu.adherence.exception_threshold_seconds,
                    "ignoredActivityCategories": list(mu.adherence.ignored_activity_categories),
                }
                for mu in org.management_units
            ],
            "divisionIds": [division.id for division in org.divisions],
            "activityCodeIds": {
                bu.id: [code.id for code in org.activity_codes(bu.id)] for bu in org.business_units
            },
            "deactivatedPresenceIds": [p.id for p in org.presence_definitions if p.deactivated],
            "defaultTimeZone": org.default_time_zone,
            "retentionDays": org.config.retention_days,
        }
    )


def truth_window(request: Request) -> tuple[str, datetime, datetime]:
    sandbox = sandbox_of(request)
    user_id = request.query_params.get("userId", "")
    if sandbox.org.user(user_id) is None:
        raise not_found(f"user {user_id!r} not found")
    start = parse_ts(request.query_params.get("start"), "start")
    end = parse_ts(request.query_params.get("end"), "end")
    if start >= end or end - start > timedelta(days=400):
        raise bad_request(
            "start must be before end, and the window at most 400 days", wire.ERROR_INVALID_VALUE
        )
    return user_id, start, end


async def truth_schedule(request: Request) -> Response:
    sandbox = sandbox_of(request)
    user_id, start, end = truth_window(request)
    activities = await sandbox.compute(sandbox.org.schedule, user_id, start, end)
    return json_response(
        {
            "activities": [
                {
                    "startTime": format_ts(a.start),
                    "endTime": format_ts(a.end),
                    "category": a.category,
                    "activityCodeId": a.activity_code_id,
                    "secondaryPresenceId": a.secondary_presence_id,
                }
                for a in activities
            ]
        }
    )


async def truth_timeline(request: Request) -> Response:
    sandbox = sandbox_of(request)
    user_id, start, end = truth_window(request)
    presence = await sandbox.compute(sandbox.org.presence, user_id, start, end)
    routing = await sandbox.compute(sandbox.org.routing, user_id, start, end)
    return json_response(
        {
            "primaryPresence": [presence_record(span) for span in presence],
            "routingStatus": [routing_record(span) for span in routing],
        }
    )


def routes() -> list[Route]:
    return [
        Route("/sandbox/truth/org", truth_org, methods=["GET"]),
        Route("/sandbox/truth/directory", truth_directory, methods=["GET"]),
        Route("/sandbox/truth/schedule", truth_schedule, methods=["GET"]),
        Route("/sandbox/truth/timeline", truth_timeline, methods=["GET"]),
    ]
