"""Analytics user-details jobs: submission, status, paged results (signed cursors), delete, availability."""

from __future__ import annotations

import base64
import hmac
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wfm_pipeline import wire
from wfm_pipeline.sandbox.errors import (
    JSON_MEDIA_TYPE,
    bad_request,
    dumps,
    format_ts,
    json_response,
    not_found,
    parse_interval,
)
from wfm_pipeline.sandbox.jobs import (
    UserDetailsJob,
    latency_seconds,
    user_details_document_count,
    user_details_page,
)
from wfm_pipeline.sandbox.routes.api import api
from wfm_pipeline.sandbox.routes.filters import filter_list, select_users
from wfm_pipeline.sandbox.state import Caller, SandboxState
from wfm_pipeline.sandbox.validation import query_int, read_json_object


async def post_user_details_job(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    body = await read_json_object(request, sandbox)
    if "interval" not in body:
        raise bad_request("interval is required", field_name="interval")
    start, end = parse_interval(body["interval"])
    order = body.get("order", "asc")
    if order not in ("asc", "desc", "unordered"):
        raise bad_request(
            f"order: value [{order}] is not valid; allowable values are: asc, desc, unordered",
            wire.ERROR_INVALID_VALUE,
            "order",
        )
    limit = body.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise bad_request("limit must be a positive integer", wire.ERROR_INVALID_VALUE, "limit")
    user_filters = filter_list(body, "userFilters")
    presence_filters = filter_list(body, "presenceFilters")
    routing_filters = filter_list(body, "routingStatusFilters")
    user_ids = select_users(sandbox, user_filters)
    sandbox.admit_job("user_details")
    limits, now = sandbox.limits, caller.now
    days = (end - start).total_seconds() / 86400
    latency = latency_seconds(
        limits.user_details_latency_base_seconds,
        limits.user_details_latency_per_agent_day_seconds,
        len(user_ids),
        days,
    )
    ready_at = now + timedelta(seconds=latency)
    faults: set[str] = getattr(request.state, "job_faults", set())
    retention = 0.0 if "expire_job" in faults else limits.result_retention_seconds
    job = UserDetailsJob(
        id=sandbox.jobs.new_id(),
        client_id=caller.token.client_id,
        start=start,
        end=end,
        user_ids=user_ids,
        presence_filters=presence_filters,
        routing_status_filters=routing_filters,
        order="desc" if order == "desc" else "asc",
        submitted_at=now,
        pending_at=now + timedelta(seconds=latency * limits.queued_fraction),
        ready_at=ready_at,
        expires_at=ready_at + timedelta(seconds=retention),
        availability=now - timedelta(seconds=limits.availability_lag_seconds),
        fails="fail_job" in faults,
        open_records=sandbox.config.behaviours.open_records,
    )
    sandbox.jobs.add(job)
    return json_response({"jobId": job.id}, 202)


def user_details_job(request: Request, sandbox: SandboxState, caller: Caller) -> UserDetailsJob:
    job = sandbox.jobs.get(request.path_params["job_id"], caller.token.client_id, UserDetailsJob, caller.now)
    if job is None:
        raise not_found("The requested job was not found.")
    return job


async def get_user_details_job(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    job = user_details_job(request, sandbox, caller)
    state = job.state(caller.now)
    body: dict[str, Any] = {"state": state}
    if state == "FAILED":
        body["errorMessage"] = "The job failed (sandbox fault injection: fail_job)."
    body["expirationDate"] = format_ts(job.expires_at)
    body["submissionDate"] = format_ts(job.submitted_at)
    if state in ("FULFILLED", "FAILED", "EXPIRED"):
        body["completionDate"] = format_ts(job.ready_at)
    return json_response(body)


async def delete_user_details_job(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    job = user_details_job(request, sandbox, caller)
    sandbox.jobs.delete(job.id)
    return Response(status_code=204)


def encode_cursor(sandbox: SandboxState, job_id: str, offset: int) -> str:
    payload = f"{offset}.{sandbox.sign(f'{job_id}:{offset}')[:16]}"
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(sandbox: SandboxState, job_id: str, cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        offset_text, signature = text.split(".")
        offset = int(offset_text)
    except (ValueError, UnicodeDecodeError):
        offset, signature = -1, ""
    if offset < 0 or not hmac.compare_digest(signature, sandbox.sign(f"{job_id}:{offset}")[:16]):
        raise bad_request(f"Invalid cursor {cursor!r} for this job.", wire.ERROR_INVALID_VALUE, "cursor")
    return offset


async def get_user_details_results(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    job = user_details_job(request, sandbox, caller)
    state = job.state(caller.now)
    if state == "EXPIRED":
        raise not_found(f"The results of job {job.id} have expired and are no longer available.")
    if state != "FULFILLED":
        raise bad_request(
            f"Results are not available: the job is {state}; wait until its state is FULFILLED."
        )
    limits = sandbox.base_limits
    page_size = query_int(
        request, "pageSize", limits.results_default_page_size, 1, limits.results_max_page_size
    )
    cursor = request.query_params.get("cursor")
    offset = decode_cursor(sandbox, job.id, cursor) if cursor else 0
    key = (job.id, offset, page_size)
    body = sandbox.pages.get(key)
    if body is None:
        documents = await sandbox.compute(user_details_page, sandbox.org, job, offset, page_size)
        page: dict[str, Any] = {"userDetails": documents}
        if offset + page_size < user_details_document_count(job):
            page["cursor"] = encode_cursor(sandbox, job.id, offset + page_size)
        page["dataAvailabilityDate"] = format_ts(job.availability)
        body = dumps(page)
        sandbox.pages.put(key, body)
    return Response(body, media_type=JSON_MEDIA_TYPE)


async def get_availability(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    moment = caller.now - timedelta(seconds=sandbox.limits.availability_lag_seconds)
    return json_response({"dataAvailabilityDate": format_ts(moment)})


def routes() -> list[Route]:
    p = wire
    return [
        Route(
            p.USER_DETAILS_JOBS_PATH,
            api(post_user_details_job, p.PERMISSION_USER_DETAIL_VIEW),
            methods=["POST"],
        ),
        # Before the job route: "availability" would otherwise match {job_id}.
        Route(
            p.USER_DETAILS_AVAILABILITY_PATH,
            api(get_availability, p.PERMISSION_USER_DETAIL_VIEW),
            methods=["GET"],
        ),
        Route(
            p.USER_DETAILS_JOB_PATH, api(get_user_details_job, p.PERMISSION_USER_DETAIL_VIEW), methods=["GET"]
        ),
        Route(
            p.USER_DETAILS_JOB_PATH,
            api(delete_user_details_job, p.PERMISSION_USER_DETAIL_VIEW),
            methods=["DELETE"],
        ),
        Route(
            p.USER_DETAILS_JOB_RESULTS_PATH,
            api(get_user_details_results, p.PERMISSION_USER_DETAIL_VIEW),
            methods=["GET"],
        ),
    ]
