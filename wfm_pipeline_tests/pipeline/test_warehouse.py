"""warehouse.replace_slices: exact slice replacement in one transaction, written chunk by chunk."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from wfm_pipeline import warehouse
from wfm_pipeline.warehouse import ADHERENCE_DAILY, ADHERENCE_EXCEPTIONS, SliceWriteError

D1, D2, D3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)


def daily(day: date, adherence: float, users: tuple[str, ...] = ("u1", "u2")) -> pl.DataFrame:
    rows = [
        {
            "user_id": user,
            "management_unit_id": "mu",
            "local_date": day,
            "day_start": datetime(day.year, day.month, day.day, tzinfo=UTC),
            "adherence_percentage": adherence,
            "conformance_percentage": 100.0,
            **{column: 60 for column in list(ADHERENCE_DAILY.columns)[6:]},
        }
        for user in users
    ]
    return pl.DataFrame(rows, schema=dict(ADHERENCE_DAILY.columns))


def no_exceptions() -> pl.DataFrame:
    return pl.DataFrame(schema=dict(ADHERENCE_EXCEPTIONS.columns))


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "wfm.duckdb"
    with duckdb.connect(str(path)) as con:
        warehouse.replace_slices(
            con,
            [(ADHERENCE_DAILY, pl.concat([daily(D1, 10.0), daily(D2, 20.0), daily(D3, 30.0)]))],
            D1,
            D3,
            tables=[ADHERENCE_DAILY],
            source="sandbox",
        )
    return path


def table(path: Path) -> pl.DataFrame:
    with duckdb.connect(str(path), read_only=True) as con:
        return warehouse.read_slice(con, ADHERENCE_DAILY, date(2000, 1, 1), date(2100, 1, 1))


def test_replacing_a_slice_twice_gives_the_same_rows_and_leaves_other_days(database: Path) -> None:
    with duckdb.connect(str(database)) as con:
        for _ in range(2):
            counts = warehouse.replace_slices(
                con,
                [(ADHERENCE_DAILY, daily(D2, 99.0)), (ADHERENCE_EXCEPTIONS, no_exceptions())],
                D2,
                D2,
                tables=[ADHERENCE_DAILY, ADHERENCE_EXCEPTIONS],
                source="sandbox",
            )
    assert counts == {"adherence_daily": 2, "adherence_exceptions": 0}
    result = table(database)
    assert result.height == 6
    assert result.group_by("local_date").agg(pl.col("adherence_percentage").max()).sort(
        "local_date"
    ).rows() == [
        (D1, 10.0),
        (D2, 99.0),
        (D3, 30.0),
    ]
    assert_frame_equal(result.filter(pl.col("local_date") == D2), daily(D2, 99.0))


def test_a_smaller_new_slice_removes_rows_that_disappeared(database: Path) -> None:
    with duckdb.connect(str(database)) as con:
        warehouse.replace_slices(
            con,
            [(ADHERENCE_DAILY, daily(D2, 50.0, users=("u1",)))],
            D2,
            D2,
            tables=[ADHERENCE_DAILY],
            source="sandbox",
        )
    assert table(database).filter(pl.col("local_date") == D2)["user_id"].to_list() == ["u1"]


def test_count_slice_counts_rows_or_distinct_combinations_of_the_tables_own_columns(database: Path) -> None:
    with duckdb.connect(str(database), read_only=True) as con:
        assert warehouse.count_slice(con, ADHERENCE_DAILY, D1, D2) == 4
        assert warehouse.count_slice(con, ADHERENCE_DAILY, D1, D2, distinct=("user_id",)) == 2
        assert warehouse.count_slice(con, ADHERENCE_DAILY, D1, D3, distinct=("user_id", "local_date")) == 6
        with pytest.raises(ValueError, match="no column"):
            warehouse.count_slice(con, ADHERENCE_DAILY, D1, D2, distinct=("user_id; DROP TABLE x",))


def test_bad_frame_after_delete_rolls_back_every_table(database: Path) -> None:
    before = table(database)
    bad = daily(D2, 99.0).drop("impact_seconds")
    with duckdb.connect(str(database)) as con, pytest.raises(SliceWriteError, match="columns"):
        warehouse.replace_slices(
            con,
            [(ADHERENCE_DAILY, daily(D2, 98.0)), (ADHERENCE_DAILY, bad)],
            D2,
            D2,
            tables=[ADHERENCE_DAILY],
            source="sandbox",
        )
    assert_frame_equal(table(database), before)


def assert_refused(
    database: Path, chunk: warehouse.Chunk, tables: list[warehouse.TableSpec], match: str
) -> None:
    """Writing ``chunk`` into the D2 slice of ``tables`` fails with ``match``, leaving the table as it was."""
    before = table(database)
    with duckdb.connect(str(database)) as con, pytest.raises(SliceWriteError, match=match):
        warehouse.replace_slices(con, [chunk], D2, D2, tables=tables, source="sandbox")
    assert_frame_equal(table(database), before)


def test_rows_outside_the_slice_are_refused(database: Path) -> None:
    assert_refused(database, (ADHERENCE_DAILY, daily(D3, 1.0)), [ADHERENCE_DAILY], "outside the slice")


def test_error_raised_between_delete_and_insert_leaves_slice_intact(database: Path) -> None:
    before = table(database)

    def crash() -> None:
        raise RuntimeError("injected between DELETE and INSERT")

    with duckdb.connect(str(database)) as con, pytest.raises(RuntimeError, match="injected"):
        warehouse.replace_slices(
            con,
            [(ADHERENCE_DAILY, daily(D2, 5.0))],
            D2,
            D2,
            tables=[ADHERENCE_DAILY],
            source="sandbox",
            after_delete=crash,
        )
    assert_frame_equal(table(database), before)


def killed(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (it SIGKILLs itself mid-write) in a fresh interpreter; it must have died by the kill."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == -9, done.stderr
    return done


def test_process_killed_between_delete_and_insert_leaves_slice_intact(database: Path) -> None:
    before = table(database)
    killed(
        f"""
        import os, signal, duckdb
        from wfm_pipeline import warehouse
        from wfm_pipeline_tests.pipeline.test_warehouse import daily, D2
        con = duckdb.connect({str(database)!r})
        warehouse.replace_slices(con, [(warehouse.ADHERENCE_DAILY, daily(D2, 5.0))], D2, D2,
                                 tables=[warehouse.ADHERENCE_DAILY], source="sandbox",
                                 after_delete=lambda: os.kill(os.getpid(), signal.SIGKILL))
        """
    )
    assert_frame_equal(table(database), before)


def one_user_chunks(day: date, adherence: float, users: int) -> Iterator[warehouse.Chunk]:
    """The rows of ``users`` agents on ``day``, one chunk per agent, produced lazily."""
    for index in range(users):
        yield ADHERENCE_DAILY, daily(day, adherence, users=(f"u{index}",))


def test_a_slice_written_in_many_chunks_equals_it_written_in_one(database: Path) -> None:
    with duckdb.connect(str(database)) as con:
        counts = warehouse.replace_slices(
            con, one_user_chunks(D2, 7.0, 5), D2, D2, tables=[ADHERENCE_DAILY], source="sandbox"
        )
    assert counts == {"adherence_daily": 5}
    streamed = table(database)
    with duckdb.connect(str(database)) as con:
        whole = daily(D2, 7.0, users=tuple(f"u{index}" for index in range(5)))
        warehouse.replace_slices(
            con, [(ADHERENCE_DAILY, whole)], D2, D2, tables=[ADHERENCE_DAILY], source="sandbox"
        )
    assert_frame_equal(table(database), streamed)
    assert streamed.filter(pl.col("local_date") == D2).height == 5


def test_a_chunk_of_a_table_whose_slice_was_not_deleted_is_refused(database: Path) -> None:
    assert_refused(
        database, (ADHERENCE_DAILY, daily(D2, 5.0)), [ADHERENCE_EXCEPTIONS], "not one of the tables"
    )


def test_an_error_after_some_chunks_were_inserted_rolls_them_back(database: Path) -> None:
    before = table(database)

    def chunks_then_error() -> Iterator[warehouse.Chunk]:
        yield from one_user_chunks(D2, 5.0, 3)
        raise RuntimeError("injected after 3 chunks")

    with duckdb.connect(str(database)) as con, pytest.raises(RuntimeError, match="injected"):
        warehouse.replace_slices(con, chunks_then_error(), D2, D2, tables=[ADHERENCE_DAILY], source="sandbox")
    assert_frame_equal(table(database), before)


def test_process_killed_after_some_chunks_were_inserted_leaves_slice_intact(database: Path) -> None:
    """SIGKILL once 3 chunks are in the transaction (visible to it: printed), before the 4th."""
    before = table(database)
    done = killed(
        f"""
        import os, signal, duckdb
        from wfm_pipeline import warehouse
        from wfm_pipeline_tests.pipeline.test_warehouse import D2, one_user_chunks
        con = duckdb.connect({str(database)!r})
        def chunks():
            for index, chunk in enumerate(one_user_chunks(D2, 5.0, 5)):
                if index == 3:
                    table = warehouse.ADHERENCE_DAILY.sql_name(con)
                    rows = con.execute(f"SELECT count(*) FROM {{table}} WHERE local_date = ?", [D2])
                    print("rows in the transaction:", rows.fetchone()[0], flush=True)
                    os.kill(os.getpid(), signal.SIGKILL)
                yield chunk
        warehouse.replace_slices(con, chunks(), D2, D2, tables=[warehouse.ADHERENCE_DAILY], source="sandbox")
        """
    )
    assert "rows in the transaction: 3" in done.stdout
    assert_frame_equal(table(database), before)


def test_a_table_steps_scratch_left_by_a_kill_is_removed_once_stale_and_a_fresh_one_is_kept(
    tmp_path: Path,
) -> None:
    scratch = warehouse.Scratch(tmp_path / "scratch")
    stale, fresh = tmp_path / "scratch" / "scratch-killed", tmp_path / "scratch" / "scratch-live"
    for folder in (stale, fresh):
        (folder / "spill").mkdir(parents=True)
        (folder / "scratch.duckdb").write_bytes(b"x")
    old = time.time() - 7 * 3600
    for item in (stale, stale / "spill", stale / "scratch.duckdb", fresh, fresh / "spill"):
        os.utime(item, (old, old))  # the live one's database file was still written a moment ago
    with scratch.database() as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    assert not stale.exists()
    assert fresh.exists()  # another step may be using it
    assert sorted(path.name for path in (tmp_path / "scratch").iterdir()) == ["scratch-live"]


def _presences(seen: datetime, *rows: tuple[str, str, bool]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "organization_presence_id": presence_id,
                "system_presence": "Available",
                "name": name,
                "type": "User",
                "deactivated": deactivated,
                "first_seen": seen,
                "last_seen": seen,
            }
            for presence_id, name, deactivated in rows
        ],
        schema=dict(warehouse.PRESENCE_DEFINITIONS.columns),
    )


def test_dimensions_merge_snapshots_keeping_first_seen_and_vanished_rows(tmp_path: Path) -> None:
    spec = warehouse.PRESENCE_DEFINITIONS
    may, june = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        first = _presences(may, ("p1", "Lunch", False), ("p2", "Gone", False))
        assert warehouse.merge_dimensions(connection, [(spec, first)], source="sandbox") == {spec.name: 2}
        second = _presences(june, ("p1", "Lunch break", True), ("p3", "New", False))  # p2 vanished
        assert warehouse.merge_dimensions(connection, [(spec, second)], source="sandbox") == {spec.name: 3}
        rows = connection.execute(
            "SELECT organization_presence_id, name, deactivated, first_seen, last_seen "
            f"FROM {spec.qualified_name} ORDER BY 1"
        ).fetchall()
    assert rows == [
        ("p1", "Lunch break", True, may, june),  # new values, first seen in May
        ("p2", "Gone", False, may, may),  # kept as last seen: old facts still name it
        ("p3", "New", False, june, june),
    ]


def test_a_snapshot_listing_a_key_twice_changes_nothing(tmp_path: Path) -> None:
    spec = warehouse.PRESENCE_DEFINITIONS
    may = datetime(2024, 5, 1, tzinfo=UTC)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        warehouse.merge_dimensions(
            connection, [(spec, _presences(may, ("p1", "A", False)))], source="sandbox"
        )
        twice = _presences(may, ("p2", "B", False), ("p2", "C", False))
        with pytest.raises(SliceWriteError, match="same organization_presence_id"):
            warehouse.merge_dimensions(connection, [(spec, twice)], source="sandbox")
        assert connection.execute(
            f"SELECT organization_presence_id FROM {spec.qualified_name}"
        ).fetchall() == [("p1",)]


def test_every_column_of_every_table_is_described_and_no_description_is_left_over() -> None:
    from wfm_pipeline.columns import COLUMN_DESCRIPTIONS

    columns = {column for table in warehouse.TABLES for column in table.columns}
    assert columns - set(COLUMN_DESCRIPTIONS) == set()
    assert set(COLUMN_DESCRIPTIONS) - columns == set()


def _exception_row(user: str, unit: str, code: str, secondary: str | None = None) -> dict[str, object]:
    start = datetime(2024, 5, 1, 9, tzinfo=UTC)
    return {
        "user_id": user,
        "management_unit_id": unit,
        "local_date": D1,
        "start_time": start,
        "end_time": start,
        "duration_seconds": 0,
        "scheduled_activity_category": "Break",
        "scheduled_activity_code_id": code,
        "actual_activity_category": None,
        "actual_activity_code_id": None,
        "system_presence": None,
        "routing_status": None,
        "impact": "Negative",
        "secondary_presence_id": secondary,
    }


def _dimension(spec: warehouse.TableSpec, *rows: dict[str, object]) -> warehouse.Chunk:
    seen = datetime(2024, 5, 1, tzinfo=UTC)
    full = [{**dict.fromkeys(spec.columns), **row, "first_seen": seen, "last_seen": seen} for row in rows]
    return spec, pl.DataFrame(full, schema=dict(spec.columns))


def test_ids_that_name_no_dimension_row_fail_the_check_naming_them(tmp_path: Path) -> None:
    """Activity codes are per business unit: a code of another business unit does not resolve."""
    from wfm_pipeline import quality

    dimensions = [
        _dimension(warehouse.AGENTS, {"user_id": "u1", "state": "active"}),
        _dimension(
            warehouse.MANAGEMENT_UNITS,
            {"management_unit_id": "mu-a", "business_unit_id": "bu-a", "time_zone": "UTC"},
            {"management_unit_id": "mu-b", "business_unit_id": "bu-b", "time_zone": "UTC"},
        ),
        _dimension(
            warehouse.ACTIVITY_CODES,
            {"business_unit_id": "bu-a", "activity_code_id": "1", "category": "Break"},
        ),
        _dimension(warehouse.PRESENCE_DEFINITIONS, {"organization_presence_id": "p1", "deactivated": True}),
        _dimension(warehouse.BUSINESS_UNITS, {"business_unit_id": "bu-a"}, {"business_unit_id": "bu-b"}),
    ]
    rows = [
        _exception_row("u1", "mu-a", "1", "p1"),  # resolves (a deactivated presence is still a row)
        _exception_row("u1", "mu-b", "1"),  # code 1 exists only in bu-a
        _exception_row("u2", "mu-a", "1", "p9"),  # unknown user and presence
    ]
    spec = warehouse.ADHERENCE_EXCEPTIONS
    frame = pl.DataFrame(rows, schema=dict(spec.columns))
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        warehouse.merge_dimensions(connection, dimensions, source="sandbox")
        warehouse.replace_slices(connection, [(spec, frame)], D1, D1, tables=[spec], source="sandbox")
        found = quality.ids_resolve_to_dimensions(connection, spec, D1, D1)
        resolved = quality.ids_resolve_to_dimensions(connection, spec, D2, D2)  # an empty slice
    assert not found.passed
    assert found.metadata["orphans"] == {
        "user_id": 1,
        "scheduled_activity_code_id": 1,
        "secondary_presence_id": 1,
    }
    assert found.metadata["examples"] == {
        "user_id": ["u2"],
        "scheduled_activity_code_id": ["1"],
        "secondary_presence_id": ["p9"],
    }
    assert "materialize dimension_tables" in str(found.metadata["fix"])
    assert resolved.passed


def test_a_user_day_under_two_units_fails_the_check(tmp_path: Path) -> None:
    from wfm_pipeline import quality

    spec = warehouse.ADHERENCE_DAILY
    moved = pl.concat(
        [
            daily(D1, 90.0, ("u1",)),
            daily(D1, 80.0, ("u1",)).with_columns(pl.lit("mu-2").alias("management_unit_id")),
        ]
    )
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        warehouse.replace_slices(
            connection, [(spec, daily(D1, 90.0))], D1, D1, tables=[spec], source="sandbox"
        )
        assert quality.one_unit_per_user_day(connection, spec, D1, D1).passed
        warehouse.replace_slices(connection, [(spec, moved)], D1, D1, tables=[spec], source="sandbox")
        twice = quality.one_unit_per_user_day(connection, spec, D1, D1)
    assert not twice.passed and twice.metadata == {"user_days_under_two_units": 1}
