"""Assets: API side (exports.py, pool genesys_api), DuckDB side (tables.py, pool duckdb_writer), and the
org's directory with the dimension tables (directory.py, one of each pool), built from the settings (the
partitions start at WFM_PARTITIONS_START; the directory is partitioned like the facts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from wfm_pipeline.defs.assets.directory import directory_assets
from wfm_pipeline.defs.assets.exports import export_assets
from wfm_pipeline.defs.assets.tables import table_assets
from wfm_pipeline.defs.partitions import Partitioning
from wfm_pipeline.defs.settings import PipelineSettings
from wfm_pipeline.extractors import AggregatesSampling


@dataclass(frozen=True)
class PipelineAssets:
    exports: tuple[dg.AssetsDefinition, ...]
    tables: tuple[dg.AssetsDefinition, ...]
    directory: tuple[dg.AssetsDefinition, ...]

    @property
    def all(self) -> list[dg.AssetsDefinition]:
        return [*self.directory, *self.exports, *self.tables]

    @property
    def table_keys(self) -> list[dg.AssetKey]:
        """The clean tables: a day is done when every one of them is materialized."""
        return [key for assets_def in self.tables for key in assets_def.keys]


def _owned(assets: Sequence[dg.AssetsDefinition], owners: Sequence[str]) -> tuple[dg.AssetsDefinition, ...]:
    """``assets`` with ``owners`` and a ``wfm/layer`` tag (their group: raw or warehouse) on every asset."""

    def own(spec: dg.AssetSpec) -> dg.AssetSpec:
        tags = {**spec.tags, "wfm/layer": spec.group_name or "default"}
        return spec.replace_attributes(owners=list(owners), tags=tags)

    return tuple(dg.map_asset_specs(own, assets))


def build_assets(settings: PipelineSettings, partitioning: Partitioning | None = None) -> PipelineAssets:
    partitioning = partitioning or Partitioning.from_settings(settings)
    owners = settings.asset_owners
    return PipelineAssets(
        directory=_owned(directory_assets(partitioning), owners),
        exports=_owned(
            export_assets(
                partitioning,
                AggregatesSampling(settings.occupancy_sample_agents, settings.occupancy_interval),
                settings.default_time_zone,
            ),
            owners,
        ),
        tables=_owned(table_assets(partitioning, settings.occupancy_interval), owners),
    )


__all__ = ["PipelineAssets", "build_assets"]
