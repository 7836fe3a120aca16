"""User-details pages (``AnalyticsUserDetailsAsyncQueryResponse`` as served) -> status segments.

Steps, in order (each a pure function so it can be tested alone):
1. ``status_records``: flatten pages into one row per raw status record (UTC timestamps).
2. ``deduplicate``: Genesys stores a status that spans midnight twice (once per day) and a job over several
   days returns it twice; the key is (userId, startTime, status). Duplicates keep the latest endTime.
   A record without endTime (still open) is closed at ``open_until`` (the data-availability instant) or
   dropped when that is unknown.
3. ``remove_overlaps``: per agent, a record starting before an earlier record has ended is cut to start at
   that end (and dropped if nothing is left), so the table never double-counts time.
4. ``clip_to_local_days``: split at each agent's MU local midnights and keep the pieces inside the
   requested days; ``status_start_time`` keeps the raw record's start so a piece can be traced back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl

from wfm_pipeline.transforms.days import UTC_TIMESTAMP, RawRecordError, parse_utc

ROUTING_STATUS_COLUMNS: tuple[str, ...] = ("routing_status",)
PRESENCE_COLUMNS: tuple[str, ...] = ("system_presence", "organization_presence_id")

ROUTING_RECORD_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "start_time": UTC_TIMESTAMP,
    "end_time": UTC_TIMESTAMP,
    "routing_status": pl.String(),
}
PRESENCE_RECORD_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "start_time": UTC_TIMESTAMP,
    "end_time": UTC_TIMESTAMP,
    "system_presence": pl.String(),
    "organization_presence_id": pl.String(),
}


def _segment_schema(status_columns: Sequence[str]) -> dict[str, pl.DataType]:
    return {
        "user_id": pl.String(),
        "management_unit_id": pl.String(),
        "local_date": pl.Date(),
        **{column: pl.String() for column in status_columns},
        "start_time": UTC_TIMESTAMP,
        "end_time": UTC_TIMESTAMP,
        "duration_seconds": pl.Float64(),
        "status_start_time": UTC_TIMESTAMP,
    }


ROUTING_STATUS_SEGMENTS_SCHEMA = _segment_schema(ROUTING_STATUS_COLUMNS)
PRESENCE_SEGMENTS_SCHEMA = _segment_schema(PRESENCE_COLUMNS)


def _optional_time(record: Mapping[str, Any], field: str, where: str) -> datetime | None:
    value = record.get(field)
    return None if value is None else parse_utc(value, f"{where}.{field}")


def status_records(pages: Iterable[Mapping[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(routing status records, primary presence records), one row per raw record."""
    routing: list[dict[str, Any]] = []
    presence: list[dict[str, Any]] = []
    for page_index, page in enumerate(pages):
        if not isinstance(page, Mapping) or not isinstance(page.get("userDetails", []), list):
            raise RawRecordError(f"page {page_index}: expected an object with a userDetails list")
        for detail_index, detail in enumerate(page.get("userDetails") or []):
            where = f"page {page_index} userDetails[{detail_index}]"
            if not isinstance(detail, Mapping) or not detail.get("userId"):
                raise RawRecordError(f"{where}: missing userId")
            user_id = str(detail["userId"])
            for index, record in enumerate(detail.get("routingStatus") or []):
                rec_where = f"{where}.routingStatus[{index}]"
                status = record.get("routingStatus") if isinstance(record, Mapping) else None
                if not status:
                    raise RawRecordError(f"{rec_where}: missing routingStatus")
                routing.append(
                    {
                        "user_id": user_id,
                        "start_time": parse_utc(record.get("startTime"), f"{rec_where}.startTime"),
                        "end_time": _optional_time(record, "endTime", rec_where),
                        "routing_status": status,
                    }
                )
            for index, record in enumerate(detail.get("primaryPresence") or []):
                rec_where = f"{where}.primaryPresence[{index}]"
                status = record.get("systemPresence") if isinstance(record, Mapping) else None
                if not status:
                    raise RawRecordError(f"{rec_where}: missing systemPresence")
                presence.append(
                    {
                        "user_id": user_id,
                        "start_time": parse_utc(record.get("startTime"), f"{rec_where}.startTime"),
                        "end_time": _optional_time(record, "endTime", rec_where),
                        "system_presence": status,
                        "organization_presence_id": record.get("organizationPresenceId"),
                    }
                )
    return (
        pl.DataFrame(routing, schema=ROUTING_RECORD_SCHEMA),
        pl.DataFrame(presence, schema=PRESENCE_RECORD_SCHEMA),
    )


def deduplicate(
    records: pl.DataFrame, status_columns: Sequence[str], open_until: datetime | None
) -> pl.DataFrame:
    """One row per (user_id, start_time, status...); open records closed at ``open_until`` or dropped."""
    if open_until is None:
        closed = records.filter(pl.col("end_time").is_not_null())
    else:
        closed = records.with_columns(pl.col("end_time").fill_null(pl.lit(open_until).cast(UTC_TIMESTAMP)))
    keys = ["user_id", "start_time", *status_columns]
    return (
        closed.filter(pl.col("end_time") > pl.col("start_time"))
        .group_by(keys)
        .agg(pl.col("end_time").max())
        .select(records.columns)
        .sort("user_id", "start_time", "end_time", *status_columns)
    )


def remove_overlaps(records: pl.DataFrame) -> pl.DataFrame:
    """Per agent, cut each record to start where all earlier records have ended (input sorted by start)."""
    leading = ["user_id", "start_time", "end_time"]
    # ties broken on every other column so the result does not depend on input order
    ordered = records.sort([*leading, *(c for c in records.columns if c not in leading)])
    earlier_end = pl.col("end_time").cum_max().shift(1).over("user_id")
    return ordered.with_columns(
        pl.col("start_time").alias("status_start_time"),
        pl.max_horizontal(pl.col("start_time"), earlier_end).alias("start_time"),
    ).filter(pl.col("end_time") > pl.col("start_time"))


def clip_to_local_days(
    records: pl.DataFrame, membership: pl.DataFrame, days: pl.DataFrame, status_columns: Sequence[str]
) -> pl.DataFrame:
    """Pieces of each record inside each requested local day of the agent's management unit.

    ``records`` needs ``status_start_time`` (from ``remove_overlaps``); agents in no management unit have no
    local day and are dropped (the loader reports how many).
    """
    schema = _segment_schema(status_columns)
    located = records.join(membership.select("user_id", "management_unit_id"), on="user_id", how="inner")
    pieces = (
        located.join(days, on="management_unit_id", how="inner")
        .filter((pl.col("start_time") < pl.col("day_end")) & (pl.col("end_time") > pl.col("day_start")))
        .with_columns(
            pl.max_horizontal("start_time", "day_start").alias("start_time"),
            pl.min_horizontal("end_time", "day_end").alias("end_time"),
        )
        .with_columns(
            ((pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1_000_000).alias(
                "duration_seconds"
            )
        )
    )
    return pieces.select(list(schema)).cast(schema).sort("management_unit_id", "user_id", "start_time")


def segments(
    records: pl.DataFrame,
    membership: pl.DataFrame,
    days: pl.DataFrame,
    status_columns: Sequence[str],
    open_until: datetime | None = None,
) -> pl.DataFrame:
    """Raw status records -> clean segments (dedupe, de-overlap, clip to local days)."""
    clean = remove_overlaps(deduplicate(records, status_columns, open_until))
    return clip_to_local_days(clean, membership, days, status_columns)
