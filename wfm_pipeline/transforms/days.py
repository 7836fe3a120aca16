"""Local days of management units, and timestamp parsing shared by the transforms.

A Dagster partition key ``YYYY-MM-DD`` means, for each management unit (MU), that MU's *local* day in its
IANA time zone. On DST days that day is 23 h or 25 h long, so every UTC bound here comes from ``zoneinfo``
and never from adding 24 h.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl

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


class RawRecordError(ValueError):
    """A raw record does not have the shape Genesys documents (missing field, bad timestamp, an interval
    that ends before it starts, an offset outside the query window). The file is quarantined."""


class UnknownValueError(RawRecordError):
    """A field holds a value Genesys does not document (yet): the file is well formed, so it stays where it
    is, but nothing is loaded until the value is known (``wfm_pipeline/wire.py``), since we cannot say
    what it means for adherence or occupancy."""

    def __init__(self, where: str, field: str, values: list[str], known: tuple[str, ...], count: int) -> None:
        self.field, self.values, self.count = field, values, count
        super().__init__(
            f"{where}: {count} record(s) with {field} {', '.join(repr(v) for v in values[:5])}, none of "
            f"the documented values {list(known)}. If Genesys added it, add it to wfm_pipeline/wire.py "
            "and re-run this step; the raw file is kept as it is"
        )


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


def parse_utc(value: object, field: str = "timestamp") -> datetime:
    """Parse a wire timestamp (``Z``, ``+00:00`` or any offset, with or without fractions) to aware UTC."""
    if not isinstance(value, str) or not value:
        raise RawRecordError(f"{field}: expected an ISO-8601 timestamp string, got {value!r}")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RawRecordError(f"{field}: not an ISO-8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        # Genesys documents UTC as the default when no offset is given.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def local_day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    """UTC [start, end) of ``day`` in ``time_zone`` (23 h / 25 h on DST changes)."""
    zone = ZoneInfo(time_zone)
    start = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return start, end


def local_date_of(instant: datetime, time_zone: str) -> date:
    return instant.astimezone(ZoneInfo(time_zone)).date()


def days_between(first: date, last: date) -> list[date]:
    """Inclusive list of calendar days."""
    if last < first:
        raise ValueError(f"last day {last} is before first day {first}")
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def utc_span_of_days(time_zones: Iterable[str], first: date, last: date) -> tuple[datetime, datetime]:
    """From the earliest local midnight of ``first`` to the latest local end of ``last`` over all zones."""
    zones = sorted(set(time_zones))
    if not zones:
        raise ValueError("no time zones given: the organization has no management units")
    starts = [local_day_bounds(first, zone)[0] for zone in zones]
    ends = [local_day_bounds(last, zone)[1] for zone in zones]
    return min(starts), max(ends)


def day_frame(units: Iterable[ManagementUnitInfo], first: date, last: date) -> pl.DataFrame:
    """One row per management unit per local day in [first, last] with that day's UTC bounds."""
    rows = []
    for unit in units:
        for day in days_between(first, last):
            start, end = local_day_bounds(day, unit.time_zone)
            rows.append(
                {"management_unit_id": unit.id, "local_date": day, "day_start": start, "day_end": end}
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


def units_by_id(units: Iterable[ManagementUnitInfo]) -> Mapping[str, ManagementUnitInfo]:
    return {unit.id: unit for unit in units}
