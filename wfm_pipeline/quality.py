"""Data-quality evaluations of the clean tables: pure functions returning plain ``Evaluation``s (no Dagster).

The table steps evaluate them on the rows they just wrote, INSIDE the write transaction (SQL through the
same DuckDB connection, ``evaluate_adherence`` / ``evaluate_user_details``), so a failed blocking check
rolls the slice back. No evaluation reads a whole slice into memory: each is an aggregate in SQL, and the
comparison with the aggregates API reads only the sampled agents' rows. ``wfm_pipeline.defs.checks``
names them as Dagster asset checks.

Raw-side numbers come from a second route to the raw files, computed by the loaders:
``count_day_metrics`` / ``count_exceptions`` count in plain Python over the parsed adherence documents;
``raw_segment_sources`` reads the user-details pages with DuckDB's JSON reader and timestamp casts (another
parser of the same bytes, staged in a scratch database that spills to disk) and applies the segment rules
of ``transforms.segments`` to them one bucket of users at a time -- one implementation of each rule, so the
count checks our parsing and loading, not a copy of the rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from wfm_pipeline import warehouse
from wfm_pipeline.timestamps import parse_utc
from wfm_pipeline.transforms import (
    DAY_GRAIN,
    PRIMARY_PRESENCE,
    ROUTING_STATUS,
    ManagementUnitInfo,
    OccupancyInterval,
    StatusRecordKind,
    segments,
)

SECONDS_TOLERANCE = 1.0  # aggregates are milliseconds; segments are whole or fractional seconds
MetadataEntry = int | float | str | None | list[str] | dict[str, Any]


@dataclass(frozen=True)
class Evaluation:
    passed: bool
    metadata: dict[str, MetadataEntry] = field(default_factory=dict)


# --- what the loaders hand the checks ----------------------------------------------------------------
@dataclass(frozen=True)
class AdherenceCheckInputs:
    units: tuple[ManagementUnitInfo, ...]  # the organization snapshot of the slice's last day
    days: tuple[date, ...]
    raw_day_metrics: int  # dayMetrics records of the raw files on the loaded days (plain-Python recount)
    # exceptionInfo records starting on the loaded days, less the continuations of exceptions cut at a
    # window boundary that the loader joined to the piece before (``transforms.stitch``)
    raw_exceptions: int


@dataclass(frozen=True)
class AggregatesSample:
    """A raw UserAggregateQueryResponse for a few agents of one unit, fetched with the export."""

    user_ids: tuple[str, ...]
    response: Mapping[str, Any]
    management_unit_id: str
    granularity: OccupancyInterval = OccupancyInterval.PT30M


@dataclass(frozen=True)
class UserDetailsCheckInputs:
    units: tuple[ManagementUnitInfo, ...]  # the organization snapshot of the slice's last day
    days: pl.DataFrame  # day_frame rows of the loaded (unit, local day)s
    windows: tuple[tuple[datetime, datetime], ...]  # the export jobs' intervals listed by the manifests
    available_until: datetime | None  # the earliest dataAvailabilityDate of the manifests
    raw_routing_sources: int  # routing status records the table should show (``raw_segment_sources``)
    raw_presence_sources: int
    aggregates: tuple[AggregatesSample, ...]


# --- table-side evaluations: SQL over the slice just written, never the whole slice in memory ---------
def _number(value: object) -> float | None:
    """A numeric column's min/max; None for an empty column."""
    return float(value) if isinstance(value, int | float) else None


def _column(spec: warehouse.TableSpec, column: str) -> str:
    if column not in spec.columns:  # column names reach the SQL text: only the table's own are accepted
        raise ValueError(f"{spec.qualified_name} has no column {column!r}")
    return column


def _slice(connection: duckdb.DuckDBPyConnection, spec: warehouse.TableSpec, first: date, last: date) -> str:
    return f"{spec.sql_name(connection)} WHERE {warehouse.slice_condition(first, last)}"


def _one_row(connection: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = connection.execute(sql).fetchone()
    if row is None:  # an aggregate without GROUP BY always returns one row
        raise RuntimeError(f"no row from {sql}")
    return tuple(row)


def values_in_range(
    connection: duckdb.DuckDBPyConnection,
    spec: warehouse.TableSpec,
    column: str,
    low: float,
    high: float,
    first: date,
    last: date,
) -> Evaluation:
    name = _column(spec, column)
    rows, bad, smallest, largest = _one_row(
        connection,
        f"SELECT count(*), count(*) FILTER (WHERE {name} < {float(low)} OR {name} > {float(high)}), "
        f"min({name}), max({name}) FROM {_slice(connection, spec, first, last)}",
    )
    return Evaluation(
        bad == 0, {"rows": rows, "out_of_range": bad, "min": _number(smallest), "max": _number(largest)}
    )


def units_present(
    connection: duckdb.DuckDBPyConnection,
    spec: warehouse.TableSpec,
    units: Sequence[ManagementUnitInfo],
    days: Sequence[date],
    first: date,
    last: date,
) -> Evaluation:
    seen = set(
        connection.execute(
            f"SELECT DISTINCT management_unit_id, local_date FROM {_slice(connection, spec, first, last)}"
        ).fetchall()
    )
    missing = [
        f"{unit.id}@{day.isoformat()}"
        for unit in units
        if unit.user_ids
        for day in days
        if (unit.id, day) not in seen
    ]
    return Evaluation(not missing, {"missing": missing[:50]})


def _merged(windows: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def days_covered(
    windows: Iterable[tuple[datetime, datetime]],
    days: pl.DataFrame,
    units: Sequence[ManagementUnitInfo],
    available_until: datetime | None,
) -> Evaluation:
    """Every (unit with agents, local day) of ``days`` lies inside the union of ``windows`` up to
    ``available_until`` (what the export could not have covered yet). A file whose job's window is unknown
    or belongs to another request covers nothing, so it cannot hide a gap."""
    merged = _merged(windows)
    # the days of agents in no unit (a null unit, in the default time zone) are checked like a unit's
    staffed: set[str | None] = {unit.id for unit in units if unit.user_ids} | {None}
    uncovered = []
    for row in days.iter_rows(named=True):
        if row["management_unit_id"] not in staffed:
            continue
        low = row["day_start"]
        high = row["day_end"] if available_until is None else min(row["day_end"], available_until)
        if low < high and not any(start <= low and high <= end for start, end in merged):
            uncovered.append(f"{row['management_unit_id'] or 'no unit'}@{row['local_date'].isoformat()}")
    return Evaluation(not uncovered, {"unit_days": days.height, "uncovered": uncovered[:50]})


def counts_equal(table_rows: int, raw_records: int) -> Evaluation:
    return Evaluation(table_rows == raw_records, {"table_rows": table_rows, "raw_records": raw_records})


def no_overlaps(
    connection: duckdb.DuckDBPyConnection, spec: warehouse.TableSpec, first: date, last: date
) -> Evaluation:
    """No segment of an agent starts before the one before it (by start, then end) has ended."""
    segments_count, overlapping = _one_row(
        connection,
        f"""
        SELECT count(*), count(*) FILTER (WHERE previous_end > start_time) FROM (
            SELECT start_time,
                   lag(end_time) OVER (PARTITION BY user_id ORDER BY start_time, end_time) AS previous_end
            FROM {_slice(connection, spec, first, last)})
        """,
    )
    return Evaluation(overlapping == 0, {"segments": segments_count, "overlaps": overlapping})


def day_totals_within_day_length(
    connection: duckdb.DuckDBPyConnection,
    spec: warehouse.TableSpec,
    days: pl.DataFrame,
    first: date,
    last: date,
) -> Evaluation:
    """Per agent and local day, the segments' seconds fit in the day (``days``: ``day_frame`` rows); a day
    that is not one of ``days`` is too long by definition."""
    with warehouse.registered(connection, "_wfm_days", days):
        agent_days, too_long, max_seconds = _one_row(
            connection,
            f"""
            WITH totals AS (
                SELECT management_unit_id, local_date, sum(duration_seconds) AS seconds
                FROM {_slice(connection, spec, first, last)}
                GROUP BY user_id, management_unit_id, local_date)
            SELECT count(*),
                   count(*) FILTER (WHERE d.day_start IS NULL
                                    OR t.seconds > epoch(d.day_end) - epoch(d.day_start) + 1e-6),
                   max(t.seconds)
            FROM totals t LEFT JOIN _wfm_days d  -- agents in no unit have a NULL unit: null-safe
                ON t.management_unit_id IS NOT DISTINCT FROM d.management_unit_id
                AND t.local_date = d.local_date
            """,
        )
    return Evaluation(
        too_long == 0,
        {"agent_days": agent_days, "too_long": too_long, "max_seconds": _number(max_seconds)},
    )


# --- raw-side counts -------------------------------------------------------------------------------
def _count_by_day(
    document: Mapping[str, Any], units: Mapping[str, ManagementUnitInfo], list_field: str, offset_field: str
) -> Counter[date]:
    """Entries of ``userResults[].<list_field>`` per local day (unit local time) their offset falls on."""
    zone = ZoneInfo(units[document["managementUnitId"]].time_zone)
    start = parse_utc(document["startDate"])
    counts: Counter[date] = Counter()
    for user in document["userResults"]:
        for entry in user.get(list_field) or []:
            counts[(start + timedelta(seconds=entry[offset_field])).astimezone(zone).date()] += 1
    return counts


def count_day_metrics(document: Mapping[str, Any], units: Mapping[str, ManagementUnitInfo]) -> Counter[date]:
    return _count_by_day(document, units, "dayMetrics", "dayStartOffsetSeconds")


def count_exceptions(document: Mapping[str, Any], units: Mapping[str, ManagementUnitInfo]) -> Counter[date]:
    """``exceptionInfo`` records per local day they start on, as Genesys served them (an exception that a
    window boundary cut is two records: the loader subtracts the continuations it joins)."""
    return _count_by_day(document, units, "exceptionInfo", "startOffsetSeconds")


_RECORD_KINDS = (ROUTING_STATUS, PRIMARY_PRESENCE)


def _record_list_type(kind: StatusRecordKind) -> str:
    statuses = ", ".join(f'"{name}" VARCHAR' for name in kind.status_fields)
    return f'STRUCT("startTime" VARCHAR, "endTime" VARCHAR, {statuses})[]'


def _raw_table(kind: StatusRecordKind) -> str:
    return f"raw_{kind.list_field}"


def _stage_records_read_by_duckdb(connection: duckdb.DuckDBPyConnection, paths: Sequence[Path]) -> int:
    """The status records of the pages at ``paths``, parsed by DuckDB (its JSON reader, its timestamp cast)
    into one scratch table per record kind (``_raw_table``, the columns of ``kind.record_schema``); each
    file is read once, one file at a time (one ``read_json`` of all pages needs memory for all of them).
    Returns the records staged."""
    lists = ", ".join(f'"{kind.list_field}" {_record_list_type(kind)}' for kind in _RECORD_KINDS)
    page_type = f'STRUCT("userId" VARCHAR, {lists})[]'
    for kind in _RECORD_KINDS:
        statuses = ", ".join(f"{column} VARCHAR" for column in kind.columns)
        connection.execute(
            f"CREATE TABLE {_raw_table(kind)} "
            f"(user_id VARCHAR, start_time TIMESTAMPTZ, end_time TIMESTAMPTZ, {statuses})"
        )
    for path in paths:
        connection.execute(
            "CREATE TABLE details AS SELECT unnest(userDetails) AS d "
            f"FROM read_json($path, columns = {{'userDetails': '{page_type}'}}, format = 'auto')",
            {"path": str(path)},
        )
        for kind in _RECORD_KINDS:
            statuses = ", ".join(f'r."{name}"' for name in kind.status_fields)
            connection.execute(
                f"""
                INSERT INTO {_raw_table(kind)}
                WITH records AS (SELECT d.userId AS user_id, unnest(d."{kind.list_field}") AS r FROM details)
                SELECT user_id, CAST(r.startTime AS TIMESTAMPTZ), CAST(r.endTime AS TIMESTAMPTZ), {statuses}
                FROM records
                """
            )
        connection.execute("DROP TABLE details")
    return sum(
        int(_one_row(connection, f"SELECT count(*) FROM {_raw_table(kind)}")[0]) for kind in _RECORD_KINDS
    )


def raw_segment_sources(
    paths: Sequence[Path],
    membership: pl.DataFrame,
    days: pl.DataFrame,
    open_until: datetime | None,
    scratch: warehouse.Scratch,
    unassigned_time_zone: str | None = None,
) -> dict[StatusRecordKind, int]:
    """Per record kind, the raw records its segment table should show for ``days``: the segment rules
    (``segments``) applied to the records DuckDB reads from ``paths``, counted once per (user, start,
    status) like the table's ``status_start_time``. A record our parser drops, duplicates or mis-times
    changes one side only. Bounded: DuckDB stages the records in a ``scratch`` database and the rules run
    on one bucket of users at a time (a user's records all fall in one bucket, so the counts add up)."""
    counts = dict.fromkeys(_RECORD_KINDS, 0)
    if not paths:
        return counts
    with scratch.database() as connection:
        buckets = scratch.buckets(_stage_records_read_by_duckdb(connection, paths))
        for kind in _RECORD_KINDS:
            warehouse.bucket_by_user(connection, _raw_table(kind), buckets)
        for bucket in range(buckets):
            for kind in _RECORD_KINDS:
                records = warehouse.user_bucket(connection, _raw_table(kind), kind.record_schema, bucket)
                counts[kind] += (
                    segments(records, membership, days, kind.columns, open_until, unassigned_time_zone)
                    .select("user_id", "status_start_time", *kind.columns)
                    .n_unique()
                )
    return counts


# --- occupancy vs aggregates API -------------------------------------------------------------------
_AGGREGATE_COLUMNS = {
    ("tAgentRoutingStatus", "IDLE"): "idle_seconds",
    ("tAgentRoutingStatus", "INTERACTING"): "interacting_seconds",
    ("tAgentRoutingStatus", "COMMUNICATING"): "communicating_seconds",
    ("tAgentRoutingStatus", "NOT_RESPONDING"): "not_responding_seconds",
    ("tSystemPresence", "ON_QUEUE"): "on_queue_seconds",
}


def aggregate_seconds(response: Mapping[str, Any]) -> dict[tuple[str, datetime], dict[str, float]]:
    """(user, interval start) -> seconds per compared column, from a raw UserAggregateQueryResponse."""
    out: dict[tuple[str, datetime], dict[str, float]] = {}
    for result in response.get("results") or []:
        user_id = str((result.get("group") or {}).get("userId"))
        for data in result.get("data") or []:
            start = parse_utc(str(data["interval"]).split("/")[0])
            seconds = out.setdefault((user_id, start), {})
            for metric in data.get("metrics") or []:
                column = _AGGREGATE_COLUMNS.get((metric.get("metric"), metric.get("qualifier")))
                if column:
                    seconds[column] = (
                        seconds.get(column, 0.0) + float((metric.get("stats") or {}).get("sum", 0)) / 1000
                    )
    return out


def _differences(ours: Mapping[str, Any], theirs: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    return {
        column: (float(ours.get(column, 0.0)), theirs.get(column, 0.0))
        for column in _AGGREGATE_COLUMNS.values()
        if abs(float(ours.get(column, 0.0)) - theirs.get(column, 0.0)) > SECONDS_TOLERANCE
    }


def occupancy_matches_aggregates(
    occupancy: pl.DataFrame,
    samples: Sequence[AggregatesSample],
    days: pl.DataFrame,
    available_until: datetime | None,
) -> Evaluation:
    """Compare the interval rows with aggregates for the sampled agents, at the sample's granularity.

    Intervals ending after ``available_until`` are skipped (the two APIs may be at different points), and
    so are samples fetched at another granularity than the rows were loaded at (counted)."""
    grains = set(occupancy.filter(pl.col("grain") != DAY_GRAIN)["grain"].unique().to_list())
    table: dict[tuple[str, str, datetime], dict[str, Any]] = {
        (row["grain"], row["user_id"], row["interval_start"]): row
        for row in occupancy.filter(pl.col("grain") != DAY_GRAIN).iter_rows(named=True)
    }
    compared = mismatched = other_granularity = 0
    examples: list[str] = []
    for sample in samples:
        if grains and sample.granularity.value not in grains:
            other_granularity += 1
            continue
        grain, length = sample.granularity.value, timedelta(seconds=sample.granularity.seconds)
        unit_days = days.filter(pl.col("management_unit_id") == sample.management_unit_id)
        spans = list(zip(unit_days["day_start"], unit_days["day_end"], strict=True))
        api = aggregate_seconds(sample.response)
        ours = {(user, start) for (g, user, start) in table if g == grain}
        starts = {start for (user, start) in (*api, *ours) if user in sample.user_ids}
        for start in sorted(starts):
            if not any(low <= start < high for low, high in spans):
                continue
            if available_until is not None and start + length > available_until:
                continue
            for user_id in sample.user_ids:
                compared += 1
                diffs = _differences(table.get((grain, user_id, start), {}), api.get((user_id, start), {}))
                if diffs:
                    mismatched += 1
                    if len(examples) < 10:
                        examples.append(f"{user_id}@{start.isoformat()}: {diffs}")
    return Evaluation(
        mismatched == 0,
        {
            "intervals_compared": compared,
            "mismatched": mismatched,
            "samples_at_another_granularity": other_granularity,
            "examples": examples,
        },
    )


# --- the checks of each table step, on the slice just written ------------------------------------------
# --- relations and membership ---------------------------------------------------------------------
def _reference_match(connection: duckdb.DuckDBPyConnection, reference: warehouse.Reference) -> str:
    """SQL: a row of the dimension that ``f.<column>`` names (through the unit's business unit if scoped)."""
    dimension = reference.dimension.sql_name(connection)
    if not reference.within_business_unit:
        return f"SELECT 1 FROM {dimension} d WHERE d.{reference.key} = f.{reference.column}"
    units = warehouse.MANAGEMENT_UNITS.sql_name(connection)
    return (
        f"SELECT 1 FROM {dimension} d JOIN {units} m ON d.business_unit_id = m.business_unit_id "
        f"WHERE m.management_unit_id = f.management_unit_id AND d.{reference.key} = f.{reference.column}"
    )


def ids_resolve_to_dimensions(
    connection: duckdb.DuckDBPyConnection, spec: warehouse.TableSpec, first: date, last: date
) -> Evaluation:
    """Every non-null id of the slice (``spec.references``) names a row of its dimension: counts and up to
    five examples of the ids that do not, per column.

    The slice's rows are first counted per distinct id (a few thousand groups however many rows), and only
    those are matched with the dimension: matching every row ran out of the step's 128 MiB at 1,000 agents
    x 35 days (measured, `make bench` scale)."""
    orphans: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    for reference in spec.references:
        column = _column(spec, reference.column)
        scope = ", management_unit_id" if reference.within_business_unit else ""
        count, sample = _one_row(
            connection,
            f"WITH f AS (SELECT {column}{scope}, count(*) AS _rows "
            f"FROM {_slice(connection, spec, first, last)} AND {column} IS NOT NULL GROUP BY ALL) "
            f"SELECT coalesce(sum(_rows), 0), "
            f"array_slice(list(DISTINCT f.{column} ORDER BY f.{column}), 1, 5) "
            f"FROM f WHERE NOT EXISTS ({_reference_match(connection, reference)})",
        )
        if count:
            orphans[reference.column] = int(count)
            examples[reference.column] = list(sample or [])
    metadata: dict[str, MetadataEntry] = {"orphans": orphans, "examples": examples}
    if orphans:
        metadata["fix"] = (
            "materialize dimension_tables (after directory_raw_files), then this partition again"
        )
    return Evaluation(not orphans, metadata)


def one_unit_per_user_day(
    connection: duckdb.DuckDBPyConnection, spec: warehouse.TableSpec, first: date, last: date
) -> Evaluation:
    """No (user, local day) of the slice is under two management units (or a unit and none)."""
    (twice,) = _one_row(
        connection,
        "SELECT count(*) FROM (SELECT user_id, local_date FROM (SELECT DISTINCT user_id, local_date, "
        f"coalesce(management_unit_id, '') FROM {_slice(connection, spec, first, last)}) "
        "GROUP BY user_id, local_date HAVING count(*) > 1)",
    )
    return Evaluation(twice == 0, {"user_days_under_two_units": int(twice)})


@dataclass(frozen=True)
class AdherenceEvaluations:
    adherence_in_range: Evaluation
    units_present: Evaluation
    daily_row_count: Evaluation
    exceptions_row_count: Evaluation


def evaluate_adherence(
    connection: duckdb.DuckDBPyConnection, inputs: AdherenceCheckInputs, first: date, last: date
) -> AdherenceEvaluations:
    daily, exceptions = warehouse.ADHERENCE_DAILY, warehouse.ADHERENCE_EXCEPTIONS
    return AdherenceEvaluations(
        adherence_in_range=values_in_range(
            connection, daily, "adherence_percentage", 0.0, 100.0, first, last
        ),
        units_present=units_present(connection, daily, inputs.units, inputs.days, first, last),
        daily_row_count=counts_equal(
            warehouse.count_slice(connection, daily, first, last), inputs.raw_day_metrics
        ),
        exceptions_row_count=counts_equal(
            warehouse.count_slice(connection, exceptions, first, last), inputs.raw_exceptions
        ),
    )


@dataclass(frozen=True)
class UserDetailsEvaluations:
    days_covered: Evaluation
    routing_no_overlap: Evaluation
    routing_day_total: Evaluation
    routing_row_count: Evaluation
    presence_no_overlap: Evaluation
    presence_day_total: Evaluation
    presence_row_count: Evaluation
    occupancy_in_range: Evaluation
    occupancy_matches_aggregates: Evaluation


def _distinct_sources(
    connection: duckdb.DuckDBPyConnection,
    spec: warehouse.TableSpec,
    kind: StatusRecordKind,
    first: date,
    last: date,
) -> int:
    columns = ("user_id", "status_start_time", *kind.columns)
    return warehouse.count_slice(connection, spec, first, last, distinct=columns)


def evaluate_user_details(
    connection: duckdb.DuckDBPyConnection, inputs: UserDetailsCheckInputs, first: date, last: date
) -> UserDetailsEvaluations:
    routing, presence = warehouse.ROUTING_STATUS_SEGMENTS, warehouse.PRESENCE_SEGMENTS
    sampled = sorted({user for sample in inputs.aggregates for user in sample.user_ids})
    return UserDetailsEvaluations(
        days_covered=days_covered(inputs.windows, inputs.days, inputs.units, inputs.available_until),
        routing_no_overlap=no_overlaps(connection, routing, first, last),
        routing_day_total=day_totals_within_day_length(connection, routing, inputs.days, first, last),
        routing_row_count=counts_equal(
            _distinct_sources(connection, routing, ROUTING_STATUS, first, last), inputs.raw_routing_sources
        ),
        presence_no_overlap=no_overlaps(connection, presence, first, last),
        presence_day_total=day_totals_within_day_length(connection, presence, inputs.days, first, last),
        presence_row_count=counts_equal(
            _distinct_sources(connection, presence, PRIMARY_PRESENCE, first, last),
            inputs.raw_presence_sources,
        ),
        occupancy_in_range=values_in_range(
            connection, warehouse.AGENT_OCCUPANCY, "occupancy", 0.0, 1.0, first, last
        ),
        occupancy_matches_aggregates=occupancy_matches_aggregates(  # the sampled agents' rows only
            warehouse.read_slice(connection, warehouse.AGENT_OCCUPANCY, first, last, user_ids=sampled),
            inputs.aggregates,
            inputs.days,
            inputs.available_until,
        ),
    )
