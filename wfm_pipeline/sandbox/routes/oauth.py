"""``POST /oauth/token``: client-credentials grants, rate-limited per OAuth client."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wfm_pipeline import wire
from wfm_pipeline.sandbox import limits as limit_names
from wfm_pipeline.sandbox.auth import OAuthError, check_client, client_credentials
from wfm_pipeline.sandbox.errors import error_response, json_response
from wfm_pipeline.sandbox.state import sandbox_of


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


def routes() -> list[Route]:
    return [Route(wire.TOKEN_PATH, oauth_token, methods=["POST"])]
