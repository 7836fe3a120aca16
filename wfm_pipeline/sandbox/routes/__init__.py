"""The sandbox's HTTP routes, one module per API area; :func:`build_routes` assembles the router table."""

from __future__ import annotations

from starlette.routing import Route

from wfm_pipeline.sandbox.routes import (
    adherence,
    admin,
    aggregates,
    directory,
    discovery,
    limits,
    oauth,
    truth,
    user_details,
)


def build_routes() -> list[Route]:
    """Every route, in matching order (Starlette takes the first match)."""
    return [
        *oauth.routes(),
        *discovery.routes(),
        *directory.routes(),
        *adherence.routes(),
        *user_details.routes(),
        *aggregates.routes(),
        *limits.routes(),
        *admin.routes(),
        *truth.routes(),
    ]
