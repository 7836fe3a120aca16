"""Historical adherence of one agent, computed from its schedule and actual presence exactly as
DESIGN.md "Adherence" defines it, shaped as a ``WfmHistoricalAdherenceBulkUserResult`` dict.

Method: an interval sweep. Every schedule, presence and local-day boundary inside the query range cuts
it into elementary segments within which the scheduled activity and the presence hold; each segment
adds its length to the per-day counters and extends or starts an exception / an actuals run. Routing
status changes do not cut: nothing but an exception's ``routingStatus`` (the status at its first
second) depends on them, and they are ten times as frequent as the other boundaries.

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
from typing import Any, Generic, TypeVar

from wfm_pipeline import wire
from wfm_pipeline.sandbox.generator import Span
from wfm_pipeline.sandbox.localdays import ceil_epoch, day_bounds, to_epoch
from wfm_pipeline.sandbox.org import ACTIVITY_CODE_IDS, ActivityTuple, PresenceTuple, SandboxOrg, wfm_presence


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


_Activity = ActivityTuple
_Presence = PresenceTuple
_Routing = Span  # (start, end, routing status)
_SpanT = TypeVar("_SpanT", _Activity, _Presence, _Routing)


class _SpanCursor(Generic[_SpanT]):
    """Walks sorted, non-overlapping spans forward: the span covering each (non-decreasing) moment."""

    def __init__(self, spans: list[_SpanT]) -> None:
        self._spans: list[_SpanT] = spans
        self._index = 0

    def at(self, moment: int) -> _SpanT | None:
        while self._index < len(self._spans) and self._spans[self._index][1] <= moment:
            self._index += 1
        if self._index < len(self._spans) and self._spans[self._index][0] <= moment:
            return self._spans[self._index]
        return None


@dataclass(frozen=True, slots=True)
class _Segment:
    """An elementary interval [start, end) inside which the scheduled activity and the presence hold."""

    start: int
    end: int
    activity: _Activity | None
    system: str  # analytics system presence, OFFLINE when there is no data
    presence_id: str


@dataclass
class _Sweep:
    origin: int
    routing_at: _SpanCursor[_Routing]
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    actuals: list[dict[str, Any]] = field(default_factory=list)
    exception_key: tuple[str, str | None] | None = None
    exception_end: int = -1
    actual_key: tuple[str, str] | None = None
    actual_end: int = -1
    negative_seconds: int = 0
    positive_seconds: int = 0


def adherence_user_result(
    org: SandboxOrg,
    user_id: str,
    start: datetime,
    end: datetime,
    time_zone: str,
    *,
    include_exceptions: bool,
    include_actuals: bool,
) -> dict[str, Any]:
    s0, s1 = to_epoch(start), to_epoch(end)
    # The same spans as org.schedule / presence / routing(user_id, start, end), in epoch seconds.
    query_end = ceil_epoch(end)
    activities = org.schedule_epochs(user_id, s0, query_end)
    presence = org.presence_epochs(user_id, s0, query_end)
    routing = org.routing_epochs(user_id, s0, query_end)
    bounds = day_bounds(s0, s1, time_zone) if s1 > s0 else [s0]
    days = [_Day(b) for b in bounds[:-1]]
    offline_id = next(p.id for p in org.presence_definitions if p.system_presence == "Offline")
    cuts = set(bounds)
    for spans in (activities, presence):
        cuts.update(t for span in spans for t in span[:2] if s0 < t < s1)
    sweep = _Sweep(origin=s0, routing_at=_SpanCursor(routing))
    activity_at, presence_at = _SpanCursor(activities), _SpanCursor(presence)
    day_index = 0
    for a, b in itertools.pairwise(sorted(cuts)):
        while day_index + 1 < len(days) and days[day_index + 1].start <= a:
            day_index += 1
        span = presence_at.at(a)
        segment = _Segment(
            start=a,
            end=b,
            activity=activity_at.at(a),
            system=span[2] if span else "OFFLINE",
            presence_id=span[3] if span else offline_id,
        )
        _add_segment(org, sweep, days[day_index], segment)
    return _user_result(
        user_id, days, sweep, include_exceptions=include_exceptions, include_actuals=include_actuals
    )


def _add_segment(org: SandboxOrg, sweep: _Sweep, day: _Day, segment: _Segment) -> None:
    """Count one segment into its day and extend or start the actuals run and the exception it is in."""
    actual = wire.ACTIVITY_CATEGORY_OF_PRESENCE[segment.system]
    seconds = segment.end - segment.start
    if segment.system != "OFFLINE":
        day.actual_length += seconds
    if segment.system == "ON_QUEUE":
        day.conformance_actual += seconds
    if actual is not None:
        _extend_actuals(org, sweep, segment.start, segment.end, actual, segment.presence_id)
    if segment.activity is None:
        return
    scheduled = segment.activity[2]
    day.schedule_length += seconds
    if scheduled == "OnQueueWork":
        day.conformance_schedule += seconds
    if scheduled == "TimeOff":
        return
    day.adherence_schedule += seconds
    if scheduled == actual:
        day.adherent += seconds
        return
    _extend_exception(org, sweep, day, segment, segment.activity, actual)


def _extend_exception(
    org: SandboxOrg, sweep: _Sweep, day: _Day, segment: _Segment, activity: _Activity, actual: str | None
) -> None:
    scheduled, seconds = activity[2], segment.end - segment.start
    impact = exception_impact(scheduled, actual)
    if sweep.exception_key == (scheduled, actual) and sweep.exception_end == segment.start:
        sweep.exceptions[-1]["endOffsetSeconds"] = segment.end - sweep.origin
    else:
        day.exception_count += 1
        routing = sweep.routing_at.at(segment.start)
        status = routing[2] if routing else "OFF_QUEUE"
        sweep.exceptions.append(_exception(org, sweep.origin, segment, status, activity, actual, impact))
    sweep.exception_key, sweep.exception_end = (scheduled, actual), segment.end
    day.exception_duration += seconds
    if impact == "Negative":
        day.impact_seconds += seconds
        sweep.negative_seconds += seconds
    elif impact == "Positive":
        sweep.positive_seconds += seconds


def _user_result(
    user_id: str, days: list[_Day], sweep: _Sweep, *, include_exceptions: bool, include_actuals: bool
) -> dict[str, Any]:
    """The ``WfmHistoricalAdherenceBulkUserResult``, keys in the order the sandbox has always served."""
    adherent = sum(d.adherent for d in days)
    result: dict[str, Any] = {
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
    result["dayMetrics"] = [_day_metrics(d, sweep.origin) for d in days]
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
    origin: int,
    segment: _Segment,
    status: str,
    activity: _Activity,
    actual: str | None,
    impact: str,
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "startOffsetSeconds": segment.start - origin,
        "endOffsetSeconds": segment.end - origin,
        "scheduledActivityCodeId": activity[3],
        "scheduledActivityCategory": activity[2],
        "scheduledSecondaryPresenceLookupIds": [] if activity[4] is None else [org.lookup_id(activity[4])],
    }
    if actual is not None:
        info["actualActivityCodeId"] = ACTIVITY_CODE_IDS[actual]
        info["actualActivityCategory"] = actual
    info["systemPresence"] = wfm_presence(segment.system)
    info["routingStatus"] = status
    info["impact"] = impact
    info["secondaryPresenceLookupId"] = org.lookup_id(segment.presence_id)
    return info


def _day_metrics(day: _Day, origin: int) -> dict[str, Any]:
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
