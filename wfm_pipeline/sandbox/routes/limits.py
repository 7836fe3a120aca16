"""``GET /api/v2/organizations/limits/namespaces/{namespace}``: the limits in force per namespace.

Values are what a client experiences in *wall-clock* time, so it can configure itself from this route
alone: under ``--time-scale K`` a "per minute" rate is K times the profile's (its window lasts 60/K
wall seconds) and every window, TTL or retention is divided by K (rounded up to whole seconds, at least
1). Counts (quotas, caps, bytes) are unchanged. They are read per request from the limits in force, so
``PUT /sandbox/limits`` shows up here at once.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wfm_pipeline import wire
from wfm_pipeline.sandbox.config import Limits
from wfm_pipeline.sandbox.errors import json_response, not_found
from wfm_pipeline.sandbox.routes.api import api
from wfm_pipeline.sandbox.state import Caller, SandboxState

# Namespaces of the SDK's limits enum that the sandbox models nothing in: an empty list, not a 404.
KNOWN_LIMIT_NAMESPACES = frozenset(
    {
        "analytics.data.extraction",
        "workforce.management",
        "workforce.management.adherence",
        "users",
        "presence",
    }
)

_EPSILON = 1e-9  # absorbs float noise of the time-scale division (e.g. 60 / 7 * 7)
_MIN_WINDOW_SECONDS = 1e-3  # a zero window (allowed by overrides) must not divide by zero


def wall_seconds(seconds: float) -> int:
    """A wall-clock duration as whole seconds: rounded up (never shorter than in force), at least 1."""
    return max(1, math.ceil(seconds - _EPSILON))


def per_wall_minute(count: int, wall_window_seconds: float) -> int:
    """``count`` per window of ``wall_window_seconds`` as a rate per wall-clock minute (rounded down)."""
    return math.floor(count * 60 / max(wall_window_seconds, _MIN_WINDOW_SECONDS) + _EPSILON)


def limits_entities(wall: Limits, namespace: str) -> list[dict[str, Any]] | None:
    """Limits in force per namespace, from ``wall`` (time scale applied); None for an unknown namespace.

    Keys prefixed ``sandbox.`` are modelled limits with no published Genesys key.
    """
    token_rate = per_wall_minute(wall.token_rate_per_minute, wall.token_rate_window_seconds)
    # Bulk adherence and user-details jobs share one org-wide submission quota and concurrency cap.
    job_limits = [
        ("sandbox.jobs.submission.max", wall.job_submission_quota),
        ("sandbox.jobs.submission.window.seconds", wall_seconds(wall.job_submission_window_seconds)),
        ("sandbox.jobs.concurrent.max", wall.max_concurrent_jobs),
    ]
    per_namespace: dict[str, list[tuple[str, int]]] = {
        "platform.api": [
            ("client.credentials.token.rate.per.minute", token_rate),
            ("token.rate.per.minute", token_rate),
            ("request.bytes.max", wall.request_bytes_max),
        ],
        "auth.api": [
            ("sandbox.token.creation.max", wall.token_creation_per_window),
            ("sandbox.token.creation.window.seconds", wall_seconds(wall.token_creation_window_seconds)),
            ("sandbox.token.validity.seconds", wall_seconds(wall.token_ttl_seconds)),
        ],
        "analytics": [
            *job_limits,
            (
                "sandbox.user.details.jobs.results.retention.seconds",
                wall_seconds(wall.result_retention_seconds),
            ),
        ],
        "historical.adherence": [
            *job_limits,
            ("sandbox.download.url.validity.seconds", wall_seconds(wall.download_url_ttl_seconds)),
        ],
    }
    if namespace in per_namespace:
        return [
            {"key": key, "namespace": namespace, "value": int(value)}
            for key, value in per_namespace[namespace]
        ]
    return [] if namespace in KNOWN_LIMIT_NAMESPACES else None


async def get_limits_namespace(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    # sandbox.limits: the current limits (runtime overrides included) in wall-clock seconds.
    entities = limits_entities(sandbox.limits, request.path_params["namespace"])
    if entities is None:
        raise not_found(f"Limit namespace {request.path_params['namespace']} was not found.")
    return json_response({"entities": entities})


def routes() -> list[Route]:
    return [Route(wire.LIMITS_NAMESPACE_PATH, api(get_limits_namespace), methods=["GET"])]
