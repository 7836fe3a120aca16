"""A status still open at the data-availability instant (served without ``endTime``, the sandbox's
``open_records`` behaviour) ends at that instant in the segment tables, and is replaced by its real end when
the day is extracted again later: no duplicate row, nothing else changed.

The sandbox's watermark is moved with ``PUT /sandbox/limits`` (``availability_lag_seconds``) so that
yesterday is cut in its middle, then later: the two runs see the same data at two instants, without waiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.workspace import Workspace
from wfm_pipeline import warehouse
from wfm_pipeline.sandbox.launcher import SandboxProcess
from wfm_pipeline_tests.pipeline.conftest import DEPARTED_AGENTS, SANDBOX_AGENTS
from wfm_pipeline_tests.pipeline.test_materialize import succeeded
from wfm_pipeline_tests.pipeline.truth import Truth, day_bounds, ts

SEGMENT_TABLES = (
    (warehouse.PRESENCE_SEGMENTS, "primaryPresence"),
    (warehouse.ROUTING_STATUS_SEGMENTS, "routingStatus"),
)
Key = tuple[str, str, datetime]  # (table, user id, the raw record's start)


@pytest.fixture
def sandbox() -> Iterator[SandboxProcess]:
    # Its own sandbox: the test moves the watermark, which the package's shared sandbox must keep.
    with SandboxProcess(profile="fast", agents=SANDBOX_AGENTS, departed_agents=DEPARTED_AGENTS) as process:
        yield process


def _watermark_at(sandbox: SandboxProcess, moment: datetime) -> None:
    lag = (datetime.now(UTC) - moment).total_seconds()
    response = httpx.put(f"{sandbox.base_url}/sandbox/limits", json={"availability_lag_seconds": lag})
    response.raise_for_status()


def _segments(workspace: Workspace) -> dict[Key, list[dict[str, Any]]]:
    """The pieces of each raw record, per table, user and raw start."""
    pieces: dict[Key, list[dict[str, Any]]] = {}
    for spec, _ in SEGMENT_TABLES:
        for values in workspace.table(spec):
            row = dict(zip(spec.content_columns, values, strict=True))
            pieces.setdefault((spec.name, row["user_id"], row["status_start_time"]), []).append(row)
    return pieces


def _truth_ends(truth: Truth, day: date) -> dict[Key, datetime]:
    """The real end of every record of ``day`` (with a day of margin) of the agents in a unit."""
    low = datetime.combine(day - timedelta(days=1), time.min, UTC)
    high = datetime.combine(day + timedelta(days=2), time.min, UTC)
    ends: dict[Key, datetime] = {}
    for user_id, _, _ in truth.agents():
        timeline = truth.timeline(user_id, low, high)
        for spec, kind in SEGMENT_TABLES:
            for record in timeline[kind]:
                ends[(spec.name, user_id, ts(record["startTime"]))] = ts(record["endTime"])
    return ends


def _closed_at(pieces: dict[Key, list[dict[str, Any]]], watermark: datetime) -> set[Key]:
    """The records whose last piece ends at ``watermark``."""
    return {key for key, rows in pieces.items() if max(row["end_time"] for row in rows) == watermark}


def test_open_records_end_at_the_watermark_and_are_replaced_when_the_day_is_extracted_again(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    day = datetime.now(UTC).date() - timedelta(days=1)
    truth = Truth(sandbox.base_url)
    zone_of = {user_id: zone for user_id, _, zone in truth.agents()}
    real_end = _truth_ends(truth, day)
    workspace = Workspace(tmp_path / "open-records", sandbox.base_url)

    _watermark_at(sandbox, datetime.combine(day, time(10), UTC))
    succeeded(workspace.materialize(day.isoformat()))
    first = _segments(workspace)
    first_watermark = max(row["end_time"] for rows in first.values() for row in rows)
    assert abs(first_watermark - datetime.combine(day, time(10), UTC)) < timedelta(minutes=10)
    open_at_first = {key for key in _closed_at(first, first_watermark) if key[1] in zone_of}
    # every agent is in some presence at any instant, so each has one open at the watermark
    assert {user for table, user, _ in open_at_first if table == "presence_segments"} == set(zone_of)
    for key in open_at_first:
        assert real_end[key] > first_watermark, key  # closed at the watermark because it was still open

    _watermark_at(sandbox, datetime.combine(day, time(16), UTC))
    succeeded(workspace.materialize(day.isoformat()))
    second = _segments(workspace)
    second_watermark = max(row["end_time"] for rows in second.values() for row in rows)
    assert second_watermark - first_watermark > timedelta(hours=5)
    assert not _closed_at(second, first_watermark), "a record still ends at the first run's watermark"
    for key in open_at_first:
        _, user_id, _ = key
        day_end = day_bounds(day, zone_of[user_id])[1]
        end = max(row["end_time"] for row in second[key])
        assert end == min(real_end[key], day_end, second_watermark), key
    # what was complete at the first watermark is unchanged, piece for piece
    for key, rows in first.items():
        if key not in open_at_first:
            assert second[key] == rows, key
