"""Streamed table steps against the sandbox: a load cut into many chunks (a bucket of agents each) writes
exactly the rows of a one-chunk load (the transforms run on everything at once, as before streaming) and
of the truth recomputation; a run killed after some chunks were INSERTed leaves the previous slice.

Days: 2025-03-08 .. 2025-03-10, with the US spring-forward day; the sandbox's six units span five zones.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from harness.workspace import WAREHOUSE_MAX, WAREHOUSE_MIN, Workspace
from wfm_pipeline import warehouse
from wfm_pipeline.defs import checks
from wfm_pipeline.loaders import load_directory, load_user_details
from wfm_pipeline.sandbox.launcher import SandboxProcess
from wfm_pipeline_tests.pipeline.test_materialize import DAYS, FIRST, LAST, OCCUPANCY_FIELDS, succeeded
from wfm_pipeline_tests.pipeline.truth import Truth, expected_occupancy

USER_DETAILS_TABLES = (
    warehouse.ROUTING_STATUS_SEGMENTS,
    warehouse.PRESENCE_SEGMENTS,
    warehouse.AGENT_OCCUPANCY,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, small_sandbox: SandboxProcess) -> Workspace:
    workspace = Workspace(tmp_path_factory.mktemp("streamed"), small_sandbox.base_url)
    succeeded(workspace.materialize(FIRST, LAST))
    return workspace


def load_user_details_into(workspace: Workspace, database: Path, rows_per_bucket: int) -> list[str]:
    """The user-details slice of DAYS written to ``database`` with the checks in the transaction (every
    blocking one must pass); returns the table of each chunk, in order."""
    scratch = warehouse.Scratch(workspace.root / "scratch", rows_per_bucket=rows_per_bucket)
    load = load_user_details(workspace.store, DAYS[0], DAYS[-1], scratch)
    written: list[str] = []

    def counted() -> Iterator[warehouse.Chunk]:
        for spec, frame in load.chunks():
            written.append(spec.name)
            yield spec, frame

    with duckdb.connect(str(database)) as connection:
        # the ids of the facts must resolve: the dimensions of the same export first
        directory = load_directory(workspace.store)
        warehouse.merge_dimensions(connection, directory.frames, source=directory.source)

        def before_commit() -> None:
            outcomes = checks.user_details_outcomes(connection, load.checks, DAYS[0], DAYS[-1])
            checks.raise_on_blocking_failures(outcomes, DAYS[0], DAYS[-1])

        warehouse.replace_slices(
            connection,
            counted(),
            DAYS[0],
            DAYS[-1],
            tables=load.tables,
            source=load.source,
            before_commit=before_commit,
        )
    return written


def rows(database: Path, spec: warehouse.TableSpec) -> list[tuple[object, ...]]:
    """As ``Workspace.table``: the content columns, sorted."""
    with duckdb.connect(str(database), read_only=True) as connection:
        frame = warehouse.read_slice(connection, spec, WAREHOUSE_MIN, WAREHOUSE_MAX).select(
            spec.content_columns
        )
    return frame.sort(frame.columns, nulls_last=True).rows()


def test_a_load_in_many_chunks_equals_a_one_chunk_load_and_the_truth(
    exported: Workspace, tmp_path: Path, small_sandbox: SandboxProcess
) -> None:
    many = load_user_details_into(exported, tmp_path / "many.duckdb", rows_per_bucket=40)
    one = load_user_details_into(exported, tmp_path / "one.duckdb", rows_per_bucket=10**9)
    # one bucket: a chunk per table, then the membership of each day
    membership = warehouse.AGENT_MANAGEMENT_UNIT_DAYS.name
    assert one == [spec.name for spec in USER_DETAILS_TABLES] + [membership] * len(DAYS)
    assert len(many) >= 5 * len(one), many  # many buckets of agents, each a chunk per table
    for spec in USER_DETAILS_TABLES:
        streamed = rows(tmp_path / "many.duckdb", spec)
        assert streamed, spec.name
        assert streamed == rows(tmp_path / "one.duckdb", spec), spec.name
        assert streamed == exported.table(spec), spec.name  # the table step's own (default) chunks
    expected = expected_occupancy(Truth(small_sandbox.base_url), DAYS)
    columns = list(warehouse.AGENT_OCCUPANCY.columns)
    got = {}
    for row in rows(tmp_path / "many.duckdb", warehouse.AGENT_OCCUPANCY):
        named = dict(zip(columns, row, strict=True))
        got[(named["user_id"], named["grain"], named["interval_start"])] = named
    assert set(got) == set(expected)
    for key, values in expected.items():
        assert {name: got[key][name] for name in OCCUPANCY_FIELDS} == pytest.approx(values, abs=1e-6), key


def test_run_killed_after_some_chunks_were_inserted_leaves_previous_slice(exported: Workspace) -> None:
    before = {spec.name: exported.table(spec) for spec in warehouse.FACTS}
    assert all(before.values())
    script = textwrap.dedent(
        f"""
        import os, signal, warnings
        warnings.filterwarnings("ignore")
        from pathlib import Path
        from harness.workspace import Workspace
        from wfm_pipeline import warehouse
        original = warehouse.replace_slices
        def replace_then_die(connection, chunks, first, last, **kwargs):
            def die_before_the_third():
                for index, chunk in enumerate(chunks):
                    if index == 2 and warehouse.ROUTING_STATUS_SEGMENTS in kwargs["tables"]:
                        # two chunks are in the transaction (the first bucket's segments): die
                        row = connection.execute(
                            f"SELECT count(*) FROM {{warehouse.ROUTING_STATUS_SEGMENTS.sql_name(connection)}}"
                        ).fetchone()
                        print("routing rows in the transaction:", row[0], flush=True)
                        os.kill(os.getpid(), signal.SIGKILL)
                    yield chunk
            return original(connection, die_before_the_third(), first, last, **kwargs)
        warehouse.replace_slices = replace_then_die
        workspace = Workspace(Path({str(exported.root)!r}), {exported.sandbox_url!r})
        workspace.materialize({FIRST!r}, {LAST!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-3000:]
    inserted = int(done.stdout.split("routing rows in the transaction:")[1].split()[0])
    assert 0 < inserted <= len(before[warehouse.ROUTING_STATUS_SEGMENTS.name])
    assert {spec.name: exported.table(spec) for spec in warehouse.FACTS} == before
