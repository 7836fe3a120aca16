"""Starlette app factory of the Genesys Cloud sandbox, plus ``run_sandbox`` (blocking, uvicorn).

``create_app(config, org=None, clock=None)`` returns an ASGI app: :class:`SandboxMiddleware`
(correlation ids, rate-limit headers, faults, catch-all 500 ErrorBody, stats) around a Starlette
router. Heavy work (adherence documents, result pages, aggregates) runs on one worker thread and its
bytes are cached, so status polls and repeated page reads stay cheap on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wfm_pipeline import wire
from wfm_pipeline.sandbox import limits as limit_names
from wfm_pipeline.sandbox.auth import (
    OAuthError,
    Token,
    TokenStore,
    check_client,
    client_credentials,
    require_permission,
)
from wfm_pipeline.sandbox.config import Clock, Limits, SandboxConfig, SystemClock, retry_after_seconds
from wfm_pipeline.sandbox.errors import (
    JSON_MEDIA_TYPE,
    ApiError,
    bad_request,
    default_error,
    dumps,
    error_response,
    format_ts,
    json_response,
    not_found,
    parse_interval,
    parse_ts,
)
from wfm_pipeline.sandbox.faults import ERROR_FAULTS, FaultBook
from wfm_pipeline.sandbox.jobs import (
    AdherenceItem,
    AdherenceJob,
    JobRegistry,
    UserDetailsJob,
    adherence_document,
    adherence_response,
    filter_matches,
    latency_seconds,
    user_details_document_count,
    user_details_page,
)
from wfm_pipeline.sandbox.limits import FixedWindowBudget, RollingWindowQuota
from wfm_pipeline.sandbox.stats import Stats

log = logging.getLogger("wfm_pipeline.sandbox")

ADMIN_PREFIX = "/sandbox/"  # admin and truth routes stay fault-free ...
DOWNLOADS_PREFIX = "/sandbox/downloads/"  # ... except the presigned downloads
ORG_KEY = "org"  # one org per sandbox: the key of org-wide quotas


# ==================================================================================================
# State
# ==================================================================================================


class BytesCache:
    """Thread-safe LRU of generated response bodies, bounded in total bytes (memory stays flat)."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: OrderedDict[Any, bytes] = OrderedDict()
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> bytes | None:
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: Any, body: bytes) -> None:
        if len(body) > self._max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            self._bytes += len(body) - (len(previous) if previous is not None else 0)
            self._entries[key] = body
            while self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)


class SandboxState:
    """Everything a request handler needs: config, org, clock, limits, tokens, jobs, faults, stats."""

    def __init__(self, config: SandboxConfig, org: Any, clock: Clock) -> None:
        self.config = config
        self.org = org
        self.clock = clock
        self.base_limits: Limits = config.limits()
        self._scaled_limits = self.base_limits.scaled(config.time_scale)
        self.tokens = TokenStore()
        self.budget = FixedWindowBudget()
        self.job_quota = RollingWindowQuota()
        self.token_quota = RollingWindowQuota()
        self.faults = FaultBook(config.seed)
        self.stats = Stats()
        self.jobs = JobRegistry(config.seed)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-org")
        self.pages = BytesCache(32 * 1024 * 1024)
        self.downloads = BytesCache(64 * 1024 * 1024)
        self.signing_key = hashlib.sha256(f"wfm-sandbox|{config.seed}|signing".encode()).digest()
        self._job_lock = threading.Lock()
        self._bu_division = {bu.id: bu.division_id for bu in org.business_units}
        self.mu_division = {mu.id: self._bu_division[mu.business_unit_id] for mu in org.management_units}

    @property
    def limits(self) -> Limits:
        """Limits in force in wall-clock seconds (time scale applied)."""
        return self._scaled_limits

    def set_limits(self, overrides: dict[str, Any]) -> None:
        self.base_limits = self.base_limits.with_overrides(overrides)
        self._scaled_limits = self.base_limits.scaled(self.config.time_scale)

    def now(self) -> datetime:
        return self.clock.now()

    async def compute(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run org work on the single worker thread (the org model is not shared across threads)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def sign(self, payload: str) -> str:
        return hmac.new(self.signing_key, payload.encode(), hashlib.sha256).hexdigest()[:32]

    def throttle(self, limit_name: str, wall_seconds: float) -> ApiError:
        """A normalized 429 for ``limit_name`` (counted in stats)."""
        self.stats.record_throttle(limit_name)
        seconds = retry_after_seconds(wall_seconds)
        return ApiError(
            429,
            wire.ERROR_TOO_MANY_REQUESTS_RETRY_AFTER,
            f"Rate limit exceeded the maximum. Retry the request in [{seconds}] seconds",
            headers={wire.HEADER_RETRY_AFTER: str(seconds)},
        )

    def admit_job(self, kind: str) -> None:
        """Concurrent-job cap, then the rolling submission quota; records the job in stats."""
        limits, now = self.limits, self.now()
        with self._job_lock:
            running = self.jobs.running(now)
            if running >= limits.max_concurrent_jobs:
                # Retry when the earliest running job completes and frees a slot.
                raise self.throttle(limit_names.LIMIT_CONCURRENT_JOBS, self.jobs.next_completion_seconds(now))
            wait = self.job_quota.try_acquire(
                ORG_KEY, limits.job_submission_quota, limits.job_submission_window_seconds, now
            )
            if wait is not None:
                raise self.throttle(limit_names.LIMIT_JOB_SUBMISSION, wait)
            self.stats.record_job(kind, running + 1)


@dataclass(frozen=True)
class Caller:
    token: Token
    now: datetime


# ==================================================================================================
# Request helpers
# ==================================================================================================

Handler = Callable[[Request, SandboxState, Caller], Awaitable[Response]]


def sandbox_of(request: Request) -> SandboxState:
    return request.app.state.sandbox


def api(handler: Handler, permission: str | None = None) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a /api/v2 handler: Bearer auth, the per-token budget (+ headers), permission check."""

    async def endpoint(request: Request) -> Response:
        sandbox = sandbox_of(request)
        now = sandbox.now()
        token = sandbox.tokens.authenticate(request.headers.get("authorization"), now)
        limits = sandbox.limits
        budget = sandbox.budget.hit(
            token.value, limits.token_rate_per_minute, limits.token_rate_window_seconds, now
        )
        request.state.ratelimit = [
            (wire.HEADER_RATELIMIT_ALLOWED.encode(), str(budget.allowed).encode()),
            (wire.HEADER_RATELIMIT_COUNT.encode(), str(budget.count).encode()),
            (wire.HEADER_RATELIMIT_RESET.encode(), str(retry_after_seconds(budget.reset_seconds)).encode()),
        ]
        if budget.exceeded:
            raise sandbox.throttle(limit_names.LIMIT_TOKEN_RATE, budget.reset_seconds)
        if permission is not None:
            require_permission(sandbox.config.clients.get(token.client_id), permission)
        return await handler(request, sandbox, Caller(token, now))

    return endpoint


async def read_json_object(request: Request, sandbox: SandboxState) -> dict[str, Any]:
    """The JSON object body: 415 for another media type, 413 over the size limit, 400 when malformed."""
    max_bytes = sandbox.base_limits.request_bytes_max
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(
            413,
            wire.ERROR_REQUEST_ENTITY_TOO_LARGE,
            f"The request is over the size limit. Maximum bytes: {max_bytes}",
        )
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise ApiError(
            415,
            wire.ERROR_UNSUPPORTED_MEDIA_TYPE,
            f"Unsupported Media Type - Content-Type must be application/json, got {media_type or 'none'!r}",
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(
                413,
                wire.ERROR_REQUEST_ENTITY_TOO_LARGE,
                f"The request is over the size limit. Maximum bytes: {max_bytes}",
            )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body could not be parsed as JSON.") from None
    if not isinstance(payload, dict):
        raise bad_request("The request body must be a JSON object.")
    return payload


def valid_time_zone(value: Any, field_name: str = "timeZone") -> str:
    if isinstance(value, str) and value and ".." not in value and not value.startswith("/"):
        try:
            ZoneInfo(value)
            return value
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise bad_request(
        f"{field_name}: '{value}' is not a valid IANA (olson) time zone, e.g. 'America/New_York'",
        wire.ERROR_INVALID_VALUE,
        field_name,
    )


def optional_bool(item: dict[str, Any], key: str, where: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise bad_request(f"{where}.{key} must be true or false", wire.ERROR_INVALID_VALUE, key)
    return value


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {raw!r}", wire.ERROR_INVALID_VALUE, name) from None
    if not low <= value <= high:
        raise bad_request(
            f"{name} must be between {low} and {high}, got {value}", wire.ERROR_INVALID_VALUE, name
        )
    return value


def division_ref(division_id: str) -> dict[str, str]:
    return {"id": division_id, "selfUri": f"/api/v2/authorization/divisions/{division_id}"}


# ==================================================================================================
# OAuth
# ==================================================================================================


async def oauth_token(request: Request) -> Response:
    sandbox = sandbox_of(request)
    correlation_id = request.state.correlation_id
    try:
        body = await request.body()
        if len(body) > sandbox.base_limits.request_bytes_max:
            raise OAuthError(400, "invalid_request", "request body too large")
        grant_type, client_id, secret = client_credentials(request.headers.get("authorization"), body)
        if grant_type != "client_credentials":
            raise OAuthError(
                400,
                wire.OAUTH_ERROR_UNSUPPORTED_GRANT_TYPE,
                f"grant type {grant_type!r} is not supported here",
            )
        check_client(sandbox.config.clients, client_id, secret)
    except OAuthError as exc:
        return json_response({"error": exc.error, "description": exc.description}, exc.status)
    limits, now = sandbox.limits, sandbox.now()
    wait = sandbox.token_quota.try_acquire(
        client_id, limits.token_creation_per_window, limits.token_creation_window_seconds, now
    )
    if wait is not None:
        error = sandbox.throttle(limit_names.LIMIT_TOKEN_CREATION, wait)
        return error_response(429, error.code, error.message, correlation_id, error.headers)
    token = sandbox.tokens.issue(client_id, now, limits.token_ttl_seconds)
    sandbox.stats.record_token()
    # expires_in in wall-clock seconds (time scale applied), like Retry-After: what a client must act on.
    expires_in = max(1, int(limits.token_ttl_seconds))
    return json_response({"access_token": token.value, "token_type": "bearer", "expires_in": expires_in})


# ==================================================================================================
# Discovery
# ==================================================================================================


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


# ==================================================================================================
# WFM bulk historical adherence
# ==================================================================================================


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
    faults = getattr(request.state, "job_faults", set())
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
    return json_response(adherence_response(job, now, None), 202)


def download_url(
    request: Request, sandbox: SandboxState, job: AdherenceJob, index: int, now: datetime
) -> str:
    token = f"{job.id}.{index}"
    expires = int(job.download_expiry(now).timestamp() * 1000)
    signature = sandbox.sign(f"{token}:{expires}")
    base = str(request.base_url).rstrip("/")
    return f"{base}{DOWNLOADS_PREFIX}{token}?expires={expires}&signature={signature}"


async def get_adherence_bulk_job(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    job = sandbox.jobs.get(request.path_params["job_id"], caller.token.client_id, AdherenceJob, caller.now)
    if job is None:
        raise not_found("The requested historical adherence job was not found.")
    urls = None
    if job.status(caller.now) == "Complete":
        urls = [download_url(request, sandbox, job, index, caller.now) for index in range(len(job.items))]
    return json_response(adherence_response(job, caller.now, urls))


def s3_error(status: int, code: str, message: str) -> Response:
    """Presigned-download errors look like S3's (XML), as the real download host is S3-style."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


async def download(request: Request) -> Response:
    sandbox = sandbox_of(request)
    token = request.path_params["token"]
    expires, signature = request.query_params.get("expires", ""), request.query_params.get("signature", "")
    if not expires.isdigit() or not hmac.compare_digest(sandbox.sign(f"{token}:{expires}"), signature):
        return s3_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    if sandbox.now().timestamp() * 1000 >= int(expires):
        return s3_error(403, "AccessDenied", "Request has expired")
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


# ==================================================================================================
# Analytics user-details jobs
# ==================================================================================================

FILTER_DIMENSIONS = {
    "userFilters": ("userId",),
    "presenceFilters": ("systemPresence", "organizationPresenceId"),
    "routingStatusFilters": ("routingStatus",),
}
DIMENSION_VALUES = {
    "systemPresence": wire.ANALYTICS_SYSTEM_PRESENCES,
    "routingStatus": wire.ROUTING_STATUSES,
}


def validate_filter(spec: Any, dimensions: tuple[str, ...], where: str, depth: int = 0) -> int:
    """Check an analytics filter's shape; returns how many predicates it has (all levels)."""
    if not isinstance(spec, dict):
        raise bad_request(f"{where} must be an object", field_name=where)
    if spec.get("type") not in ("and", "or"):
        raise bad_request(f"{where}.type must be 'and' or 'or'", wire.ERROR_INVALID_VALUE, "type")
    predicates, clauses = spec.get("predicates") or [], spec.get("clauses") or []
    if not isinstance(predicates, list) or not isinstance(clauses, list) or depth > 3:
        raise bad_request(f"{where}: predicates and clauses must be lists", field_name=where)
    count = 0
    for position, predicate in enumerate(predicates):
        here = f"{where}.predicates[{position}]"
        if not isinstance(predicate, dict):
            raise bad_request(f"{here} must be an object", field_name=where)
        if predicate.get("type", "dimension") != "dimension":
            raise bad_request(f"{here}.type must be 'dimension'", wire.ERROR_INVALID_VALUE, "type")
        dimension = predicate.get("dimension")
        if dimension not in dimensions:
            raise bad_request(
                f"{here}.dimension: value [{dimension}] is not valid; "
                f"allowable values are: {', '.join(dimensions)}",
                wire.ERROR_INVALID_VALUE,
                "dimension",
            )
        operator = predicate.get("operator", "matches")
        if operator not in ("matches", "exists", "notExists"):
            raise bad_request(
                f"{here}.operator must be matches, exists or notExists", wire.ERROR_INVALID_VALUE, "operator"
            )
        value = predicate.get("value")
        if operator == "matches":
            if not isinstance(value, str):
                raise bad_request(f"{here}.value is required for operator 'matches'", field_name="value")
            allowed = DIMENSION_VALUES.get(dimension)
            if allowed and value not in allowed:
                raise bad_request(
                    f"{here}.value: [{value}] is not valid for {dimension}; "
                    f"allowable values are: {', '.join(allowed)}",
                    wire.ERROR_INVALID_VALUE,
                    "value",
                )
        count += 1
    for position, clause in enumerate(clauses):
        count += validate_filter(clause, dimensions, f"{where}.clauses[{position}]", depth + 1)
    return count


def filter_list(body: dict[str, Any], key: str) -> tuple[dict[str, Any], ...]:
    filters = body.get(key)
    if filters is None:
        return ()
    if not isinstance(filters, list):
        raise bad_request(f"{key} must be a list of filters", field_name=key)
    for position, spec in enumerate(filters):
        validate_filter(spec, FILTER_DIMENSIONS[key], f"{key}[{position}]")
    return tuple(filters)


def select_users(sandbox: SandboxState, filters: tuple[dict[str, Any], ...]) -> tuple[str, ...]:
    users = sandbox.org.agent_ids()
    if filters:
        users = [u for u in users if all(filter_matches(f, {"userId": u}) for f in filters)]
    return tuple(sorted(users))


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
    faults = getattr(request.state, "job_faults", set())
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
    )
    sandbox.jobs.add(job)
    return json_response({"jobId": job.id}, 202)


def user_details_job(request: Request, sandbox: SandboxState, caller: Caller) -> UserDetailsJob:
    job = sandbox.jobs.get(request.path_params["job_id"], caller.token.client_id, UserDetailsJob, caller.now)
    if job is None:
        raise not_found("The requested job was not found.")
    return job  # type: ignore[return-value]


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


# ==================================================================================================
# Analytics user aggregates
# ==================================================================================================


def parse_granularity(value: Any) -> timedelta:
    """ISO-8601 period without years/months: PnW, PnDTnHnMnS."""
    import re

    match = re.fullmatch(
        r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?",
        value if isinstance(value, str) else "",
    )
    if not match or not any(match.groups()) or (isinstance(value, str) and value.endswith("T")):
        raise bad_request(
            f"granularity: [{value}] is not a supported ISO-8601 period (for example PT30M, PT1H, P1D)",
            wire.ERROR_INVALID_VALUE,
            "granularity",
        )
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    period = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if period < timedelta(minutes=1):
        raise bad_request("granularity must be at least PT1M", wire.ERROR_INVALID_VALUE, "granularity")
    return period


def merge_groups(per_user: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Sum the stats of every user per interval and (metric, qualifier): the no-groupBy answer."""
    merged: dict[str, dict[tuple[str, str | None], dict[str, float]]] = {}
    for data in per_user:
        for bucket in data:
            metrics = merged.setdefault(bucket["interval"], {})
            for metric in bucket["metrics"]:
                stats = metrics.setdefault(
                    (metric["metric"], metric.get("qualifier")), {"sum": 0, "count": 0}
                )
                stats["sum"] += metric["stats"].get("sum", 0)
                stats["count"] += metric["stats"].get("count", 0)
    return [
        {
            "interval": interval,
            "metrics": [
                {"metric": metric, "qualifier": qualifier, "stats": stats}
                for (metric, qualifier), stats in sorted(
                    metrics.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
                )
            ],
        }
        for interval, metrics in sorted(merged.items())
    ]


async def post_user_aggregates(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    body = await read_json_object(request, sandbox)
    if "interval" not in body:
        raise bad_request("interval is required", field_name="interval")
    start, end = parse_interval(body["interval"])
    metrics = body.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise bad_request("metrics: at least one metric is required", field_name="metrics")
    for metric in metrics:
        if metric not in wire.USER_AGGREGATE_METRICS:
            raise bad_request(
                f"metrics: value [{metric}] is not valid; "
                f"allowable values are: {', '.join(wire.USER_AGGREGATE_METRICS)}",
                wire.ERROR_INVALID_VALUE,
                "metrics",
            )
    group_by = body.get("groupBy", [])
    if not isinstance(group_by, list) or any(g != "userId" for g in group_by):
        raise bad_request(
            "groupBy: grouping is limited to the userId dimension", wire.ERROR_INVALID_VALUE, "groupBy"
        )
    time_zone = valid_time_zone(body["timeZone"]) if "timeZone" in body else "UTC"
    granularity = parse_granularity(body["granularity"]) if body.get("granularity") else None
    if granularity is not None and (end - start) / granularity > 10_000:
        raise bad_request(
            "granularity too fine for the interval (more than 10000 buckets)", field_name="granularity"
        )
    user_filter = body.get("filter")
    filters: tuple[dict[str, Any], ...] = ()
    if user_filter is not None:
        count = validate_filter(user_filter, ("userId",), "filter")
        if count > wire.AGGREGATES_MAX_USER_PREDICATES:
            raise bad_request(
                f"A single query may contain no more than {wire.AGGREGATES_MAX_USER_PREDICATES} "
                f"userId predicates "
                f"(got {count}).",
                field_name="filter",
            )
        filters = (user_filter,)
    user_ids = select_users(sandbox, filters)
    # Aggregates are near-real-time in Genesys: data up to now, nothing from the (generated) future.
    data_end = min(end, caller.now)

    def compute() -> list[list[dict[str, Any]]]:
        if data_end <= start:
            return [[] for _ in user_ids]
        return [
            sandbox.org.user_aggregates(user_id, start, data_end, granularity, time_zone, metrics)
            for user_id in user_ids
        ]

    per_user = await sandbox.compute(compute)
    if group_by:
        results = [
            {"group": {"userId": user_id}, "data": data}
            for user_id, data in zip(user_ids, per_user, strict=True)
            if data
        ]
    else:
        merged = merge_groups(per_user)
        results = [{"group": {}, "data": merged}] if merged else []
    mappings: dict[str, list[str]] = {}
    for definition in sandbox.org.presence_definitions:
        mappings.setdefault(definition.analytics_system_presence, []).append(definition.id)
    return json_response({"systemToOrganizationMappings": mappings, "results": results})


# ==================================================================================================
# Organization limits
# ==================================================================================================


def limits_entities(limits: Limits, namespace: str) -> list[dict[str, Any]] | None:
    """Limits in force per namespace (sandbox seconds); None for a namespace Genesys does not have."""
    per_namespace: dict[str, list[tuple[str, float]]] = {
        "platform.api": [
            ("client.credentials.token.rate.per.minute", limits.token_rate_per_minute),
            ("token.rate.per.minute", limits.token_rate_per_minute),
            ("request.bytes.max", limits.request_bytes_max),
        ],
        "auth.api": [
            ("sandbox.token.creation.max", limits.token_creation_per_window),
            ("sandbox.token.creation.window.seconds", limits.token_creation_window_seconds),
            ("sandbox.token.validity.seconds", limits.token_ttl_seconds),
        ],
        "analytics": [
            ("sandbox.jobs.submission.max", limits.job_submission_quota),
            ("sandbox.jobs.submission.window.seconds", limits.job_submission_window_seconds),
            ("sandbox.jobs.concurrent.max", limits.max_concurrent_jobs),
            ("sandbox.user.details.jobs.results.retention.seconds", limits.result_retention_seconds),
        ],
        "historical.adherence": [
            ("sandbox.jobs.submission.max", limits.job_submission_quota),
            ("sandbox.jobs.submission.window.seconds", limits.job_submission_window_seconds),
            ("sandbox.jobs.concurrent.max", limits.max_concurrent_jobs),
            ("sandbox.download.url.validity.seconds", limits.download_url_ttl_seconds),
        ],
    }
    if namespace in per_namespace:
        return [
            {"key": key, "namespace": namespace, "value": int(value)}
            for key, value in per_namespace[namespace]
        ]
    return [] if namespace in KNOWN_LIMIT_NAMESPACES else None


KNOWN_LIMIT_NAMESPACES = frozenset(
    {
        "analytics.data.extraction",
        "workforce.management",
        "workforce.management.adherence",
        "users",
        "presence",
    }
)


async def get_limits_namespace(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    entities = limits_entities(sandbox.base_limits, request.path_params["namespace"])
    if entities is None:
        raise not_found(f"Limit namespace {request.path_params['namespace']} was not found.")
    return json_response({"entities": entities})


# ==================================================================================================
# Admin and truth routes (no auth; loopback only)
# ==================================================================================================


async def admin_faults(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if request.method == "PUT":
        try:
            raw = json.loads(await request.body() or b"null")
            sandbox.faults.replace(raw)
        except ValueError as exc:
            raise bad_request(f"invalid fault rules: {exc}") from None
    elif request.method == "DELETE":
        sandbox.faults.clear()
    return json_response({"rules": sandbox.faults.describe()})


async def admin_limits(request: Request) -> Response:
    sandbox = sandbox_of(request)
    if request.method == "PUT":
        try:
            raw = json.loads(await request.body() or b"{}")
            if not isinstance(raw, dict):
                raise ValueError("body must be a JSON object of limit name -> value")
            sandbox.set_limits(raw)
        except ValueError as exc:
            raise bad_request(f"invalid limits: {exc}") from None
    return json_response(
        {
            "profile": sandbox.config.profile,
            "timeScale": sandbox.config.time_scale,
            "limits": sandbox.base_limits.as_dict(),
            "effectiveWallClock": sandbox.limits.as_dict(),
        }
    )


async def admin_stats(request: Request) -> Response:
    sandbox = sandbox_of(request)
    snapshot = sandbox.stats.snapshot()
    snapshot["runningJobs"] = sandbox.jobs.running(sandbox.now())
    return json_response(snapshot)


async def admin_stats_reset(request: Request) -> Response:
    sandbox_of(request).stats.reset()
    return Response(status_code=204)


async def admin_revoke_tokens(request: Request) -> Response:
    sandbox = sandbox_of(request)
    raw = await request.body()
    token: str | None = None
    if raw:
        try:
            payload = json.loads(raw)
        except ValueError:
            raise bad_request('body must be JSON: {} or {"token": "..."}') from None
        token = payload.get("token") if isinstance(payload, dict) else None
    return json_response({"revoked": sandbox.tokens.revoke(token)})


async def admin_health(request: Request) -> Response:
    sandbox = sandbox_of(request)
    return json_response(
        {"status": "ok", "seed": sandbox.config.seed, "agents": len(sandbox.org.agent_ids())}
    )


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
        }
    )


def truth_window(request: Request) -> tuple[str, datetime, datetime]:
    sandbox = sandbox_of(request)
    user_id = request.query_params.get("userId", "")
    if sandbox.org.agent(user_id) is None:
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
            "primaryPresence": [
                {
                    "startTime": format_ts(s.start),
                    "endTime": format_ts(s.end),
                    "systemPresence": s.system_presence,
                    "organizationPresenceId": s.organization_presence_id,
                }
                for s in presence
            ],
            "routingStatus": [
                {
                    "startTime": format_ts(s.start),
                    "endTime": format_ts(s.end),
                    "routingStatus": s.routing_status,
                }
                for s in routing
            ],
        }
    )


def build_routes() -> list[Route]:
    p = wire
    return [
        Route(p.TOKEN_PATH, oauth_token, methods=["POST"]),
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
        Route(
            p.ADHERENCE_BULK_PATH,
            api(post_adherence_bulk, p.PERMISSION_HISTORICAL_ADHERENCE_VIEW),
            methods=["POST"],
        ),
        Route(p.ADHERENCE_BULK_JOB_PATH, api(get_adherence_bulk_job), methods=["GET"]),
        Route(DOWNLOADS_PREFIX + "{token}", download, methods=["GET"]),
        Route(
            p.USER_DETAILS_JOBS_PATH,
            api(post_user_details_job, p.PERMISSION_USER_DETAIL_VIEW),
            methods=["POST"],
        ),
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
        Route(
            p.USER_AGGREGATES_QUERY_PATH,
            api(post_user_aggregates, p.PERMISSION_USER_AGGREGATE_VIEW),
            methods=["POST"],
        ),
        Route(p.LIMITS_NAMESPACE_PATH, api(get_limits_namespace), methods=["GET"]),
        Route("/sandbox/health", admin_health, methods=["GET"]),
        Route("/sandbox/faults", admin_faults, methods=["GET", "PUT", "DELETE"]),
        Route("/sandbox/limits", admin_limits, methods=["GET", "PUT"]),
        Route("/sandbox/stats", admin_stats, methods=["GET"]),
        Route("/sandbox/stats/reset", admin_stats_reset, methods=["POST"]),
        Route("/sandbox/tokens/revoke", admin_revoke_tokens, methods=["POST"]),
        Route("/sandbox/truth/org", truth_org, methods=["GET"]),
        Route("/sandbox/truth/schedule", truth_schedule, methods=["GET"]),
        Route("/sandbox/truth/timeline", truth_timeline, methods=["GET"]),
    ]


# ==================================================================================================
# Middleware, factory, server
# ==================================================================================================


def _token_tag(scope: Scope) -> str:
    """A short, non-secret tag of the caller's bearer token for request logs."""
    authorization = dict(scope["headers"]).get(b"authorization", b"")
    if not authorization.lower().startswith(b"bearer "):
        return "-"
    return hashlib.sha256(authorization[7:].strip()).hexdigest()[:8]


def _abort_connection(receive: Receive) -> bool:
    """Close the client socket without a response (uvicorn: the cycle behind ``receive`` owns it)."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    transport.abort()
    return True


class SandboxMiddleware:
    """Outermost ASGI layer: correlation id + rate-limit headers, faults, catch-all 500, stats."""

    def __init__(self, app: ASGIApp, sandbox: SandboxState) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sandbox = self.sandbox
        correlation_id = str(uuid.uuid4())
        state: dict[str, Any] = scope.setdefault("state", {})
        state["correlation_id"] = correlation_id
        method, path = scope["method"], scope["path"]
        response: dict[str, Any] = {"status": 0, "started": False, "truncate": False, "dropped": False}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["started"] = True
                response["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"inin-correlation-id", correlation_id.encode()))
                headers.extend(state.get("ratelimit") or [])
                message = {**message, "headers": headers}
            elif (
                message["type"] == "http.response.body" and response["truncate"] and response["status"] == 200
            ):
                body = message.get("body", b"")
                await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
                response["dropped"] = _abort_connection(receive)
                if not response["dropped"]:
                    raise ConnectionAbortedError("truncated download (no transport to close)")
                await asyncio.sleep(0)
                return
            await send(message)

        try:
            if (
                not path.startswith(ADMIN_PREFIX) or path.startswith(DOWNLOADS_PREFIX)
            ) and await self._apply_faults(scope, receive, send_with_headers, state, response):
                return
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if response["dropped"]:
                return
            sandbox.stats.record_unhandled_error()
            log.exception("unhandled error on %s %s (correlation id %s)", method, path, correlation_id)
            if not response["started"]:
                await default_error(500, correlation_id)(scope, receive, send_with_headers)
        finally:
            template = getattr(scope.get("route"), "path", None) or self._template(scope)
            status = "dropped" if response["dropped"] else response["status"]
            sandbox.stats.record_request(f"{method} {template}", status)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s -> %s token=%s correlation=%s",
                    method,
                    path,
                    status,
                    _token_tag(scope),
                    correlation_id,
                )

    def _template(self, scope: Scope) -> str:
        """The route template of a request the router never saw (answered by a fault)."""
        for route in getattr(self.app, "routes", []):
            match, _ = route.matches(scope)
            if match != Match.NONE:
                return str(getattr(route, "path", "(unmatched)"))
        return "(unmatched)"

    async def _apply_faults(
        self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any], response: dict[str, Any]
    ) -> bool:
        """Apply the faults that fire for this request; True when the request is fully answered."""
        sandbox = self.sandbox
        for rule in sandbox.faults.draw(scope["method"], scope["path"]):
            sandbox.stats.record_fault(rule.kind)
            if rule.kind == "slow":
                await asyncio.sleep(rule.delay_seconds / sandbox.config.time_scale)
            elif rule.kind == "drop_connection":
                response["dropped"] = _abort_connection(receive)
                if not response["dropped"]:
                    raise ConnectionAbortedError("dropped connection (no transport to close)")
                await asyncio.sleep(0)
                return True
            elif rule.kind == "truncate_download":
                response["truncate"] = True
            elif rule.kind == "revoke_token":
                authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
                if authorization[:7].lower() == "bearer ":
                    sandbox.tokens.revoke(authorization[7:].strip())
            elif rule.kind in ("fail_job", "expire_job"):
                state.setdefault("job_faults", set()).add(rule.kind)
            elif rule.kind in ERROR_FAULTS:
                await self._error_fault(rule.kind, rule.retry_after, scope, receive, send, state)
                return True
        return False

    @staticmethod
    async def _error_fault(
        kind: str, retry_after: int | None, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]
    ) -> None:
        status, code = ERROR_FAULTS[kind]
        correlation_id = state["correlation_id"]
        headers: dict[str, str] = {}
        if kind == "rate_limit_429" and retry_after is None:
            retry_after = 1
        if retry_after is not None and kind != "legacy_429":
            headers[wire.HEADER_RETRY_AFTER] = str(retry_after)
        if kind == "legacy_429":
            reply = error_response(
                429,
                code,
                "Rate limit exceeded the maximum [300] requests within [60] seconds",
                correlation_id,
            )
        elif kind == "rate_limit_429":
            message = f"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds"
            reply = error_response(429, code, message, correlation_id, headers)
        else:
            reply = default_error(status, correlation_id, headers)
        await reply(scope, receive, send)


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown route, wrong method) as ErrorBody."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return default_error(status, request.state.correlation_id)


async def _unhandled(request: Request, exc: Exception) -> Response:
    """Any bug becomes a 500 ErrorBody (Starlette re-raises; SandboxMiddleware logs and counts it)."""
    return default_error(500, request.state.correlation_id)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.status, exc.code, exc.message, request.state.correlation_id, exc.headers, exc.field_name
    )


def create_app(
    config: SandboxConfig | None = None, org: Any = None, clock: Clock | None = None
) -> SandboxMiddleware:
    """The sandbox ASGI app. ``org`` defaults to a ``SandboxOrg`` built from ``config``."""
    config = config or SandboxConfig()
    if org is None:
        from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg

        org = SandboxOrg(
            OrgConfig(seed=config.seed, agents=config.agents, history_start=config.history_start)
        )
    sandbox = SandboxState(config, org, clock or SystemClock())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watchdog = (
            asyncio.create_task(_exit_when_parent_gone(config.exit_with_parent))
            if config.exit_with_parent
            else None
        )
        try:
            yield
        finally:
            if watchdog:
                watchdog.cancel()
            sandbox.executor.shutdown(wait=False, cancel_futures=True)

    app = Starlette(
        routes=build_routes(),
        exception_handlers={HTTPException: _http_exception, ApiError: _api_error, Exception: _unhandled},
        lifespan=lifespan,
    )
    app.state.sandbox = sandbox
    return SandboxMiddleware(app, sandbox)


async def _exit_when_parent_gone(parent_pid: int) -> None:
    """Exit when the launching process is gone, so no sandbox outlives its test run."""
    while True:
        await asyncio.sleep(0.5)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            log.warning("parent process %s is gone; sandbox exiting", parent_pid)
            os._exit(0)
        except PermissionError:
            pass


def run_sandbox(config: SandboxConfig) -> None:
    """Serve the sandbox until interrupted (blocking). DESIGN.md's embeddable entry point."""
    import uvicorn

    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=config.log_level,
        timeout_graceful_shutdown=2,
    )
