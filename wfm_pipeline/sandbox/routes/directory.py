"""Directory routes: divisions, a business unit with its settings, its activity codes (inline or through a
presigned download, as Genesys answers large listings), and the analytics data retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wfm_pipeline import wire
from wfm_pipeline.sandbox.errors import format_ts, json_response, not_found
from wfm_pipeline.sandbox.localdays import from_epoch, local_midnight
from wfm_pipeline.sandbox.org import ActivityCode, BusinessUnit, Division, SandboxOrg
from wfm_pipeline.sandbox.routes.api import api
from wfm_pipeline.sandbox.routes.discovery import division_ref, expands, paged_listing
from wfm_pipeline.sandbox.routes.presigned import refusal, s3_error, signed_url
from wfm_pipeline.sandbox.state import DOWNLOADS_PREFIX, Caller, SandboxState, sandbox_of
from wfm_pipeline.sandbox.validation import query_bool

ACTIVITY_CODES_DOWNLOAD = "activitycodes/"  # download key prefix: activitycodes/<business unit id>


def division_json(division: Division) -> dict[str, Any]:
    """``AuthzDivision``."""
    return {
        "id": division.id,
        "name": division.name,
        "description": division.description,
        "homeDivision": division.home_division,
        "selfUri": f"{wire.DIVISIONS_PATH}/{division.id}",
    }


async def list_divisions(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    """``AuthzDivisionEntityListing``: the home division, then one per business unit."""
    limits = sandbox.base_limits
    sizes = (limits.divisions_default_page_size, limits.divisions_max_page_size)
    return json_response(
        paged_listing(request, sandbox.org.divisions, division_json, wire.DIVISIONS_PATH, sizes)
    )


def business_unit(org: SandboxOrg, request: Request) -> BusinessUnit:
    bu_id = request.path_params["business_unit_id"]
    bu = org.business_unit(bu_id)
    if bu is None:
        raise not_found(f"Business unit {bu_id} was not found.")
    return bu


async def get_business_unit(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    """``BusinessUnitResponse``; ``settings`` (timeZone, startDayOfWeek) only with ``?expand=settings``."""
    bu = business_unit(sandbox.org, request)
    body: dict[str, Any] = {"id": bu.id, "name": bu.name, "division": division_ref(bu.division_id)}
    if expands(request, wire.BUSINESS_UNIT_EXPAND_SETTINGS):
        body["settings"] = {
            "startDayOfWeek": bu.start_day_of_week,
            "timeZone": bu.time_zone,
            "metadata": {"version": 1},
        }
    body["selfUri"] = wire.BUSINESS_UNIT_PATH.format(business_unit_id=bu.id)
    return json_response(body)


def activity_code_json(code: ActivityCode) -> dict[str, Any]:
    """``BusinessUnitActivityCode``."""
    return {
        "id": code.id,
        "name": code.name,
        "active": code.active,
        "defaultCode": code.default_code,
        "category": code.category,
        "lengthInMinutes": code.length_in_minutes,
        "countsAsPaidTime": code.counts_as_paid_time,
        "countsAsWorkTime": code.counts_as_work_time,
        "secondaryPresences": [
            {"id": presence_id, "selfUri": f"{wire.PRESENCE_DEFINITIONS_PATH}/{presence_id}"}
            for presence_id in code.secondary_presence_ids
        ],
        "metadata": {"version": 1},
    }


def activity_code_listing(org: SandboxOrg, bu: BusinessUnit) -> dict[str, Any]:
    """``BusinessUnitActivityCodeListing`` with its entities."""
    return {"entities": [activity_code_json(code) for code in org.activity_codes(bu.id)]}


async def list_activity_codes(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    """The listing, or with ``?forceDownloadService=true`` (the SDK's switch) only its ``downloadUrl``, a
    presigned link to the same listing valid ``download_url_ttl_seconds``."""
    bu = business_unit(sandbox.org, request)
    if not query_bool(request, "forceDownloadService", False):
        return json_response(activity_code_listing(sandbox.org, bu))
    expires_at = caller.now + timedelta(seconds=sandbox.limits.download_url_ttl_seconds)
    return json_response(
        {"downloadUrl": signed_url(request, sandbox, ACTIVITY_CODES_DOWNLOAD + bu.id, expires_at)}
    )


async def download_activity_codes(request: Request) -> Response:
    sandbox = sandbox_of(request)
    bu_id = request.path_params["business_unit_id"]
    refused = refusal(request, sandbox, ACTIVITY_CODES_DOWNLOAD + bu_id)
    if refused is not None:
        return refused
    bu = sandbox.org.business_unit(bu_id)
    if bu is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    return json_response(activity_code_listing(sandbox.org, bu))


async def get_data_retention(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    """``AnalyticsDataRetentionResponse``; created (and last changed) when the org's history starts."""
    org = sandbox.org
    created = format_ts(from_epoch(local_midnight(org.config.history_start, "UTC")))
    return json_response(
        {"retentionDays": org.config.retention_days, "dateCreated": created, "dateModified": created}
    )


def routes() -> list[Route]:
    p = wire
    return [
        Route(p.DIVISIONS_PATH, api(list_divisions, p.PERMISSION_DIVISION_VIEW), methods=["GET"]),
        Route(p.BUSINESS_UNIT_PATH, api(get_business_unit), methods=["GET"]),
        Route(
            p.BUSINESS_UNIT_ACTIVITY_CODES_PATH,
            api(list_activity_codes, p.PERMISSION_ACTIVITY_CODE_VIEW),
            methods=["GET"],
        ),
        Route(
            DOWNLOADS_PREFIX + ACTIVITY_CODES_DOWNLOAD + "{business_unit_id}",
            download_activity_codes,
            methods=["GET"],
        ),
        Route(
            p.DATA_RETENTION_PATH, api(get_data_retention, p.PERMISSION_DATA_RETENTION_VIEW), methods=["GET"]
        ),
    ]
