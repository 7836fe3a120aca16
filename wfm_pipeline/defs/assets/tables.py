"""Clean DuckDB tables (pool ``duckdb_writer``, limit 1: DuckDB allows one writing process).

Each multi-asset calls its pure loader (``wfm_pipeline.loaders``: manifests + raw files of its partition
days -> chunks of rows produced one at a time, check inputs, metadata), then replaces exactly its slice
(``local_date`` between the first and last key) of all its tables in ONE transaction, inserting each chunk
as it comes, so the step's memory does not grow with the slice. Blocking checks run inside that
transaction on the rows just written (in SQL); a failure rolls back. A raw file that does not verify or
parse is moved to ``$WFM_DATA_DIR/quarantine/`` and the step fails naming it -- nothing is half-loaded.
"""

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import dagster as dg
from duckdb import DuckDBPyConnection

from wfm_pipeline import warehouse
from wfm_pipeline.defs import checks
from wfm_pipeline.defs.failures import pipeline_errors_fail_the_step
from wfm_pipeline.defs.partitions import Partitioning, partition_days
from wfm_pipeline.defs.pools import WRITER_POOL
from wfm_pipeline.defs.resources import RawStoreResource, WarehouseResource
from wfm_pipeline.loaders import load_adherence, load_user_details
from wfm_pipeline.processes import bind_step_to_run_worker
from wfm_pipeline.raw_store import RawStore

GROUP = "warehouse"
# A killed or crashed table step rolled its transaction back: running it again is safe. Bad data and
# failed blocking checks raise Failure(allow_retries=False) and are not retried.
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def write_checked(
    duckdb_resource: WarehouseResource,
    tables: Sequence[warehouse.TableSpec],
    chunks: Iterable[warehouse.Chunk],
    first: date,
    last: date,
    source: str,
    evaluate: Callable[[DuckDBPyConnection], list[checks.CheckOutcome]],
) -> tuple[list[checks.CheckOutcome], dict[str, int]]:
    """Replace the slices of ``tables`` by ``chunks`` in one transaction, inserting each chunk as it is
    produced; ``evaluate(connection)`` runs inside it, on the new rows. A failed blocking outcome rolls
    everything back (``BlockingCheckFailed``). Returns the outcomes and the rows written per table."""
    outcomes: list[checks.CheckOutcome] = []
    with duckdb_resource.get_connection() as connection:

        def before_commit() -> None:
            outcomes.extend(evaluate(connection))
            checks.raise_on_blocking_failures(outcomes, first, last)

        warehouse.limit_memory(connection)
        written = warehouse.replace_slices(
            connection, chunks, first, last, tables=tables, source=source, before_commit=before_commit
        )
    return outcomes, written


def _results(
    written: Mapping[str, int],
    outcomes: Sequence[checks.CheckOutcome],
    first: date,
    last: date,
    extra: Mapping[str, Any],
) -> Iterator[dg.MaterializeResult[None]]:
    for table, rows in written.items():
        yield dg.MaterializeResult(
            asset_key=table,
            metadata={
                "dagster/row_count": rows,
                "first_day": first.isoformat(),
                "last_day": last.isoformat(),
                **extra,
            },
            check_results=[o.result() for o in outcomes if o.check.asset == table],
        )


def _spec(table: warehouse.TableSpec, upstream: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=table.name,
        deps=[upstream],
        description=table.description,
        group_name=GROUP,
        kinds={"duckdb", "polars"},
        metadata={
            "partition_expr": warehouse.SLICE_COLUMN,
            "dagster/table_name": f"{warehouse.SCHEMA}.{table.name}",
        },
    )


@dataclass(frozen=True)
class _Step:
    """What a table step writes (``chunks``, produced lazily), how it checks the written rows, and the
    metadata of each table (known once the chunks were produced)."""

    tables: Sequence[warehouse.TableSpec]
    chunks: Iterable[warehouse.Chunk]
    source: str
    evaluate: Callable[[DuckDBPyConnection], list[checks.CheckOutcome]]
    metadata: Callable[[], Mapping[str, Any]]


def _adherence_step(store: RawStore, first: date, last: date) -> _Step:
    load = load_adherence(store, first, last)
    return _Step(
        load.tables,
        load.chunks(),
        load.source,
        lambda connection: checks.adherence_outcomes(connection, load.checks, first, last),
        lambda: {
            "raw_files": dg.MetadataValue.json(list(load.raw_files)),
            "source": load.source,
            "exception_continuations_joined": load.joined_continuations,
        },
    )


def _user_details_step(store: RawStore, first: date, last: date) -> _Step:
    load = load_user_details(store, first, last)
    return _Step(
        load.tables,
        load.chunks(),
        load.source,
        lambda connection: checks.user_details_outcomes(connection, load.checks, first, last),
        lambda: {
            "raw_files": len(load.raw_files),
            "source": load.source,
            "raw_records": dg.MetadataValue.json(load.raw_records),
        },
    )


def _table_step(
    partitioning: Partitioning,
    name: str,
    upstream: str,
    tables: Sequence[warehouse.TableSpec],
    check_defs: Sequence[checks.CheckDef],
    prepare: Callable[[RawStore, date, date], _Step],
) -> dg.AssetsDefinition:
    """One step writing ``tables`` from the raw files of ``upstream``: load (``prepare``), write the slice
    with the checks evaluated inside the transaction, one ``MaterializeResult`` per table."""

    @dg.multi_asset(
        specs=[_spec(table, upstream) for table in tables],
        check_specs=[check.spec() for check in check_defs],
        partitions_def=partitioning.partitions_def,
        backfill_policy=partitioning.backfill_policy,
        pool=WRITER_POOL,
        retry_policy=RETRY,
        name=name,
    )
    def _tables(
        context: dg.AssetExecutionContext, raw_store: RawStoreResource, duckdb: WarehouseResource
    ) -> Iterator[dg.MaterializeResult[None]]:
        bind_step_to_run_worker()
        first, last = partition_days(context)
        with pipeline_errors_fail_the_step():
            step = prepare(raw_store.store(), first, last)
            outcomes, written = write_checked(
                duckdb, step.tables, step.chunks, first, last, step.source, step.evaluate
            )
        yield from _results(written, outcomes, first, last, step.metadata())

    return _tables


def table_assets(partitioning: Partitioning) -> list[dg.AssetsDefinition]:
    """The two table steps, partitioned by ``partitioning``."""
    return [
        _table_step(
            partitioning,
            "adherence_tables",
            "adherence_raw_files",
            (warehouse.ADHERENCE_DAILY, warehouse.ADHERENCE_EXCEPTIONS),
            checks.ADHERENCE_CHECKS,
            _adherence_step,
        ),
        _table_step(
            partitioning,
            "user_details_tables",
            "user_details_raw_files",
            (warehouse.ROUTING_STATUS_SEGMENTS, warehouse.PRESENCE_SEGMENTS, warehouse.AGENT_OCCUPANCY),
            checks.USER_DETAILS_CHECKS,
            _user_details_step,
        ),
    ]
