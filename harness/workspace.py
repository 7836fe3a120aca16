"""``Workspace``: one pipeline installation (data dir, client state dir, DuckDB file) materialized in
process against a sandbox, for the pipeline tests and the soak's reference run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from wfm_pipeline import warehouse
from wfm_pipeline.defs.assets import build_assets
from wfm_pipeline.defs.resources import GenesysApiResource, RawStoreResource, WarehouseResource
from wfm_pipeline.defs.settings import PipelineSettings
from wfm_pipeline.raw_store import RawStore

# Bounds wide enough to read every row of a table back.
WAREHOUSE_MIN = date(2000, 1, 1)
WAREHOUSE_MAX = date(2100, 1, 1)


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

    def assets(self) -> list[dg.AssetsDefinition]:
        """Every asset, built from default settings for this data directory (as definitions.py does)."""
        return build_assets(PipelineSettings.from_env({"WFM_DATA_DIR": str(self.data_dir)})).all

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
                self.assets(), resources=self.resources(), partition_key=first, instance=instance,
                raise_on_error=False,
            )  # fmt: skip
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        return dg.materialize(
            self.assets(), resources=self.resources(), tags=tags, instance=instance, raise_on_error=False
        )

    def table(self, spec: warehouse.TableSpec) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.database), read_only=True) as con:
            frame = warehouse.read_slice(con, spec, WAREHOUSE_MIN, WAREHOUSE_MAX)
        return frame.rows()
