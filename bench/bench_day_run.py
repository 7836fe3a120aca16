"""One-day run benchmark (not a test): what a sensor-style run of one day costs beyond its compute, through
the real `wfm-pipeline dev` against the sandbox's `realistic` limits (compressed with --time-scale).

    .venv/bin/python -m bench.bench_day_run [--runs 3] [--time-scale 60] [--executor multiprocess ...]

Each run materializes every asset for one day (a one-key backfill: the same asset job and executor a
sensor run uses), one after the other. Per run, from the event log: wall time from the run's creation to
its end; compute, the time at least one step was executing (the union of STEP_START..STEP_SUCCESS
intervals); and the start-up in between (queue and launch, run worker start, step process starts).
``--executor`` names the ``WFM_STEP_EXECUTOR`` values to compare, each on a fresh stack. Prints markdown.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from harness.devstack import DevStack, step_intervals

FIRST_DAY = date(2024, 3, 5)


@dataclass(frozen=True)
class DayRun:
    wall_seconds: float  # run created -> run ended
    to_run_start_seconds: float  # run created -> RUN_START (queue, launch, run worker start)
    compute_seconds: float  # union of the steps' execution intervals

    @property
    def ratio(self) -> float:
        return self.wall_seconds / self.compute_seconds


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def _measure(instance: DagsterInstance, backfill_id: str) -> DayRun:
    """A one-day backfill is two runs since the directory is not partitioned (Dagster runs unpartitioned
    assets of a backfill in a run of their own, first): from the first run's creation to the last one's
    end, and the union of their steps."""
    records = instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id}))
    run_ids = [record.dagster_run.run_id for record in records]
    created = min(record.create_timestamp.timestamp() for record in records)
    logs = [log for run_id in run_ids for log in instance.all_logs(run_id)]
    started = min(r.timestamp for r in logs if r.dagster_event_type == DagsterEventType.RUN_START)
    ended = max(r.timestamp for r in logs if r.dagster_event_type == DagsterEventType.RUN_SUCCESS)
    spans, _ = step_intervals(instance, run_ids)
    compute = _union_seconds([window for windows in spans.values() for window in windows])
    return DayRun(ended - created, started - created, compute)


def _wait_until_idle(instance: DagsterInstance, timeout: float = 3600.0) -> None:
    """Until no run is queued or in progress (a run measured alone is not slowed by others)."""
    busy = [
        DagsterRunStatus.QUEUED,
        DagsterRunStatus.NOT_STARTED,
        DagsterRunStatus.STARTING,
        DagsterRunStatus.STARTED,
        DagsterRunStatus.CANCELING,
    ]
    deadline = time.monotonic() + timeout
    while instance.get_runs_count(RunsFilter(statuses=busy)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"runs still in progress after {timeout} s")
        time.sleep(5.0)


def measure(executor: str, runs: int, time_scale: float, workdir: Path) -> list[DayRun]:
    stack = DevStack(
        root=workdir / executor,
        sandbox_args=f"--profile realistic --time-scale {time_scale}",
        # The sensor's first tick (before it is switched off) then requests one day, not a week.
        extra_env={"WFM_STEP_EXECUTOR": executor, "WFM_SENSOR_LOOKBACK_DAYS": "1", "WFM_REFRESH_DAYS": "0"},
    )
    measured = []
    with stack.running():
        stack.stop_sensors()
        _wait_until_idle(DagsterInstance.from_config(str(stack.dagster_home)))  # the sensor's first run
        for index in range(runs):
            backfill_id = stack.launch_backfill([(FIRST_DAY + timedelta(days=index)).isoformat()])
            status = stack.wait_for_backfill(backfill_id)["status"]
            if status != "COMPLETED_SUCCESS" and status != "COMPLETED":
                raise RuntimeError(f"the one-day run ended {status}:\n{stack.log_tail()}")
            measured.append(_measure(DagsterInstance.from_config(str(stack.dagster_home)), backfill_id))
    return measured


def markdown(results: dict[str, list[DayRun]], time_scale: float) -> str:
    lines = [
        f"### One-day runs, sandbox `realistic` at --time-scale {time_scale:g}, one after the other",
        "",
        "| WFM_STEP_EXECUTOR | runs | wall s (median) | compute s (median) | created -> RUN_START s "
        "| wall / compute (target <= 2) |",
        "|---|---|---|---|---|---|",
    ]
    for executor, runs in results.items():
        lines.append(
            f"| {executor} | {len(runs)} | {statistics.median(r.wall_seconds for r in runs):.1f} "
            f"| {statistics.median(r.compute_seconds for r in runs):.1f} "
            f"| {statistics.median(r.to_run_start_seconds for r in runs):.1f} "
            f"| {statistics.median(r.ratio for r in runs):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--executor", nargs="+", default=["multiprocess", "forkserver", "in_process"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wfm-day-run-", ignore_cleanup_errors=True) as tmp:
        results = {name: measure(name, args.runs, args.time_scale, Path(tmp)) for name in args.executor}
    return markdown(results, args.time_scale)


if __name__ == "__main__":
    print(main())
