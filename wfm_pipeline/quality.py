"""Data-quality evaluations of the clean tables: pure functions returning plain ``Evaluation``s (no Dagster).

The table steps evaluate them on the rows they just wrote, INSIDE the write transaction (read back through
the same DuckDB connection, ``evaluate_adherence`` / ``evaluate_user_details``), so a failed blocking check
rolls the slice back. ``wfm_pipeline.defs.checks`` names them as Dagster asset checks.

Raw-side numbers come from a second route to the raw files, computed by the loaders before the write:
``count_day_metrics`` / ``count_exceptions`` count in plain Python over the parsed adherence documents;
``raw_segment_sources`` reads the user-details pages with DuckDB's JSON reader and timestamp casts (another
parser of the same bytes) and applies the segment rules of ``transforms.segments`` to them -- one
implementation of each rule, so the count checks our parsing and loading, not a copy of the rules.
"""

from __future__ import annotations

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
    INTERVAL_GRAIN,
    PRIMARY_PRESENCE,
    ROUTING_STATUS,
    ManagementUnitInfo,
    StatusRecordKind,
    segments,
)

SECONDS_TOLERANCE = 1.0  # aggregates are milliseconds; segments are whole or fractional seconds
MetadataEntry = int | float | str | None | list[str]


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
    raw_exceptions: int  # exceptionInfo records starting on the loaded days


@dataclass(frozen=True)
class AggregatesSample:
    """A raw UserAggregateQueryResponse (PT30M) for a few agents of one unit, fetched with the export."""

    user_ids: tuple[str, ...]
    response: Mapping[str, Any]
    management_unit_id: str


@dataclass(frozen=True)
class UserDetailsCheckInputs:
    units: tuple[ManagementUnitInfo, ...]  # the organization snapshot of the slice's last day
    days: pl.DataFrame  # day_frame rows of the loaded (unit, local day)s
    windows: tuple[tuple[datetime, datetime], ...]  # the export jobs' intervals listed by the manifests
    available_until: datetime | None  # the earliest dataAvailabilityDate of the manifests
    raw_routing_sources: int  # routing status records the table should show (``raw_segment_sources``)
    raw_presence_sources: int
    aggregates: tuple[AggregatesSample, ...]


# --- table-side evaluations ------------------------------------------------------------------------
def _number(value: object) -> float | None:
    """A numeric column's min/max (polars types them as any Python literal); None for an empty column."""
    return float(value) if isinstance(value, int | float) else None


def values_in_range(frame: pl.DataFrame, column: str, low: float, high: float) -> Evaluation:
    values = frame[column].drop_nulls()
    bad = values.filter((values < low) | (values > high))
    return Evaluation(
        bad.is_empty(),
        {
            "rows": frame.height,
            "out_of_range": bad.len(),
            "min": _number(values.min()),
            "max": _number(values.max()),
        },
    )


def units_present(
    frame: pl.DataFrame, units: Sequence[ManagementUnitInfo], days: Sequence[date]
) -> Evaluation:
    seen = set(frame.select("management_unit_id", "local_date").unique().iter_rows())
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
    staffed = {unit.id for unit in units if unit.user_ids}
    uncovered = []
    for row in days.iter_rows(named=True):
        if row["management_unit_id"] not in staffed:
            continue
        low = row["day_start"]
        high = row["day_end"] if available_until is None else min(row["day_end"], available_until)
        if low < high and not any(start <= low and high <= end for start, end in merged):
            uncovered.append(f"{row['management_unit_id']}@{row['local_date'].isoformat()}")
    return Evaluation(not uncovered, {"unit_days": days.height, "uncovered": uncovered[:50]})


def counts_equal(table_rows: int, raw_records: int) -> Evaluation:
    return Evaluation(table_rows == raw_records, {"table_rows": table_rows, "raw_records": raw_records})


def no_overlaps(segment_rows: pl.DataFrame) -> Evaluation:
    ordered = segment_rows.sort("user_id", "start_time", "end_time")
    overlapping = ordered.filter(pl.col("end_time").shift(1).over("user_id") > pl.col("start_time"))
    return Evaluation(
        overlapping.is_empty(), {"segments": segment_rows.height, "overlaps": overlapping.height}
    )


def day_totals_within_day_length(segment_rows: pl.DataFrame, days: pl.DataFrame) -> Evaluation:
    totals = (
        segment_rows.group_by("user_id", "management_unit_id", "local_date")
        .agg(pl.col("duration_seconds").sum().alias("seconds"))
        .join(days, on=["management_unit_id", "local_date"], how="left")
        .with_columns(((pl.col("day_end") - pl.col("day_start")).dt.total_seconds()).alias("day_seconds"))
    )
    too_long = totals.filter(
        pl.col("day_seconds").is_null() | (pl.col("seconds") > pl.col("day_seconds") + 1e-6)
    )
    return Evaluation(
        too_long.is_empty(),
        {
            "agent_days": totals.height,
            "too_long": too_long.height,
            "max_seconds": _number(totals["seconds"].max()),
        },
    )


# --- raw-side counts -------------------------------------------------------------------------------
def _count_in_days(
    document: Mapping[str, Any],
    units: Mapping[str, ManagementUnitInfo],
    days: set[date],
    list_field: str,
    offset_field: str,
) -> int:
    """Entries of ``userResults[].<list_field>`` whose offset falls on one of ``days`` (unit local time)."""
    zone = ZoneInfo(units[document["managementUnitId"]].time_zone)
    start = parse_utc(document["startDate"])
    count = 0
    for user in document["userResults"]:
        for entry in user.get(list_field) or []:
            local = (start + timedelta(seconds=entry[offset_field])).astimezone(zone).date()
            count += local in days
    return count


def count_day_metrics(
    document: Mapping[str, Any], units: Mapping[str, ManagementUnitInfo], days: set[date]
) -> int:
    return _count_in_days(document, units, days, "dayMetrics", "dayStartOffsetSeconds")


def count_exceptions(
    document: Mapping[str, Any], units: Mapping[str, ManagementUnitInfo], days: set[date]
) -> int:
    return _count_in_days(document, units, days, "exceptionInfo", "startOffsetSeconds")


_RECORD_KINDS = (ROUTING_STATUS, PRIMARY_PRESENCE)


def _record_list_type(kind: StatusRecordKind) -> str:
    statuses = ", ".join(f'"{name}" VARCHAR' for name in kind.status_fields)
    return f'STRUCT("startTime" VARCHAR, "endTime" VARCHAR, {statuses})[]'


def _unnested_records(connection: duckdb.DuckDBPyConnection, kind: StatusRecordKind) -> pl.DataFrame:
    statuses = ", ".join(f'r."{name}" AS {column}' for name, column in kind.status_fields.items())
    relation = connection.sql(
        f"""
        WITH records AS (SELECT d.userId AS user_id, unnest(d."{kind.list_field}") AS r FROM details)
        SELECT user_id, CAST(r.startTime AS TIMESTAMPTZ) AS start_time,
               CAST(r.endTime AS TIMESTAMPTZ) AS end_time, {statuses}
        FROM records
        """
    )
    return pl.DataFrame(relation).cast(kind.record_schema)


def _records_read_by_duckdb(paths: Sequence[Path]) -> dict[StatusRecordKind, pl.DataFrame]:
    """The status records of the pages at ``paths``, parsed by DuckDB (its JSON reader, its timestamp cast)
    into the frames ``status_records_from_json`` returns for them; each file is read once."""
    lists = ", ".join(f'"{kind.list_field}" {_record_list_type(kind)}' for kind in _RECORD_KINDS)
    page_type = f'STRUCT("userId" VARCHAR, {lists})[]'
    # A private in-memory database: nothing touches the warehouse, and no extension is fetched.
    with duckdb.connect(config=dict(warehouse.CONNECTION_DEFAULTS)) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute(
            "CREATE TEMP TABLE details AS SELECT unnest(userDetails) AS d "
            f"FROM read_json($paths, columns = {{'userDetails': '{page_type}'}}, format = 'auto')",
            {"paths": [str(path) for path in paths]},
        )
        return {kind: _unnested_records(connection, kind) for kind in _RECORD_KINDS}


def raw_segment_sources(
    paths: Sequence[Path], membership: pl.DataFrame, days: pl.DataFrame, open_until: datetime | None
) -> dict[StatusRecordKind, int]:
    """Per record kind, the raw records its segment table should show for ``days``: the segment rules
    (``segments``) applied to the records DuckDB reads from ``paths``, counted once per (user, start,
    status) like the table's ``status_start_time``. A record our parser drops, duplicates or mis-times
    changes one side only."""
    if not paths:
        return dict.fromkeys(_RECORD_KINDS, 0)
    return {
        kind: segments(records, membership, days, kind.columns, open_until)
        .select("user_id", "status_start_time", *kind.columns)
        .n_unique()
        for kind, records in _records_read_by_duckdb(paths).items()
    }


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
    """Compare PT30M rows with aggregates for the sampled agents.

    Intervals ending after ``available_until`` are skipped (the two APIs may be at different points)."""
    table: dict[tuple[str, datetime], dict[str, Any]] = {
        (row["user_id"], row["interval_start"]): row
        for row in occupancy.filter(pl.col("grain") == INTERVAL_GRAIN).iter_rows(named=True)
    }
    compared = mismatched = 0
    examples: list[str] = []
    for sample in samples:
        unit_days = days.filter(pl.col("management_unit_id") == sample.management_unit_id)
        spans = list(zip(unit_days["day_start"], unit_days["day_end"], strict=True))
        api = aggregate_seconds(sample.response)
        starts = {start for (user, start) in (*api, *table) if user in sample.user_ids}
        for start in sorted(starts):
            if not any(low <= start < high for low, high in spans):
                continue
            if available_until is not None and start + timedelta(minutes=30) > available_until:
                continue
            for user_id in sample.user_ids:
                compared += 1
                diffs = _differences(table.get((user_id, start), {}), api.get((user_id, start), {}))
                if diffs:
                    mismatched += 1
                    if len(examples) < 10:
                        examples.append(f"{user_id}@{start.isoformat()}: {diffs}")
    return Evaluation(
        mismatched == 0, {"intervals_compared": compared, "mismatched": mismatched, "examples": examples}
    )


# --- the checks of each table step, on the slice just written ------------------------------------------
@dataclass(frozen=True)
class AdherenceEvaluations:
    adherence_in_range: Evaluation
    units_present: Evaluation
    daily_row_count: Evaluation
    exceptions_row_count: Evaluation


def evaluate_adherence(
    connection: duckdb.DuckDBPyConnection, inputs: AdherenceCheckInputs, first: date, last: date
) -> AdherenceEvaluations:
    stored = warehouse.read_slice(connection, warehouse.ADHERENCE_DAILY, first, last)
    stored_exceptions = warehouse.count_slice(connection, warehouse.ADHERENCE_EXCEPTIONS, first, last)
    return AdherenceEvaluations(
        adherence_in_range=values_in_range(stored, "adherence_percentage", 0.0, 100.0),
        units_present=units_present(stored, inputs.units, inputs.days),
        daily_row_count=counts_equal(stored.height, inputs.raw_day_metrics),
        exceptions_row_count=counts_equal(stored_exceptions, inputs.raw_exceptions),
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
    routing = warehouse.read_slice(connection, warehouse.ROUTING_STATUS_SEGMENTS, first, last)
    presence = warehouse.read_slice(connection, warehouse.PRESENCE_SEGMENTS, first, last)
    occupancy = warehouse.read_slice(connection, warehouse.AGENT_OCCUPANCY, first, last)
    routing_sources = _distinct_sources(
        connection, warehouse.ROUTING_STATUS_SEGMENTS, ROUTING_STATUS, first, last
    )
    presence_sources = _distinct_sources(
        connection, warehouse.PRESENCE_SEGMENTS, PRIMARY_PRESENCE, first, last
    )
    return UserDetailsEvaluations(
        days_covered=days_covered(inputs.windows, inputs.days, inputs.units, inputs.available_until),
        routing_no_overlap=no_overlaps(routing),
        routing_day_total=day_totals_within_day_length(routing, inputs.days),
        routing_row_count=counts_equal(routing_sources, inputs.raw_routing_sources),
        presence_no_overlap=no_overlaps(presence),
        presence_day_total=day_totals_within_day_length(presence, inputs.days),
        presence_row_count=counts_equal(presence_sources, inputs.raw_presence_sources),
        occupancy_in_range=values_in_range(occupancy, "occupancy", 0.0, 1.0),
        occupancy_matches_aggregates=occupancy_matches_aggregates(
            occupancy, inputs.aggregates, inputs.days, inputs.available_until
        ),
    )
