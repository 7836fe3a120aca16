"""Outermost ASGI layer (correlation ids, rate-limit headers, the loopback-only guard of the admin routes,
faults, catch-all 500, stats) and the exception handlers that turn errors into Genesys ``ErrorBody``
responses."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wfm_pipeline import wire
from wfm_pipeline.sandbox.errors import STATUS_DEFAULT_CODES, ApiError, default_error, error_response
from wfm_pipeline.sandbox.faults import ERROR_FAULTS
from wfm_pipeline.sandbox.loopback import LOOPBACK_NAMES, is_loopback_host_header
from wfm_pipeline.sandbox.state import ADMIN_PREFIX, DOWNLOADS_PREFIX, SandboxState

log = logging.getLogger("wfm_pipeline.sandbox")


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


def is_admin_path(path: str) -> bool:
    """Admin and truth routes (no auth, never faulted); the presigned downloads are emulated API."""
    return path.startswith(ADMIN_PREFIX) and not path.startswith(DOWNLOADS_PREFIX)


def replace_headers(
    headers: list[tuple[bytes, bytes]], overrides: dict[str, tuple[str, str]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` without any header named in ``overrides`` (lower-case name -> (name, value)), then the
    overrides: a client sees one value per name, the fault's, never the sandbox's next to it."""
    kept = [(name, value) for name, value in headers if name.decode("latin-1").lower() not in overrides]
    return kept + [(name.encode("latin-1"), value.encode("latin-1")) for name, value in overrides.values()]


@dataclass
class _ResponseSeen:
    """What the middleware saw of its response: the status once it started, and how a fault cuts it."""

    status: int = 0
    started: bool = False
    truncate: bool = False  # truncate_download: send half of a 200 body, then drop the connection
    dropped: bool = False  # the connection was closed without (the rest of) a response


def _sender(send: Send, receive: Receive, state: dict[str, Any], response: _ResponseSeen) -> Send:
    """``send`` with the correlation id, rate-limit and fault headers added, truncating when told to."""
    correlation_id: str = state["correlation_id"]

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            response.started = True
            response.status = message["status"]
            headers = list(message.get("headers", []))
            headers.append((b"inin-correlation-id", correlation_id.encode()))
            headers.extend(state.get("ratelimit") or [])
            if state.get("header_overrides"):
                headers = replace_headers(headers, state["header_overrides"])
            message = {**message, "headers": headers}
        elif message["type"] == "http.response.body" and response.truncate and response.status == 200:
            body = message.get("body", b"")
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            response.dropped = _abort_connection(receive)
            if not response.dropped:
                raise ConnectionAbortedError("truncated download (no transport to close)")
            await asyncio.sleep(0)
            return
        await send(message)

    return send_with_headers


class SandboxMiddleware:
    """Outermost ASGI layer: correlation id + rate-limit headers, loopback guard, faults, catch-all 500,
    stats."""

    def __init__(self, app: ASGIApp, sandbox: SandboxState) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = str(uuid.uuid4())
        state: dict[str, Any] = scope.setdefault("state", {})
        state["correlation_id"] = correlation_id
        response = _ResponseSeen()
        send_with_headers = _sender(send, receive, state, response)
        try:
            await self._dispatch(scope, receive, send_with_headers, state, response)
        except Exception:
            if response.dropped:
                return
            self.sandbox.stats.record_unhandled_error()
            log.exception(
                "unhandled error on %s %s (correlation id %s)", scope["method"], scope["path"], correlation_id
            )
            if not response.started:
                await default_error(500, correlation_id)(scope, receive, send_with_headers)
        finally:
            self._record(scope, response, correlation_id)

    async def _dispatch(
        self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any], response: _ResponseSeen
    ) -> None:
        """The loopback guard for admin routes, faults for the emulated API, then the app."""
        if is_admin_path(scope["path"]):
            host = dict(scope["headers"]).get(b"host")
            if not is_loopback_host_header(host.decode("latin-1") if host is not None else None):
                await self._refuse_non_loopback(host, scope, receive, send, state)
                return
        elif await self._apply_faults(scope, receive, send, state, response):
            return
        await self.app(scope, receive, send)

    def _record(self, scope: Scope, response: _ResponseSeen, correlation_id: str) -> None:
        """Count the request per route template and log it."""
        method, path = scope["method"], scope["path"]
        template = getattr(scope.get("route"), "path", None) or self._template(scope)
        status: int | str = "dropped" if response.dropped else response.status
        self.sandbox.stats.record_request(f"{method} {template}", status)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s -> %s token=%s correlation=%s",
                method,
                path,
                status,
                _token_tag(scope),
                correlation_id,
            )

    @staticmethod
    async def _refuse_non_loopback(
        host: bytes | None, scope: Scope, receive: Receive, send: Send, state: dict[str, Any]
    ) -> None:
        """403 for an admin/truth request whose Host is not a loopback name (DNS rebinding: a page on
        another origin that re-resolved its name to 127.0.0.1 would otherwise drive the admin routes)."""
        shown = host.decode("latin-1")[:100] if host is not None else None
        message = (
            "The sandbox admin and truth routes are loopback-only: the Host header must be "
            f"{LOOPBACK_NAMES}, optionally with a port (got {shown!r})."
        )
        code = STATUS_DEFAULT_CODES[403][0]  # not.authorized, as Genesys answers a forbidden action
        await error_response(403, code, message, state["correlation_id"])(scope, receive, send)

    def _template(self, scope: Scope) -> str:
        """The route template of a request the router never saw (answered by a fault)."""
        for route in getattr(self.app, "routes", []):
            match, _ = route.matches(scope)
            if match != Match.NONE:
                return str(getattr(route, "path", "(unmatched)"))
        return "(unmatched)"

    async def _apply_faults(
        self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any], response: _ResponseSeen
    ) -> bool:
        """Apply the faults that fire for this request; True when the request is fully answered."""
        sandbox = self.sandbox
        fired = sandbox.faults.draw(scope["method"], scope["path"])
        for rule in fired:
            if rule.kind == "ratelimit_headers":
                # First, whatever the rule order: the headers dress whichever response this request gets,
                # also one answered by an error fault. Applied when it starts (send_with_headers); a
                # later rule wins per (case-insensitive) name.
                overrides = state.setdefault("header_overrides", {})
                overrides.update({name.lower(): (name, value) for name, value in rule.headers.items()})
        for rule in fired:
            sandbox.stats.record_fault(rule.kind)
            if rule.kind == "slow":
                await asyncio.sleep(rule.delay_seconds / sandbox.config.time_scale)
            elif rule.kind == "drop_connection":
                response.dropped = _abort_connection(receive)
                if not response.dropped:
                    raise ConnectionAbortedError("dropped connection (no transport to close)")
                await asyncio.sleep(0)
                return True
            elif rule.kind == "truncate_download":
                response.truncate = True
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


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (unknown route, wrong method) as ErrorBody."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return default_error(status, request.state.correlation_id)


async def unhandled(request: Request, exc: Exception) -> Response:
    """Any bug becomes a 500 ErrorBody (Starlette re-raises; SandboxMiddleware logs and counts it)."""
    return default_error(500, request.state.correlation_id)


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.status, exc.code, exc.message, request.state.correlation_id, exc.headers, exc.field_name
    )
