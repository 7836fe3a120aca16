"""materialize() against the sandbox: tables equal an independent computation from the truth routes;
re-materializing is idempotent; a range run equals single-day runs; a killed write or a malformed raw
file leaves the previous slice intact.

Days: 2025-03-08 .. 2025-03-10 include the US spring-forward day (2025-03-09, 23 h in Chicago/Denver).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta

import dagster as dg
import pytest

from wfm_pipeline import warehouse
from wfm_pipeline.raw_store import ADHERENCE
from wfm_pipeline_tests.pipeline.conftest import Workspace
from wfm_pipeline_tests.pipeline.truth import Truth, expected_adherence, expected_occupancy

DAYS = [date(2025, 3, 8), date(2025, 3, 9), date(2025, 3, 10)]
FIRST, LAST = DAYS[0].isoformat(), DAYS[-1].isoformat()
ALL_TABLES = warehouse.TABLES
ADHERENCE_FIELDS = (
    "adherence_percentage",
    "conformance_percentage",
    "adherence_schedule_seconds",
    "conformance_schedule_seconds",
    "conformance_actual_seconds",
    "exception_count",
    "exception_duration_seconds",
    "impact_seconds",
    "schedule_length_seconds",
    "actual_length_seconds",
)
OCCUPANCY_FIELDS = (
    "idle_seconds",
    "interacting_seconds",
    "communicating_seconds",
    "not_responding_seconds",
    "off_queue_seconds",
    "on_queue_seconds",
    "occupancy",
)


def succeeded(result) -> None:  # type: ignore[no-untyped-def]
    failures = [event.message for event in result.all_events if event.is_failure]
    assert result.success, failures
    evaluations = result.get_asset_check_evaluations()
    assert evaluations, "no check ran"
    failed = [(e.asset_key.to_user_string(), e.check_name, e.metadata) for e in evaluations if not e.passed]
    assert not failed


@pytest.fixture(scope="module")
def range_run(tmp_path_factory: pytest.TempPathFactory, small_sandbox) -> Workspace:  # type: ignore[no-untyped-def]
    workspace = Workspace(tmp_path_factory.mktemp("range"), small_sandbox.base_url)
    succeeded(workspace.materialize(FIRST, LAST))
    return workspace


@pytest.fixture(scope="module")
def truth(small_sandbox) -> Truth:  # type: ignore[no-untyped-def]
    return Truth(small_sandbox.base_url)


def assert_adherence_equals_truth(
    workspace: Workspace, truth: Truth, days: list[date]
) -> dict[tuple[str, date], dict]:
    expected = expected_adherence(truth, days)
    columns = list(warehouse.ADHERENCE_DAILY.columns)
    rows = {
        (row[columns.index("user_id")], row[columns.index("local_date")]): dict(
            zip(columns, row, strict=True)
        )
        for row in workspace.table(warehouse.ADHERENCE_DAILY)
    }
    assert set(rows) == set(expected)
    assert len(rows) == len(truth.agents()) * len(days)
    for key, values in expected.items():
        got = {name: rows[key][name] for name in ADHERENCE_FIELDS}
        assert got == pytest.approx(values), key
    return rows


def test_adherence_daily_equals_truth_recomputation(range_run: Workspace, truth: Truth) -> None:
    rows = assert_adherence_equals_truth(range_run, truth, DAYS)
    # the DST day really is 23 h for the US units: their day_start moves by 23 h
    mu_of = {user: zone for user, _, zone in truth.agents()}
    chicago = next(user for user, zone in mu_of.items() if zone == "America/Chicago")
    starts = [rows[(chicago, day)]["day_start"] for day in DAYS]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(starts)] == [86400.0, 82800.0]


def test_agent_occupancy_equals_truth_timeline(range_run: Workspace, truth: Truth) -> None:
    expected = expected_occupancy(truth, DAYS)
    columns = list(warehouse.AGENT_OCCUPANCY.columns)
    rows = {}
    for row in range_run.table(warehouse.AGENT_OCCUPANCY):
        named = dict(zip(columns, row, strict=True))
        rows[(named["user_id"], named["grain"], named["interval_start"])] = named
    assert set(rows) == set(expected)
    assert any(key[1] == "PT30M" for key in rows) and any(key[1] == "P1D" for key in rows)
    for key, values in expected.items():
        got = {name: rows[key][name] for name in OCCUPANCY_FIELDS}
        assert got == pytest.approx(values, abs=1e-6), key


def test_a_week_with_the_autumn_dst_change_loads_and_equals_truth(make_workspace, truth: Truth) -> None:  # type: ignore[no-untyped-def]
    # 2024-11-03 lasts 25 h in Chicago and Denver: a 7-day adherence window around it would be 169 h, which
    # Genesys refuses (400). The run must cut its windows shorter there and still load every day.
    days = [date(2024, 10, 31) + timedelta(days=offset) for offset in range(7)]
    workspace = make_workspace("autumn")
    succeeded(workspace.materialize(days[0].isoformat(), days[-1].isoformat()))
    assert_adherence_equals_truth(workspace, truth, days)


def test_single_day_runs_equal_the_range_run_and_rerun_adds_nothing(
    range_run: Workspace, make_workspace
) -> None:  # type: ignore[no-untyped-def]
    singles = make_workspace("singles")
    for day in DAYS:
        succeeded(singles.materialize(day.isoformat()))
    for spec in ALL_TABLES:
        assert singles.table(spec) == range_run.table(spec), spec.name
    before = {spec.name: singles.table(spec) for spec in ALL_TABLES}
    succeeded(singles.materialize(DAYS[1].isoformat()))
    after = {spec.name: singles.table(spec) for spec in ALL_TABLES}
    assert after == before
    assert all(len(set(map(repr, rows))) == len(rows) for rows in after.values()), "duplicate rows"


def test_run_killed_mid_write_leaves_previous_slice(make_workspace) -> None:  # type: ignore[no-untyped-def]
    workspace = make_workspace("killed")
    succeeded(workspace.materialize(DAYS[0].isoformat()))
    before = {spec.name: workspace.table(spec) for spec in ALL_TABLES}
    assert all(before.values())
    script = textwrap.dedent(
        f"""
        import os, signal, warnings
        warnings.filterwarnings("ignore")
        from pathlib import Path
        from wfm_pipeline import warehouse
        from wfm_pipeline_tests.pipeline.conftest import Workspace
        original = warehouse.replace_slices
        def replace_then_die(connection, frames, first, last, **kwargs):
            # the DELETEs of the slice have run inside the transaction; the process dies before INSERT
            kill = lambda: os.kill(os.getpid(), signal.SIGKILL)
            return original(connection, frames, first, last, **kwargs, after_delete=kill)
        warehouse.replace_slices = replace_then_die
        workspace = Workspace(Path({str(workspace.root)!r}), {workspace.sandbox_url!r})
        workspace.materialize({DAYS[0].isoformat()!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-3000:]
    assert {spec.name: workspace.table(spec) for spec in ALL_TABLES} == before


def test_malformed_raw_file_is_quarantined_and_nothing_is_loaded(make_workspace) -> None:  # type: ignore[no-untyped-def]
    workspace = make_workspace("malformed")
    succeeded(workspace.materialize(DAYS[0].isoformat()))
    before = {spec.name: workspace.table(spec) for spec in ALL_TABLES}
    manifest = json.loads(workspace.store.manifest_path(ADHERENCE, DAYS[0]).read_text())
    raw_path = workspace.data_dir / manifest["files"][0]["path"]
    _rewrite_first_adherence_file(workspace, DAYS[0], lambda document: document.pop("startDate"))

    result = dg.materialize(
        [assets_def for assets_def in workspace.assets() if assets_def.op.name == "adherence_tables"],
        resources=workspace.resources(),
        partition_key=DAYS[0].isoformat(),
        raise_on_error=False,
    )
    assert not result.success
    # the Failure's description travels in the step-failure event data
    messages = " ".join(
        str(event.event_specific_data) for event in result.all_events if event.is_step_failure
    )
    assert str(raw_path) in messages and "startDate" in messages
    assert not raw_path.exists()
    assert (workspace.data_dir / "quarantine" / ADHERENCE / raw_path.name).exists()
    assert {spec.name: workspace.table(spec) for spec in ALL_TABLES} == before
    assert isinstance(before["adherence_daily"][0][3], datetime)


def _rewrite_first_adherence_file(workspace: Workspace, day: date, edit) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """Edit the first raw adherence file of ``day`` as if Genesys had served it so (its checksum kept
    consistent, so only the parse judges it); returns the edited document."""
    manifest_path = workspace.store.manifest_path(ADHERENCE, day)
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["files"][0]
    raw_path = workspace.data_dir / entry["path"]
    document = json.loads(raw_path.read_bytes())
    edit(document)
    raw_path.write_text(json.dumps(document))
    entry["sha256"] = hashlib.sha256(raw_path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    return dict(document)


def _load_adherence_tables(workspace: Workspace, day: date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [assets_def for assets_def in workspace.assets() if assets_def.op.name == "adherence_tables"],
        resources=workspace.resources(),
        partition_key=day.isoformat(),
    )


def test_a_unit_nobody_was_scheduled_in_warns_and_loads_the_rest(make_workspace) -> None:  # type: ignore[no-untyped-def]
    """Genesys may leave out users and days without a schedule: a unit absent on a day is a warning,
    not a failed load."""
    workspace = make_workspace("unscheduled")
    succeeded(workspace.materialize(DAYS[0].isoformat()))

    def unschedule(document: dict) -> None:  # type: ignore[type-arg]
        for user in document["userResults"]:
            user["dayMetrics"], user["exceptionInfo"] = [], []

    unit = _rewrite_first_adherence_file(workspace, DAYS[0], unschedule)["managementUnitId"]
    result = _load_adherence_tables(workspace, DAYS[0])
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    absent = evaluations["every_management_unit_present"]
    assert not absent.passed and absent.severity == dg.AssetCheckSeverity.WARN
    assert f"{unit}@{DAYS[0].isoformat()}" in absent.metadata["missing"].value  # type: ignore[operator]
    assert all(e.passed for name, e in evaluations.items() if name != "every_management_unit_present")
    unit_at = warehouse.ADHERENCE_DAILY.content_columns.index("management_unit_id")
    units = {row[unit_at] for row in workspace.table(warehouse.ADHERENCE_DAILY)}
    assert unit not in units and units


def test_day_metrics_genesys_leaves_out_load_as_null_and_are_counted(make_workspace) -> None:  # type: ignore[no-untyped-def]
    """SDK 269 marks every day metric optional: one left out is NULL in the row, counted in the step's
    metadata, and no check fails; the rest of the row and every other file load as before."""
    workspace = make_workspace("missing-metrics")
    succeeded(workspace.materialize(DAYS[0].isoformat()))

    def leave_out(document: dict) -> None:  # type: ignore[type-arg]
        for user in document["userResults"]:
            for metrics in user.get("dayMetrics") or []:
                del metrics["adherencePercentage"]
                metrics["exceptionCount"] = None

    document = _rewrite_first_adherence_file(workspace, DAYS[0], leave_out)
    result = _load_adherence_tables(workspace, DAYS[0])
    succeeded(result)
    columns = warehouse.ADHERENCE_DAILY.content_columns
    rows = [dict(zip(columns, row, strict=True)) for row in workspace.table(warehouse.ADHERENCE_DAILY)]
    unit = document["managementUnitId"]
    emptied = [row for row in rows if row["management_unit_id"] == unit]
    assert emptied and len(emptied) < len(rows)
    assert all(row["adherence_percentage"] is None and row["exception_count"] is None for row in emptied)
    assert all(row["schedule_length_seconds"] is not None for row in emptied)
    others = [row for row in rows if row["management_unit_id"] != unit]
    assert all(row["adherence_percentage"] is not None for row in others)
    (materialization,) = [
        m
        for m in result.asset_materializations_for_node("adherence_tables")
        if m.asset_key.to_user_string() == "adherence_daily"
    ]
    missing = materialization.metadata["day_metric_values_missing"].value
    assert missing["adherence_percentage"] == missing["exception_count"] == len(emptied)
    assert missing["conformance_percentage"] == 0
