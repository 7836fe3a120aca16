"""The adherence loader on hand-made raw files of two consecutive grid windows: an exception that the window
boundary cut is loaded once, whole, on the day it starts; the next window's first day counts it no more;
and each day's rows are the same whether it is loaded alone or with its neighbours."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from wfm_pipeline import warehouse
from wfm_pipeline.loaders import load_adherence
from wfm_pipeline.raw_store import ADHERENCE, DayManifest, RawFileEntry, RawStore
from wfm_pipeline.transforms import ManagementUnitInfo

UNIT = ManagementUnitInfo("mu-1", "UTC", ("u1",))
WEEK_1 = date(2024, 3, 4)  # Monday: grid windows are ISO weeks
WEEK_2 = WEEK_1 + timedelta(days=7)
BOUNDARY = datetime(2024, 3, 11, tzinfo=UTC)  # end of window 1, start of window 2


def _day_metrics(offset_days: int, exception_count: int) -> dict[str, Any]:
    return {
        "dayStartOffsetSeconds": offset_days * 86400,
        "adherencePercentage": 90.0,
        "conformancePercentage": 95.0,
        "adherenceScheduleSeconds": 28800,
        "conformanceScheduleSeconds": 28800,
        "conformanceActualSeconds": 27000,
        "exceptionCount": exception_count,
        "exceptionDurationSeconds": 600 * exception_count,
        "impactSeconds": 0,
        "scheduleLengthSeconds": 28800,
        "actualLengthSeconds": 28000,
    }


def _exception(start: int, end: int) -> dict[str, Any]:
    return {
        "startOffsetSeconds": start,
        "endOffsetSeconds": end,
        "scheduledActivityCategory": "OnQueueWork",
        "actualActivityCategory": "Break",
        "systemPresence": "Break",
        "routingStatus": "OFF_QUEUE",
        "impact": "Negative",
    }


def _window(first: date, counts: list[int], exceptions: list[dict[str, Any]]) -> bytes:
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    document = {
        "startDate": start.isoformat().replace("+00:00", "Z"),
        "endDate": (start + timedelta(days=7)).isoformat().replace("+00:00", "Z"),
        "managementUnitId": UNIT.id,
        "userResults": [
            {
                "userId": "u1",
                "exceptionInfo": exceptions,
                "dayMetrics": [_day_metrics(day, count) for day, count in enumerate(counts)],
            }
        ],
    }
    return json.dumps(document).encode()


WINDOW_SECONDS = 7 * 86400
# window 1: one exception on Tuesday, one from Sunday 23:00 cut at the window end
WINDOW_1 = _window(
    WEEK_1,
    [0, 1, 0, 0, 0, 0, 1],
    [_exception(86400 + 36000, 86400 + 37800), _exception(WINDOW_SECONDS - 3600, WINDOW_SECONDS)],
)
# window 2: the continuation to Monday 00:45 (Genesys counts it on Monday) and one more on Monday noon
WINDOW_2 = _window(WEEK_2, [2, 0, 0, 0, 0, 0, 0], [_exception(0, 2700), _exception(43200, 43800)])


def _store(tmp_path: Path, *, adjacent: bool = True) -> RawStore:
    """The manifests the extractor writes for both windows: a window-edge day lists the neighbouring
    window's file as an adjacent file (unless ``adjacent`` is False)."""
    store = RawStore(tmp_path / "data")
    entries = {}
    for name, data in (("w1", WINDOW_1), ("w2", WINDOW_2)):
        path = store.write_file(store.files_dir(ADHERENCE) / f"{name}.json", data)
        entries[name] = RawFileEntry(store.relative(path), len(data), hashlib.sha256(data).hexdigest(), 1)
    for offset in range(14):
        day = WEEK_1 + timedelta(days=offset)
        own, other = ("w1", "w2") if offset < 7 else ("w2", "w1")
        edge = offset in (6, 7)  # window 1's last day, window 2's first day
        store.write_manifest(
            DayManifest(
                ADHERENCE,
                day,
                (entries[own],),
                (UNIT,),
                adjacent_files=(entries[other],) if edge and adjacent else (),
                source="sandbox",
            )
        )
    return store


def _tables(store: RawStore, first: date, last: date) -> tuple[dict[str, pl.DataFrame], int, Any]:
    load = load_adherence(store, first, last)
    frames: dict[str, list[pl.DataFrame]] = {}
    for spec, frame in load.chunks():
        frames.setdefault(spec.name, []).append(frame)
    tables = {name: pl.concat(parts).sort(list(parts[0].columns)) for name, parts in frames.items()}
    return tables, load.joined_continuations, load.checks


def test_an_exception_cut_at_the_window_boundary_is_loaded_whole_on_its_day(tmp_path: Path) -> None:
    tables, joined, checks = _tables(_store(tmp_path), WEEK_2 - timedelta(days=1), WEEK_2)
    exceptions = tables[warehouse.ADHERENCE_EXCEPTIONS.name]
    assert exceptions.select("local_date", "start_time", "end_time", "duration_seconds").rows() == [
        (date(2024, 3, 10), BOUNDARY - timedelta(hours=1), BOUNDARY + timedelta(minutes=45), 6300),
        (date(2024, 3, 11), BOUNDARY + timedelta(hours=12), BOUNDARY + timedelta(hours=12, minutes=10), 600),
    ]
    daily = tables[warehouse.ADHERENCE_DAILY.name]
    assert dict(daily.select("local_date", "exception_count").rows()) == {
        date(2024, 3, 10): 1,
        date(2024, 3, 11): 1,  # Genesys counted 2: the continuation is no new exception
    }
    assert joined == 1
    # the raw side of the row-count check: 1 + 2 exceptionInfo records, less the joined continuation
    assert checks.raw_exceptions == exceptions.height == 2
    assert checks.raw_day_metrics == daily.height == 2


def test_each_day_loads_the_same_alone_as_in_any_range(tmp_path: Path) -> None:
    store = _store(tmp_path)
    whole, _, _ = _tables(store, WEEK_1, WEEK_2 + timedelta(days=6))
    for first, last in [(date(2024, 3, 10), date(2024, 3, 10)), (date(2024, 3, 11), date(2024, 3, 11))]:
        alone, _, _ = _tables(store, first, last)
        for name, frame in alone.items():
            assert frame.equals(whole[name].filter(pl.col("local_date").is_between(first, last))), name


def test_without_the_adjacent_file_the_pieces_stay_as_genesys_served_them(tmp_path: Path) -> None:
    tables, joined, checks = _tables(_store(tmp_path, adjacent=False), WEEK_2, WEEK_2)
    assert joined == 0
    assert tables[warehouse.ADHERENCE_EXCEPTIONS.name].height == 2 == checks.raw_exceptions
    assert tables[warehouse.ADHERENCE_DAILY.name]["exception_count"].to_list() == [2]
