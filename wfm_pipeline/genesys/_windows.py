"""Window planning: export requests cut to the documented maxima, clamped to data availability.

Pure functions (no I/O), so the arithmetic is unit-tested on its own. The result is a list of
``PlannedJob``: the body to submit and what the job covers; ``jobs.ExportJobs`` runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from wfm_pipeline import wire
from wfm_pipeline.genesys._models import (
    AdherenceExportRequest,
    ExportKind,
    LeftOut,
    ManagementUnit,
    UserDetailsExportRequest,
)
from wfm_pipeline.timestamps import format_utc, local_days_span, local_midnight_utc

_ONE_DAY = timedelta(days=1)


def adherence_max_days(include_exceptions: bool) -> int:
    return wire.ADHERENCE_MAX_DAYS_WITH_EXCEPTIONS if include_exceptions else wire.ADHERENCE_MAX_DAYS


def adherence_max_span(include_exceptions: bool) -> timedelta:
    """The longest window Genesys accepts, as a duration: 7 (31) days of 24 h. The range is checked on the
    instants sent, so a week of local days that contains a 25-hour day (DST ends) is one hour too long."""
    return timedelta(days=adherence_max_days(include_exceptions))


def split_local_days(
    start: date, end: date, time_zones: Sequence[str], max_span: timedelta, *, context_days: int = 0
) -> list[tuple[date, date]]:
    """[start, end) in consecutive runs of whole local days ("core" days, end exclusive), each as long as
    possible while its window -- the run plus ``context_days`` on each side -- lasts at most ``max_span``
    in every one of ``time_zones`` (so at most ``max_span`` days minus the context days)."""
    max_core_days = max_span // _ONE_DAY - 2 * context_days
    if max_core_days < 1:
        raise ValueError(f"{context_days} context days on each side leave no core day in {max_span}")
    context = timedelta(days=context_days)

    def fits(first: date, stop: date) -> bool:
        return all(local_days_span(first - context, stop + context, zone) <= max_span for zone in time_zones)

    windows: list[tuple[date, date]] = []
    cursor = start
    while cursor < end:
        stop = cursor + _ONE_DAY  # one core day and its context always fit (at most 3 x 25 h)
        while stop < end and (stop - cursor).days < max_core_days and fits(cursor, stop + _ONE_DAY):
            stop += _ONE_DAY
        windows.append((cursor, stop))
        cursor = stop
    return windows


@dataclass(frozen=True)
class PlannedJob:
    """One export job to run: the body to submit and what its results cover."""

    kind: ExportKind
    body: dict[str, Any]
    window_start: datetime
    window_end: datetime
    core_days: tuple[date, ...]  # adherence: the local days loaded from this job; user details: ()


@dataclass(frozen=True)
class PlannedAdherenceJob(PlannedJob):
    time_zone: str
    first_day: date  # the window's first local day (a context day when the request has them)
    end_day: date  # exclusive


def plan_adherence_jobs(request: AdherenceExportRequest) -> list[PlannedAdherenceJob]:
    """One bulk job per (window, time zone) with one item per MU of that zone; each window as many whole
    local days as fit the documented maximum (7 x 24 h with exceptions, else 31 x 24 h).

    With context days, windows are cut jointly over all zones: every zone's job of a window then has the
    same core days, so each day's files come from one set of jobs (one per zone) and runs of days with the
    same files are loaded together. Without, each zone gets its own longest windows (they differ between
    zones in DST weeks)."""
    if request.end <= request.start:
        return []
    by_zone: dict[str, list[ManagementUnit]] = {}
    for unit in request.management_units:
        by_zone.setdefault(unit.time_zone, []).append(unit)
    zones = sorted(by_zone)
    zone_groups = [zones] if request.context_days else [[zone] for zone in zones]
    max_span = adherence_max_span(request.include_exceptions)
    context = timedelta(days=request.context_days)
    plans: list[PlannedAdherenceJob] = []
    for group in zone_groups:
        cores = split_local_days(
            request.start, request.end, group, max_span, context_days=request.context_days
        )
        for core_first, core_end in cores:
            core_days = tuple(
                core_first + offset * _ONE_DAY for offset in range((core_end - core_first).days)
            )
            for zone in group:
                plans.append(
                    _adherence_job(
                        request, zone, by_zone[zone], core_first - context, core_end + context, core_days
                    )
                )
    return sorted(plans, key=lambda plan: (plan.first_day, plan.time_zone))


def _adherence_job(
    request: AdherenceExportRequest,
    zone: str,
    units: Sequence[ManagementUnit],
    first_day: date,
    end_day: date,
    core_days: tuple[date, ...],
) -> PlannedAdherenceJob:
    window_start, window_end = local_midnight_utc(first_day, zone), local_midnight_utc(end_day, zone)
    items = [
        {
            "managementUnitId": unit.id,
            "startDate": format_utc(window_start),
            "endDate": format_utc(window_end),
            "includeExceptions": request.include_exceptions,
            "includeActuals": request.include_actuals,
        }
        for unit in sorted(units, key=lambda u: u.id)
    ]
    body = {"timeZone": zone, "items": items}
    return PlannedAdherenceJob(
        "adherence", body, window_start, window_end, core_days, zone, first_day, end_day
    )


def plan_user_details_jobs(
    request: UserDetailsExportRequest, available_until: datetime, max_window: timedelta
) -> tuple[list[PlannedJob], tuple[LeftOut, ...]]:
    """Jobs for [start, end) clamped to ``available_until`` (dataAvailabilityDate), each at most
    ``max_window`` long, and the part left out (none when all of it is available)."""
    kept, left_out = clamp_to_availability(request.start, request.end, available_until)
    windows = split_interval(*kept, max_window) if kept else []
    plans = [
        PlannedJob("user_details", user_details_body(start, end, request.user_ids), start, end, ())
        for start, end in windows
    ]
    return plans, (left_out,) if left_out else ()


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
