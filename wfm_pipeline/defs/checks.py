"""Data-quality checks of the clean tables, as pure functions over frames and raw documents.

The table assets evaluate them on the rows they just wrote, INSIDE the write transaction (read back through
the same DuckDB connection): when a blocking check fails the transaction is rolled back, so bad data never
replaces a good slice, and the step fails naming the check. Non-blocking checks (the comparison with the
aggregates API, which can lag) are reported without stopping the write.

Raw-side counts re-derive what the polars transforms should have produced by a second, independent route:
``count_*`` in plain Python over the parsed documents, ``expected_segment_sources`` in DuckDB SQL over the
raw files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
from duckdb import DuckDBPyConnection

from wfm_pipeline.timestamps import parse_utc
from wfm_pipeline.transforms import ManagementUnitInfo
from wfm_pipeline.transforms.days import UTC_TIMESTAMP
from wfm_pipeline.transforms.occupancy import INTERVAL_GRAIN
from wfm_pipeline.warehouse import registered

SECONDS_TOLERANCE = 1.0  # aggregates are milliseconds; segments are whole or fractional seconds


@dataclass(frozen=True)
class CheckDef:
    asset: str
    name: str
    blocking: bool
    description: str

    def spec(self) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            name=self.name, asset=self.asset, blocking=self.blocking, description=self.description
        )


@dataclass(frozen=True)
class CheckOutcome:
    check: CheckDef
    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)

    def result(self) -> dg.AssetCheckResult:
        severity = dg.AssetCheckSeverity.ERROR if self.check.blocking else dg.AssetCheckSeverity.WARN
        return dg.AssetCheckResult(
            asset_key=self.check.asset,
            check_name=self.check.name,
            passed=self.passed,
            severity=severity,
            metadata=self.metadata,
        )


ADHERENCE_IN_RANGE = CheckDef(
    "adherence_daily", "adherence_between_0_and_100", True, "adherence_percentage is in [0, 100]"
)
ADHERENCE_UNITS_PRESENT = CheckDef(
    "adherence_daily",
    "every_management_unit_present",
    True,
    "every management unit with agents has rows on every day of the slice",
)
ADHERENCE_ROW_COUNT = CheckDef(
    "adherence_daily", "row_count_matches_raw", True, "rows == dayMetrics records of the raw files in range"
)
EXCEPTIONS_ROW_COUNT = CheckDef(
    "adherence_exceptions",
    "row_count_matches_raw",
    True,
    "rows == exceptionInfo records of the raw files starting in range",
)
ROUTING_NO_OVERLAP = CheckDef(
    "routing_status_segments", "no_overlapping_segments", True, "no two segments of an agent overlap"
)
ROUTING_DAY_TOTAL = CheckDef(
    "routing_status_segments",
    "day_total_within_day_length",
    True,
    "per agent and local day, segment seconds <= the day's length (24 h; 23/25 h on DST days)",
)
ROUTING_ROW_COUNT = CheckDef(
    "routing_status_segments",
    "row_count_matches_raw",
    True,
    "distinct source records == deduplicated raw records intersecting the slice",
)
PRESENCE_NO_OVERLAP = CheckDef(
    "presence_segments", "no_overlapping_segments", True, "no two segments of an agent overlap"
)
PRESENCE_DAY_TOTAL = CheckDef(
    "presence_segments",
    "day_total_within_day_length",
    True,
    "per agent and local day, segment seconds <= the day's length (24 h; 23/25 h on DST days)",
)
PRESENCE_ROW_COUNT = CheckDef(
    "presence_segments",
    "row_count_matches_raw",
    True,
    "distinct source records == deduplicated raw records intersecting the slice",
)
USER_DETAILS_DAYS_COVERED = CheckDef(
    "routing_status_segments",
    "every_unit_day_covered_by_export_windows",
    True,
    "the export jobs' windows listed by the manifests cover every (unit with agents, local day) up to "
    "dataAvailabilityDate",
)
OCCUPANCY_IN_RANGE = CheckDef(
    "agent_occupancy", "occupancy_between_0_and_1", True, "occupancy is null or in [0, 1]"
)
OCCUPANCY_MATCHES_AGGREGATES = CheckDef(
    "agent_occupancy",
    "occupancy_matches_aggregates_api",
    False,
    "30-minute seconds per status equal the aggregates API (PT30M) for a sample of agents, within 1 s",
)

ADHERENCE_CHECKS = (ADHERENCE_IN_RANGE, ADHERENCE_UNITS_PRESENT, ADHERENCE_ROW_COUNT, EXCEPTIONS_ROW_COUNT)
USER_DETAILS_CHECKS = (
    USER_DETAILS_DAYS_COVERED,
    ROUTING_NO_OVERLAP,
    ROUTING_DAY_TOTAL,
    ROUTING_ROW_COUNT,
    PRESENCE_NO_OVERLAP,
    PRESENCE_DAY_TOTAL,
    PRESENCE_ROW_COUNT,
    OCCUPANCY_IN_RANGE,
    OCCUPANCY_MATCHES_AGGREGATES,
)


# --- table-side checks ------------------------------------------------------------------------------
def values_in_range(
    check: CheckDef, frame: pl.DataFrame, column: str, low: float, high: float
) -> CheckOutcome:
    values = frame[column].drop_nulls()
    bad = values.filter((values < low) | (values > high))
    return CheckOutcome(
        check,
        bad.is_empty(),
        {"rows": frame.height, "out_of_range": bad.len(), "min": values.min(), "max": values.max()},
    )


def units_present(
    check: CheckDef, frame: pl.DataFrame, units: Sequence[ManagementUnitInfo], days: Sequence[date]
) -> CheckOutcome:
    seen = set(frame.select("management_unit_id", "local_date").unique().iter_rows())
    missing = [
        f"{unit.id}@{day.isoformat()}"
        for unit in units
        if unit.user_ids
        for day in days
        if (unit.id, day) not in seen
    ]
    return CheckOutcome(check, not missing, {"missing": dg.MetadataValue.json(missing[:50])})


def days_covered(
    check: CheckDef,
    windows: Iterable[tuple[datetime, datetime]],
    days: pl.DataFrame,
    units: Sequence[ManagementUnitInfo],
    available_until: datetime | None,
) -> CheckOutcome:
    """Every (unit with agents, local day) of ``days`` lies inside the union of ``windows`` up to
    ``available_until`` (what the export could not have covered yet). A file whose job's window is unknown
    or belongs to another request covers nothing, so it cannot hide a gap."""
    merged: list[list[datetime]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    staffed = {unit.id for unit in units if unit.user_ids}
    uncovered = []
    for row in days.iter_rows(named=True):
        if row["management_unit_id"] not in staffed:
            continue
        low = row["day_start"]
        high = row["day_end"] if available_until is None else min(row["day_end"], available_until)
        if low < high and not any(start <= low and high <= end for start, end in merged):
            uncovered.append(f"{row['management_unit_id']}@{row['local_date'].isoformat()}")
    return CheckOutcome(
        check,
        not uncovered,
        {"unit_days": days.height, "uncovered": dg.MetadataValue.json(uncovered[:50])},
    )


def counts_equal(check: CheckDef, table_rows: int, raw_records: int) -> CheckOutcome:
    return CheckOutcome(
        check, table_rows == raw_records, {"table_rows": table_rows, "raw_records": raw_records}
    )


def no_overlaps(check: CheckDef, segments: pl.DataFrame) -> CheckOutcome:
    ordered = segments.sort("user_id", "start_time", "end_time")
    overlapping = ordered.filter(pl.col("end_time").shift(1).over("user_id") > pl.col("start_time"))
    return CheckOutcome(
        check, overlapping.is_empty(), {"segments": segments.height, "overlaps": overlapping.height}
    )


def day_totals_within_day_length(check: CheckDef, segments: pl.DataFrame, days: pl.DataFrame) -> CheckOutcome:
    totals = (
        segments.group_by("user_id", "management_unit_id", "local_date")
        .agg(pl.col("duration_seconds").sum().alias("seconds"))
        .join(days, on=["management_unit_id", "local_date"], how="left")
        .with_columns(((pl.col("day_end") - pl.col("day_start")).dt.total_seconds()).alias("day_seconds"))
    )
    too_long = totals.filter(
        pl.col("day_seconds").is_null() | (pl.col("seconds") > pl.col("day_seconds") + 1e-6)
    )
    return CheckOutcome(
        check,
        too_long.is_empty(),
        {"agent_days": totals.height, "too_long": too_long.height, "max_seconds": totals["seconds"].max()},
    )


# --- raw-side counts (independent of the polars transforms) -------------------------------------------
def _count_in_days(
    documents: Iterable[Mapping[str, Any]],
    units: Mapping[str, ManagementUnitInfo],
    days: set[date],
    list_field: str,
    offset_field: str,
) -> int:
    """Entries of ``userResults[].<list_field>`` whose offset falls on one of ``days`` (unit local time)."""
    count = 0
    for document in documents:
        zone = ZoneInfo(units[document["managementUnitId"]].time_zone)
        start = parse_utc(document["startDate"])
        for user in document["userResults"]:
            for entry in user.get(list_field) or []:
                local = (start + timedelta(seconds=entry[offset_field])).astimezone(zone).date()
                count += local in days
    return count


def count_day_metrics(
    documents: Iterable[Mapping[str, Any]], units: Mapping[str, ManagementUnitInfo], days: set[date]
) -> int:
    return _count_in_days(documents, units, days, "dayMetrics", "dayStartOffsetSeconds")


def count_exceptions(
    documents: Iterable[Mapping[str, Any]], units: Mapping[str, ManagementUnitInfo], days: set[date]
) -> int:
    return _count_in_days(documents, units, days, "exceptionInfo", "startOffsetSeconds")


def expected_segment_sources(
    connection: DuckDBPyConnection,
    paths: Sequence[Path],
    list_field: str,
    status_fields: Sequence[str],
    units: Sequence[ManagementUnitInfo],
    day_bounds: Mapping[tuple[str, date], tuple[datetime, datetime]],
    open_until: datetime | None,
) -> int:
    """Raw records that should appear in the segment table: deduplicated on (user, start, status), not
    entirely covered by earlier records of the agent, and intersecting one of the agent's requested days.

    Computed by DuckDB straight from the raw files (its own JSON reader and timestamp parser), so it is a
    second route to the number the polars transforms produce, and fast enough for a year of pages."""
    if not paths:
        return 0
    unit_of: dict[str, str] = {}
    for unit in sorted(units, key=lambda u: u.id):
        for user_id in unit.user_ids:
            unit_of.setdefault(user_id, unit.id)
    members = pl.DataFrame(
        {"user_id": list(unit_of), "unit_id": list(unit_of.values())},
        schema={"user_id": pl.String(), "unit_id": pl.String()},
    )
    days = pl.DataFrame(
        [{"unit_id": unit_id, "low": low, "high": high} for (unit_id, _), (low, high) in day_bounds.items()],
        schema={"unit_id": pl.String(), "low": UTC_TIMESTAMP, "high": UTC_TIMESTAMP},
        orient="row",
    )
    fields = ["startTime", "endTime", *status_fields]
    record_type = "STRUCT(" + ", ".join(f'"{name}" VARCHAR' for name in fields) + ")"
    page_type = f'STRUCT("userId" VARCHAR, "{list_field}" {record_type}[])[]'
    statuses = ", ".join(f'r."{name}" AS "{name}"' for name in status_fields)
    status_order = ", ".join(f"coalesce(\"{name}\", '')" for name in status_fields)
    status_keys = ", ".join(f'"{name}"' for name in status_fields)
    query = f"""
        WITH details AS (
            SELECT unnest(userDetails) AS d
            FROM read_json($paths, columns = {{'userDetails': '{page_type}'}}, format = 'auto')
        ), records AS (
            SELECT d.userId AS user_id, unnest(d."{list_field}") AS r FROM details
        ), parsed AS (
            SELECT user_id, CAST(r.startTime AS TIMESTAMPTZ) AS s,
                   coalesce(CAST(r.endTime AS TIMESTAMPTZ), CAST($open_until AS TIMESTAMPTZ)) AS e, {statuses}
            FROM records
        ), unique_records AS (
            SELECT user_id, s, {status_keys}, max(e) AS e
            FROM parsed WHERE e > s GROUP BY user_id, s, {status_keys}
        ), reached AS (
            SELECT user_id, s, e, max(e) OVER (
                PARTITION BY user_id ORDER BY s, e, {status_order}
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ) AS earlier_end
            FROM unique_records
        ), visible AS (
            SELECT r.user_id, m.unit_id, greatest(r.s, coalesce(r.earlier_end, r.s)) AS s, r.e
            FROM reached r JOIN _wfm_members m USING (user_id)
        )
        SELECT count(*) FROM visible v
        WHERE v.s < v.e
          AND EXISTS (SELECT 1 FROM _wfm_days d WHERE d.unit_id = v.unit_id AND d.low < v.e AND d.high > v.s)
    """
    with registered(connection, "_wfm_members", members), registered(connection, "_wfm_days", days):
        row = connection.execute(
            query, {"paths": [str(path) for path in paths], "open_until": open_until}
        ).fetchone()
    return int(row[0]) if row else 0


# --- occupancy vs aggregates API ------------------------------------------------------------------------
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
        user_id = (result.get("group") or {}).get("userId")
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


def occupancy_matches_aggregates(
    check: CheckDef,
    occupancy: pl.DataFrame,
    samples: Sequence[tuple[Sequence[str], Mapping[str, Any], str]],
    days: pl.DataFrame,
    available_until: datetime | None,
) -> CheckOutcome:
    """Compare PT30M rows with aggregates for the sampled agents; ``samples`` = (user ids, response, MU id).

    Intervals ending after ``available_until`` are skipped (the two APIs may be at different points)."""
    table: dict[tuple[str, datetime], dict[str, float]] = {
        (row["user_id"], row["interval_start"]): row
        for row in occupancy.filter(pl.col("grain") == INTERVAL_GRAIN).iter_rows(named=True)
    }
    compared = mismatched = 0
    examples: list[str] = []
    for user_ids, response, unit_id in samples:
        unit_days = days.filter(pl.col("management_unit_id") == unit_id)
        spans = list(zip(unit_days["day_start"], unit_days["day_end"], strict=True))
        api = aggregate_seconds(response)
        starts = {start for (user, start) in api if user in user_ids} | {
            start for (user, start) in table if user in user_ids
        }
        for start in sorted(starts):
            if not any(low <= start < high for low, high in spans):
                continue
            if available_until is not None and start + timedelta(minutes=30) > available_until:
                continue
            for user_id in user_ids:
                ours = table.get((user_id, start), {})
                theirs = api.get((user_id, start), {})
                compared += 1
                diffs = {
                    column: (float(ours.get(column, 0.0)), theirs.get(column, 0.0))
                    for column in _AGGREGATE_COLUMNS.values()
                    if abs(float(ours.get(column, 0.0)) - theirs.get(column, 0.0)) > SECONDS_TOLERANCE
                }
                if diffs:
                    mismatched += 1
                    if len(examples) < 10:
                        examples.append(f"{user_id}@{start.isoformat()}: {diffs}")
    return CheckOutcome(
        check,
        mismatched == 0,
        {
            "intervals_compared": compared,
            "mismatched": mismatched,
            "examples": dg.MetadataValue.json(examples),
        },
    )
