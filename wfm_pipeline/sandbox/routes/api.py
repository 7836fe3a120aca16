"""The wrapper every ``/api/v2`` handler goes through: Bearer auth, per-token budget, permissions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from wfm_pipeline import wire
from wfm_pipeline.sandbox import limits as limit_names
from wfm_pipeline.sandbox.auth import require_permission
from wfm_pipeline.sandbox.config import retry_after_seconds
from wfm_pipeline.sandbox.state import Caller, SandboxState, sandbox_of

Handler = Callable[[Request, SandboxState, Caller], Awaitable[Response]]


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
