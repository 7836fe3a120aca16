"""Clean DuckDB tables (pool ``duckdb_writer``, limit 1: DuckDB allows one writing process).

Each multi-asset reads the manifests of its partition days, parses the raw files with the pure transforms,
and replaces exactly its slice (``local_date`` between the first and last key) of all its tables in ONE
transaction. Blocking checks run inside that transaction on the rows just written; a failure rolls back.
A raw file that does not verify or parse is moved to ``$WFM_DATA_DIR/quarantine/`` and the step fails
naming it -- nothing is half-loaded.
"""

from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import polars as pl
from duckdb import DuckDBPyConnection

from wfm_pipeline import warehouse
from wfm_pipeline.defs import checks
from wfm_pipeline.defs.partitions import backfill_policy, daily_partitions, partition_days
from wfm_pipeline.defs.pools import WRITER_POOL
from wfm_pipeline.raw_store import (
    ADHERENCE,
    USER_DETAILS,
    DayManifest,
    RawFileEntry,
    RawFileError,
    RawStore,
    group_days_by_files,
)
from wfm_pipeline.defs.resources import RawStoreResource, WarehouseResource
from wfm_pipeline.processes import bind_step_to_run_worker
from wfm_pipeline.timestamps import days_between, parse_utc
from wfm_pipeline.transforms import (
    PRESENCE_COLUMNS,
    ROUTING_STATUS_COLUMNS,
    ManagementUnitInfo,
    RawRecordError,
    UnknownValueError,
    adherence_daily_rows,
    adherence_document,
    adherence_exception_rows,
    agent_occupancy,
    day_frame,
    membership_frame,
    record_counts,
    segments,
    status_records_from_json,
)
from wfm_pipeline.transforms.adherence import ADHERENCE_DAILY_SCHEMA, ADHERENCE_EXCEPTIONS_SCHEMA

GROUP = "warehouse"
T = TypeVar("T")
# A killed or crashed table step rolled its transaction back: running it again is safe. Bad data and
# failed blocking checks raise Failure(allow_retries=False) and are not retried.
RETRY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


class BlockingCheckFailed(RuntimeError):
    pass


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


def _parse(store: RawStore, entry: RawFileEntry, kind: str, parse: Callable[[bytes], T]) -> T:
    """Load + parse one raw file (``parse(data)``, a pure transform). A shape error the transform reports
    (``RawRecordError``) quarantines the file and fails the step naming it; a value we do not know yet
    (``UnknownValueError``) fails it and keeps the file; any other exception is a bug of ours and
    propagates with the file left where it is."""
    try:
        return parse(store.load_bytes(entry, kind))
    except RawFileError as exc:
        raise dg.Failure(str(exc), metadata={"path": str(exc.path)}, allow_retries=False) from exc
    except UnknownValueError as exc:
        path = store.absolute(entry.path)
        raise dg.Failure(
            f"raw file {path}: {exc}", metadata={"path": str(path), "field": exc.field}, allow_retries=False
        ) from exc
    except RawRecordError as exc:
        path = store.absolute(entry.path)
        moved = store.quarantine(path, kind)
        raise dg.Failure(
            f"malformed raw file {path} ({exc}); moved to {moved}. Re-materialize {kind}_raw_files for "
            "these partitions to download it again.",
            metadata={"path": str(path), "quarantined_to": str(moved)},
            allow_retries=False,
        ) from exc


def _manifests(store: RawStore, kind: str, first: date, last: date) -> dict[date, DayManifest]:
    try:
        return store.read_manifests(kind, days_between(first, last))
    except (FileNotFoundError, RawFileError) as exc:
        raise dg.Failure(str(exc), allow_retries=False) from exc


def _source(manifests: dict[date, DayManifest], kind: str) -> str:
    """The one API the slice's raw files came from (every manifest must name the same)."""
    sources = {manifest.source for manifest in manifests.values()}
    if len(sources) != 1 or "" in sources:
        named = sorted(f"{day}: {manifest.source or 'none recorded'}" for day, manifest in manifests.items())
        raise dg.Failure(
            f"the {kind} manifests of this slice do not name one source ({'; '.join(named[:6])}); "
            f"re-materialize {kind}_raw_files for these partitions",
            allow_retries=False,
        )
    return sources.pop()


def _write(
    duckdb_resource: WarehouseResource,
    frames: Sequence[tuple[warehouse.TableSpec, pl.DataFrame]],
    first: date,
    last: date,
    source: str,
    evaluate: Any,
) -> list[checks.CheckOutcome]:
    """Replace the slices; ``evaluate(connection)`` runs inside the transaction and returns check outcomes.
    A failed blocking outcome rolls everything back and fails the step."""
    Path(duckdb_resource.database).parent.mkdir(parents=True, exist_ok=True)
    outcomes: list[checks.CheckOutcome] = []
    with duckdb_resource.get_connection() as connection:

        def before_commit() -> None:
            outcomes.extend(evaluate(connection))
            failed = [o for o in outcomes if o.check.blocking and not o.passed]
            if failed:
                raise BlockingCheckFailed(
                    "; ".join(f"{o.check.asset}.{o.check.name} failed: {o.metadata}" for o in failed)
                )

        try:
            warehouse.replace_slices(
                connection, frames, first, last, source=source, before_commit=before_commit
            )
        except BlockingCheckFailed as exc:
            raise dg.Failure(
                f"blocking check failed, slice {first}..{last} left as it was: {exc}", allow_retries=False
            ) from exc
        except warehouse.SourceMismatchError as exc:
            raise dg.Failure(f"{exc}; nothing was written", allow_retries=False) from exc
    return outcomes


def _results(
    frames: Sequence[tuple[warehouse.TableSpec, pl.DataFrame]],
    outcomes: Sequence[checks.CheckOutcome],
    first: date,
    last: date,
    extra: dict[str, Any],
) -> Iterator[dg.MaterializeResult]:
    for spec, frame in frames:
        yield dg.MaterializeResult(
            asset_key=spec.name,
            metadata={
                "dagster/row_count": frame.height,
                "first_day": first.isoformat(),
                "last_day": last.isoformat(),
                **extra,
            },
            check_results=[o.result() for o in outcomes if o.check.asset == spec.name],
        )


def _parse_adherence(
    data: bytes, *, units: dict[str, Any], low: date, high: date
) -> tuple[Any, pl.DataFrame, pl.DataFrame]:
    document = adherence_document(data)
    daily = adherence_daily_rows(document, units, low, high)
    return document, daily, adherence_exception_rows(document, units, low, high)


@dg.multi_asset(
    specs=[
        _spec(warehouse.ADHERENCE_DAILY, "adherence_raw_files"),
        _spec(warehouse.ADHERENCE_EXCEPTIONS, "adherence_raw_files"),
    ],
    check_specs=[check.spec() for check in checks.ADHERENCE_CHECKS],
    partitions_def=daily_partitions,
    backfill_policy=backfill_policy,
    pool=WRITER_POOL,
    retry_policy=RETRY,
    name="adherence_tables",
)
def adherence_tables(
    context: dg.AssetExecutionContext, raw_store: RawStoreResource, duckdb: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    bind_step_to_run_worker()
    first, last = partition_days(context)
    store = raw_store.store()
    manifests = _manifests(store, ADHERENCE, first, last)
    source = _source(manifests, ADHERENCE)
    daily_parts, exception_parts = [], []
    expected_daily = expected_exceptions = 0
    files_used: set[str] = set()
    for days, manifest in group_days_by_files(manifests):
        units = {unit.id: unit for unit in manifest.management_units}
        in_days = pl.col("local_date").is_in(days)

        parse = partial(_parse_adherence, units=units, low=min(days), high=max(days))

        for entry in manifest.files:
            document, daily, exceptions = _parse(store, entry, ADHERENCE, parse)
            daily_parts.append(daily.filter(in_days))
            exception_parts.append(exceptions.filter(in_days))
            expected_daily += checks.count_day_metrics([document], units, set(days))
            expected_exceptions += checks.count_exceptions([document], units, set(days))
            files_used.add(entry.path)
    daily = pl.concat(daily_parts or [pl.DataFrame(schema=ADHERENCE_DAILY_SCHEMA)]).sort(
        "management_unit_id", "user_id", "local_date"
    )
    exceptions = pl.concat(exception_parts or [pl.DataFrame(schema=ADHERENCE_EXCEPTIONS_SCHEMA)]).sort(
        "management_unit_id", "user_id", "start_time"
    )
    frames = [(warehouse.ADHERENCE_DAILY, daily), (warehouse.ADHERENCE_EXCEPTIONS, exceptions)]
    snapshot = manifests[last].management_units
    all_days = days_between(first, last)

    def evaluate(connection: DuckDBPyConnection) -> list[checks.CheckOutcome]:
        stored = warehouse.read_slice(connection, warehouse.ADHERENCE_DAILY, first, last)
        stored_exceptions = warehouse.count_slice(connection, warehouse.ADHERENCE_EXCEPTIONS, first, last)
        return [
            checks.values_in_range(checks.ADHERENCE_IN_RANGE, stored, "adherence_percentage", 0.0, 100.0),
            checks.units_present(checks.ADHERENCE_UNITS_PRESENT, stored, snapshot, all_days),
            checks.counts_equal(checks.ADHERENCE_ROW_COUNT, stored.height, expected_daily),
            checks.counts_equal(checks.EXCEPTIONS_ROW_COUNT, stored_exceptions, expected_exceptions),
        ]

    outcomes = _write(duckdb, frames, first, last, source, evaluate)
    yield from _results(
        frames,
        outcomes,
        first,
        last,
        {"raw_files": dg.MetadataValue.json(sorted(files_used)), "source": source},
    )


def _day_bounds(days_frame: pl.DataFrame) -> dict[tuple[str, date], tuple[datetime, datetime]]:
    return {
        (row["management_unit_id"], row["local_date"]): (row["day_start"], row["day_end"])
        for row in days_frame.iter_rows(named=True)
    }


@dg.multi_asset(
    specs=[
        _spec(warehouse.ROUTING_STATUS_SEGMENTS, "user_details_raw_files"),
        _spec(warehouse.PRESENCE_SEGMENTS, "user_details_raw_files"),
        _spec(warehouse.AGENT_OCCUPANCY, "user_details_raw_files"),
    ],
    check_specs=[check.spec() for check in checks.USER_DETAILS_CHECKS],
    partitions_def=daily_partitions,
    backfill_policy=backfill_policy,
    pool=WRITER_POOL,
    retry_policy=RETRY,
    name="user_details_tables",
)
def user_details_tables(
    context: dg.AssetExecutionContext, raw_store: RawStoreResource, duckdb: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    bind_step_to_run_worker()
    first, last = partition_days(context)
    store = raw_store.store()
    manifests = _manifests(store, USER_DETAILS, first, last)
    source = _source(manifests, USER_DETAILS)
    counts: dict[str, dict[str, int]] = {"routing_status": {}, "presence": {}}
    routing_parts, presence_parts, occupancy_parts, day_parts = [], [], [], []
    # per group of days: what the raw-side segment counts need (files, units, day bounds, open_until)
    sources: list[
        tuple[
            list[Path],
            Sequence[ManagementUnitInfo],
            dict[tuple[str, date], tuple[datetime, datetime]],
            datetime | None,
        ]
    ] = []
    samples: list[tuple[Sequence[str], Any, str]] = []
    files_used: set[str] = set()
    windows: list[tuple[datetime, datetime]] = []
    available_until: datetime | None = None
    for days, manifest in group_days_by_files(manifests):
        units = manifest.management_units
        days_frame = day_frame(units, min(days), max(days)).filter(pl.col("local_date").is_in(days))
        membership = membership_frame(units)
        open_until = parse_utc(manifest.data_availability_date) if manifest.data_availability_date else None
        if open_until is not None:
            available_until = open_until if available_until is None else min(available_until, open_until)
        routing_records, presence_records = [], []
        for entry in manifest.files:
            routing, presence = _parse(
                store, entry, USER_DETAILS, lambda data: status_records_from_json([data])
            )
            routing_records.append(routing)
            presence_records.append(presence)
            files_used.add(entry.path)
            if entry.window_start and entry.window_end:
                windows.append((parse_utc(entry.window_start), parse_utc(entry.window_end)))
        routing_all = pl.concat(routing_records) if routing_records else status_records_from_json([])[0]
        presence_all = pl.concat(presence_records) if presence_records else status_records_from_json([])[1]
        for name, records in (("routing_status", routing_all), ("presence", presence_all)):
            for key, value in record_counts(records, membership).items():
                counts[name][key] = counts[name].get(key, 0) + value
        routing = segments(routing_all, membership, days_frame, ROUTING_STATUS_COLUMNS, open_until)
        presence = segments(presence_all, membership, days_frame, PRESENCE_COLUMNS, open_until)
        routing_parts.append(routing)
        presence_parts.append(presence)
        occupancy_parts.append(agent_occupancy(routing, presence, days_frame))
        day_parts.append(days_frame)
        paths = [store.absolute(entry.path) for entry in manifest.files]
        sources.append((paths, units, _day_bounds(days_frame), open_until))
        for sample in manifest.aggregates:
            response = store.load_aggregates(sample.path)
            if response is not None:
                samples.append((sample.user_ids, response, sample.management_unit_id))
    frames = [
        (warehouse.ROUTING_STATUS_SEGMENTS, pl.concat(routing_parts)),
        (warehouse.PRESENCE_SEGMENTS, pl.concat(presence_parts)),
        (warehouse.AGENT_OCCUPANCY, pl.concat(occupancy_parts)),
    ]
    all_days = pl.concat(day_parts)
    snapshot = manifests[last].management_units

    def distinct_sources(connection: DuckDBPyConnection, spec: warehouse.TableSpec, status: str) -> int:
        row = connection.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT user_id, status_start_time, {status} "
            f"FROM {spec.sql_name(connection)} WHERE local_date BETWEEN ? AND ?)",
            [first, last],
        ).fetchone()
        return int(row[0]) if row else 0

    def expected_sources(connection: DuckDBPyConnection, list_field: str, status_fields: list[str]) -> int:
        return sum(
            checks.expected_segment_sources(connection, paths, list_field, status_fields, *rest)
            for paths, *rest in sources
        )

    def evaluate(connection: DuckDBPyConnection) -> list[checks.CheckOutcome]:
        expected_routing = expected_sources(connection, "routingStatus", ["routingStatus"])
        expected_presence = expected_sources(
            connection, "primaryPresence", ["systemPresence", "organizationPresenceId"]
        )
        routing = warehouse.read_slice(connection, warehouse.ROUTING_STATUS_SEGMENTS, first, last)
        presence = warehouse.read_slice(connection, warehouse.PRESENCE_SEGMENTS, first, last)
        occupancy = warehouse.read_slice(connection, warehouse.AGENT_OCCUPANCY, first, last)
        return [
            checks.days_covered(
                checks.USER_DETAILS_DAYS_COVERED, windows, all_days, snapshot, available_until
            ),
            checks.no_overlaps(checks.ROUTING_NO_OVERLAP, routing),
            checks.day_totals_within_day_length(checks.ROUTING_DAY_TOTAL, routing, all_days),
            checks.counts_equal(
                checks.ROUTING_ROW_COUNT,
                distinct_sources(connection, warehouse.ROUTING_STATUS_SEGMENTS, "routing_status"),
                expected_routing,
            ),
            checks.no_overlaps(checks.PRESENCE_NO_OVERLAP, presence),
            checks.day_totals_within_day_length(checks.PRESENCE_DAY_TOTAL, presence, all_days),
            checks.counts_equal(
                checks.PRESENCE_ROW_COUNT,
                distinct_sources(
                    connection, warehouse.PRESENCE_SEGMENTS, "system_presence, organization_presence_id"
                ),
                expected_presence,
            ),
            checks.values_in_range(checks.OCCUPANCY_IN_RANGE, occupancy, "occupancy", 0.0, 1.0),
            checks.occupancy_matches_aggregates(
                checks.OCCUPANCY_MATCHES_AGGREGATES, occupancy, samples, all_days, available_until
            ),
        ]

    outcomes = _write(duckdb, frames, first, last, source, evaluate)
    yield from _results(
        frames,
        outcomes,
        first,
        last,
        {
            "raw_files": len(files_used),
            "source": source,
            "raw_records": dg.MetadataValue.json(counts),
        },
    )
