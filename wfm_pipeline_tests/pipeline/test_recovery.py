"""Recovery building blocks: the run worker health check (and the monitoring sweep that uses it), and
step processes that die with their run worker."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.launcher.base import WorkerStatus
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from wfm_pipeline.processes import is_alive
from wfm_pipeline.run_launcher import LocalRunLauncher

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    overrides = {
        "run_launcher": {"module": "wfm_pipeline.run_launcher", "class": "LocalRunLauncher"},
        "run_monitoring": {"enabled": True, "max_resume_run_attempts": 0},
    }
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as test_instance:
        yield test_instance


@dg.op
def noop() -> None:
    return None


@dg.job
def some_job() -> None:
    noop()


def started_run(instance: dg.DagsterInstance, worker_pid: int) -> dg.DagsterRun:
    """A run in STARTED whose RUN_START event was recorded by ``worker_pid``, as a run worker records it."""
    run = instance.create_run_for_job(some_job)
    instance.report_dagster_event(
        dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, some_job.name, pid=worker_pid), run.run_id
    )
    found = instance.get_run_by_id(run.run_id)
    assert found is not None and found.status == dg.DagsterRunStatus.STARTED
    return found


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def test_a_live_worker_is_running_and_a_killed_one_failed(instance: dg.DagsterInstance) -> None:
    assert isinstance(instance.run_launcher, LocalRunLauncher)
    worker = sleeper()
    try:
        run = started_run(instance, worker.pid)
        assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    finally:
        worker.kill()
        worker.wait()
    health = instance.run_launcher.check_run_worker_health(run)
    assert health.status == WorkerStatus.FAILED and str(worker.pid) in (health.msg or "")


def test_a_recycled_pid_does_not_count_as_the_worker(instance: dg.DagsterInstance) -> None:
    """The run's RUN_START was recorded before the process now holding that pid existed."""
    newcomer = sleeper()
    try:
        run = instance.create_run_for_job(some_job)
        event = dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, some_job.name, pid=newcomer.pid)
        instance.report_dagster_event(event, run.run_id, timestamp=time.time() - 60)
        stale = instance.get_run_by_id(run.run_id)
        assert stale is not None and is_alive(newcomer.pid)
        assert instance.run_launcher.check_run_worker_health(stale).status == WorkerStatus.FAILED
    finally:
        newcomer.kill()
        newcomer.wait()


def test_the_monitoring_sweep_fails_a_run_whose_worker_is_gone(instance: dg.DagsterInstance) -> None:
    worker = sleeper()
    run = started_run(instance, worker.pid)
    record = instance.get_run_record_by_id(run.run_id)
    assert record is not None
    monitor_started_run(instance, None, record, logging.getLogger("test"))  # type: ignore[arg-type]
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # type: ignore[union-attr]
    worker.kill()
    worker.wait()
    record = instance.get_run_record_by_id(run.run_id)
    monitor_started_run(instance, None, record, logging.getLogger("test"))  # type: ignore[arg-type]
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]


def test_a_step_process_dies_with_its_run_worker(tmp_path: Path) -> None:
    """A multiprocessing child that called ``bind_step_to_run_worker`` (as every step does) is killed by the
    kernel when its parent is killed with -9; without it the child would live on."""
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(
        f"""
        import multiprocessing, time
        from pathlib import Path

        def step():
            from wfm_pipeline.processes import bind_step_to_run_worker
            bind_step_to_run_worker()
            Path({str(pid_file)!r}).write_text(str(__import__("os").getpid()))
            time.sleep(600)

        if __name__ == "__main__":
            multiprocessing.set_start_method("spawn")
            multiprocessing.Process(target=step).start()
            time.sleep(600)
        """
    )
    program = tmp_path / "run_worker.py"  # spawn re-imports the main module, so it must be a file
    program.write_text(script)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    worker = subprocess.Popen([sys.executable, str(program)], cwd=PROJECT_ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the step process never started"
            time.sleep(0.1)
        child = int(pid_file.read_text())
        assert is_alive(child)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        deadline = time.monotonic() + 30
        while is_alive(child):
            assert time.monotonic() < deadline, f"step process {child} outlived its run worker"
            time.sleep(0.1)
    finally:
        if worker.poll() is None:
            worker.kill()
