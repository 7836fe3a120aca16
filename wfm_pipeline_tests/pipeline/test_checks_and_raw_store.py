"""Check functions catch what they claim to (hand-made bad frames), and the raw store refuses files that do
not match their manifest entry."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from wfm_pipeline import quality
from wfm_pipeline.defs import checks
from wfm_pipeline.loaders import load_user_details
from wfm_pipeline.raw_store import ADHERENCE, USER_DETAILS, DayManifest, RawFileEntry, RawFileError, RawStore
from wfm_pipeline.transforms import (
    ROUTING_STATUS,
    ROUTING_STATUS_SEGMENTS_SCHEMA,
    ManagementUnitInfo,
    day_frame,
    membership_frame,
)

DAY = date(2024, 10, 27)  # Europe/Berlin: 25 h
BERLIN = ManagementUnitInfo(id="mu", time_zone="Europe/Berlin", user_ids=("u1",))


def at(hour: int, minute: int = 0, day: int = 27) -> datetime:
    return datetime(2024, 10, day, hour, minute, tzinfo=UTC)


def segments(rows: list[tuple[datetime, datetime]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "user_id": "u1",
                "management_unit_id": "mu",
                "local_date": DAY,
                "routing_status": "IDLE",
                "start_time": start,
                "end_time": end,
                "duration_seconds": (end - start).total_seconds(),
                "status_start_time": start,
            }
            for start, end in rows
        ],
        schema=ROUTING_STATUS_SEGMENTS_SCHEMA,
    )


def test_overlap_check_flags_overlapping_segments_only() -> None:
    assert quality.no_overlaps(segments([(at(8), at(9)), (at(9), at(10))])).passed
    bad = quality.no_overlaps(segments([(at(8), at(9)), (at(8, 59), at(10))]))
    assert not bad.passed and bad.metadata["overlaps"] == 1


def test_day_total_allows_25_hours_on_the_dst_day_but_not_more() -> None:
    days = day_frame([BERLIN], DAY, DAY)  # 2024-10-26T22:00Z .. 2024-10-27T23:00Z
    full = segments([(at(22, day=26), at(23))])
    assert quality.day_totals_within_day_length(full, days).passed
    doubled = segments([(at(22, day=26), at(23)), (at(10), at(11))])
    assert not quality.day_totals_within_day_length(doubled, days).passed


def test_range_and_count_checks() -> None:
    frame = pl.DataFrame({"adherence_percentage": [0.0, 100.0, None]})
    assert quality.values_in_range(frame, "adherence_percentage", 0, 100).passed
    frame = pl.DataFrame({"adherence_percentage": [100.01]})
    assert not quality.values_in_range(frame, "adherence_percentage", 0, 100).passed
    assert not quality.counts_equal(3, 4).passed


def test_occupancy_comparison_flags_a_one_minute_difference() -> None:
    days = day_frame([ManagementUnitInfo(id="mu", time_zone="UTC", user_ids=("u1",))], DAY, DAY)
    row = {
        "user_id": "u1", "management_unit_id": "mu", "local_date": DAY, "grain": "PT30M",
        "interval_start": at(8), "interval_end": at(8, 30), "idle_seconds": 600.0,
        "interacting_seconds": 1200.0, "communicating_seconds": 0.0, "not_responding_seconds": 0.0,
        "off_queue_seconds": 0.0,
        "on_queue_seconds": 1800.0, "occupancy": 2 / 3,
    }  # fmt: skip
    table = pl.DataFrame([row])

    def response(interacting_ms: int) -> dict:
        metrics = [
            {"metric": "tAgentRoutingStatus", "qualifier": "IDLE", "stats": {"sum": 600_000}},
            {"metric": "tAgentRoutingStatus", "qualifier": "INTERACTING", "stats": {"sum": interacting_ms}},
            {"metric": "tSystemPresence", "qualifier": "ON_QUEUE", "stats": {"sum": 1_800_000}},
        ]
        data = [{"interval": "2024-10-27T08:00:00.000Z/2024-10-27T08:30:00.000Z", "metrics": metrics}]
        return {"results": [{"group": {"userId": "u1"}, "data": data}]}

    same = quality.occupancy_matches_aggregates(
        table, [quality.AggregatesSample(("u1",), response(1_200_000), "mu")], days, None
    )
    assert same.passed and same.metadata["intervals_compared"] == 1
    off = quality.occupancy_matches_aggregates(
        table, [quality.AggregatesSample(("u1",), response(1_140_000), "mu")], days, None
    )
    assert not off.passed and off.metadata["mismatched"] == 1


def test_raw_store_quarantines_files_that_do_not_verify(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    path = store.files_dir(ADHERENCE) / "a.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"ok": true}')
    good = RawFileEntry(store.relative(path), 12, hashlib.sha256(b'{"ok": true}').hexdigest(), 0)
    assert store.load_bytes(good, ADHERENCE) == b'{"ok": true}'

    path.write_bytes(b'{"ok": tru')  # truncated after the manifest was written
    with pytest.raises(RawFileError, match="sha256") as caught:
        store.load_bytes(good, ADHERENCE)
    assert caught.value.quarantined_to == tmp_path / "quarantine" / ADHERENCE / "a.json"
    assert caught.value.quarantined_to.exists() and not path.exists()
    with pytest.raises(RawFileError, match="missing"):
        store.load_bytes(good, ADHERENCE)


def test_manifests_round_trip_and_missing_days_are_named(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    manifest = DayManifest(ADHERENCE, DAY, (RawFileEntry("raw/x.json", 1, "ab", 2),), (BERLIN,))
    store.write_manifest(manifest)
    assert store.read_manifest(ADHERENCE, DAY) == manifest
    assert json.loads(store.manifest_path(ADHERENCE, DAY).read_text())["day"] == "2024-10-27"
    with pytest.raises(FileNotFoundError, match="2024-10-28"):
        store.read_manifests(ADHERENCE, [DAY, date(2024, 10, 28)])


def test_failed_blocking_check_rolls_back_the_write(tmp_path: Path) -> None:
    from wfm_pipeline import warehouse
    from wfm_pipeline.defs.assets.tables import write_checked
    from wfm_pipeline.defs.failures import pipeline_errors_fail_the_step
    from wfm_pipeline.defs.resources import WarehouseResource

    def _write(*args):  # type: ignore[no-untyped-def]
        with pipeline_errors_fail_the_step():
            return write_checked(*args)

    def no_overlaps(frame: pl.DataFrame) -> checks.CheckOutcome:
        return checks.outcome(checks.ROUTING_NO_OVERLAP, quality.no_overlaps(frame))

    resource = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    good = segments([(at(8), at(9))])
    frames = [(warehouse.ROUTING_STATUS_SEGMENTS, good)]
    passing = lambda connection: [no_overlaps(good)]  # noqa: E731
    assert _write(resource, frames, DAY, DAY, "sandbox", passing)[0].passed

    overlapping = segments([(at(10), at(12)), (at(11), at(13))])

    def evaluate(connection):  # type: ignore[no-untyped-def]
        stored = warehouse.read_slice(connection, warehouse.ROUTING_STATUS_SEGMENTS, DAY, DAY)
        assert stored.height == 2  # the new rows are visible inside the transaction
        return [no_overlaps(stored)]

    with pytest.raises(dg.Failure, match="no_overlapping_segments"):
        _write(resource, [(warehouse.ROUTING_STATUS_SEGMENTS, overlapping)], DAY, DAY, "sandbox", evaluate)
    with resource.get_connection() as connection:
        kept = warehouse.read_slice(connection, warehouse.ROUTING_STATUS_SEGMENTS, DAY, DAY)
    assert kept.equals(good)


def _record(start: str, end: str | None, status: str) -> dict[str, str]:
    record = {"startTime": f"2024-03-{start}Z", "routingStatus": status}
    if end is not None:
        record["endTime"] = f"2024-03-{end}Z"
    return record


# Two served pages of one day (2024-03-01, unit "mu" in UTC); the comments say what the segment rules do.
PAGES = (
    {
        "userDetails": [
            {
                "userId": "u1",
                "routingStatus": [
                    _record("01T08:00:00.000", "01T09:00:00.000", "IDLE"),  # counted (longest copy below)
                    _record("01T09:00:00.000", "01T09:15:00.000", "INTERACTING"),  # covered by the copy
                    _record("01T09:10:00.000", "01T10:00:00.000", "IDLE"),  # counted from 09:30
                    _record("01T10:00:00.000", "01T10:00:00.000", "IDLE"),  # empty: dropped
                ],
            },
            {"userId": "stranger", "routingStatus": [_record("01T08:00:00.000", "01T09:00:00.000", "IDLE")]},
        ]
    },
    {
        "userDetails": [
            {
                "userId": "u1",
                "routingStatus": [
                    _record("01T08:00:00.000", "01T09:30:00.000", "IDLE"),  # the midnight copy, longer
                    _record("01T23:00:00.000", None, "IDLE"),  # open: counted only with open_until
                    _record("02T08:00:00.000", "02T09:00:00.000", "IDLE"),  # not a requested day
                ],
            }
        ]
    },
)
MARCH_UNIT = ManagementUnitInfo(id="mu", time_zone="UTC", user_ids=("u1",))
MARCH_FIRST = date(2024, 3, 1)


@pytest.mark.parametrize(("open_until", "expected"), [(datetime(2024, 3, 2, 1, tzinfo=UTC), 3), (None, 2)])
def test_raw_segment_sources_counts_what_the_segment_table_should_hold(
    tmp_path: Path, open_until: datetime | None, expected: int
) -> None:
    paths = []
    for index, page in enumerate(PAGES):
        paths.append(tmp_path / f"page-{index}.json")
        paths[-1].write_text(json.dumps(page))
    unit = MARCH_UNIT
    days = day_frame([unit], MARCH_FIRST, MARCH_FIRST)  # 2024-03-01T00:00Z .. 2024-03-02T00:00Z
    count = quality.raw_segment_sources(paths, membership_frame([unit]), days, open_until)[ROUTING_STATUS]
    assert count == expected


def test_user_details_loader_returns_frames_check_inputs_and_metadata(tmp_path: Path) -> None:
    """The loader alone (no Dagster): its recount agrees with the segments it built, so a record our
    parser drops (or the loader skips) shows up as a row-count mismatch."""
    store = RawStore(tmp_path)
    window = ("2024-03-01T00:00:00+00:00", "2024-03-02T00:00:00+00:00")
    entries = []
    for index, page in enumerate(PAGES):
        path = store.files_dir(USER_DETAILS) / f"page-{index}.json"
        data = json.dumps(page).encode()
        store.write_file(path, data)
        entries.append(
            RawFileEntry(store.relative(path), len(data), hashlib.sha256(data).hexdigest(), 1, "job", *window)
        )
    availability = "2024-03-02T01:00:00+00:00"
    store.write_manifest(
        DayManifest(USER_DETAILS, MARCH_FIRST, tuple(entries), (MARCH_UNIT,), availability, source="sandbox")
    )
    load = load_user_details(store, MARCH_FIRST, MARCH_FIRST)
    sources = load.routing_status.select("user_id", "status_start_time", "routing_status").n_unique()
    assert load.checks.raw_routing_sources == sources == 3
    assert load.checks.raw_presence_sources == load.presence.height == 0
    assert load.raw_records["routing_status"] == {
        "records": 8, "open_records": 1, "zero_length_records": 1, "records_of_users_in_no_unit": 1,
    }  # fmt: skip
    window_bounds = (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC))
    assert load.checks.windows == (window_bounds, window_bounds)
    assert load.checks.available_until == datetime(2024, 3, 2, 1, tzinfo=UTC)
    assert load.raw_files == tuple(entry.path for entry in entries) and load.source == "sandbox"


def test_export_windows_must_cover_every_staffed_unit_day_up_to_availability() -> None:
    # Berlin's 2024-10-27 is 2024-10-26T22:00Z .. 2024-10-27T23:00Z (25 h); an unstaffed unit needs nothing
    empty = ManagementUnitInfo(id="empty", time_zone="UTC")
    days = day_frame([BERLIN, empty], DAY, DAY)
    check = checks.USER_DETAILS_DAYS_COVERED
    two_jobs = [(at(22, day=26), at(12)), (at(12), at(23, day=27))]
    assert quality.days_covered(two_jobs, days, [BERLIN, empty], None).passed
    gap = [(at(22, day=26), at(12)), (at(12, 1), at(23, day=27))]  # one minute missing
    missed = checks.outcome(check, quality.days_covered(gap, days, [BERLIN, empty], None))
    assert not missed.passed and missed.metadata["uncovered"].value == ["mu@2024-10-27"]
    # what lies after dataAvailabilityDate could not be exported yet and is not required
    morning = [(at(22, day=26), at(9))]
    assert quality.days_covered(morning, days, [BERLIN], at(9)).passed
    assert not quality.days_covered(morning, days, [BERLIN], at(10)).passed
    assert not quality.days_covered([], days, [BERLIN], None).passed
