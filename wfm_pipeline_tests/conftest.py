"""Shared fixtures: a session-wide sandbox subprocess and a factory for sandboxes with custom options."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wfm_pipeline.sandbox.launcher import SandboxProcess


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxProcess]:
    """The Genesys Cloud sandbox (``fast`` profile) on a free loopback port, for the whole session."""
    with SandboxProcess(profile="fast") as process:
        yield process


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., SandboxProcess]]:
    """Factory: ``start_sandbox(profile="realistic", time_scale=60, limit=["max_concurrent_jobs=2"])``.

    Options are CLI flags of ``python -m wfm_pipeline.sandbox``; every sandbox started here is stopped
    at the end of the test.
    """
    started: list[SandboxProcess] = []

    def start(**options: Any) -> SandboxProcess:
        options.setdefault("profile", "fast")
        process = SandboxProcess(**options).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
