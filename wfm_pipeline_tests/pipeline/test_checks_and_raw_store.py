"""Check functions catch what they claim to (hand-made bad frames), and the raw store refuses files that do
not match their manifest entry."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from wfm_pipeline import quality, warehouse
from wfm_pipeline.defs import checks
from wfm_pipeline.genesys._files import write_export_file
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


def stored(tmp_path: Path, spec: warehouse.TableSpec, frame: pl.DataFrame) -> duckdb.DuckDBPyConnection:
    """A warehouse holding ``frame`` as the rows of ``spec`` (the SQL checks read what was written)."""
    connection = duckdb.connect(str(tmp_path / f"{uuid.uuid4().hex}.duckdb"))
    warehouse.replace_slices(connection, [(spec, frame)], DAY, DAY, tables=[spec], source="sandbox")
    return connection


def overlaps(tmp_path: Path, rows: list[tuple[datetime, datetime]], user: str = "u1") -> quality.Evaluation:
    frame = segments(rows).with_columns(pl.lit(user).alias("user_id"))
    with stored(tmp_path, warehouse.ROUTING_STATUS_SEGMENTS, frame) as connection:
        return quality.no_overlaps(connection, warehouse.ROUTING_STATUS_SEGMENTS, DAY, DAY)


def test_overlap_check_flags_overlapping_segments_only(tmp_path: Path) -> None:
    assert overlaps(tmp_path, [(at(8), at(9)), (at(9), at(10))]).passed
    bad = overlaps(tmp_path, [(at(8), at(9)), (at(8, 59), at(10))])
    assert not bad.passed and bad.metadata == {"segments": 2, "overlaps": 1}
    # ordered by start then end: a segment inside a longer one overlaps it
    assert not overlaps(tmp_path, [(at(8), at(12)), (at(9), at(10))]).passed
    # segments of two agents at the same time do not overlap
    two = pl.concat(
        [segments([(at(8), at(9))]), segments([(at(8), at(9))]).with_columns(user_id=pl.lit("u2"))]
    )
    with stored(tmp_path, warehouse.ROUTING_STATUS_SEGMENTS, two) as connection:
        assert quality.no_overlaps(connection, warehouse.ROUTING_STATUS_SEGMENTS, DAY, DAY).passed


def day_total(tmp_path: Path, frame: pl.DataFrame, days: pl.DataFrame) -> quality.Evaluation:
    with stored(tmp_path, warehouse.ROUTING_STATUS_SEGMENTS, frame) as connection:
        return quality.day_totals_within_day_length(
            connection, warehouse.ROUTING_STATUS_SEGMENTS, days, DAY, DAY
        )


def test_day_total_allows_25_hours_on_the_dst_day_but_not_more(tmp_path: Path) -> None:
    days = day_frame([BERLIN], DAY, DAY)  # 2024-10-26T22:00Z .. 2024-10-27T23:00Z
    full = day_total(tmp_path, segments([(at(22, day=26), at(23))]), days)
    assert full.passed and full.metadata == {"agent_days": 1, "too_long": 0, "max_seconds": 25 * 3600.0}
    doubled = day_total(tmp_path, segments([(at(22, day=26), at(23)), (at(10), at(11))]), days)
    assert not doubled.passed and doubled.metadata["too_long"] == 1
    # a day the slice did not load has no length: too long by definition
    assert not day_total(tmp_path, segments([(at(8), at(9))]), day_frame([BERLIN], DAY, DAY).clear()).passed


def in_range(tmp_path: Path, values: list[float | None]) -> quality.Evaluation:
    frame = daily_rows(values)
    with stored(tmp_path, warehouse.ADHERENCE_DAILY, frame) as connection:
        return quality.values_in_range(
            connection, warehouse.ADHERENCE_DAILY, "adherence_percentage", 0, 100, DAY, DAY
        )


def daily_rows(values: list[float | None]) -> pl.DataFrame:
    columns = dict(warehouse.ADHERENCE_DAILY.columns)
    rows = [
        {
            **dict.fromkeys(columns),
            "user_id": f"u{index}",
            "management_unit_id": "mu",
            "local_date": DAY,
            "adherence_percentage": value,
        }
        for index, value in enumerate(values)
    ]
    return pl.DataFrame(rows, schema=columns)


def test_range_and_count_checks(tmp_path: Path) -> None:
    ok = in_range(tmp_path, [0.0, 100.0, None])
    assert ok.passed and ok.metadata == {"rows": 3, "out_of_range": 0, "min": 0.0, "max": 100.0}
    high = in_range(tmp_path, [100.01])
    assert not high.passed and high.metadata["out_of_range"] == 1
    assert not in_range(tmp_path, [-0.01, 50.0]).passed
    assert in_range(tmp_path, []).metadata == {"rows": 0, "out_of_range": 0, "min": None, "max": None}
    assert not quality.counts_equal(3, 4).passed


def test_units_present_names_the_unit_days_without_rows(tmp_path: Path) -> None:
    other = ManagementUnitInfo(id="other", time_zone="UTC", user_ids=("u9",))
    unstaffed = ManagementUnitInfo(id="empty", time_zone="UTC")
    with stored(tmp_path, warehouse.ADHERENCE_DAILY, daily_rows([50.0])) as connection:
        evaluation = quality.units_present(
            connection, warehouse.ADHERENCE_DAILY, [BERLIN, other, unstaffed], [DAY], DAY, DAY
        )
    assert not evaluation.passed and evaluation.metadata == {"missing": ["other@2024-10-27"]}


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


def test_a_raw_file_replaced_by_a_later_complete_download_is_refused_but_kept(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    path = store.files_dir(USER_DETAILS) / "page.json"
    path.parent.mkdir(parents=True)
    listed = write_export_file(path, b'{"userDetails": [], "cursor": "job-1"}', 0)
    entry = RawFileEntry(store.relative(path), listed.bytes, listed.sha256, 0)
    write_export_file(path, b'{"userDetails": [], "cursor": "job-2"}', 0)  # another run's download
    with pytest.raises(RawFileError, match="replaced by a later download") as caught:
        store.load_bytes(entry, USER_DETAILS)
    assert caught.value.quarantined_to is None
    assert path.read_bytes() == b'{"userDetails": [], "cursor": "job-2"}'  # the other run's file stays


def test_manifests_round_trip_and_missing_days_are_named(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    manifest = DayManifest(ADHERENCE, DAY, (RawFileEntry("raw/x.json", 1, "ab", 2),), (BERLIN,))
    store.write_manifest(manifest)
    assert store.read_manifest(ADHERENCE, DAY) == manifest
    assert json.loads(store.manifest_path(ADHERENCE, DAY).read_text())["day"] == "2024-10-27"
    with pytest.raises(FileNotFoundError, match="2024-10-28"):
        store.read_manifests(ADHERENCE, [DAY, date(2024, 10, 28)])


def test_failed_blocking_check_rolls_back_the_write(tmp_path: Path) -> None:
    from wfm_pipeline.defs.assets.tables import write_checked
    from wfm_pipeline.defs.failures import pipeline_errors_fail_the_step
    from wfm_pipeline.defs.resources import WarehouseResource

    reported: list[checks.CheckOutcome] = []

    def _write(*args):  # type: ignore[no-untyped-def]
        with pipeline_errors_fail_the_step():
            return write_checked(*args, report=reported.extend)

    table = warehouse.ROUTING_STATUS_SEGMENTS

    def evaluate(connection):  # type: ignore[no-untyped-def]
        evaluation = quality.no_overlaps(connection, table, DAY, DAY)  # the new rows, inside the transaction
        return [checks.outcome(checks.ROUTING_NO_OVERLAP, evaluation)]

    resource = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    good = segments([(at(8), at(9))])
    outcomes, written = _write(resource, [table], [(table, good)], DAY, DAY, "sandbox", evaluate)
    assert outcomes[0].passed
    assert written.per_day == {table.name: {DAY: 1}} and written.totals == {table.name: 1}

    overlapping = [segments([(at(10), at(12))]), segments([(at(11), at(13))])]  # two chunks
    with pytest.raises(dg.Failure, match="no_overlapping_segments"):
        _write(resource, [table], [(table, chunk) for chunk in overlapping], DAY, DAY, "sandbox", evaluate)
    assert [o.passed for o in reported] == [True, False]  # the failure is recorded before the rollback
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
    for rows_per_bucket in (1, 1_000):  # a bucket per user, or one for all
        scratch = warehouse.Scratch(tmp_path / "scratch", rows_per_bucket=rows_per_bucket)
        counts = quality.raw_segment_sources(paths, membership_frame([unit]), days, open_until, scratch)
        assert counts[ROUTING_STATUS] == expected
    assert not any((tmp_path / "scratch").iterdir())  # scratch databases are removed


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
    with pytest.raises(RuntimeError, match="consume them first"):
        load.checks  # noqa: B018 (the check inputs are counted while the chunks are produced)
    chunks = list(load.chunks())
    assert [spec for spec, _ in chunks] == list(load.tables)
    routing, presence = (frame for spec, frame in chunks if spec.name.endswith("segments"))
    sources = routing.select("user_id", "status_start_time", "routing_status").n_unique()
    assert load.checks.raw_routing_sources == sources == 3
    assert load.checks.raw_presence_sources == presence.height == 0
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
