"""Window planning: documented maxima, one job per (window, zone), local midnights, clamping."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from wfm_pipeline.genesys import AdherenceExportRequest, ManagementUnit
from wfm_pipeline.genesys._windows import (
    clamp_to_availability,
    plan_adherence_jobs,
    split_interval,
    split_local_days,
    user_details_body,
)
from wfm_pipeline.timestamps import format_utc, parse_utc

NY = ManagementUnit("mu-ny", "New York", "bu", "America/New_York")
NY2 = ManagementUnit("mu-ny2", "New York 2", "bu", "America/New_York")
LON = ManagementUnit("mu-lon", "London", "bu", "Europe/London")


def test_split_local_days_respects_maximum_and_covers_range() -> None:
    windows = split_local_days(date(2024, 3, 1), date(2024, 3, 20), ["Europe/London"], timedelta(days=7))
    assert windows == [
        (date(2024, 3, 1), date(2024, 3, 8)),
        (date(2024, 3, 8), date(2024, 3, 15)),
        (date(2024, 3, 15), date(2024, 3, 20)),
    ]


def test_split_local_days_empty_when_end_not_after_start() -> None:
    assert split_local_days(date(2024, 3, 1), date(2024, 3, 1), ["UTC"], timedelta(days=7)) == []


def test_a_week_with_the_25_hour_day_is_one_day_shorter() -> None:
    # 2024-11-03: US fall-back, 25 h in New York. Seven local days from 2024-10-30 would last 169 h.
    windows = split_local_days(
        date(2024, 10, 30), date(2024, 11, 13), ["America/New_York"], timedelta(days=7)
    )
    assert windows == [
        (date(2024, 10, 30), date(2024, 11, 5)),
        (date(2024, 11, 5), date(2024, 11, 12)),
        (date(2024, 11, 12), date(2024, 11, 13)),
    ]
    zone = ZoneInfo("America/New_York")
    for first, end in windows:  # checked with zoneinfo directly, not with the module's own helper
        # (timestamps: aware datetimes sharing a tzinfo subtract as wall clock)
        start_at, end_at = (
            datetime.combine(day, datetime.min.time(), zone).timestamp() for day in (first, end)
        )
        assert end_at - start_at <= 7 * 86400


def test_adherence_windows_differ_by_zone_only_in_dst_weeks() -> None:
    # London falls back 2024-10-27, New York 2024-11-03: each zone's window is cut where its own 25 h day is.
    request = AdherenceExportRequest([NY, LON], date(2024, 10, 22), date(2024, 11, 5))
    plans = plan_adherence_jobs(request)
    for plan in plans:
        assert plan.window_end - plan.window_start <= timedelta(days=7), plan
        item = plan.body["items"][0]
        assert parse_utc(item["endDate"]) - parse_utc(item["startDate"]) <= timedelta(days=7)
    for zone in ("America/New_York", "Europe/London"):
        mine = [p for p in plans if p.time_zone == zone]
        assert mine[0].first_day == date(2024, 10, 22) and mine[-1].end_day == date(2024, 11, 5)
        assert all(a.end_day == b.first_day for a, b in itertools.pairwise(mine))
    assert [(p.first_day, p.end_day) for p in plans if p.time_zone == "Europe/London"] == [
        (date(2024, 10, 22), date(2024, 10, 28)),
        (date(2024, 10, 28), date(2024, 11, 4)),
        (date(2024, 11, 4), date(2024, 11, 5)),
    ]
    assert [(p.first_day, p.end_day) for p in plans if p.time_zone == "America/New_York"] == [
        (date(2024, 10, 22), date(2024, 10, 29)),
        (date(2024, 10, 29), date(2024, 11, 4)),
        (date(2024, 11, 4), date(2024, 11, 5)),
    ]


@pytest.mark.parametrize(("exceptions", "max_days"), [(True, 7), (False, 31)])
def test_adherence_windows_use_7_days_with_exceptions_else_31(exceptions: bool, max_days: int) -> None:
    request = AdherenceExportRequest([LON], date(2024, 1, 1), date(2024, 4, 1), include_exceptions=exceptions)
    plans = plan_adherence_jobs(request)
    assert all((p.end_day - p.first_day).days <= max_days for p in plans)
    assert plans[0].first_day == date(2024, 1, 1)
    assert plans[-1].end_day == date(2024, 4, 1)
    assert all(a.end_day == b.first_day for a, b in itertools.pairwise(plans))


def test_one_job_per_window_and_time_zone_with_one_item_per_unit() -> None:
    request = AdherenceExportRequest([NY, LON, NY2], date(2024, 3, 1), date(2024, 3, 3))
    plans = plan_adherence_jobs(request)
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
    # 2024-03-10 is the US spring-forward day: local midnight is 05:00Z before and 04:00Z after it.
    request = AdherenceExportRequest([NY], date(2024, 3, 9), date(2024, 3, 12))
    (plan,) = plan_adherence_jobs(request)
    item = plan.body["items"][0]
    assert item["startDate"] == "2024-03-09T05:00:00.000Z"
    assert item["endDate"] == "2024-03-12T04:00:00.000Z"
    # Independent check: the span equals the local wall-clock days minus the lost hour.
    local = ZoneInfo("America/New_York")
    expected = datetime(2024, 3, 12, tzinfo=local) - datetime(2024, 3, 9, tzinfo=local)
    assert parse_utc(item["endDate"]) - parse_utc(item["startDate"]) == expected - timedelta(hours=1)
    assert plan.window_start == parse_utc(item["startDate"])


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


def test_split_interval_max_length() -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    windows = split_interval(start, start + timedelta(days=2, hours=3), timedelta(days=1))
    assert [e - s for s, e in windows] == [timedelta(days=1), timedelta(days=1), timedelta(hours=3)]
    assert windows[-1][1] == start + timedelta(days=2, hours=3)


def test_user_details_body_interval_and_filters() -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    body = user_details_body(start, start + timedelta(days=1), ["u2", "u1"])
    assert body["interval"] == "2024-03-01T00:00:00.000Z/2024-03-02T00:00:00.000Z"
    values = [p["value"] for p in body["userFilters"][0]["predicates"]]
    assert values == ["u1", "u2"]
    assert all(p["dimension"] == "userId" for p in body["userFilters"][0]["predicates"])
    assert "userFilters" not in user_details_body(start, start + timedelta(days=1), None)


# --- context days: core days plus a context day on each side (the pipeline's adherence requests) ---------
ZONES = ("America/Chicago", "Europe/Berlin", "Australia/Sydney")
ZONE_UNITS = [ManagementUnit(f"mu-{i}", zone, "bu", zone) for i, zone in enumerate(ZONES)]
CORE_DAYS = 5  # 7 days with exceptions, minus one context day on each side


def hours(first: date, end: date, zone: str) -> float:
    """Elapsed hours of the local days [first, end) (timestamps, since aware datetimes sharing a tzinfo
    subtract as wall clock)."""
    tz = ZoneInfo(zone)
    start_at, end_at = (datetime.combine(day, datetime.min.time(), tz).timestamp() for day in (first, end))
    return (end_at - start_at) / 3600


def cores(first: date, last: date, units: list[ManagementUnit]) -> list[tuple[date, date]]:
    """(first, last) core day of each window the client plans for the days [first, last], one context day."""
    request = AdherenceExportRequest(units, first, last + timedelta(days=1), context_days=1)
    chunks = dict.fromkeys(plan.core_days for plan in plan_adherence_jobs(request))
    return [(days[0], days[-1]) for days in chunks]


def test_cores_cover_the_run_in_chunks_of_five_days() -> None:
    assert cores(date(2024, 1, 1), date(2024, 1, 12), ZONE_UNITS) == [
        (date(2024, 1, 1), date(2024, 1, 5)),
        (date(2024, 1, 6), date(2024, 1, 10)),
        (date(2024, 1, 11), date(2024, 1, 12)),
    ]


def test_every_window_with_its_context_days_fits_seven_times_24_hours_all_year() -> None:
    first, last = date(2024, 1, 1), date(2024, 12, 31)
    request = AdherenceExportRequest(ZONE_UNITS, first, last + timedelta(days=1), context_days=1)
    plans = plan_adherence_jobs(request)
    chunks = cores(first, last, ZONE_UNITS)
    assert chunks[0][0] == first and chunks[-1][1] == last
    assert all(b[0] - a[1] == timedelta(days=1) for a, b in itertools.pairwise(chunks))
    shortened = []
    for core_first, core_last in chunks:
        days = (core_last - core_first).days + 1
        assert days <= CORE_DAYS
        windows = [p for p in plans if p.core_days[0] == core_first]
        assert sorted(p.time_zone for p in windows) == sorted(ZONES)  # one job per zone, same core days
        for plan in windows:
            assert plan.first_day == core_first - timedelta(days=1)
            assert plan.end_day == core_last + timedelta(days=2)
            assert hours(plan.first_day, plan.end_day, plan.time_zone) <= 7 * 24
        if days < CORE_DAYS and core_last != last:
            shortened.append(core_first)
    # Shorter only where some zone has its 25-hour day (Sydney 2024-04-07, Berlin 2024-10-27, Chicago
    # 2024-11-03), which can touch two windows (one's context day is the next one's first core day).
    assert 1 <= len(shortened) <= 2 * 3
    for core_first in shortened:
        window = (core_first - timedelta(days=1), core_first + timedelta(days=CORE_DAYS + 1))
        assert any(hours(*window, zone) > 7 * 24 for zone in ZONES)


# The pipeline's planning before the client took the context-day rule over (defs/assets/exports.py's
# adherence_cores + adherence_request, then the client's plan_adherence_jobs of that time), kept verbatim
# in substance as the reference: the client's plan must submit exactly these bodies, in this order.
def _reference_span(first: date, end: date, zone: str) -> timedelta:
    def midnight(day: date) -> datetime:
        return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(zone)).astimezone(UTC)

    return midnight(end) - midnight(first)


def _reference_cores(first: date, last: date, zones: list[str]) -> list[tuple[date, date]]:
    context, one_day = timedelta(days=1), timedelta(days=1)

    def fits(core_first: date, core_last: date) -> bool:
        window = (core_first - context, core_last + one_day + context)
        return all(_reference_span(*window, zone) <= timedelta(days=7) for zone in zones)

    chunks: list[tuple[date, date]] = []
    cursor = first
    while cursor <= last:
        stop = cursor
        while stop < last and (stop - cursor).days + 1 < CORE_DAYS and fits(cursor, stop + one_day):
            stop += one_day
        chunks.append((cursor, stop))
        cursor = stop + one_day
    return chunks


def _reference_split_local_days(start: date, end: date, zone: str) -> list[tuple[date, date]]:
    windows: list[tuple[date, date]] = []
    cursor = start
    while cursor < end:
        stop = cursor + timedelta(days=1)
        while stop < end and _reference_span(cursor, stop + timedelta(days=1), zone) <= timedelta(days=7):
            stop += timedelta(days=1)
        windows.append((cursor, stop))
        cursor = stop
    return windows


def _reference_bodies(units: list[ManagementUnit], first: date, last: date) -> list[dict[str, Any]]:
    by_zone: dict[str, list[ManagementUnit]] = {}
    for unit in units:
        by_zone.setdefault(unit.time_zone, []).append(unit)
    bodies: list[dict[str, Any]] = []
    for core_first, core_last in _reference_cores(first, last, sorted(by_zone)):
        start, end = core_first - timedelta(days=1), core_last + timedelta(days=2)
        plans = []
        for zone in sorted(by_zone):
            for window_first, window_end in _reference_split_local_days(start, end, zone):
                window_start = datetime.combine(window_first, datetime.min.time(), tzinfo=ZoneInfo(zone))
                window_stop = datetime.combine(window_end, datetime.min.time(), tzinfo=ZoneInfo(zone))
                items = [
                    {
                        "managementUnitId": unit.id,
                        "startDate": format_utc(window_start),
                        "endDate": format_utc(window_stop),
                        "includeExceptions": True,
                        "includeActuals": True,
                    }
                    for unit in sorted(by_zone[zone], key=lambda u: u.id)
                ]
                body: dict[str, Any] = {"timeZone": zone, "items": items}
                plans.append((window_first, zone, body))
        bodies.extend(body for _, _, body in sorted(plans, key=lambda plan: (plan[0], plan[1])))
    return bodies


TWO_ZONES = [NY, LON, NY2]


@pytest.mark.parametrize(
    ("units", "first", "last"),
    [
        (TWO_ZONES, date(2024, 10, 20), date(2024, 11, 10)),  # London falls back 10-27, New York 11-03
        (TWO_ZONES, date(2024, 3, 5), date(2024, 4, 3)),  # New York springs forward 03-10, London 03-31
        (ZONE_UNITS, date(2024, 3, 20), date(2024, 4, 23)),  # 35 days, Sydney's 25-hour day 04-07
        (ZONE_UNITS, date(2024, 10, 15), date(2024, 11, 18)),  # 35 days over Berlin's and Chicago's
        (ZONE_UNITS, date(2024, 6, 1), date(2024, 6, 1)),  # one day
    ],
)
def test_context_day_plan_submits_the_pipelines_former_bodies(
    units: list[ManagementUnit], first: date, last: date
) -> None:
    request = AdherenceExportRequest(units, first, last + timedelta(days=1), context_days=1)
    assert [plan.body for plan in plan_adherence_jobs(request)] == _reference_bodies(units, first, last)


def test_context_day_plan_matches_the_reference_for_every_short_range_around_dst() -> None:
    for offset in range(0, 30):
        first = date(2024, 10, 15) + timedelta(days=offset)
        for length in (1, 2, 4, 5, 6, 9, 12):
            last = first + timedelta(days=length - 1)
            request = AdherenceExportRequest(TWO_ZONES, first, last + timedelta(days=1), context_days=1)
            expected = _reference_bodies(TWO_ZONES, first, last)
            assert [plan.body for plan in plan_adherence_jobs(request)] == expected, (first, last)


def test_too_many_context_days_leave_no_core_day() -> None:
    with pytest.raises(ValueError, match="no core day"):
        plan_adherence_jobs(AdherenceExportRequest([LON], date(2024, 3, 1), date(2024, 3, 2), context_days=4))
    with pytest.raises(ValueError, match="context_days"):
        AdherenceExportRequest([LON], date(2024, 3, 1), date(2024, 3, 2), context_days=-1)


def test_core_days_are_capped_even_where_a_local_day_lasts_no_time() -> None:
    # Samoa skipped 2011-12-30 (0 h): 6 core days plus context would still fit 7 x 24 h, yet a window is
    # never more than 7 local days (5 core days and their context), as the pipeline always planned.
    apia = ["Pacific/Apia"]
    assert split_local_days(
        date(2011, 12, 26), date(2012, 1, 5), apia, timedelta(days=7), context_days=1
    ) == [
        (date(2011, 12, 26), date(2011, 12, 31)),
        (date(2011, 12, 31), date(2012, 1, 5)),
    ]
