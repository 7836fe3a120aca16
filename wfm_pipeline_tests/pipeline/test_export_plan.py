"""How a run's days become adherence request windows: core days plus a context day on each side."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from wfm_pipeline.defs.assets.exports import ADHERENCE_CORE_DAYS, adherence_cores, adherence_request
from wfm_pipeline.genesys import ManagementUnit

ZONES = ("America/Chicago", "Europe/Berlin", "Australia/Sydney")


def hours(first: date, end: date, zone: str) -> float:
    """Elapsed hours of the local days [first, end) (timestamps, since aware datetimes sharing a tzinfo
    subtract as wall clock)."""
    tz = ZoneInfo(zone)
    start_at, end_at = (datetime.combine(day, datetime.min.time(), tz).timestamp() for day in (first, end))
    return (end_at - start_at) / 3600


def test_cores_cover_the_run_in_chunks_of_five_days() -> None:
    cores = adherence_cores(date(2024, 1, 1), date(2024, 1, 12), ZONES)
    assert cores == [
        (date(2024, 1, 1), date(2024, 1, 5)),
        (date(2024, 1, 6), date(2024, 1, 10)),
        (date(2024, 1, 11), date(2024, 1, 12)),
    ]


def test_every_window_with_its_context_days_fits_seven_times_24_hours_all_year() -> None:
    first, last = date(2024, 1, 1), date(2024, 12, 31)
    cores = adherence_cores(first, last, ZONES)
    assert cores[0][0] == first and cores[-1][1] == last
    assert all(b[0] - a[1] == timedelta(days=1) for a, b in itertools.pairwise(cores))
    units = [ManagementUnit(f"mu-{i}", zone, "bu", zone) for i, zone in enumerate(ZONES)]
    shortened = []
    for core_first, core_last in cores:
        days = (core_last - core_first).days + 1
        assert days <= ADHERENCE_CORE_DAYS
        request = adherence_request(units, core_first, core_last)
        assert request.start == core_first - timedelta(days=1)
        assert request.end == core_last + timedelta(days=2)
        assert all(hours(request.start, request.end, zone) <= 7 * 24 for zone in ZONES)
        if days < ADHERENCE_CORE_DAYS and core_last != last:
            shortened.append(core_first)
    # Shorter only where some zone has its 25-hour day (Sydney 2024-04-07, Berlin 2024-10-27, Chicago
    # 2024-11-03), which can touch two windows (one's context day is the next one's first core day).
    assert 1 <= len(shortened) <= 2 * 3
    for core_first in shortened:
        window = (core_first - timedelta(days=1), core_first + timedelta(days=ADHERENCE_CORE_DAYS + 1))
        assert any(hours(*window, zone) > 7 * 24 for zone in ZONES)
