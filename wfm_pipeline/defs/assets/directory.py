"""The org's directory: ``directory_raw_files`` (pool ``genesys_api``) takes a snapshot of users, units,
activity codes and presences; ``dimension_tables`` (pool ``duckdb_writer``) merges it into the dimension
tables the fact tables' ids resolve to.

Partitioned like the facts, though a snapshot describes the org as it is now: every run takes one before
its fact tables (they depend on the dimensions of their days), so an agent hired today has a row before
their first segment is checked against ``wfm.agents``, and a backfill's run holds its directory, exports
and tables. Unpartitioned, the directory split a backfill into a wave of export runs, one directory run
and a wave of table runs that never overlapped (BENCHMARKS.md, "Backfill"). A partition's materialization
of the directory means "a snapshot was taken by a run of this day".
"""

from collections.abc import Iterator

import dagster as dg

from wfm_pipeline import warehouse
from wfm_pipeline.defs.assets.tables import RETRY as WRITE_RETRY
from wfm_pipeline.defs.assets.tables import column_schema
from wfm_pipeline.defs.executors import bind_to_run_worker
from wfm_pipeline.defs.failures import pipeline_errors_fail_the_step
from wfm_pipeline.defs.partitions import Partitioning
from wfm_pipeline.defs.pools import API_POOL, WRITER_POOL
from wfm_pipeline.defs.resources import GenesysApiResource, RawStoreResource, WarehouseResource
from wfm_pipeline.extractors import extract_directory
from wfm_pipeline.loaders import load_directory

DIRECTORY_ASSET = "directory_raw_files"
FETCH_RETRY = dg.RetryPolicy(
    max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def directory_assets(partitioning: Partitioning) -> list[dg.AssetsDefinition]:
    """The snapshot and the dimension tables, partitioned (and grouped into backfill runs) like the facts."""
    return [_snapshot_asset(partitioning), _dimensions_asset(partitioning)]


def _snapshot_asset(partitioning: Partitioning) -> dg.AssetsDefinition:
    # A one-spec multi_asset, not @asset: backfill_policy is a beta parameter of @asset in Dagster 1.13
    # (a BetaWarning on every definitions load) and a plain parameter of @multi_asset.
    @dg.multi_asset(
        name=DIRECTORY_ASSET,
        specs=[
            dg.AssetSpec(
                DIRECTORY_ASSET,
                group_name="raw",
                kinds={"api", "json"},
                description="A snapshot of the org's directory (users in every state, divisions, business "
                "and management units with their settings, activity codes, presence definitions, data "
                "retention) under `$WFM_DATA_DIR/raw/directory/`.",
            )
        ],
        pool=API_POOL,
        retry_policy=FETCH_RETRY,
        partitions_def=partitioning.partitions_def,
        backfill_policy=partitioning.backfill_policy,
    )
    def directory_raw_files(
        context: dg.AssetExecutionContext, genesys: GenesysApiResource, raw_store: RawStoreResource
    ) -> dg.MaterializeResult[None]:
        bind_to_run_worker(context)
        with pipeline_errors_fail_the_step(), genesys.client() as client:
            snapshot = extract_directory(client, raw_store.store())
        if snapshot.retention_days is None:
            context.log.warning(
                "the credentials may not read the analytics data retention (analytics:dataRetention:view)"
            )
        return dg.MaterializeResult(
            metadata={
                "path": snapshot.path,
                "observed_at": snapshot.observed_at.isoformat(),
                **{f"{kind}": count for kind, count in snapshot.counts.items()},
                "retention_days": snapshot.retention_days,
                "requests": snapshot.metrics.requests,
                "throttled_429s": snapshot.metrics.throttled,
                "source": snapshot.source,
            }
        )

    return directory_raw_files


def _dimensions_asset(partitioning: Partitioning) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="dimension_tables",
        specs=[
            dg.AssetSpec(
                table.name,
                deps=[DIRECTORY_ASSET],
                description=f"{table.description} (`{table.qualified_name}`), merged from every snapshot.",
                group_name="warehouse",
                kinds={"duckdb", "polars"},
                metadata={
                    "dagster/table_name": table.qualified_name,
                    "dagster/column_schema": column_schema(table),
                },
            )
            for table in warehouse.DIMENSIONS
        ],
        pool=WRITER_POOL,
        retry_policy=WRITE_RETRY,
        partitions_def=partitioning.partitions_def,
        backfill_policy=partitioning.backfill_policy,
    )
    def dimension_tables(
        context: dg.AssetExecutionContext, raw_store: RawStoreResource, duckdb: WarehouseResource
    ) -> Iterator[dg.MaterializeResult[None]]:
        bind_to_run_worker(context)
        with pipeline_errors_fail_the_step():
            load = load_directory(raw_store.store())
            with duckdb.get_connection() as connection:
                warehouse.limit_memory(connection)
                totals = warehouse.merge_dimensions(connection, load.frames, source=load.source)
        for table, frame in load.frames:
            yield dg.MaterializeResult(
                asset_key=table.name,
                metadata={
                    "dagster/row_count": totals[table.name],
                    "rows_in_snapshot": frame.height,
                    "snapshot": load.path,
                    "observed_at": load.observed_at.isoformat(),
                    "source": load.source,
                },
            )

    return dimension_tables
