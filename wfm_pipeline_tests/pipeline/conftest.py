"""Fixtures for the pipeline tests: a small sandbox for this package and per-test pipeline workspaces."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from wfm_pipeline import warehouse
from wfm_pipeline.defs.assets import ALL_ASSETS
from wfm_pipeline.raw_store import RawStore
from wfm_pipeline.defs.resources import GenesysApiResource, RawStoreResource, WarehouseResource
from wfm_pipeline.sandbox.launcher import SandboxProcess

warnings.filterwarnings("ignore", category=dg.BetaWarning)

# 12 agents cover all six management units; fewer make the truth recomputation fast
SANDBOX_AGENTS = 12
WAREHOUSE_MIN = date(2000, 1, 1)
WAREHOUSE_MAX = date(2100, 1, 1)


@pytest.fixture(scope="package")
def small_sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(profile="fast", agents=SANDBOX_AGENTS) as process:
        yield process


@dataclass
class Workspace:
    """One pipeline installation: data dir, client state dir and DuckDB file."""

    root: Path
    sandbox_url: str

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def database(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def store(self) -> RawStore:
        return RawStore(self.data_dir)

    def resources(self) -> dict[str, object]:
        return {
            "genesys": GenesysApiResource(sandbox_url=self.sandbox_url, state_dir=str(self.root / "state")),
            "raw_store": RawStoreResource(data_dir=str(self.data_dir)),
            "duckdb": WarehouseResource(database=str(self.database)),
        }

    def materialize(
        self, first: str, last: str | None = None, instance: dg.DagsterInstance | None = None
    ) -> dg.ExecuteInProcessResult:
        """One run: a single partition, or the range [first, last] as a backfill's single run."""
        if last is None or last == first:
            return dg.materialize(
                list(ALL_ASSETS), resources=self.resources(), partition_key=first, instance=instance,
                raise_on_error=False,
            )  # fmt: skip
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        return dg.materialize(
            list(ALL_ASSETS), resources=self.resources(), tags=tags, instance=instance, raise_on_error=False
        )

    def table(self, spec: warehouse.TableSpec) -> list[tuple]:
        with duckdb.connect(str(self.database), read_only=True) as con:
            frame = warehouse.read_slice(con, spec, WAREHOUSE_MIN, WAREHOUSE_MAX)
        return frame.rows()


@pytest.fixture
def make_workspace(tmp_path: Path, small_sandbox: SandboxProcess):  # type: ignore[no-untyped-def]
    def make(name: str) -> Workspace:
        return Workspace(tmp_path / name, small_sandbox.base_url)

    return make
