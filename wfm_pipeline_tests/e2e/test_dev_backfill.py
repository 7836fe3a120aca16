"""End to end: the real `wfm-pipeline dev` (what `make run` starts) and a 60-day backfill launched through
GraphQL exactly as the UI's Materialize -> "Launch backfill" does; then tables, limits, a clean stop, and a
restart that keeps the history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from harness.devstack import ASSETS_QUERY, DevStack, step_intervals

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BACKFILL_START = date(2025, 1, 6)
BACKFILL_DAYS = 60

AUTOMATION_QUERY = """
{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name
    schedules { name scheduleState { status } }
    sensors { name sensorState { status } } } } } }
"""
RUNS_OF_BACKFILL = """
query RunsOfBackfill($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) { ... on Runs { results { runId } } }
}
"""
PARTITION_STATS = """
query PartitionStats($path: [String!]!) {
  assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode { partitionStats { numMaterialized } } }
}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    with DevStack(root=tmp_path_factory.mktemp("devstack")).running() as dev:
        yield dev


def partition_keys() -> list[str]:
    return [(BACKFILL_START + timedelta(days=i)).isoformat() for i in range(BACKFILL_DAYS)]


def test_ui_serves_assets_checks_and_automation(stack: DevStack) -> None:
    nodes = stack.graphql(ASSETS_QUERY)["assetNodes"]
    keys = {"/".join(node["assetKey"]["path"]) for node in nodes}
    expected = {
        "adherence_export_jobs",
        "user_details_export_jobs",
        "adherence_raw_files",
        "user_details_raw_files",
        "adherence_daily",
        "adherence_exceptions",
        "routing_status_segments",
        "presence_segments",
        "agent_occupancy",
    }
    assert expected <= {key.split("/")[-1] for key in keys}
    assert all(node["isPartitioned"] for node in nodes if node["assetKey"]["path"][-1] in expected)
    checks = [
        check
        for node in nodes
        if node["assetChecksOrError"]["__typename"] == "AssetChecks"
        for check in node["assetChecksOrError"]["checks"]
    ]
    assert len(checks) >= 6
    assert any(check["blocking"] for check in checks)

    repositories = stack.graphql(AUTOMATION_QUERY)["repositoriesOrError"]["nodes"]
    sensors = [sensor for repo in repositories for sensor in repo["sensors"]]
    schedules = [schedule for repo in repositories for schedule in repo["schedules"]]
    running = [
        s
        for s in sensors + schedules
        if (s.get("sensorState") or s.get("scheduleState"))["status"] == "RUNNING"
    ]
    assert running, f"no schedule or sensor runs by default: {sensors + schedules}"


def test_second_start_says_already_running(stack: DevStack) -> None:
    import subprocess

    second = subprocess.run(stack.command(), env=stack.env(), capture_output=True, text=True, timeout=120)
    assert second.returncode == 1
    assert "already running" in second.stderr


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def _run_windows(records: list) -> list[tuple[float, float]]:
    windows = [(r.start_time, r.end_time) for r in records if r.start_time and r.end_time]
    assert len(windows) == len(records), "a run never started or never ended"
    return windows


def test_sixty_day_backfill_from_the_ui(stack: DevStack) -> None:
    backfill_id = stack.launch_backfill(partition_keys())
    status = stack.wait_for_backfill(backfill_id)
    assert status["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, f"{status}\n{stack.log_tail()}"

    sandbox_stats = httpx.get(f"{stack.sandbox_url}/sandbox/stats", timeout=30).json()
    truth_org = httpx.get(f"{stack.sandbox_url}/sandbox/truth/org", timeout=30).json()
    assert stack.stop() == 0
    assert stack.leftover_processes() == []

    instance = DagsterInstance.from_config(str(stack.dagster_home))
    runs = instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id}))
    assert runs and all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in runs)

    # Run queue: never more runs at once than dagster.yaml allows (all runs, and backfill runs alone).
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    run_limits = config["concurrency"]["runs"]
    backfill_limit = min(
        [run_limits["max_concurrent_runs"]]
        + [t["limit"] for t in run_limits.get("tag_concurrency_limits", []) if t["key"] == "dagster/backfill"]
    )
    all_runs = instance.get_run_records()
    assert _max_overlap(_run_windows(runs)) <= backfill_limit
    assert _max_overlap(_run_windows(all_runs)) <= run_limits["max_concurrent_runs"]

    # Pools: from the event log of every run (sensor runs compete for the same slots), no more steps of a
    # pool at once than the limit the instance enforced.
    from wfm_pipeline.definitions import defs

    pool_of_step = {
        asset.node_def.name: asset.node_def.pool
        for asset in defs.resolve_asset_graph().assets_defs
        if getattr(asset.node_def, "pool", None)
    }
    intervals, unfinished = step_intervals(instance, [r.dagster_run.run_id for r in all_runs])
    assert unfinished == [], f"steps that never finished: {unfinished}"
    per_pool: dict[str, list[tuple[float, float]]] = {}
    for step_key, windows in intervals.items():
        pool = pool_of_step.get(step_key)
        if pool is not None:
            per_pool.setdefault(pool, []).extend(windows)
    assert per_pool.get("duckdb_writer"), "no DuckDB writer step ran"
    assert _max_overlap(per_pool["duckdb_writer"]) == 1
    assert per_pool.get("genesys_api"), "no API step ran"
    for pool, windows in per_pool.items():
        slot_count = instance.event_log_storage.get_concurrency_info(pool).slot_count
        assert _max_overlap(windows) <= slot_count, pool

    # The API: not a single 429 served.
    assert sandbox_stats["rateLimitedTotal"] == 0, sandbox_stats

    # Tables: every backfilled day present in every management unit, no duplicate rows. (The sensor, running
    # by default, also materializes the most recent days: those rows are allowed beside the backfill's.)
    days = partition_keys()
    units = len(truth_org["managementUnits"])
    with duckdb.connect(str(stack.data_dir / "warehouse.duckdb"), read_only=True) as con:
        for table in ("adherence_daily", "agent_occupancy", "routing_status_segments", "presence_segments"):
            units_per_day = dict(
                con.execute(
                    "SELECT CAST(local_date AS VARCHAR), count(DISTINCT management_unit_id) "
                    f"FROM wfm.{table} WHERE local_date BETWEEN ? AND ? GROUP BY ALL",
                    [days[0], days[-1]],
                ).fetchall()
            )
            assert units_per_day == dict.fromkeys(days, units), table
            total, distinct = con.execute(
                f"SELECT (SELECT count(*) FROM wfm.{table}), "
                f"(SELECT count(*) FROM (SELECT DISTINCT * FROM wfm.{table}))"
            ).fetchone()
            assert total == distinct, f"{table} has {total - distinct} duplicate rows"

    # A restart on the same directories (what a second `make run` does) keeps the run history and the
    # materialized partitions, and stops cleanly again.
    stack.start()
    try:
        restarted_runs = stack.graphql(RUNS_OF_BACKFILL, {"id": backfill_id})["runsOrError"]["results"]
        assert sorted(r["runId"] for r in restarted_runs) == sorted(r.dagster_run.run_id for r in runs)
        for path in (["adherence_daily"], ["agent_occupancy"]):
            node = stack.graphql(PARTITION_STATS, {"path": path})["assetNodeOrError"]
            assert node["partitionStats"]["numMaterialized"] >= BACKFILL_DAYS, (path, node)
    finally:
        assert stack.stop() == 0
    assert stack.leftover_processes() == []
