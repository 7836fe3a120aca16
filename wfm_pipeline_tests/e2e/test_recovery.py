"""End to end recovery under the real `wfm-pipeline dev`: a run worker killed with -9 in the middle of an
export step, and the sandbox killed with -9 right after it accepted export jobs. Each backfill completes
with no terminate or relaunch from the test (monitoring fails the dead run, run retries relaunch it, the
supervisor restarts the sandbox, the client resubmits the jobs the new sandbox does not know), and the
tables equal an uninterrupted run's over the same days."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from harness.devstack import DevStack
from wfm_pipeline import warehouse
from wfm_pipeline.sandbox.launcher import SandboxProcess
from wfm_pipeline_tests.pipeline.conftest import Workspace

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

DAYS_PER_RUN = 7
SANDBOX_AGENTS = 12
WORKER_KILL_DAYS = [(date(2025, 3, 3) + timedelta(days=i)).isoformat() for i in range(14)]
SANDBOX_KILL_DAYS = [(date(2025, 4, 7) + timedelta(days=i)).isoformat() for i in range(14)]
USER_DETAILS_POLLS = "/api/v2/analytics/users/details/jobs/*"
ADHERENCE_SUBMISSIONS = "POST /api/v2/workforcemanagement/adherence/historical/bulk"
WAIT_SECONDS = 600.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    with DevStack(
        root=tmp_path_factory.mktemp("recovery"),
        sandbox_args=f"--profile fast --agents {SANDBOX_AGENTS}",
        extra_env={"WFM_BACKFILL_MAX_PARTITIONS_PER_RUN": str(DAYS_PER_RUN)},
    ).running() as dev:
        yield dev


def wait_until(condition, what: str, stack: DevStack, timeout: float = WAIT_SECONDS):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n{stack.log_tail()}")


def backfill_runs(instance: DagsterInstance, backfill_id: str) -> list:  # type: ignore[type-arg]
    return [
        r.dagster_run for r in instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id}))
    ]


def export_step_in_progress(instance: DagsterInstance, backfill_id: str) -> tuple[str, int] | None:
    """(run id, run worker pid) of a backfill run whose user-details export step has started, not ended."""
    for run in backfill_runs(instance, backfill_id):
        if run.status != DagsterRunStatus.STARTED:
            continue
        records = instance.all_logs(run.run_id)
        started = {
            r.step_key
            for r in records
            if r.dagster_event and r.dagster_event.event_type == DagsterEventType.STEP_START
        }
        ended = {
            r.step_key
            for r in records
            if r.dagster_event
            and r.dagster_event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE)
        }
        worker = next(
            (
                r.dagster_event.pid
                for r in records
                if r.dagster_event and r.dagster_event.event_type == DagsterEventType.RUN_START
            ),
            None,
        )
        if "user_details_export" in started - ended and worker:
            return run.run_id, worker
    return None


def test_a_run_worker_killed_mid_export_is_recovered_without_a_human(stack: DevStack) -> None:
    # Each status poll of a user-details job takes a while, so the export step is surely in progress.
    faults = f"{stack.sandbox_url}/sandbox/faults"
    httpx.put(
        faults, json=[{"kind": "slow", "route": USER_DETAILS_POLLS, "method": "GET", "delaySeconds": 2}]
    )
    instance = DagsterInstance.from_config(str(stack.dagster_home))
    backfill_id = stack.launch_backfill(WORKER_KILL_DAYS)
    killed_run, worker = wait_until(
        lambda: export_step_in_progress(instance, backfill_id), "an export step in progress", stack
    )
    os.kill(worker, signal.SIGKILL)
    killed_at = time.time()
    httpx.delete(faults)

    status = stack.wait_for_backfill(backfill_id)
    assert status["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, f"{status}\n{stack.log_tail()}"
    runs = {run.run_id: run for run in backfill_runs(instance, backfill_id)}
    assert runs[killed_run].status == DagsterRunStatus.FAILURE
    retries = [run for run in runs.values() if run.tags.get("dagster/parent_run_id") == killed_run]
    assert len(retries) == 1 and retries[0].status == DagsterRunStatus.SUCCESS
    failed_at = instance.get_run_record_by_id(killed_run).end_time  # type: ignore[union-attr]
    assert failed_at is not None and failed_at - killed_at <= 120, "the dead run was not failed within 2 min"


def test_the_sandbox_killed_after_accepting_jobs_is_recovered_without_a_human(stack: DevStack) -> None:
    stats = f"{stack.sandbox_url}/sandbox/stats"
    httpx.post(f"{stack.sandbox_url}/sandbox/stats/reset")
    backfill_id = stack.launch_backfill(SANDBOX_KILL_DAYS)

    def accepted() -> bool:
        return (
            httpx.get(stats, timeout=10).json()["requests"].get(ADHERENCE_SUBMISSIONS, {}).get("202", 0) > 0
        )

    wait_until(accepted, "the sandbox to accept an export job", stack)
    (sandbox,) = stack.processes("wfm_pipeline.sandbox", f"--port {stack.sandbox_port}")
    os.kill(sandbox, signal.SIGKILL)

    status = stack.wait_for_backfill(backfill_id)
    assert status["status"] in {"COMPLETED", "COMPLETED_SUCCESS"}, f"{status}\n{stack.log_tail()}"
    assert "sandbox exited with code -9; restarting it" in stack.log_tail(2000)
    (restarted,) = stack.processes("wfm_pipeline.sandbox", f"--port {stack.sandbox_port}")
    assert restarted != sandbox


def test_tables_equal_an_uninterrupted_run(stack: DevStack, tmp_path: Path) -> None:
    assert stack.stop() == 0
    assert stack.leftover_processes() == []
    # The same days loaded by one uninterrupted in-process run per range, against a sandbox of the same
    # seed and size (what the killed-and-restarted one served as well).
    with SandboxProcess(profile="fast", agents=SANDBOX_AGENTS) as sandbox:
        reference = Workspace(tmp_path / "reference", sandbox.base_url)
        for days in (WORKER_KILL_DAYS, SANDBOX_KILL_DAYS):
            assert reference.materialize(days[0], days[-1]).success
    for spec in warehouse.FACTS:
        recovered = rows(stack.data_dir / "warehouse.duckdb", spec)
        assert recovered, f"{spec.name} has no rows for the backfilled days"
        assert recovered == rows(reference.database, spec), spec.name


def rows(path: Path, spec: warehouse.TableSpec) -> list[tuple[object, ...]]:
    found: list[tuple[object, ...]] = []
    with duckdb.connect(str(path), read_only=True) as connection:
        for days in (WORKER_KILL_DAYS, SANDBOX_KILL_DAYS):
            first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
            found += warehouse.read_slice(connection, spec, first, last).rows()
    return sorted(found, key=repr)
