from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from wfm_pipeline.genesys import ClientSettings, GenesysClient
from wfm_pipeline.sandbox.launcher import SandboxProcess
from wfm_pipeline_tests.genesys.fake_genesys import FakeGenesys
from wfm_pipeline_tests.genesys.sandbox_helpers import SandboxAdmin


@pytest.fixture
def fake() -> FakeGenesys:
    return FakeGenesys()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fake_settings() -> ClientSettings:
    return ClientSettings.for_sandbox(
        "http://genesys.test",
        max_attempts=4,
        backoff_base_seconds=0.01,
        backoff_cap_seconds=0.05,
        poll_initial_seconds=0.01,
        poll_cap_seconds=0.02,
    )


@pytest.fixture
def client(
    tmp_path: Path, fake: FakeGenesys, fake_settings: ClientSettings, sleeps: list[float]
) -> Iterator[GenesysClient]:
    with GenesysClient(
        fake_settings, tmp_path / "state", transport=httpx.MockTransport(fake), sleep=sleeps.append
    ) as client:
        yield client


@pytest.fixture(scope="session")
def genesys_sandbox() -> Iterator[SandboxAdmin]:
    """One fast sandbox for this package's integration tests (started here so they do not depend on the
    shared root fixture's options). Tests reset faults and limits they change."""
    with SandboxProcess(profile="fast", time_scale=60, agents=12, seed=11) as process:
        yield SandboxAdmin(process.base_url)


@pytest.fixture
def sandbox_admin(genesys_sandbox: SandboxAdmin) -> Iterator[SandboxAdmin]:
    original = genesys_sandbox.limits()["limits"]
    genesys_sandbox.clear_faults()
    genesys_sandbox.reset_stats()
    yield genesys_sandbox
    genesys_sandbox.clear_faults()
    genesys_sandbox.set_limits(**original)
