"""Local-day arithmetic on integer epoch seconds.

The data model works in whole UTC epoch seconds (ints) internally: cheap to compare, hash and cache,
and whole-second boundaries come for free. Conversions to tz-aware datetimes happen at the API edge.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

ONE_DAY = timedelta(days=1)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """ZoneInfo objects are cached by the stdlib too; this avoids repeated key normalisation."""
    return ZoneInfo(name)


def to_epoch(moment: datetime) -> int:
    """Whole epoch seconds of a tz-aware datetime (sub-second parts are truncated toward the past)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}; the sandbox data model needs tz-aware datetimes")
    return int(moment.timestamp() // 1)


def ceil_epoch(moment: datetime) -> int:
    """Whole epoch seconds rounded up: an end bound still includes its last partial second."""
    seconds = to_epoch(moment)
    return seconds + 1 if moment.timestamp() > seconds else seconds


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def local_midnight(day: date, tz_name: str) -> int:
    """Epoch seconds of local midnight starting ``day`` in ``tz_name`` (DST-aware)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=zone(tz_name)).timestamp())


def local_time(day: date, seconds_after_midnight: int, tz_name: str) -> int:
    """Epoch seconds of a wall-clock time of ``day`` (e.g. a shift start at 08:00 local).

    Wall-clock times that DST skips resolve with fold=0 (zoneinfo's rule); shift starts are chosen
    outside 02:00-03:00 so this never matters in practice.
    """
    hours, rest = divmod(seconds_after_midnight, 3600)
    minutes, seconds = divmod(rest, 60)
    wall = datetime(day.year, day.month, day.day, hours, minutes, seconds, tzinfo=zone(tz_name))
    return int(wall.timestamp())


def local_date(epoch: int, tz_name: str) -> date:
    return datetime.fromtimestamp(epoch, zone(tz_name)).date()


def day_bounds(start: int, end: int, tz_name: str) -> list[int]:
    """Boundaries of the local days of ``tz_name`` cutting [start, end): [start, midnight..., end].

    The first day starts at ``start`` (partial if ``start`` is not a local midnight), the last ends at
    ``end``. DST days are 23 h or 25 h long because the cuts are local midnights.
    """
    bounds = [start]
    day = local_date(start, tz_name) + ONE_DAY
    while True:
        midnight = local_midnight(day, tz_name)
        if midnight >= end:
            break
        if midnight > bounds[-1]:
            bounds.append(midnight)
        day += ONE_DAY
    if end > bounds[-1]:
        bounds.append(end)
    return bounds
