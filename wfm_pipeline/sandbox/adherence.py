"""Historical adherence of one agent, computed from its schedule and actual presence exactly as
DESIGN.md "Adherence" defines it, shaped as a ``WfmHistoricalAdherenceBulkUserResult`` dict.

Method: an interval sweep. Every schedule, presence, routing and local-day boundary inside the query
range cuts it into elementary segments within which nothing changes; each segment adds its length to
the per-day counters and extends or starts an exception / an actuals run.

Choices the design leaves open (documented in the sandbox docs too):
- OFFLINE (or no data yet) has no activity category: exceptions while OFFLINE omit
  ``actualActivityCategory`` / ``actualActivityCodeId`` and report ``systemPresence`` "Offline",
  ``routingStatus`` "OFF_QUEUE"; ``actuals`` has no run for OFFLINE time.
- An exception's ``systemPresence``, ``routingStatus`` and ``secondaryPresenceLookupId`` are those at
  its first second (presence may change inside it while the actual category stays the same).
- Overall ``impact``: "Negative" when Negative-exception seconds exceed Positive-exception seconds over
  the whole range, "Positive" when they are fewer, "Neutral" when equal (including no exceptions).
- Exceptions are cut at the query range but not at local midnights.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from wfm_pipeline import wire
from wfm_pipeline.sandbox.localdays import day_bounds, to_epoch

if TYPE_CHECKING:
    from wfm_pipeline.sandbox.org import SandboxOrg


def exception_impact(scheduled: str, actual: str | None) -> str:
    if scheduled == "OnQueueWork" and actual != "OnQueueWork":
        return "Negative"
    if actual == "OnQueueWork" and scheduled != "OnQueueWork":
        return "Positive"
    return "Neutral"


def percentage(numerator: int, denominator: int) -> float:
    return 100.0 if denominator == 0 else round(100.0 * numerator / denominator, 2)


@dataclass
class _Day:
    start: int
    schedule_length: int = 0
    adherence_schedule: int = 0
    adherent: int = 0
    conformance_schedule: int = 0
    conformance_actual: int = 0
    actual_length: int = 0
    exception_count: int = 0
    exception_duration: int = 0
    impact_seconds: int = 0


@dataclass
class _Sweep:
    origin: int
    exceptions: list[dict] = field(default_factory=list)
    actuals: list[dict] = field(default_factory=list)
    exception_key: tuple[str, str | None] | None = None
    exception_end: int = -1
    actual_key: tuple[str, str] | None = None
    actual_end: int = -1
    negative_seconds: int = 0
    positive_seconds: int = 0


def compute_user_result(
    org: SandboxOrg,
    user_id: str,
    start: datetime,
    end: datetime,
    time_zone: str,
    *,
    include_exceptions: bool,
    include_actuals: bool,
) -> dict:
    s0, s1 = to_epoch(start), to_epoch(end)
    activities = [
        (to_epoch(a.start), to_epoch(a.end), a.category, a.activity_code_id, a.secondary_presence_id)
        for a in org.schedule(user_id, start, end)
    ]
    presence = [
        (to_epoch(p.start), to_epoch(p.end), p.system_presence, p.organization_presence_id)
        for p in org.presence(user_id, start, end)
    ]
    routing = [
        (to_epoch(r.start), to_epoch(r.end), r.routing_status) for r in org.routing(user_id, start, end)
    ]
    bounds = day_bounds(s0, s1, time_zone) if s1 > s0 else [s0]
    days = [_Day(b) for b in bounds[:-1]]
    offline_id = next(p.id for p in org.presence_definitions if p.system_presence == "Offline")

    cuts = set(bounds)
    for spans in (activities, presence, routing):
        for span in spans:
            cuts.update(t for t in span[:2] if s0 < t < s1)
    points = sorted(cuts)
    sweep = _Sweep(origin=s0)
    ai = pi = ri = di = 0
    for a, b in itertools.pairwise(points):
        while di + 1 < len(days) and days[di + 1].start <= a:
            di += 1
        while ai < len(activities) and activities[ai][1] <= a:
            ai += 1
        while pi < len(presence) and presence[pi][1] <= a:
            pi += 1
        while ri < len(routing) and routing[ri][1] <= a:
            ri += 1
        activity = activities[ai] if ai < len(activities) and activities[ai][0] <= a else None
        span = presence[pi] if pi < len(presence) and presence[pi][0] <= a else None
        status = routing[ri][2] if ri < len(routing) and routing[ri][0] <= a else "OFF_QUEUE"
        system = span[2] if span else "OFFLINE"
        presence_id = span[3] if span else offline_id
        actual = wire.ACTIVITY_CATEGORY_OF_PRESENCE[system]
        seconds = b - a
        day = days[di]
        if system != "OFFLINE":
            day.actual_length += seconds
        if system == "ON_QUEUE":
            day.conformance_actual += seconds
        if actual is not None:
            _extend_actuals(org, sweep, a, b, actual, presence_id)
        if activity is None:
            continue
        scheduled = activity[2]
        day.schedule_length += seconds
        if scheduled == "OnQueueWork":
            day.conformance_schedule += seconds
        if scheduled == "TimeOff":
            continue
        day.adherence_schedule += seconds
        if scheduled == actual:
            day.adherent += seconds
            continue
        impact = exception_impact(scheduled, actual)
        if sweep.exception_key == (scheduled, actual) and sweep.exception_end == a:
            sweep.exceptions[-1]["endOffsetSeconds"] = b - s0
        else:
            day.exception_count += 1
            sweep.exceptions.append(
                _exception(org, a - s0, b - s0, activity, actual, system, status, presence_id, impact)
            )
        sweep.exception_key, sweep.exception_end = (scheduled, actual), b
        day.exception_duration += seconds
        if impact == "Negative":
            day.impact_seconds += seconds
            sweep.negative_seconds += seconds
        elif impact == "Positive":
            sweep.positive_seconds += seconds

    adherent = sum(d.adherent for d in days)
    result: dict = {
        "userId": user_id,
        "adherencePercentage": percentage(adherent, sum(d.adherence_schedule for d in days)),
        "conformancePercentage": percentage(
            sum(d.conformance_actual for d in days), sum(d.conformance_schedule for d in days)
        ),
        "impact": _overall_impact(sweep),
    }
    if include_exceptions:
        result["exceptionInfo"] = sweep.exceptions
    if include_actuals:
        result["actuals"] = sweep.actuals
    result["dayMetrics"] = [_day_metrics(d, s0) for d in days]
    return result


def _overall_impact(sweep: _Sweep) -> str:
    if sweep.negative_seconds > sweep.positive_seconds:
        return "Negative"
    if sweep.negative_seconds < sweep.positive_seconds:
        return "Positive"
    return "Neutral"


def _extend_actuals(org: SandboxOrg, sweep: _Sweep, a: int, b: int, category: str, presence_id: str) -> None:
    key = (category, presence_id)
    if sweep.actual_key == key and sweep.actual_end == a:
        sweep.actuals[-1]["endOffsetSeconds"] = b - sweep.origin
    else:
        sweep.actuals.append(
            {
                "actualActivityCategory": category,
                "actualSecondaryPresenceLookupId": org.lookup_id(presence_id),
                "startOffsetSeconds": a - sweep.origin,
                "endOffsetSeconds": b - sweep.origin,
            }
        )
    sweep.actual_key, sweep.actual_end = key, b


def _exception(
    org: SandboxOrg,
    start_offset: int,
    end_offset: int,
    activity: tuple[int, int, str, str, str | None],
    actual: str | None,
    system: str,
    status: str,
    presence_id: str,
    impact: str,
) -> dict:
    from wfm_pipeline.sandbox.org import ACTIVITY_CODE_IDS, wfm_presence

    info: dict = {
        "startOffsetSeconds": start_offset,
        "endOffsetSeconds": end_offset,
        "scheduledActivityCodeId": activity[3],
        "scheduledActivityCategory": activity[2],
        "scheduledSecondaryPresenceLookupIds": [] if activity[4] is None else [org.lookup_id(activity[4])],
    }
    if actual is not None:
        info["actualActivityCodeId"] = ACTIVITY_CODE_IDS[actual]
        info["actualActivityCategory"] = actual
    info["systemPresence"] = wfm_presence(system)
    info["routingStatus"] = status
    info["impact"] = impact
    info["secondaryPresenceLookupId"] = org.lookup_id(presence_id)
    return info


def _day_metrics(day: _Day, origin: int) -> dict:
    return {
        "dayStartOffsetSeconds": day.start - origin,
        "adherenceScheduleSeconds": day.adherence_schedule,
        "conformanceScheduleSeconds": day.conformance_schedule,
        "conformanceActualSeconds": day.conformance_actual,
        "exceptionCount": day.exception_count,
        "exceptionDurationSeconds": day.exception_duration,
        "impactSeconds": day.impact_seconds,
        "scheduleLengthSeconds": day.schedule_length,
        "actualLengthSeconds": day.actual_length,
        "adherencePercentage": percentage(day.adherent, day.adherence_schedule),
        "conformancePercentage": percentage(day.conformance_actual, day.conformance_schedule),
    }
