"""Window planning: splitting export requests to the documented maxima and clamping to data availability.

Pure functions (no I/O), so the arithmetic is unit-tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.parser import isoparse

from wfm_pipeline import wire
from wfm_pipeline.genesys.models import AdherenceExportRequest, LeftOut, ManagementUnit


def format_utc(moment: datetime) -> str:
    """The wire format: UTC ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a tz-aware datetime")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_utc(text: str) -> datetime:
    """Parse ``Z`` / ``+00:00`` / offsets, with or without fractions; naive means UTC (Genesys' default)."""
    moment = isoparse(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def local_midnight_utc(day: date, time_zone: str) -> datetime:
    """Start of ``day`` in ``time_zone``, as UTC (DST days are 23 h or 25 h long)."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(time_zone)).astimezone(UTC)


def adherence_max_days(include_exceptions: bool) -> int:
    return wire.ADHERENCE_MAX_DAYS_WITH_EXCEPTIONS if include_exceptions else wire.ADHERENCE_MAX_DAYS


def adherence_max_span(include_exceptions: bool) -> timedelta:
    """The longest window Genesys accepts, as a duration: 7 (31) days of 24 h. The range is checked on the
    instants sent, so a week of local days that contains a 25-hour day (DST ends) is one hour too long."""
    return timedelta(days=adherence_max_days(include_exceptions))


def local_days_span(first_day: date, end_day: date, time_zone: str) -> timedelta:
    """Duration of the local days [first_day, end_day) in ``time_zone``."""
    return local_midnight_utc(end_day, time_zone) - local_midnight_utc(first_day, time_zone)


def split_local_days(start: date, end: date, time_zone: str, max_span: timedelta) -> list[tuple[date, date]]:
    """[start, end) in consecutive runs of whole local days, each as long as possible while its duration in
    ``time_zone`` stays within ``max_span``."""
    windows: list[tuple[date, date]] = []
    cursor = start
    while cursor < end:
        stop = cursor + timedelta(days=1)  # one local day (at most 25 h) always fits
        while stop < end and local_days_span(cursor, stop + timedelta(days=1), time_zone) <= max_span:
            stop += timedelta(days=1)
        windows.append((cursor, stop))
        cursor = stop
    return windows


@dataclass(frozen=True)
class PlannedAdherenceJob:
    time_zone: str
    first_day: date
    end_day: date  # exclusive
    window_start: datetime  # local midnight of first_day, UTC
    window_end: datetime  # local midnight of end_day, UTC
    body: dict[str, Any]


def plan_adherence_jobs(request: AdherenceExportRequest) -> list[PlannedAdherenceJob]:
    """One bulk job per (window, time zone) with one item per MU of that zone; each window as many whole
    local days as fit the documented maximum in that zone (so windows differ between zones in DST weeks)."""
    if request.end <= request.start:
        return []
    by_zone: dict[str, list[ManagementUnit]] = {}
    for unit in request.management_units:
        by_zone.setdefault(unit.time_zone, []).append(unit)
    max_span = adherence_max_span(request.include_exceptions)
    plans: list[PlannedAdherenceJob] = []
    for zone in sorted(by_zone):
        for first_day, end_day in split_local_days(request.start, request.end, zone, max_span):
            window_start = local_midnight_utc(first_day, zone)
            window_end = local_midnight_utc(end_day, zone)
            items = [
                {
                    "managementUnitId": unit.id,
                    "startDate": format_utc(window_start),
                    "endDate": format_utc(window_end),
                    "includeExceptions": request.include_exceptions,
                    "includeActuals": request.include_actuals,
                }
                for unit in sorted(by_zone[zone], key=lambda u: u.id)
            ]
            body = {"timeZone": zone, "items": items}
            plans.append(PlannedAdherenceJob(zone, first_day, end_day, window_start, window_end, body))
    return sorted(plans, key=lambda plan: (plan.first_day, plan.time_zone))


def clamp_to_availability(
    start: datetime, end: datetime, available_until: datetime
) -> tuple[tuple[datetime, datetime] | None, LeftOut | None]:
    """Keep [start, min(end, available_until)); report what was cut off."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be tz-aware")
    if end <= start:
        return None, None
    if available_until >= end:
        return (start, end), None
    reason = f"after dataAvailabilityDate {format_utc(available_until)}"
    if available_until <= start:
        return None, LeftOut(start, end, reason)
    return (start, available_until), LeftOut(available_until, end, reason)


def split_interval(start: datetime, end: datetime, max_length: timedelta) -> list[tuple[datetime, datetime]]:
    if max_length <= timedelta(0):
        raise ValueError("max_length must be positive")
    windows: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end:
        stop = min(end, cursor + max_length)
        windows.append((cursor, stop))
        cursor = stop
    return windows


def user_details_body(
    start: datetime, end: datetime, user_ids: list[str] | tuple[str, ...] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"interval": f"{format_utc(start)}/{format_utc(end)}", "order": "asc"}
    if user_ids:
        body["userFilters"] = [
            {
                "type": "or",
                "predicates": [
                    {"type": "dimension", "dimension": "userId", "operator": "matches", "value": user_id}
                    for user_id in sorted(user_ids)
                ],
            }
        ]
    return body
