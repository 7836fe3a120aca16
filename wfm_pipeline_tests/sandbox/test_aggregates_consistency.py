"""user_aggregates() sums equal the clipped durations of the routing() / presence() timelines, in
buckets aligned to local midnights of the query time zone."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from wfm_pipeline.sandbox.aggregates import user_aggregates
from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg

METRICS = ("tAgentRoutingStatus", "tSystemPresence", "tOrganizationPresence")


@pytest.fixture(scope="module")
def org() -> SandboxOrg:
    return SandboxOrg(OrgConfig(seed=7, agents=60))


def _parse_interval(interval: str) -> tuple[datetime, datetime]:
    start, end = interval.split("/")
    assert start.endswith(".000Z") and end.endswith(".000Z")
    return datetime.fromisoformat(start), datetime.fromisoformat(end)


def _expected(
    org: SandboxOrg, user_id: str, a: datetime, b: datetime
) -> dict[tuple[str, str], tuple[int, int]]:
    """(metric, qualifier) -> (milliseconds clipped to [a, b), number of spans overlapping it)."""
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    items = [("tAgentRoutingStatus", r.start, r.end, r.routing_status) for r in org.routing(user_id, a, b)]
    for p in org.presence(user_id, a, b):
        items.append(("tSystemPresence", p.start, p.end, p.system_presence))
        items.append(("tOrganizationPresence", p.start, p.end, p.organization_presence_id))
    for metric, start, end, qualifier in items:
        overlap = (min(end, b) - max(start, a)).total_seconds()
        assert overlap > 0  # the truth routes only return overlapping spans
        totals[(metric, qualifier)][0] += int(overlap * 1000)
        totals[(metric, qualifier)][1] += 1
    return {key: (ms, count) for key, (ms, count) in totals.items()}


def _served(bucket: dict) -> dict[tuple[str, str], tuple[int, int]]:
    served = {}
    for entry in bucket["metrics"]:
        key = (entry["metric"], entry["qualifier"])
        assert key not in served
        served[key] = (entry["stats"]["sum"], entry["stats"]["count"])
    return served


@pytest.mark.parametrize(
    ("time_zone", "granularity", "minute_grid"),
    [
        ("America/Chicago", timedelta(minutes=30), 30),
        ("Asia/Kolkata", timedelta(minutes=15), 15),  # +05:30: local grid differs from the UTC grid
        ("Europe/London", timedelta(hours=1), 60),
        ("America/Chicago", timedelta(days=1), None),
        ("Australia/Sydney", None, None),
    ],
)
def test_buckets_equal_clipped_timeline_durations(
    org: SandboxOrg, time_zone: str, granularity: timedelta | None, minute_grid: int | None
) -> None:
    tz = ZoneInfo(time_zone)
    start = datetime(2024, 3, 8, tzinfo=tz).astimezone(UTC)  # across the US DST change
    end = datetime(2024, 3, 12, tzinfo=tz).astimezone(UTC)
    for user_id in org.agent_ids()[::9]:
        data = user_aggregates(org, user_id, start, end, granularity, time_zone, METRICS)
        assert data
        covered = timedelta(0)
        previous_end = start
        for bucket in data:
            a, b = _parse_interval(bucket["interval"])
            assert previous_end <= a < b <= end
            if granularity is not None and b != end:
                local_end = b.astimezone(tz)
                if minute_grid is not None:
                    assert (
                        local_end.hour * 60 + local_end.minute
                    ) % minute_grid == 0 and local_end.second == 0
                else:
                    assert (local_end.hour, local_end.minute) == (0, 0)
            assert _served(bucket) == _expected(org, user_id, a, b), (user_id, bucket["interval"])
            covered += b - a
            previous_end = b
        # Presence is explicit (OFFLINE included), so no bucket is empty and together they cover the range.
        assert covered == end - start


def test_daily_buckets_are_local_days_with_dst(org: SandboxOrg) -> None:
    tz = ZoneInfo("America/Chicago")
    start = datetime(2024, 3, 9, tzinfo=tz).astimezone(UTC)
    end = datetime(2024, 3, 12, tzinfo=tz).astimezone(UTC)
    data = user_aggregates(org, org.agent_ids()[0], start, end, timedelta(days=1), "America/Chicago", METRICS)
    lengths = [(b - a).total_seconds() / 3600 for a, b in (_parse_interval(d["interval"]) for d in data)]
    assert lengths == [24, 23, 24]


def test_metric_selection_and_totals(org: SandboxOrg) -> None:
    user_id = org.agent_ids()[4]
    start = datetime(2024, 7, 1, tzinfo=UTC)
    end = start + timedelta(days=2)
    data = user_aggregates(org, user_id, start, end, timedelta(hours=1), "UTC", ["tAgentRoutingStatus"])
    assert {e["metric"] for bucket in data for e in bucket["metrics"]} == {"tAgentRoutingStatus"}
    per_status: Counter[str] = Counter()
    for bucket in data:
        for entry in bucket["metrics"]:
            per_status[entry["qualifier"]] += entry["stats"]["sum"]
    expected: Counter[str] = Counter()
    for span in org.routing(user_id, start, end):
        expected[span.routing_status] += int(
            (min(span.end, end) - max(span.start, start)).total_seconds() * 1000
        )
    assert per_status == expected and expected["INTERACTING"] > 0
    # Hours with no routing (agent offline) are omitted when only routing is requested.
    assert len(data) < 48
