"""Starlette app factory of the Genesys Cloud sandbox, plus ``run_sandbox`` (blocking, uvicorn).

``create_app(config, org=None, clock=None)`` returns an ASGI app: :class:`SandboxMiddleware`
(correlation ids, rate-limit headers, faults, catch-all 500 ErrorBody, stats) around a Starlette
router. Heavy work (adherence documents, result pages, aggregates) runs on one worker thread and its
bytes are cached, so status polls and repeated page reads stay cheap on the event loop.

Layout: ``state`` (per-server state), ``validation`` (request checks), ``middleware`` (the ASGI layer and
ErrorBody exception handlers), ``routes/`` (one module per API area, assembled by ``build_routes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from wfm_pipeline.sandbox.config import Clock, SandboxConfig, SystemClock
from wfm_pipeline.sandbox.errors import ApiError
from wfm_pipeline.sandbox.middleware import SandboxMiddleware, api_error, http_exception, unhandled
from wfm_pipeline.sandbox.routes import build_routes
from wfm_pipeline.sandbox.state import SandboxState

__all__ = ["SandboxMiddleware", "SandboxState", "create_app", "run_sandbox"]

log = logging.getLogger("wfm_pipeline.sandbox")


def create_app(
    config: SandboxConfig | None = None, org: Any = None, clock: Clock | None = None
) -> SandboxMiddleware:
    """The sandbox ASGI app. ``org`` defaults to a ``SandboxOrg`` built from ``config``."""
    config = config or SandboxConfig()
    if org is None:
        from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg

        org = SandboxOrg(
            OrgConfig(
                seed=config.seed,
                agents=config.agents,
                history_start=config.history_start,
                departed_agents=config.departed_agents,
                default_time_zone=config.default_time_zone,
                retention_days=config.retention_days,
                fixed_system_presence_ids=config.behaviours.fixed_system_presence_ids,
            )
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
        exception_handlers={HTTPException: http_exception, ApiError: api_error, Exception: unhandled},
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
