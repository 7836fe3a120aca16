"""WFM bulk historical adherence: job submission, job status and the presigned (S3-style) downloads."""

from __future__ import annotations

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
    json_response,
    not_found,
    parse_ts,
)
from wfm_pipeline.sandbox.jobs import (
    AdherenceItem,
    AdherenceJob,
    adherence_document,
    adherence_response,
    latency_seconds,
)
from wfm_pipeline.sandbox.routes.api import api
from wfm_pipeline.sandbox.routes.presigned import refusal, s3_error, signed_url
from wfm_pipeline.sandbox.state import DOWNLOADS_PREFIX, Caller, SandboxState, sandbox_of
from wfm_pipeline.sandbox.validation import optional_bool, read_json_object, valid_time_zone


def parse_adherence_items(sandbox: SandboxState, body: dict[str, Any]) -> list[AdherenceItem]:
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise bad_request("items: at least one item is required", field_name="items")
    parsed: list[AdherenceItem] = []
    for position, item in enumerate(items):
        where = f"items[{position}]"
        if not isinstance(item, dict):
            raise bad_request(f"{where} must be an object", field_name="items")
        mu_id = item.get("managementUnitId")
        if not isinstance(mu_id, str) or not mu_id:
            raise bad_request(f"{where}.managementUnitId is required", field_name="managementUnitId")
        if sandbox.org.management_unit(mu_id) is None:
            raise bad_request(
                f"{where}.managementUnitId: management unit {mu_id} does not exist",
                wire.ERROR_INVALID_VALUE,
                "managementUnitId",
            )
        for key in ("startDate", "endDate"):
            if key not in item:
                raise bad_request(f"{where}.{key} is required", field_name=key)
        start = parse_ts(item["startDate"], f"{where}.startDate")
        end = parse_ts(item["endDate"], f"{where}.endDate")
        if start >= end:
            raise bad_request(
                f"{where}: startDate must be before endDate", wire.ERROR_INVALID_VALUE, "endDate"
            )
        include_exceptions = optional_bool(item, "includeExceptions", where)
        include_actuals = optional_bool(item, "includeActuals", where)
        max_days = wire.ADHERENCE_MAX_DAYS_WITH_EXCEPTIONS if include_exceptions else wire.ADHERENCE_MAX_DAYS
        if end - start > timedelta(days=max_days):
            raise bad_request(
                f"{where}: the maximum supported range for historical adherence queries is "
                f"{wire.ADHERENCE_MAX_DAYS} days, or {wire.ADHERENCE_MAX_DAYS_WITH_EXCEPTIONS} days with "
                f"includeExceptions = true (got {(end - start).total_seconds() / 86400:g} days)",
                field_name="endDate",
            )
        members = sandbox.org.agent_ids(mu_id)
        user_ids = item.get("userIds")
        if user_ids is not None:
            if not isinstance(user_ids, list) or not all(isinstance(u, str) for u in user_ids):
                raise bad_request(
                    f"{where}.userIds must be a list of strings", wire.ERROR_INVALID_VALUE, "userIds"
                )
            wanted = set(user_ids)
            members = [member for member in members if member in wanted]
        parsed.append(AdherenceItem(mu_id, start, end, tuple(members), include_exceptions, include_actuals))
    return parsed


async def post_adherence_bulk(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    body = await read_json_object(request, sandbox)
    if "timeZone" not in body:
        raise bad_request("timeZone is required", field_name="timeZone")
    time_zone = valid_time_zone(body["timeZone"])
    items = parse_adherence_items(sandbox, body)
    sandbox.admit_job("adherence")
    limits, now = sandbox.limits, caller.now
    agent_days = sum(len(i.user_ids) * (i.end - i.start).total_seconds() / 86400 for i in items)
    latency = latency_seconds(
        limits.adherence_latency_base_seconds, limits.adherence_latency_per_agent_day_seconds, 1, agent_days
    )
    ready_at = now + timedelta(seconds=latency)
    faults: set[str] = getattr(request.state, "job_faults", set())
    job = AdherenceJob(
        id=sandbox.jobs.new_id(),
        client_id=caller.token.client_id,
        time_zone=time_zone,
        items=tuple(items),
        submitted_at=now,
        ready_at=ready_at,
        gone_at=ready_at + timedelta(seconds=limits.adherence_job_retention_seconds),
        download_ttl_seconds=limits.download_url_ttl_seconds,
        fails="fail_job" in faults,
        downloads_expire_early="expire_job" in faults,
    )
    sandbox.jobs.add(job)
    return json_response(adherence_response(job, now, _urls_while_processing(sandbox)), 202)


def _urls_while_processing(sandbox: SandboxState) -> list[str] | None:
    """``downloadUrls`` of a job not yet Complete: ``[]`` as real orgs reply, or left out (the contract
    alone: the key is optional)."""
    return [] if sandbox.config.behaviours.empty_download_urls_while_processing else None


async def get_adherence_bulk_job(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    job = sandbox.jobs.get(request.path_params["job_id"], caller.token.client_id, AdherenceJob, caller.now)
    if job is None:
        raise not_found("The requested historical adherence job was not found.")
    status = job.status(caller.now)
    urls = _urls_while_processing(sandbox) if status == wire.ADHERENCE_JOB_PROCESSING else None
    if status == wire.ADHERENCE_JOB_COMPLETE:
        expires_at = job.download_expiry(caller.now)
        urls = [
            signed_url(request, sandbox, f"{job.id}.{index}", expires_at) for index in range(len(job.items))
        ]
    return json_response(adherence_response(job, caller.now, urls))


async def download(request: Request) -> Response:
    sandbox = sandbox_of(request)
    token = request.path_params["token"]
    refused = refusal(request, sandbox, token)
    if refused is not None:
        return refused
    job_id, _, index_text = token.rpartition(".")
    job = sandbox.jobs.find(job_id)
    if not isinstance(job, AdherenceJob) or not index_text.isdigit() or int(index_text) >= len(job.items):
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    index = int(index_text)
    body = sandbox.downloads.get((job.id, index))
    if body is None:
        document = await sandbox.compute(adherence_document, sandbox.org, job, job.items[index])
        body = dumps(document)
        sandbox.downloads.put((job.id, index), body)
    return Response(body, media_type=JSON_MEDIA_TYPE)


def routes() -> list[Route]:
    p = wire
    return [
        Route(
            p.ADHERENCE_BULK_PATH,
            api(post_adherence_bulk, p.PERMISSION_HISTORICAL_ADHERENCE_VIEW),
            methods=["POST"],
        ),
        Route(p.ADHERENCE_BULK_JOB_PATH, api(get_adherence_bulk_job), methods=["GET"]),
        Route(DOWNLOADS_PREFIX + "{token}", download, methods=["GET"]),
    ]
