"""Stitched grid windows equal one contiguous adherence query, row for row.

The sandbox computes every window on its own, as Genesys does (an exception in progress at the window's
start or end is cut there). Here each 7-day grid window of a few night-shift agents is served as the bulk
file the sandbox downloads, parsed by our transforms, stitched and corrected, and compared with ONE
``adherence_user_result`` over the windows' union: ``adherence_exceptions`` and ``adherence_daily`` must be
equal. The union's outer edges cut the contiguous query exactly as they cut the first and last window, so
nothing is left out of the comparison.

Night shifts are the ones with exceptions across local midnights, and only a boundary on such a midnight
stitches anything; the grid is tried at all seven phases so that every such midnight is a boundary once,
and the test asserts how many pieces it stitched (it cannot pass by stitching nothing). The periods hold
the DST changes of both zones: autumn 2024 (Berlin 10-27, Chicago 11-03: 25-hour Sundays, so weeks split)
and spring 2025 (Chicago 03-09, Berlin 03-30: 23-hour days, which fit a window).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from wfm_pipeline.sandbox.errors import dumps
from wfm_pipeline.sandbox.jobs import AdherenceItem, AdherenceJob
from wfm_pipeline.sandbox.jobs import adherence_document as served_document
from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg
from wfm_pipeline.transforms import (
    ManagementUnitInfo,
    adherence_daily_rows,
    adherence_document,
    adherence_exception_parts,
    adherence_exception_rows,
    correct_day_metrics,
    stitch,
)

ZONES = ("America/Chicago", "Europe/Berlin")
# Mondays, four weeks (and a phase) from each -> how many weeks DST splits (a 25-hour day; 23 h fits)
PERIODS = {date(2024, 10, 21): 1, date(2025, 3, 3): 0}
PERIOD_DAYS = 28
AGENTS = 3  # per unit
MAX_WINDOW = timedelta(days=7)
EXCEPTION_KEY = ["management_unit_id", "user_id", "start_time"]
DAY_KEY = ["management_unit_id", "user_id", "local_date"]


def midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def grid_windows(zone: str, first: date, days: int) -> list[tuple[datetime, datetime]]:
    """Blocks of 7 local days from ``first``, each cut into the longest runs of days lasting <= 7 x 24 h."""
    windows = []
    for block in range(0, days, 7):
        cursor, block_end = first + timedelta(days=block), first + timedelta(days=block + 7)
        while cursor < block_end:
            stop = cursor + timedelta(days=1)
            while (
                stop < block_end
                and midnight(stop + timedelta(days=1), zone) - midnight(cursor, zone) <= MAX_WINDOW
            ):
                stop += timedelta(days=1)
            windows.append((midnight(cursor, zone), midnight(stop, zone)))
            cursor = stop
    return windows


def served_file(org: SandboxOrg, unit: ManagementUnitInfo, start: datetime, end: datetime) -> bytes:
    """The bytes the sandbox serves for one item (the unit's agents) of a bulk job over [start, end)."""
    item = AdherenceItem(unit.id, start, end, unit.user_ids, include_exceptions=True, include_actuals=False)
    job = AdherenceJob("job", "client", unit.time_zone, (item,), start, start, start, 0.0)
    return dumps(served_document(org, job, item))


def crossing_midnight(exceptions: pl.DataFrame, zone: str) -> int:
    """How many exceptions run past the local midnight after their start."""
    last_second = (pl.col("end_time") - pl.duration(seconds=1)).dt.convert_time_zone(zone).dt.date()
    return exceptions.filter(last_second != pl.col("local_date")).height


def night_agents(org: SandboxOrg, zone: str, first: date, count: int) -> ManagementUnitInfo:
    """The unit of ``zone`` with its ``count`` agents with the most exceptions across local midnights in the
    five weeks from ``first`` (only night shifts have any: they are the ones a boundary can cut)."""
    mu = next(mu for mu in org.management_units if mu.time_zone == zone)
    start, end = midnight(first, zone), midnight(first + timedelta(days=35), zone)

    def local_day(moment: datetime) -> date:
        return moment.astimezone(ZoneInfo(zone)).date()

    night = [
        user_id
        for user_id in org.agent_ids(mu.id)
        if any(
            local_day(a.start) != local_day(a.end) for a in org.schedule(user_id, start, start + MAX_WINDOW)
        )
    ]
    unit = ManagementUnitInfo(mu.id, zone, tuple(night))
    exceptions = adherence_exception_rows(
        adherence_document(served_file(org, unit, start, end)), {mu.id: unit}, date.min, date.max
    )
    crossings = {
        user_id: crossing_midnight(exceptions.filter(pl.col("user_id") == user_id), zone) for user_id in night
    }
    return ManagementUnitInfo(mu.id, zone, tuple(sorted(night, key=lambda u: -crossings[u])[:count]))


def assert_equal(actual: pl.DataFrame, expected: pl.DataFrame, phase: int) -> None:
    try:
        assert_frame_equal(actual, expected)
    except AssertionError as exc:
        raise AssertionError(f"grid phase {phase}: {exc}") from exc


@pytest.fixture(scope="module")
def org() -> SandboxOrg:
    return SandboxOrg(OrgConfig(seed=7, agents=1000))


def windowed_tables(
    org: SandboxOrg, unit: ManagementUnitInfo, windows: list[tuple[datetime, datetime]]
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(exceptions, daily, pieces stitched) from one file per window, as a loader would make them."""
    units = {unit.id: unit}
    interior, pieces, daily = [], [], []
    for start, end in windows:
        document = adherence_document(served_file(org, unit, start, end))
        parts = adherence_exception_parts(document, units, date.min, date.max)
        interior.append(parts.interior)
        pieces.append(parts.cut_pieces)
        daily.append(adherence_daily_rows(document, units, date.min, date.max))
    stitched = stitch(pl.concat(pieces))
    exceptions = pl.concat([*interior, stitched.exceptions]).sort(EXCEPTION_KEY)
    corrected = correct_day_metrics(pl.concat(daily), stitched.corrections).sort(DAY_KEY)
    return exceptions, corrected, int(stitched.corrections["continuation_pieces"].sum())


@pytest.mark.parametrize("period", PERIODS, ids=str)
@pytest.mark.parametrize("zone", ZONES)
def test_stitched_windows_equal_one_contiguous_query(org: SandboxOrg, zone: str, period: date) -> None:
    unit = night_agents(org, zone, period, AGENTS)
    units = {unit.id: unit}
    stitched_pieces = 0
    for phase in range(7):
        windows = grid_windows(zone, period + timedelta(days=phase), PERIOD_DAYS)
        assert len(windows) == PERIOD_DAYS // 7 + PERIODS[period]
        exceptions, daily, stitched = windowed_tables(org, unit, windows)
        contiguous = adherence_document(served_file(org, unit, windows[0][0], windows[-1][1]))
        expected_exceptions = adherence_exception_rows(contiguous, units, date.min, date.max)
        assert_equal(exceptions, expected_exceptions.sort(EXCEPTION_KEY), phase)
        expected_daily = adherence_daily_rows(contiguous, units, date.min, date.max)
        assert_equal(daily, expected_daily.sort(DAY_KEY), phase)
        stitched_pieces += stitched
    # boundaries cut exceptions in progress at midnight, and the test stitched them
    assert stitched_pieces >= 4, stitched_pieces
