"""Window planning: export requests on fixed grids, cut to the documented maxima, clamped to availability.

Pure functions (no I/O), so the arithmetic is unit-tested on its own. The result is a list of
``PlannedJob``: the body to submit and what the job covers; ``jobs.ExportJobs`` runs them.

Both kinds of job are cut on fixed grids, never from the requested start: a day is always fetched in the
same window, with the same body, however days are grouped into runs, so a regrouped relaunch finds every
job it (or an earlier run) already submitted in the registry instead of submitting new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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
# The origin of both grids: a Monday, so 7-day adherence blocks are ISO weeks (Monday to Sunday, the
# weeks WFM schedules and reports use) in every zone, and long before any data an org can still export.
GRID_ANCHOR_DAY = date(2000, 1, 3)
USER_DETAILS_GRID_ANCHOR = datetime(2000, 1, 3, tzinfo=UTC)


def adherence_max_days(include_exceptions: bool) -> int:
    return wire.ADHERENCE_MAX_DAYS_WITH_EXCEPTIONS if include_exceptions else wire.ADHERENCE_MAX_DAYS


def _split_block(first: date, end: date, zone: str, max_span: timedelta) -> list[tuple[date, date]]:
    """The block [first, end) of local days as the longest prefix lasting at most ``max_span``, then the
    rest cut the same way (one day always fits: a local day lasts at most 25 h). Genesys checks the range
    on the instants sent, so a week holding a 25-hour day (DST ends) is one hour too long as one window."""
    windows: list[tuple[date, date]] = []
    cursor = first
    while cursor < end:
        stop = cursor + _ONE_DAY
        while stop < end and local_days_span(cursor, stop + _ONE_DAY, zone) <= max_span:
            stop += _ONE_DAY
        windows.append((cursor, stop))
        cursor = stop
    return windows


def adherence_grid_windows(zone: str, first: date, end: date, max_days: int) -> list[tuple[date, date]]:
    """The grid windows of ``zone`` (first day, end day exclusive) that hold a day of [first, end): blocks
    of ``max_days`` local days from ``GRID_ANCHOR_DAY``, each split where it lasts more than
    ``max_days`` x 24 h. Depends only on the zone and the days, never on how they are grouped."""
    if end <= first:
        return []
    max_span = timedelta(days=max_days)
    first_block = (first - GRID_ANCHOR_DAY).days // max_days
    last_block = (end - _ONE_DAY - GRID_ANCHOR_DAY).days // max_days
    windows: list[tuple[date, date]] = []
    for block in range(first_block, last_block + 1):
        block_first = GRID_ANCHOR_DAY + timedelta(days=block * max_days)
        for window in _split_block(block_first, block_first + timedelta(days=max_days), zone, max_span):
            if window[0] < end and first < window[1]:
                windows.append(window)
    return windows


@dataclass(frozen=True)
class PlannedJob:
    """One export job to run: the body to submit and what its results cover."""

    kind: ExportKind
    body: dict[str, Any]
    window_start: datetime
    window_end: datetime
    # A registered job of this body is reused only if its data was complete up to this instant when it
    # was submitted (the registry's ``complete_until``): the end of the last day this run loads from it.
    needed_until: datetime
    # Adherence: the window's local days within the request's [start, end), the days loaded from this job
    # (empty for a neighbour window fetched only for context). User details: ().
    core_days: tuple[date, ...] = ()
    window_days: tuple[date, ...] = ()  # adherence: every local day of the grid window; user details: ()
    time_zone: str = ""  # adherence: the zone of the window's days (and of the body); user details: ""
    # User details: the dataAvailabilityDate the window was clamped to. Adherence: None, the submission
    # instant (a day is complete once it is over).
    complete_until: datetime | None = None


def plan_adherence_jobs(
    request: AdherenceExportRequest, now: datetime
) -> tuple[list[PlannedJob], tuple[LeftOut, ...]]:
    """One bulk job per (grid window, time zone) with one item per MU of that zone, for every window of the
    zone that holds a day of [start - context_days, end + context_days); windows starting at or after
    ``now`` (no data yet) are left out. Sorted by window, then zone."""
    if request.end <= request.start:
        return [], ()
    by_zone: dict[str, list[ManagementUnit]] = {}
    for unit in request.management_units:
        by_zone.setdefault(unit.time_zone, []).append(unit)
    context = timedelta(days=request.context_days)
    wanted = (request.start - context, request.end + context)
    max_days = adherence_max_days(request.include_exceptions)
    plans: list[PlannedJob] = []
    left_out: list[LeftOut] = []
    for zone in sorted(by_zone):
        for first_day, end_day in adherence_grid_windows(zone, *wanted, max_days):
            plan = _adherence_job(request, zone, by_zone[zone], first_day, end_day)
            if plan.window_start >= now:
                reason = f"the window starts at or after the submission instant {format_utc(now)}"
                left_out.append(LeftOut(plan.window_start, plan.window_end, reason))
            else:
                plans.append(plan)
    return sorted(plans, key=lambda plan: (plan.window_days[0], plan.time_zone)), tuple(left_out)


def _adherence_job(
    request: AdherenceExportRequest, zone: str, units: list[ManagementUnit], first_day: date, end_day: date
) -> PlannedJob:
    window_days = tuple(first_day + offset * _ONE_DAY for offset in range((end_day - first_day).days))
    core_days = tuple(day for day in window_days if request.start <= day < request.end)
    context = timedelta(days=request.context_days)
    # A neighbour window serves only its days next to the run (as context).
    used = core_days or tuple(
        day for day in window_days if request.start - context <= day < request.end + context
    )
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
    return PlannedJob(
        kind="adherence",
        body={"timeZone": zone, "items": items},
        window_start=window_start,
        window_end=window_end,
        needed_until=local_midnight_utc(used[-1] + _ONE_DAY, zone),
        core_days=core_days,
        window_days=window_days,
        time_zone=zone,
    )


def user_details_cells(start: datetime, end: datetime, cell: timedelta) -> list[tuple[datetime, datetime]]:
    """The whole cells of the UTC grid (``cell`` long, from ``USER_DETAILS_GRID_ANCHOR``) meeting
    [start, end)."""
    if cell <= timedelta(0):
        raise ValueError("the user-details cell length must be positive")
    if end <= start:
        return []
    first, last = (start - USER_DETAILS_GRID_ANCHOR) // cell, (end - USER_DETAILS_GRID_ANCHOR) // cell
    if USER_DETAILS_GRID_ANCHOR + last * cell == end:
        last -= 1
    return [
        (USER_DETAILS_GRID_ANCHOR + index * cell, USER_DETAILS_GRID_ANCHOR + (index + 1) * cell)
        for index in range(first, last + 1)
    ]


def plan_user_details_jobs(
    request: UserDetailsExportRequest, available_until: datetime, cell: timedelta
) -> tuple[list[PlannedJob], tuple[LeftOut, ...]]:
    """One job per grid cell meeting [start, end) up to ``available_until`` (dataAvailabilityDate), the
    whole cell, its end clamped to ``available_until`` (so the last cell's body changes as data arrives);
    and the part of the request left out (none when all of it is available)."""
    kept, left_out = clamp_to_availability(request.start, request.end, available_until)
    cells = user_details_cells(*kept, cell) if kept else []
    plans = []
    for cell_start, cell_end in cells:
        stop = min(cell_end, available_until)
        body = user_details_body(cell_start, stop, request.user_ids)
        plans.append(
            PlannedJob(
                "user_details", body, cell_start, stop, needed_until=stop, complete_until=available_until
            )
        )
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
