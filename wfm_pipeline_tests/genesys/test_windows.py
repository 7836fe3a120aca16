"""Window planning: fixed grids, documented maxima, one job per (window, zone), local midnights, clamping,
and the same window and body for a day whatever the grouping of days into runs."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from wfm_pipeline.genesys import AdherenceExportRequest, ManagementUnit, UserDetailsExportRequest
from wfm_pipeline.genesys._windows import (
    PlannedJob,
    adherence_grid_windows,
    clamp_to_availability,
    plan_adherence_jobs,
    plan_user_details_jobs,
    user_details_body,
)
from wfm_pipeline.timestamps import format_utc, parse_utc

NY = ManagementUnit("mu-ny", "New York", "bu", "America/New_York")
NY2 = ManagementUnit("mu-ny2", "New York 2", "bu", "America/New_York")
LON = ManagementUnit("mu-lon", "London", "bu", "Europe/London")
LATER = datetime(2030, 1, 1, tzinfo=UTC)  # "now" after every day planned here: nothing is left out


def plan(request: AdherenceExportRequest) -> list[PlannedJob]:
    plans, left_out = plan_adherence_jobs(request, LATER)
    assert left_out == ()
    return plans


def hours(first: date, end: date, zone: str) -> float:
    """Elapsed hours of the local days [first, end), with zoneinfo directly (timestamps, since aware
    datetimes sharing a tzinfo subtract as wall clock)."""
    tz = ZoneInfo(zone)
    start_at, end_at = (datetime.combine(day, datetime.min.time(), tz).timestamp() for day in (first, end))
    return (end_at - start_at) / 3600


def bounds(job: PlannedJob) -> tuple[date, date]:
    return job.window_days[0], job.window_days[-1] + timedelta(days=1)


@pytest.mark.parametrize(("exceptions", "max_days"), [(True, 7), (False, 31)])
def test_adherence_windows_use_7_days_with_exceptions_else_31(exceptions: bool, max_days: int) -> None:
    request = AdherenceExportRequest([LON], date(2024, 1, 1), date(2024, 4, 1), include_exceptions=exceptions)
    plans = plan(request)
    assert all(len(p.window_days) <= max_days for p in plans)
    assert plans[0].window_days[0] <= date(2024, 1, 1) < plans[0].window_days[-1] + timedelta(days=1)
    assert plans[-1].window_days[0] < date(2024, 4, 1) <= plans[-1].window_days[-1] + timedelta(days=1)
    assert all(bounds(a)[1] == bounds(b)[0] for a, b in itertools.pairwise(plans))
    # the grid: blocks of max_days from Monday 2000-01-03 (London has no 25-hour day before October)
    assert all((p.window_days[0] - date(2000, 1, 3)).days % max_days == 0 for p in plans)


def test_one_job_per_window_and_time_zone_with_one_item_per_unit() -> None:
    request = AdherenceExportRequest([NY, LON, NY2], date(2024, 3, 5), date(2024, 3, 7))
    plans = plan(request)
    assert len(plans) == 2
    by_zone = {p.time_zone: p for p in plans}
    assert by_zone["America/New_York"].body["timeZone"] == "America/New_York"
    assert sorted(i["managementUnitId"] for i in by_zone["America/New_York"].body["items"]) == [
        "mu-ny",
        "mu-ny2",
    ]
    assert [i["managementUnitId"] for i in by_zone["Europe/London"].body["items"]] == ["mu-lon"]
    item = by_zone["Europe/London"].body["items"][0]
    assert item["includeExceptions"] is True and item["includeActuals"] is True


def test_item_dates_are_local_midnights_in_utc_across_dst() -> None:
    # 2024-03-10 is the US spring-forward day: local midnight is 05:00Z before and 04:00Z after it. Its
    # grid week is Monday 03-04 to Sunday 03-10 (167 h: one window).
    request = AdherenceExportRequest([NY], date(2024, 3, 9), date(2024, 3, 11))
    (job,) = plan(request)
    item = job.body["items"][0]
    assert item["startDate"] == "2024-03-04T05:00:00.000Z"
    assert item["endDate"] == "2024-03-11T04:00:00.000Z"
    # Independent check: the span equals the local wall-clock days minus the lost hour.
    local = ZoneInfo("America/New_York")
    expected = datetime(2024, 3, 11, tzinfo=local) - datetime(2024, 3, 4, tzinfo=local)
    assert parse_utc(item["endDate"]) - parse_utc(item["startDate"]) == expected - timedelta(hours=1)
    assert job.window_start == parse_utc(item["startDate"])
    assert job.core_days == (date(2024, 3, 9), date(2024, 3, 10))


def test_format_and_parse_utc_round_trip_offsets() -> None:
    moment = datetime(2024, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    assert format_utc(moment) == "2024-03-01T08:30:15.123Z"
    assert parse_utc("2024-03-01T10:30:15+02:00") == datetime(2024, 3, 1, 8, 30, 15, tzinfo=UTC)
    assert parse_utc("2024-03-01T08:30:15Z") == datetime(2024, 3, 1, 8, 30, 15, tzinfo=UTC)
    with pytest.raises(ValueError):
        format_utc(datetime(2024, 3, 1))


def test_clamp_keeps_available_part_and_reports_the_rest() -> None:
    start, end = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC)
    available = datetime(2024, 3, 2, 6, tzinfo=UTC)
    kept, left_out = clamp_to_availability(start, end, available)
    assert kept == (start, available)
    assert left_out is not None and (left_out.start, left_out.end) == (available, end)


def test_clamp_everything_available() -> None:
    start, end = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC)
    assert clamp_to_availability(start, end, end + timedelta(days=1)) == ((start, end), None)


def test_clamp_nothing_available() -> None:
    start, end = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 3, tzinfo=UTC)
    kept, left_out = clamp_to_availability(start, end, start - timedelta(hours=1))
    assert kept is None
    assert left_out is not None and (left_out.start, left_out.end) == (start, end)


def test_user_details_body_interval_and_filters() -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    body = user_details_body(start, start + timedelta(days=1), ["u2", "u1"])
    assert body["interval"] == "2024-03-01T00:00:00.000Z/2024-03-02T00:00:00.000Z"
    values = [p["value"] for p in body["userFilters"][0]["predicates"]]
    assert values == ["u1", "u2"]
    assert all(p["dimension"] == "userId" for p in body["userFilters"][0]["predicates"])
    assert "userFilters" not in user_details_body(start, start + timedelta(days=1), None)


# --- the adherence grid --------------------------------------------------------------------------------
def test_a_week_holding_the_25_hour_day_is_its_longest_fitting_prefix_plus_the_rest() -> None:
    # 2024-11-03 (a Sunday): US fall-back, 25 h in New York. Its week Mon 10-28 .. Sun 11-03 lasts 169 h.
    windows = adherence_grid_windows("America/New_York", date(2024, 10, 21), date(2024, 11, 11), 7)
    assert windows == [
        (date(2024, 10, 21), date(2024, 10, 28)),
        (date(2024, 10, 28), date(2024, 11, 3)),
        (date(2024, 11, 3), date(2024, 11, 4)),
        (date(2024, 11, 4), date(2024, 11, 11)),
    ]
    assert [hours(*window, "America/New_York") for window in windows] == [168, 144, 25, 168]


def test_windows_meet_the_request_and_a_context_day_adds_the_neighbour_only_at_window_edges() -> None:
    def windows(first: date, end: date) -> list[tuple[date, date]]:
        request = AdherenceExportRequest([LON], first, end, context_days=1)
        return [bounds(job) for job in plan(request)]

    week = (date(2024, 6, 10), date(2024, 6, 17))  # Monday to Sunday
    before, after = (date(2024, 6, 3), date(2024, 6, 10)), (date(2024, 6, 17), date(2024, 6, 24))
    assert windows(date(2024, 6, 12), date(2024, 6, 14)) == [week]  # mid-week: no neighbour
    assert windows(date(2024, 6, 10), date(2024, 6, 12)) == [before, week]  # starts on a Monday
    assert windows(date(2024, 6, 14), date(2024, 6, 17)) == [week, after]  # ends on a Sunday
    plans = plan(AdherenceExportRequest([LON], date(2024, 6, 10), date(2024, 6, 12), context_days=1))
    assert plans[0].core_days == () and plans[1].core_days == (date(2024, 6, 10), date(2024, 6, 11))
    # a neighbour serves only its day next to the run: it is reused once that day is complete
    assert plans[0].needed_until == datetime(2024, 6, 9, 23, tzinfo=UTC)  # 00:00 BST on 06-10
    assert plans[1].needed_until == datetime(2024, 6, 11, 23, tzinfo=UTC)


TWO_ZONE_UNITS = [NY, LON, NY2]
YEAR = (date(2024, 1, 1), date(2024, 12, 31))  # a Monday to a Tuesday: 366 days, both zones' DST changes


def _per_day(plans: list[PlannedJob]) -> dict[tuple[date, str], tuple[date, date, str]]:
    """For each (core day, zone): its window and the canonical body of its job."""
    found: dict[tuple[date, str], tuple[date, date, str]] = {}
    for job in plans:
        for day in job.core_days:
            assert (day, job.time_zone) not in found, "a day is loaded from one job per zone"
            found[(day, job.time_zone)] = (*bounds(job), repr(sorted(job.body.items())))
    return found


def _random_runs(first: date, last: date, rng: random.Random, longest: int) -> list[tuple[date, date]]:
    runs, cursor = [], first
    while cursor <= last:
        stop = min(last, cursor + timedelta(days=rng.randint(1, longest) - 1))
        runs.append((cursor, stop))
        cursor = stop + timedelta(days=1)
    return runs


def test_any_grouping_of_a_year_into_runs_fetches_each_day_in_the_same_window_and_body() -> None:
    first, last = YEAR
    whole = _per_day(plan(AdherenceExportRequest(TWO_ZONE_UNITS, first, last + timedelta(days=1), 1)))
    zones = {unit.time_zone for unit in TWO_ZONE_UNITS}
    assert set(whole) == {(day, zone) for day in _days(first, last) for zone in zones}
    rng = random.Random(20241103)
    for _ in range(40):
        grouped: dict[tuple[date, str], tuple[date, date, str]] = {}
        for run_first, run_last in _random_runs(first, last, rng, longest=40):
            request = AdherenceExportRequest(TWO_ZONE_UNITS, run_first, run_last + timedelta(days=1), 1)
            grouped.update(_per_day(plan(request)))
        assert grouped == whole


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def test_a_year_costs_one_job_per_grid_week_and_zone_plus_dst_splits_and_neighbours() -> None:
    first, last = YEAR
    days = (last - first).days + 1
    plans = plan(AdherenceExportRequest(TWO_ZONE_UNITS, first, last + timedelta(days=1), context_days=1))
    for zone in ("America/New_York", "Europe/London"):
        mine = [job for job in plans if job.time_zone == zone]
        # 2024-01-01 is a grid Monday: ceil(days / 7) weeks; the fall-back week is split in two (spring
        # forward makes a 167-hour week, which fits); the week before 01-01 is the start's neighbour
        # (12-31 is a Tuesday, no neighbour after).
        assert len(mine) == math.ceil(days / 7) + 1 + 1
        assert [job.core_days for job in mine[:1]] == [()]
        assert all(hours(*bounds(job), zone) <= 7 * 24 for job in mine)
        assert all(len(job.window_days) <= 7 for job in mine)
        assert all(bounds(a)[1] == bounds(b)[0] for a, b in itertools.pairwise(mine))


def test_every_window_fits_seven_times_24_hours_in_every_zone_for_years() -> None:
    zones = ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Apia", "Asia/Kolkata")
    for zone in zones:
        for first_day, end_day in adherence_grid_windows(zone, date(2010, 1, 1), date(2026, 1, 1), 7):
            assert 0 < hours(first_day, end_day, zone) <= 7 * 24, (zone, first_day)
            assert (end_day - first_day).days <= 7


def test_adherence_windows_starting_at_or_after_now_are_left_out() -> None:
    now = datetime(2024, 6, 12, 9, 30, tzinfo=UTC)  # a Wednesday
    request = AdherenceExportRequest([LON], date(2024, 6, 12), date(2024, 6, 26), context_days=1)
    plans, left_out = plan_adherence_jobs(request, now)
    assert [bounds(job) for job in plans] == [(date(2024, 6, 10), date(2024, 6, 17))]
    assert [(gap.start, gap.end) for gap in left_out] == [
        (datetime(2024, 6, 16, 23, tzinfo=UTC), datetime(2024, 6, 23, 23, tzinfo=UTC)),
        (datetime(2024, 6, 23, 23, tzinfo=UTC), datetime(2024, 6, 30, 23, tzinfo=UTC)),
    ]


# --- the user-details grid -------------------------------------------------------------------------------
CELL = timedelta(days=7)


def test_user_details_cells_are_whole_grid_cells_clamped_to_availability() -> None:
    start, end = datetime(2024, 3, 6, 5, tzinfo=UTC), datetime(2024, 3, 13, 4, tzinfo=UTC)
    available = datetime(2024, 3, 12, 6, tzinfo=UTC)
    plans, left_out = plan_user_details_jobs(UserDetailsExportRequest(start, end), available, CELL)
    assert [(job.window_start, job.window_end) for job in plans] == [
        (datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 11, tzinfo=UTC)),  # a Monday 00:00Z cell
        (datetime(2024, 3, 11, tzinfo=UTC), available),
    ]
    assert [job.body["interval"] for job in plans][1] == "2024-03-11T00:00:00.000Z/2024-03-12T06:00:00.000Z"
    assert all(job.complete_until == available for job in plans)
    assert [(gap.start, gap.end) for gap in left_out] == [(available, end)]
    ends_on_a_cell_edge = UserDetailsExportRequest(start, datetime(2024, 3, 11, tzinfo=UTC))
    assert len(plan_user_details_jobs(ends_on_a_cell_edge, available, CELL)[0]) == 1


def test_any_grouping_of_user_details_runs_submits_the_same_cells() -> None:
    first, last = YEAR
    zones = ("America/New_York", "Europe/London")
    available = LATER

    def bodies(run_first: date, run_last: date) -> set[str]:
        start = min(datetime.combine(run_first, datetime.min.time(), ZoneInfo(z)) for z in zones)
        end = max(
            datetime.combine(run_last + timedelta(days=1), datetime.min.time(), ZoneInfo(z)) for z in zones
        )
        request = UserDetailsExportRequest(start.astimezone(UTC), end.astimezone(UTC))
        return {job.body["interval"] for job in plan_user_details_jobs(request, available, CELL)[0]}

    whole = bodies(first, last)
    assert len(whole) == math.ceil(((last - first).days + 1) / 7)  # from a Monday, ending 05:00Z
    rng = random.Random(7)
    for _ in range(20):
        runs = _random_runs(first, last, rng, longest=36)
        assert set().union(*(bodies(*run) for run in runs)) == whole
