"""Clean DuckDB tables (pool ``duckdb_writer``, limit 1: DuckDB allows one writing process).

Each multi-asset calls its pure loader (``wfm_pipeline.loaders``: manifests + raw files of its partition
days -> chunks of rows produced one at a time, check inputs, metadata), then replaces exactly its slice
(``local_date`` between the first and last key) of all its tables in ONE transaction, inserting each chunk
as it comes, so the step's memory does not grow with the slice. Blocking checks run inside that
transaction on the rows just written (in SQL); a failure rolls back. A raw file that does not verify or
parse is moved to ``$WFM_DATA_DIR/quarantine/`` and the step fails naming it -- nothing is half-loaded.
"""

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import dagster as dg
from duckdb import DuckDBPyConnection

from wfm_pipeline import warehouse
from wfm_pipeline.columns import COLUMN_DESCRIPTIONS
from wfm_pipeline.defs import checks
from wfm_pipeline.defs.executors import bind_to_run_worker
from wfm_pipeline.defs.failures import pipeline_errors_fail_the_step
from wfm_pipeline.defs.partitions import Partitioning, partition_days
from wfm_pipeline.defs.pools import WRITER_POOL
from wfm_pipeline.defs.resources import RawStoreResource, WarehouseResource
from wfm_pipeline.loaders import load_adherence, load_user_details
from wfm_pipeline.raw_store import RawStore
from wfm_pipeline.timestamps import days_between
from wfm_pipeline.transforms import OccupancyInterval

GROUP = "warehouse"
# A killed or crashed table step rolled its transaction back: running it again is safe. Bad data and
# failed blocking checks raise Failure(allow_retries=False) and are not retried.
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


@dataclass(frozen=True)
class Written:
    """What a slice write left in the warehouse, counted inside its transaction: per table, the rows of
    each day of the slice, and the table's rows in all."""

    per_day: Mapping[str, Mapping[date, int]]
    totals: Mapping[str, int]


def write_checked(
    duckdb_resource: WarehouseResource,
    tables: Sequence[warehouse.TableSpec],
    chunks: Iterable[warehouse.Chunk],
    first: date,
    last: date,
    source: str,
    evaluate: Callable[[DuckDBPyConnection], list[checks.CheckOutcome]],
    report: Callable[[Sequence[checks.CheckOutcome]], None] = lambda outcomes: None,
) -> tuple[list[checks.CheckOutcome], Written]:
    """Replace the slices of ``tables`` by ``chunks`` in one transaction, inserting each chunk as it is
    produced; ``evaluate(connection)`` runs inside it, on the new rows, and ``report`` gets its outcomes
    before a failed blocking outcome rolls everything back (``BlockingCheckFailed``), so a failure is
    recorded too. Returns the outcomes and the rows the tables hold once the write commits."""
    outcomes: list[checks.CheckOutcome] = []
    counted: dict[str, Any] = {}
    with duckdb_resource.get_connection() as connection:

        def before_commit() -> None:
            outcomes.extend(evaluate(connection))
            report(outcomes)
            checks.raise_on_blocking_failures(outcomes, first, last)
            counted["written"] = Written(
                per_day={t.name: warehouse.rows_per_day(connection, t, first, last) for t in tables},
                totals={t.name: warehouse.count_rows(connection, t) for t in tables},
            )

        warehouse.limit_memory(connection)
        warehouse.replace_slices(
            connection, chunks, first, last, tables=tables, source=source, before_commit=before_commit
        )
    return outcomes, counted["written"]


def _record_per_partition(
    context: dg.AssetExecutionContext, outcomes: Sequence[checks.CheckOutcome], first: date, last: date
) -> None:
    """Each outcome, evaluated over the whole slice (one transaction), as the evaluation of every
    partition of the slice: all of them were written, or none."""
    for outcome in outcomes:
        for day in days_between(first, last):
            context.log_event(outcome.evaluation(day.isoformat(), first, last))


def _results(
    context: dg.AssetExecutionContext,
    written: Written,
    first: date,
    last: date,
    extra: Mapping[str, Any],
) -> Iterator[dg.MaterializeResult[None]]:
    """One materialization per table and partition: each partition gets its own day's rows
    (``dagster/partition_row_count``); the table's total and the step's metadata are shared."""
    for table, per_day in written.per_day.items():
        for day, rows in per_day.items():
            context.add_asset_metadata(
                {"dagster/partition_row_count": rows}, asset_key=table, partition_key=day.isoformat()
            )
        days_with_rows = [day for day, rows in per_day.items() if rows]
        yield dg.MaterializeResult(
            asset_key=table,
            metadata={
                "dagster/row_count": written.totals[table],
                "slice_rows": sum(per_day.values()),
                # the first day of the slice Genesys returned data for (history may start later)
                "first_day_with_rows": min(days_with_rows).isoformat() if days_with_rows else None,
                "first_day": first.isoformat(),
                "last_day": last.isoformat(),
                **extra,
            },
        )


def column_schema(table: warehouse.TableSpec) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, sql_type, description=COLUMN_DESCRIPTIONS[name])
            for name, sql_type in table.sql_types.items()
        ]
    )


def _spec(table: warehouse.TableSpec, upstream: str) -> dg.AssetSpec:
    """The table, after its raw files and the dimensions its ids must resolve to."""
    dimensions = dict.fromkeys(reference.dimension.name for reference in table.references)
    return dg.AssetSpec(
        key=table.name,
        deps=[upstream, *dimensions],
        description=f"{table.description[:1].upper()}{table.description[1:]} (`{table.qualified_name}`). "
        "Partitions are each management unit's **local day**.",
        group_name=GROUP,
        kinds={"duckdb", "polars"},
        metadata={
            "partition_expr": warehouse.SLICE_COLUMN,
            "dagster/table_name": f"{warehouse.SCHEMA}.{table.name}",
            "dagster/column_schema": column_schema(table),
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
            # SDK-optional day metrics Genesys left out, loaded as NULL
            "day_metric_values_missing": dg.MetadataValue.json(load.missing_day_metrics),
        },
    )


def _user_details_step(store: RawStore, first: date, last: date, interval: OccupancyInterval) -> _Step:
    load = load_user_details(store, first, last, interval=interval)
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

    # can_subset: the check evaluations are logged per partition (``_record_per_partition``), not
    # returned as the step's check outputs, which Dagster would tie to no partition in a range run.
    @dg.multi_asset(
        specs=[_spec(table, upstream) for table in tables],
        check_specs=[check.spec(partitioning.partitions_def) for check in check_defs],
        partitions_def=partitioning.partitions_def,
        backfill_policy=partitioning.backfill_policy,
        pool=WRITER_POOL,
        retry_policy=RETRY,
        can_subset=True,
        name=name,
    )
    def _tables(
        context: dg.AssetExecutionContext, raw_store: RawStoreResource, duckdb: WarehouseResource
    ) -> Iterator[dg.MaterializeResult[None]]:
        bind_to_run_worker(context)
        first, last = partition_days(context)
        with pipeline_errors_fail_the_step():
            step = prepare(raw_store.store(), first, last)
            _, written = write_checked(
                duckdb,
                step.tables,
                step.chunks,
                first,
                last,
                step.source,
                step.evaluate,
                report=lambda outcomes: _record_per_partition(context, outcomes, first, last),
            )
        yield from _results(context, written, first, last, step.metadata())

    return _tables


def table_assets(partitioning: Partitioning, interval: OccupancyInterval) -> list[dg.AssetsDefinition]:
    """The two table steps, partitioned by ``partitioning``; occupancy per ``interval``."""
    return [
        _table_step(
            partitioning,
            "adherence_tables",
            "adherence_raw_files",
            checks.ADHERENCE_TABLES,
            checks.ADHERENCE_CHECKS,
            _adherence_step,
        ),
        _table_step(
            partitioning,
            "user_details_tables",
            "user_details_raw_files",
            checks.USER_DETAILS_TABLES,
            checks.USER_DETAILS_CHECKS,
            functools.partial(_user_details_step, interval=interval),
        ),
    ]
