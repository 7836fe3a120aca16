"""Assets: API side (exports.py, pool genesys_api) and DuckDB side (tables.py, pool duckdb_writer), built
from the settings (their partitions start at WFM_PARTITIONS_START)."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from wfm_pipeline.defs.assets.exports import export_assets
from wfm_pipeline.defs.assets.tables import table_assets
from wfm_pipeline.defs.partitions import Partitioning
from wfm_pipeline.defs.settings import PipelineSettings


@dataclass(frozen=True)
class PipelineAssets:
    exports: tuple[dg.AssetsDefinition, ...]
    tables: tuple[dg.AssetsDefinition, ...]

    @property
    def all(self) -> list[dg.AssetsDefinition]:
        return [*self.exports, *self.tables]

    @property
    def table_keys(self) -> list[dg.AssetKey]:
        """The clean tables: a day is done when every one of them is materialized."""
        return [key for assets_def in self.tables for key in assets_def.keys]


def build_assets(settings: PipelineSettings, partitioning: Partitioning | None = None) -> PipelineAssets:
    partitioning = partitioning or Partitioning.from_settings(settings)
    return PipelineAssets(
        exports=tuple(export_assets(partitioning, settings.occupancy_sample_agents)),
        tables=tuple(table_assets(partitioning)),
    )


__all__ = ["PipelineAssets", "build_assets"]
