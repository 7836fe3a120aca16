"""``Workspace``: one pipeline installation (data dir, client state dir, DuckDB file) materialized in
process against a sandbox, for the pipeline tests and the soak's reference run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl

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
    settings_env: Mapping[str, str] = field(default_factory=dict)  # WFM_* variables besides WFM_DATA_DIR

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
        env = {**self.settings_env, "WFM_DATA_DIR": str(self.data_dir)}
        return build_assets(PipelineSettings.from_env(env)).all

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
        """Every row of a table, sorted, in its content columns (two loads of the same data differ only
        in when they observed it: ``TableSpec.observed_columns``)."""
        with duckdb.connect(str(self.database), read_only=True) as con:
            if warehouse.SLICE_COLUMN in spec.columns:
                frame = warehouse.read_slice(con, spec, WAREHOUSE_MIN, WAREHOUSE_MAX)
            else:
                frame = pl.DataFrame(con.sql(f"SELECT * FROM {spec.qualified_name}"))
        content = frame.select(spec.content_columns)
        return content.sort(content.columns, nulls_last=True).rows()
