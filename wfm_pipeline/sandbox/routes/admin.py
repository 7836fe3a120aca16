"""Admin routes (no auth; loopback only): health, faults, limits, stats, token revocation."""

from __future__ import annotations

import json
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wfm_pipeline.sandbox.errors import bad_request, json_response
from wfm_pipeline.sandbox.state import sandbox_of


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
        changed_at: float | None = time.time()  # every request handled after this sees the new limits
    else:
        changed_at = None
    return json_response(
        {
            "changedAt": changed_at,
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


def routes() -> list[Route]:
    return [
        Route("/sandbox/health", admin_health, methods=["GET"]),
        Route("/sandbox/faults", admin_faults, methods=["GET", "PUT", "DELETE"]),
        Route("/sandbox/limits", admin_limits, methods=["GET", "PUT"]),
        Route("/sandbox/stats", admin_stats, methods=["GET"]),
        Route("/sandbox/stats/reset", admin_stats_reset, methods=["POST"]),
        Route("/sandbox/tokens/revoke", admin_revoke_tokens, methods=["POST"]),
    ]
