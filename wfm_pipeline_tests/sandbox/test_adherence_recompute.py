"""adherence_user_result() equals an independent second-by-second recomputation of DESIGN.md's rules
from schedule() and presence() (and routing() for the exception's routing status)."""

from __future__ import annotations

import bisect
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from wfm_pipeline import wire
from wfm_pipeline.sandbox.adherence import adherence_user_result
from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg

WFM_SPELLING = dict(zip(wire.ANALYTICS_SYSTEM_PRESENCES, wire.WFM_SYSTEM_PRESENCES, strict=True))


def _pct(numerator: int, denominator: int) -> float:
    return 100.0 if denominator == 0 else round(100 * numerator / denominator, 2)


def _day_starts(start: datetime, end: datetime, tz_name: str) -> list[datetime]:
    tz = ZoneInfo(tz_name)
    starts = [start]
    day = start.astimezone(tz).date()
    while True:
        day += timedelta(days=1)
        midnight = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
        if midnight >= end:
            return starts
        starts.append(midnight)


def recompute(org: SandboxOrg, user_id: str, start: datetime, end: datetime, tz_name: str) -> dict:
    """Second-by-second implementation of the adherence rules, written from DESIGN.md."""
    n = int((end - start).total_seconds())

    def index(moment: datetime) -> int:
        return min(max(int((moment - start).total_seconds()), 0), n)

    schedule = org.schedule(user_id, start, end)
    presence = org.presence(user_id, start, end)
    routing = org.routing(user_id, start, end)
    scheduled: list[int | None] = [None] * n  # index into schedule
    for k, activity in enumerate(schedule):
        a, b = index(activity.start), index(activity.end)
        assert all(s is None for s in scheduled[a:b]), "overlapping activities"
        scheduled[a:b] = [k] * (b - a)
    actual: list[int | None] = [None] * n  # index into presence
    for k, span in enumerate(presence):
        a, b = index(span.start), index(span.end)
        actual[a:b] = [k] * (b - a)
    day_offsets = [index(d) for d in _day_starts(start, end, tz_name)]
    day_of_second = []
    for d, offset in enumerate(day_offsets):
        next_offset = day_offsets[d + 1] if d + 1 < len(day_offsets) else n
        day_of_second.extend([d] * (next_offset - offset))

    metrics = [Counter() for _ in day_offsets]
    exceptions: list[dict] = []
    actuals: list[dict] = []
    impact_totals: Counter[str] = Counter()
    previous_exception_key = previous_actual_key = None
    for second in range(n):
        day = metrics[day_of_second[second]]
        span = presence[actual[second]] if actual[second] is not None else None
        system = span.system_presence if span else "OFFLINE"
        actual_category = wire.ACTIVITY_CATEGORY_OF_PRESENCE.get(system)
        if system != "OFFLINE":
            day["actualLengthSeconds"] += 1
        if system == "ON_QUEUE":
            day["conformanceActualSeconds"] += 1
        actual_key = (actual_category, span.organization_presence_id) if actual_category and span else None
        if actual_key is not None:
            if actual_key == previous_actual_key:
                actuals[-1]["end"] = second + 1
            else:
                actuals.append({"key": actual_key, "start": second, "end": second + 1})
        previous_actual_key = actual_key

        exception_key = None
        if scheduled[second] is not None:
            activity = schedule[scheduled[second]]
            day["scheduleLengthSeconds"] += 1
            if activity.category == "OnQueueWork":
                day["conformanceScheduleSeconds"] += 1
            if activity.category != "TimeOff":
                day["adherenceScheduleSeconds"] += 1
                if activity.category == actual_category:
                    day["adherent"] += 1
                else:
                    exception_key = (activity.category, actual_category)
                    if activity.category == "OnQueueWork":
                        impact = "Negative"
                    elif actual_category == "OnQueueWork":
                        impact = "Positive"
                    else:
                        impact = "Neutral"
                    impact_totals[impact] += 1
                    day["exceptionDurationSeconds"] += 1
                    if impact == "Negative":
                        day["impactSeconds"] += 1
                    if exception_key == previous_exception_key:
                        exceptions[-1]["end"] = second + 1
                    else:
                        day["exceptionCount"] += 1
                        exceptions.append(
                            {"key": exception_key, "impact": impact, "start": second, "end": second + 1,
                             "activity": activity, "presence": span}
                        )  # fmt: skip
        previous_exception_key = exception_key

    day_metrics = []
    for offset, day in zip(day_offsets, metrics, strict=True):
        day_metrics.append(
            {
                "dayStartOffsetSeconds": offset,
                "adherenceScheduleSeconds": day["adherenceScheduleSeconds"],
                "conformanceScheduleSeconds": day["conformanceScheduleSeconds"],
                "conformanceActualSeconds": day["conformanceActualSeconds"],
                "exceptionCount": day["exceptionCount"],
                "exceptionDurationSeconds": day["exceptionDurationSeconds"],
                "impactSeconds": day["impactSeconds"],
                "scheduleLengthSeconds": day["scheduleLengthSeconds"],
                "actualLengthSeconds": day["actualLengthSeconds"],
                "adherencePercentage": _pct(day["adherent"], day["adherenceScheduleSeconds"]),
                "conformancePercentage": _pct(
                    day["conformanceActualSeconds"], day["conformanceScheduleSeconds"]
                ),
            }
        )
    total = sum(metrics, Counter())
    return {
        "adherencePercentage": _pct(total["adherent"], total["adherenceScheduleSeconds"]),
        "conformancePercentage": _pct(total["conformanceActualSeconds"], total["conformanceScheduleSeconds"]),
        "impact_totals": impact_totals,
        "exceptions": exceptions,
        "actuals": actuals,
        "dayMetrics": day_metrics,
        "routing": routing,
        "start": start,
    }


def _routing_status_at(routing: list, moment: datetime) -> str:
    k = bisect.bisect_right([r.start for r in routing], moment) - 1
    return routing[k].routing_status if k >= 0 and routing[k].end > moment else "OFF_QUEUE"


@pytest.fixture(scope="module")
def org() -> SandboxOrg:
    return SandboxOrg(OrgConfig(seed=7, agents=120))


def _mu_agents(org: SandboxOrg, time_zone: str) -> list[str]:
    mu = next(mu for mu in org.management_units if mu.time_zone == time_zone)
    return org.agent_ids(mu.id)


def _night_agent(org: SandboxOrg) -> tuple[str, str]:
    for mu in org.management_units:
        tz = ZoneInfo(mu.time_zone)
        for user_id in org.agent_ids(mu.id):
            start = datetime(2024, 5, 6, tzinfo=UTC)
            for activity in org.schedule(user_id, start, start + timedelta(days=7)):
                if activity.start.astimezone(tz).date() != activity.end.astimezone(tz).date():
                    return user_id, mu.time_zone
    raise AssertionError("no night shift in the org")


def _cases(org: SandboxOrg) -> list[tuple[str, datetime, datetime, str]]:
    chicago, london, kolkata = "America/Chicago", "Europe/London", "Asia/Kolkata"
    night_user, night_tz = _night_agent(org)

    def local(y, m, d, tz, h=0, mi=0, s=0):
        return datetime(y, m, d, h, mi, s, tzinfo=ZoneInfo(tz)).astimezone(UTC)

    return [
        # a normal week in the agent's own time zone
        (_mu_agents(org, chicago)[1], local(2024, 4, 1, chicago), local(2024, 4, 8, chicago), chicago),
        # spring-forward week (23 h day) and fall-back week (25 h day)
        (_mu_agents(org, chicago)[5], local(2024, 3, 8, chicago), local(2024, 3, 13, chicago), chicago),
        (_mu_agents(org, london)[2], local(2024, 10, 25, london), local(2024, 10, 29, london), london),
        # night shifts across midnight, three days
        (night_user, local(2024, 5, 7, night_tz), local(2024, 5, 10, night_tz), night_tz),
        # days cut on another time zone than the agent's
        (_mu_agents(org, kolkata)[3], local(2024, 6, 3, "UTC"), local(2024, 6, 8, "UTC"), "UTC"),
        # partial first and last day
        (
            _mu_agents(org, london)[7],
            local(2024, 2, 5, london, 13, 17, 5),
            local(2024, 2, 8, london, 9, 2),
            london,
        ),
    ]


def test_adherence_equals_independent_recomputation(org: SandboxOrg) -> None:
    seen_impacts: Counter[str] = Counter()
    offline_exceptions = 0
    lookup = org.secondary_presence_lookup()
    for user_id, start, end, tz_name in _cases(org):
        served = adherence_user_result(
            org, user_id, start, end, tz_name, include_exceptions=True, include_actuals=True
        )
        expected = recompute(org, user_id, start, end, tz_name)
        context = (user_id, start, tz_name)
        assert served["userId"] == user_id
        assert served["dayMetrics"] == expected["dayMetrics"], context
        assert served["adherencePercentage"] == expected["adherencePercentage"], context
        assert served["conformancePercentage"] == expected["conformancePercentage"], context
        negative, positive = expected["impact_totals"]["Negative"], expected["impact_totals"]["Positive"]
        assert served["impact"] == (
            "Negative" if negative > positive else "Positive" if positive > negative else "Neutral"
        )

        assert len(served["exceptionInfo"]) == len(expected["exceptions"]), context
        for info, exception in zip(served["exceptionInfo"], expected["exceptions"], strict=True):
            scheduled_category, actual_category = exception["key"]
            activity, span = exception["activity"], exception["presence"]
            at = start + timedelta(seconds=exception["start"])
            assert (info["startOffsetSeconds"], info["endOffsetSeconds"]) == (
                exception["start"],
                exception["end"],
            )
            assert info["scheduledActivityCategory"] == scheduled_category
            assert info["scheduledActivityCodeId"] == activity.activity_code_id
            assert [lookup[i] for i in info["scheduledSecondaryPresenceLookupIds"]] == (
                [activity.secondary_presence_id] if activity.secondary_presence_id else []
            )
            assert info.get("actualActivityCategory") == actual_category
            assert info["impact"] == exception["impact"]
            assert info["systemPresence"] == WFM_SPELLING[span.system_presence if span else "OFFLINE"]
            if span is not None:
                assert lookup[info["secondaryPresenceLookupId"]] == span.organization_presence_id
            assert info["routingStatus"] == _routing_status_at(expected["routing"], at)
            seen_impacts[info["impact"]] += 1
            offline_exceptions += actual_category is None

        assert [
            (
                a["actualActivityCategory"],
                lookup[a["actualSecondaryPresenceLookupId"]],
                a["startOffsetSeconds"],
                a["endOffsetSeconds"],
            )
            for a in served["actuals"]
        ] == [(*a["key"], a["start"], a["end"]) for a in expected["actuals"]], context
    # The sample is only meaningful if it exercises every kind of exception.
    assert set(seen_impacts) == {"Negative", "Positive", "Neutral"}
    assert offline_exceptions > 0


def test_day_metrics_follow_local_days_of_the_query_time_zone(org: SandboxOrg) -> None:
    chicago = ZoneInfo("America/Chicago")
    start = datetime(2024, 3, 9, tzinfo=chicago).astimezone(UTC)
    end = datetime(2024, 3, 12, tzinfo=chicago).astimezone(UTC)
    result = adherence_user_result(
        org,
        _mu_agents(org, "America/Chicago")[0],
        start,
        end,
        "America/Chicago",
        include_exceptions=False,
        include_actuals=False,
    )
    offsets = [d["dayStartOffsetSeconds"] for d in result["dayMetrics"]]
    assert offsets == [0, 24 * 3600, 24 * 3600 + 23 * 3600]
    assert "exceptionInfo" not in result and "actuals" not in result
