"""Local days of management units, and the record helpers shared by the transforms.

A Dagster partition key ``YYYY-MM-DD`` means, for each management unit (MU), that MU's *local* day in its
IANA time zone. On DST days that day is 23 h or 25 h long, so every UTC bound here comes from ``zoneinfo``
and never from adding 24 h (``wfm_pipeline.timestamps``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import polars as pl

from wfm_pipeline.timestamps import days_between, local_day_bounds, parse_utc
from wfm_pipeline.transforms._errors import RawRecordError, UnknownValueError

UTC_TIMESTAMP = pl.Datetime("us", "UTC")

DAY_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "management_unit_id": pl.String(),
    "local_date": pl.Date(),
    "day_start": UTC_TIMESTAMP,
    "day_end": UTC_TIMESTAMP,
}

MEMBERSHIP_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "management_unit_id": pl.String(),
    "time_zone": pl.String(),
}


def check_known_values(values: pl.Series, known: tuple[str, ...], where: str, field: str) -> None:
    """``UnknownValueError`` when a non-null value of ``values`` is not in ``known``."""
    unknown = values.drop_nulls().filter(~values.drop_nulls().is_in(list(known)))
    if unknown.len():
        raise UnknownValueError(where, field, sorted(unknown.unique().to_list()), known, unknown.len())


@dataclass(frozen=True)
class ManagementUnitInfo:
    """What the transforms need to know about a management unit (a snapshot taken when files were fetched)."""

    id: str
    time_zone: str
    user_ids: tuple[str, ...] = ()
    name: str = ""
    business_unit_id: str = ""


def parse_timestamp(value: object, field: str) -> datetime:
    """A raw record's wire timestamp as aware UTC (``wfm_pipeline.timestamps.parse_utc``), or a
    ``RawRecordError`` naming ``field``."""
    if not isinstance(value, str) or not value:
        raise RawRecordError(f"{field}: expected an ISO-8601 timestamp string, got {value!r}")
    # RFC 3339 allows a lowercase ``z``, which ``datetime.fromisoformat`` does not read.
    text = value[:-1] + "Z" if value.endswith("z") else value
    try:
        return parse_utc(text)
    except ValueError as exc:
        raise RawRecordError(f"{field}: not an ISO-8601 timestamp: {value!r}") from exc


def local_date_of(instant: datetime, time_zone: str) -> date:
    return instant.astimezone(ZoneInfo(time_zone)).date()


def day_frame(
    units: Iterable[ManagementUnitInfo], first: date, last: date, unassigned_time_zone: str | None = None
) -> pl.DataFrame:
    """One row per management unit per local day in [first, last] with that day's UTC bounds; given
    ``unassigned_time_zone``, also the days of agents in no unit (``management_unit_id`` null) there."""
    zones: list[tuple[str | None, str]] = [(unit.id, unit.time_zone) for unit in units]
    if unassigned_time_zone is not None:
        zones.append((None, unassigned_time_zone))
    rows = []
    for unit_id, time_zone in zones:
        for day in days_between(first, last):
            start, end = local_day_bounds(day, time_zone)
            rows.append(
                {"management_unit_id": unit_id, "local_date": day, "day_start": start, "day_end": end}
            )
    return pl.DataFrame(rows, schema=DAY_FRAME_SCHEMA)


def membership_frame(units: Iterable[ManagementUnitInfo]) -> pl.DataFrame:
    """user -> management unit and time zone. A user listed by two units keeps the first (sorted by MU id)."""
    rows = [
        {"user_id": user_id, "management_unit_id": unit.id, "time_zone": unit.time_zone}
        for unit in sorted(units, key=lambda u: u.id)
        for user_id in unit.user_ids
    ]
    return pl.DataFrame(rows, schema=MEMBERSHIP_SCHEMA).unique("user_id", keep="first", maintain_order=True)


AGENT_MANAGEMENT_UNIT_DAYS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "management_unit_id": pl.String(),
    "local_date": pl.Date(),
    "observed_at": UTC_TIMESTAMP,
}


def membership_days(
    units: Iterable[ManagementUnitInfo], day: date, observed_at: datetime | None
) -> pl.DataFrame:
    """Who was in which unit on ``day``, as the snapshot taken at ``observed_at`` (the extraction the
    day's facts came from) listed them; a user listed by two units keeps the first (``membership_frame``)."""
    members = membership_frame(units)
    return members.select(
        "user_id",
        "management_unit_id",
        pl.lit(day, pl.Date()).alias("local_date"),
        pl.lit(observed_at, UTC_TIMESTAMP).alias("observed_at"),
    )
