"""Agent occupancy from routing-status and presence segments.

One table, ``agent_occupancy``, with a ``grain`` column: interval rows (``PT15M``, ``PT30M`` or ``PT60M``,
the ``OccupancyInterval`` chosen; Genesys's interval reports come in those three) counted from the agent's
local midnight (the buckets of an aggregates query with that ``granularity`` and the unit's ``timeZone``);
``P1D`` rows are the whole local day. Seconds per routing status are kept so other
definitions can be computed; ``on_queue_seconds`` is time in system presence ON_QUEUE.

occupancy = interacting / (interacting + communicating + idle), null when that denominator is 0
(Genesys's definition). A row exists for every (agent, interval) with any on-queue or non-OFF_QUEUE time.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl

from wfm_pipeline.transforms._days import UTC_TIMESTAMP


class OccupancyInterval(StrEnum):
    """The interval grain of ``agent_occupancy`` (ISO 8601 durations, as Genesys's ``granularity``)."""

    PT15M = "PT15M"
    PT30M = "PT30M"
    PT60M = "PT60M"

    @property
    def seconds(self) -> int:
        return int(self.value[2:-1]) * 60


DAY_GRAIN = "P1D"

# routing status -> column
ROUTING_STATUS_SECONDS: dict[str, str] = {
    "IDLE": "idle_seconds",
    "INTERACTING": "interacting_seconds",
    "COMMUNICATING": "communicating_seconds",
    "NOT_RESPONDING": "not_responding_seconds",
    "OFF_QUEUE": "off_queue_seconds",
}
ON_QUEUE_PRESENCE = "ON_QUEUE"

AGENT_OCCUPANCY_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "management_unit_id": pl.String(),
    "local_date": pl.Date(),
    "grain": pl.String(),
    "interval_start": UTC_TIMESTAMP,
    "interval_end": UTC_TIMESTAMP,
    "idle_seconds": pl.Float64(),
    "interacting_seconds": pl.Float64(),
    "communicating_seconds": pl.Float64(),
    "not_responding_seconds": pl.Float64(),
    "off_queue_seconds": pl.Float64(),
    "on_queue_seconds": pl.Float64(),
    "occupancy": pl.Float64(),
}
_SECONDS_COLUMNS = [*ROUTING_STATUS_SECONDS.values(), "on_queue_seconds"]
_KEYS = ["user_id", "management_unit_id", "local_date", "interval_start", "interval_end"]


def split_into_intervals(
    segments: pl.DataFrame, days: pl.DataFrame, interval: OccupancyInterval = OccupancyInterval.PT30M
) -> pl.DataFrame:
    """Cut day-clipped segments at ``interval`` boundaries from local midnight; adds interval columns and
    replaces ``duration_seconds`` by the seconds inside each interval."""
    step = pl.duration(seconds=interval.seconds)
    micro = interval.seconds * 1_000_000
    with_day = segments.join(days, on=["management_unit_id", "local_date"], how="inner", nulls_equal=True)
    offset_start = (pl.col("start_time") - pl.col("day_start")).dt.total_microseconds()
    offset_end = (pl.col("end_time") - pl.col("day_start")).dt.total_microseconds()
    return (
        with_day.with_columns(
            pl.int_ranges(offset_start // micro, (offset_end + micro - 1) // micro).alias("_bucket")
        )
        .explode("_bucket")
        .with_columns((pl.col("day_start") + step * pl.col("_bucket")).alias("interval_start"))
        .with_columns(
            pl.min_horizontal(pl.col("interval_start") + step, pl.col("day_end")).alias("interval_end")
        )
        .with_columns(
            (
                (
                    pl.min_horizontal("end_time", "interval_end")
                    - pl.max_horizontal("start_time", "interval_start")
                ).dt.total_microseconds()
                / 1_000_000
            ).alias("duration_seconds")
        )
        .filter(pl.col("duration_seconds") > 0)
        .drop("_bucket", "day_start", "day_end")
    )


def _seconds_by_status(pieces: pl.DataFrame, status_column: str, names: dict[str, str]) -> pl.DataFrame:
    return pieces.group_by(_KEYS).agg(
        [
            pl.col("duration_seconds").filter(pl.col(status_column) == status).sum().alias(column)
            for status, column in names.items()
        ]
    )


def _with_occupancy(frame: pl.DataFrame) -> pl.DataFrame:
    denominator = pl.col("interacting_seconds") + pl.col("communicating_seconds") + pl.col("idle_seconds")
    return frame.with_columns(
        pl.when(denominator > 0)
        .then(pl.col("interacting_seconds") / denominator)
        .otherwise(None)
        .alias("occupancy")
    )


def agent_occupancy(
    routing_segments: pl.DataFrame,
    presence_segments: pl.DataFrame,
    days: pl.DataFrame,
    interval: OccupancyInterval = OccupancyInterval.PT30M,
) -> pl.DataFrame:
    """Interval and daily occupancy rows (see module docstring) from clean, day-clipped segments."""
    routing = _seconds_by_status(
        split_into_intervals(routing_segments, days, interval), "routing_status", ROUTING_STATUS_SECONDS
    )
    on_queue = _seconds_by_status(
        split_into_intervals(presence_segments, days, interval),
        "system_presence",
        {ON_QUEUE_PRESENCE: "on_queue_seconds"},
    )
    all_intervals = routing.join(
        on_queue, on=_KEYS, how="full", coalesce=True, nulls_equal=True
    ).with_columns([pl.col(column).fill_null(0.0).cast(pl.Float64) for column in _SECONDS_COLUMNS])
    daily = (
        all_intervals.group_by("user_id", "management_unit_id", "local_date")
        .agg([pl.col(column).sum() for column in _SECONDS_COLUMNS])
        .join(days, on=["management_unit_id", "local_date"], how="inner", nulls_equal=True)
        .rename({"day_start": "interval_start", "day_end": "interval_end"})
        .with_columns(pl.lit(DAY_GRAIN).alias("grain"))
    )
    intervals = all_intervals.with_columns(pl.lit(interval.value).alias("grain"))
    # off-queue-only time says nothing about occupancy; such rows would only bloat the table
    worked = pl.sum_horizontal([c for c in _SECONDS_COLUMNS if c != "off_queue_seconds"]) > 0
    intervals, daily = intervals.filter(worked), daily.filter(worked)
    combined = pl.concat([_with_occupancy(intervals), _with_occupancy(daily)], how="diagonal")
    return (
        combined.select(list(AGENT_OCCUPANCY_SCHEMA))
        .cast(pl.Schema(AGENT_OCCUPANCY_SCHEMA))
        .sort("management_unit_id", "user_id", "local_date", "grain", "interval_start")
    )
