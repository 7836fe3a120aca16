"""``LocalRunLauncher``: Dagster's ``DefaultRunLauncher`` plus a run-worker health check, for one host.

The default launcher cannot tell whether a run's worker still lives, so Dagster's run monitoring only
enforces timeouts: a worker killed with -9 (or by the OOM killer, or a stop that SIGKILLs it) leaves its
run STARTED forever, its pool slots taken and the backfill waiting. With this launcher the monitoring
daemon fails such a run within one ``run_monitoring.poll_interval_seconds``, frees its slots after
``free_slots_after_run_end_seconds``, and ``run_retries`` launches it again -- nobody presses Terminate.

The worker is the process that recorded the run's RUN_START event (its pid is on the event), checked to be
alive and not a recycled pid (it must have started before that event). This holds where run workers run
on the host of the daemon, which is what ``DefaultRunLauncher`` does; on Kubernetes use the K8s launcher,
which has its own health check.

Configured in ``dagster.yaml``::

    run_launcher: {module: wfm_pipeline.run_launcher, class: LocalRunLauncher}
"""

from __future__ import annotations

from dagster import DagsterEventType, DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun

from wfm_pipeline.processes import is_alive


class LocalRunLauncher(DefaultRunLauncher):
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        records = self._instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_START)
        started = next((r for r in reversed(records) if r.dagster_event and r.dagster_event.pid), None)
        if started is None or started.dagster_event is None or started.dagster_event.pid is None:
            # Not started by a worker yet (or an old run without a pid): nothing to judge.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker recorded yet")
        pid = started.dagster_event.pid
        if is_alive(pid, started_by=started.timestamp):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run worker process {pid} (started the run at {started.timestamp:.0f}) is gone: it was killed "
            "or crashed without recording the end of the run",
            run_worker_id=str(pid),
        )
