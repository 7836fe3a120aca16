"""Wire timestamps and local days: the one implementation the client, the transforms and the pipeline share.

Pure standard library (``datetime.fromisoformat`` reads every form Genesys serves since Python 3.11: ``Z``,
offsets, with or without fractions). The sandbox keeps its own arithmetic on purpose (``sandbox/localdays``):
an emulator that shared our parser could not catch its bugs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def parse_utc(text: str) -> datetime:
    """Aware UTC from ``Z`` / ``+00:00`` / any offset, with or without fractions; naive means UTC (Genesys's
    documented default). ``ValueError`` for anything else, including a non-string."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"expected an ISO-8601 timestamp string, got {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_utc(moment: datetime) -> str:
    """The wire format: UTC ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a tz-aware datetime")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def local_midnight_utc(day: date, time_zone: str) -> datetime:
    """Start of ``day`` in ``time_zone``, as UTC (DST days are 23 h or 25 h long)."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(time_zone)).astimezone(UTC)


def local_day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    """UTC [start, end) of ``day`` in ``time_zone``."""
    return local_midnight_utc(day, time_zone), local_midnight_utc(day + timedelta(days=1), time_zone)


def local_days_span(first_day: date, end_day: date, time_zone: str) -> timedelta:
    """Duration of the local days [first_day, end_day) in ``time_zone``."""
    return local_midnight_utc(end_day, time_zone) - local_midnight_utc(first_day, time_zone)


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
    return (
        min(local_day_bounds(first, zone)[0] for zone in zones),
        max(local_day_bounds(last, zone)[1] for zone in zones),
    )
