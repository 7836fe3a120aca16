"""Structural invariants of the sandbox org: directory, schedules and actual timelines."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from wfm_pipeline import wire
from wfm_pipeline.sandbox.org import OrgConfig, PresenceSpan, RoutingSpan, SandboxOrg

START = datetime(2024, 2, 26, tzinfo=UTC)
END = datetime(2024, 3, 18, tzinfo=UTC)  # three weeks, across the US DST change of 2024-03-10


@pytest.fixture(scope="module")
def org() -> SandboxOrg:
    return SandboxOrg(OrgConfig(seed=7, agents=120))


@pytest.fixture(scope="module")
def sample(org: SandboxOrg) -> dict[str, tuple[list, list[PresenceSpan], list[RoutingSpan]]]:
    """Every third agent (40 agents, all MUs): schedule, presence, routing over three weeks."""
    return {
        user_id: (
            org.schedule(user_id, START, END),
            org.presence(user_id, START, END),
            org.routing(user_id, START, END),
        )
        for user_id in org.agent_ids()[::3]
    }


def _whole_second_utc(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() == timedelta(0) and moment.microsecond == 0


def test_directory_covers_required_time_zones(org: SandboxOrg) -> None:
    zones = {mu.time_zone for mu in org.management_units}
    january, july = datetime(2024, 1, 15), datetime(2024, 7, 15)
    offsets = {
        z: (january.replace(tzinfo=ZoneInfo(z)).utcoffset(), july.replace(tzinfo=ZoneInfo(z)).utcoffset())
        for z in zones
    }
    west_dst = [z for z, (jan, jul) in offsets.items() if jan < timedelta(0) and jan != jul]
    east = [z for z, (jan, _) in offsets.items() if jan >= timedelta(hours=5)]
    europe_dst = [z for z, (jan, jul) in offsets.items() if z.startswith("Europe/") and jan != jul]
    assert west_dst and east and europe_dst
    assert len(org.business_units) >= 2
    assert {mu.business_unit_id for mu in org.management_units} == {bu.id for bu in org.business_units}
    assert all(mu.start_day_of_week in {"Sunday", "Monday"} for mu in org.management_units)


def test_agents_are_spread_over_all_management_units(org: SandboxOrg) -> None:
    everyone = org.agent_ids()
    assert len(everyone) == len(set(everyone)) == org.config.agents
    union: list[str] = []
    for mu in org.management_units:
        members = org.agent_ids(mu.id)
        assert members, mu.name
        assert all(org.user(a).management_unit_id == mu.id for a in members)  # type: ignore[union-attr]
        union.extend(members)
    assert sorted(union) == sorted(everyone)
    assert org.user("not-a-uuid") is None
    assert org.user("00000000-0000-4000-8000-000000000000") is None
    assert org.schedule("00000000-0000-4000-8000-000000000000", START, END) == []
    assert org.management_unit("nope") is None


def test_presence_definitions(org: SandboxOrg) -> None:
    system = [p for p in org.presence_definitions if p.type == "System"]
    assert sorted(p.system_presence for p in system) == sorted(wire.WFM_SYSTEM_PRESENCES)
    user_defined = {p.system_presence for p in org.presence_definitions if p.type == "User"}
    assert {"Meal", "Meeting"} <= user_defined
    lookup = org.secondary_presence_lookup()
    assert sorted(lookup.values()) == sorted(p.id for p in org.presence_definitions)


def test_schedules_are_sorted_non_overlapping_and_well_formed(sample: dict) -> None:
    categories: Counter[str] = Counter()
    for schedule, _, _ in sample.values():
        for activity in schedule:
            assert _whole_second_utc(activity.start) and _whole_second_utc(activity.end)
            assert activity.start < activity.end
            assert activity.category in wire.ACTIVITY_CATEGORIES
            assert activity.activity_code_id == str(wire.ACTIVITY_CATEGORIES.index(activity.category))
            categories[activity.category] += 1
        for previous, current in itertools.pairwise(schedule):
            assert previous.end <= current.start
    assert {"OnQueueWork", "Break", "Meal", "Meeting", "Training", "OffQueueWork", "TimeOff"} <= set(
        categories
    )


def test_presence_is_contiguous_and_routing_only_while_logged_in(sample: dict) -> None:
    statuses: Counter[str] = Counter()
    for _, presence, routing in sample.values():
        assert presence[0].start <= START and presence[-1].end >= END
        for previous, current in itertools.pairwise(presence):
            assert previous.end == current.start  # contiguous, no overlap
            assert (previous.system_presence, previous.organization_presence_id) != (
                current.system_presence,
                current.organization_presence_id,
            )  # neighbours differ, else they would be one span
        for span in presence:
            assert span.system_presence in wire.ANALYTICS_SYSTEM_PRESENCES
            assert _whole_second_utc(span.start) and span.start < span.end
        for previous, current in itertools.pairwise(routing):
            assert previous.end <= current.start
        # Every routing span lies inside logged-in (non-OFFLINE) presence; non-OFF_QUEUE only while ON_QUEUE.
        pi = 0
        for span in routing:
            assert span.routing_status in wire.ROUTING_STATUSES
            statuses[span.routing_status] += 1
            moment = span.start
            while moment < span.end:
                while presence[pi].end <= moment:
                    pi += 1
                covering = presence[pi]
                assert covering.start <= moment
                assert covering.system_presence != "OFFLINE"
                assert (covering.system_presence == "ON_QUEUE") == (span.routing_status != "OFF_QUEUE")
                moment = min(covering.end, span.end)
        # ... and logged-in time inside the window is fully covered by routing spans.
        logged_in = sum(_clip(p.start, p.end) for p in presence if p.system_presence != "OFFLINE")
        assert sum(_clip(r.start, r.end) for r in routing) == logged_in
    assert set(statuses) == set(wire.ROUTING_STATUSES)


def _clip(start: datetime, end: datetime) -> float:
    return max(0.0, (min(end, END) - max(start, START)).total_seconds())


def test_actuals_deviate_like_people(org: SandboxOrg, sample: dict) -> None:
    late_logins = offline_while_on_queue_work = long_meals = 0
    for schedule, presence, _ in sample.values():
        on_queue_work = [a for a in schedule if a.category == "OnQueueWork"]
        for span in presence:
            if span.system_presence == "MEAL" and span.end - span.start > timedelta(minutes=33):
                long_meals += 1
            if span.system_presence != "OFFLINE":
                continue
            for activity in on_queue_work:
                if span.start < activity.end and activity.start < span.end:
                    offline_while_on_queue_work += 1
                    if span.end < activity.end and span.end > activity.start:
                        late_logins += 1
    assert late_logins > 10
    assert offline_while_on_queue_work > late_logins  # also no-shows, early log-outs, disconnects
    assert long_meals > 3


def test_night_shifts_cross_local_midnight(org: SandboxOrg, sample: dict) -> None:
    crossing = 0
    for user_id, (schedule, presence, _) in sample.items():
        tz = ZoneInfo(org.user(user_id).time_zone)  # type: ignore[arg-type,union-attr]
        for activity in schedule:
            if (
                activity.start.astimezone(tz).date()
                != (activity.end - timedelta(seconds=1)).astimezone(tz).date()
            ):
                crossing += 1
        assert all(p.start.astimezone(tz).date() <= p.end.astimezone(tz).date() for p in presence)
    assert crossing > 0


def test_shift_keeps_local_wall_clock_over_dst_change(org: SandboxOrg) -> None:
    """Chicago springs forward on Sunday 2024-03-10: shift starts stay at the same local time, so the
    UTC start moves one hour earlier, and the local day is 23 h long."""
    chicago = next(mu for mu in org.management_units if mu.time_zone == "America/Chicago")
    tz = ZoneInfo(chicago.time_zone)
    day_start = datetime(2024, 3, 10, tzinfo=tz)
    assert (datetime(2024, 3, 11, tzinfo=tz) - day_start.astimezone(UTC)).total_seconds() == 23 * 3600
    compared = 0
    for user_id in org.agent_ids(chicago.id):
        # Days 2024-03-10 (Sunday, DST) .. 2024-03-16 belong to one roster week of the generator.
        firsts: dict[date, datetime] = {}
        week = org.schedule(
            user_id, datetime(2024, 3, 10, 5, tzinfo=UTC), datetime(2024, 3, 17, 5, tzinfo=UTC)
        )
        previous_end = None
        for activity in week:
            if activity.start != previous_end:  # first activity of a shift
                local = activity.start.astimezone(tz)
                firsts[local.date()] = local
            previous_end = activity.end
        local_times = {(t.hour, t.minute) for d, t in firsts.items() if d >= date(2024, 3, 10)}
        utc_offsets = {t.utcoffset() for d, t in firsts.items() if d >= date(2024, 3, 10)}
        if date(2024, 3, 10) in firsts and len(firsts) >= 3:
            assert len(local_times) == 1, firsts
            assert utc_offsets == {timedelta(hours=-5)}
            compared += 1
    assert compared >= 3


def test_no_data_before_history_start() -> None:
    org = SandboxOrg(OrgConfig(seed=7, agents=30, history_start=date(2023, 1, 1)))
    history_start = datetime(2023, 1, 1, tzinfo=UTC)
    for user_id in org.agent_ids():
        before = org.schedule(user_id, history_start - timedelta(days=10), history_start)
        assert before == []
        presence = org.presence(
            user_id, history_start - timedelta(days=10), history_start + timedelta(days=3)
        )
        assert presence[0].start == history_start and presence[0].system_presence == "OFFLINE"
        assert org.routing(user_id, history_start - timedelta(days=10), history_start) == []
