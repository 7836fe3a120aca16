"""Fixtures for the pipeline tests: a small sandbox for this package and per-test pipeline workspaces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.workspace import Workspace
from wfm_pipeline.sandbox.launcher import SandboxProcess

# 12 agents cover all six management units; fewer make the truth recomputation fast. Two more left the
# org (deleted, in no unit) and keep their history.
SANDBOX_AGENTS = 12
DEPARTED_AGENTS = 2


@pytest.fixture(scope="package")
def small_sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(profile="fast", agents=SANDBOX_AGENTS, departed_agents=DEPARTED_AGENTS) as process:
        yield process


@pytest.fixture
def make_workspace(tmp_path: Path, small_sandbox: SandboxProcess):  # type: ignore[no-untyped-def]
    def make(name: str) -> Workspace:
        return Workspace(tmp_path / name, small_sandbox.base_url)

    return make
