"""One-day run benchmark (not a test): what a sensor-style run of one day costs beyond its compute, through
the real `wfm-pipeline dev` against the sandbox's `realistic` limits (compressed with --time-scale).

    .venv/bin/python -m bench.bench_day_run [--runs 3] [--time-scale 60] [--executor in_process ...]

Each run is what the sensor requests for one day (a run of its job ``wfm_daily`` with the sensor's range
tags, directory included), one after the other, a week apart (no run reuses another's export job). Per
run, from the event log: wall time from the run's creation to its end; compute, the time at least one step
was executing (the union of STEP_START..STEP_SUCCESS intervals); and the start-up in between (queue and
launch, run worker start, step process starts). ``--executor`` names the ``WFM_SENSOR_STEP_EXECUTOR`` values
to compare, each on a fresh stack. On the first stack, a one-day backfill from the UI (every asset, one
partition, ``WFM_STEP_EXECUTOR`` at its default) is measured too. Prints markdown.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, RunsFilter

from harness.devstack import DevStack, step_intervals
from wfm_pipeline.defs.automation import JOB_NAME, PlannedRun

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


def _measure(instance: DagsterInstance, run_ids: list[str]) -> DayRun:
    """From the first run's creation to the last one's end, and the union of their steps."""
    records = instance.get_run_records(RunsFilter(run_ids=run_ids))
    created = min(record.create_timestamp.timestamp() for record in records)
    logs = [log for run_id in run_ids for log in instance.all_logs(run_id)]
    started = min(r.timestamp for r in logs if r.dagster_event_type == DagsterEventType.RUN_START)
    ended = max(r.timestamp for r in logs if r.dagster_event_type == DagsterEventType.RUN_SUCCESS)
    spans, _ = step_intervals(instance, run_ids)
    compute = _union_seconds([window for windows in spans.values() for window in windows])
    return DayRun(ended - created, started - created, compute)


def _backfill_run_ids(instance: DagsterInstance, backfill_id: str) -> list[str]:
    """The runs of a backfill (one for one day: the directory is partitioned like the facts)."""
    records = instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id}))
    return [record.dagster_run.run_id for record in records]


@dataclass(frozen=True)
class Measured:
    sensor_runs: dict[str, list[DayRun]]  # by WFM_SENSOR_STEP_EXECUTOR
    ui_backfill: DayRun
    ui_backfill_runs: int


def _stack(workdir: Path, executor: str, time_scale: float) -> DevStack:
    return DevStack(
        root=workdir / executor,
        sandbox_args=f"--profile realistic --time-scale {time_scale}",
        # The sensor's first tick (before it is switched off) then requests one day, not a week.
        extra_env={
            "WFM_SENSOR_STEP_EXECUTOR": executor,
            "WFM_SENSOR_LOOKBACK_DAYS": "1",
            "WFM_REFRESH_DAYS": "0",
        },
    )


def measure(executors: list[str], runs: int, time_scale: float, workdir: Path) -> Measured:
    sensor_runs: dict[str, list[DayRun]] = {}
    ui_backfill: DayRun | None = None
    ui_backfill_runs = 0
    for executor in executors:
        stack = _stack(workdir, executor, time_scale)
        with stack.running():
            stack.stop_sensors()
            instance = DagsterInstance.from_config(str(stack.dagster_home))
            stack.wait_until_idle()  # the sensor's first run
            days = [FIRST_DAY + timedelta(weeks=index) for index in range(runs + 1)]
            sensor_runs[executor] = []
            for day in days[:runs]:
                planned = PlannedRun(day.isoformat(), day.isoformat(), f"bench:{day}", "bench: one day")
                run_id = stack.launch_job_run(JOB_NAME, planned.tags)
                if (status := stack.wait_for_run(run_id)) != "SUCCESS":
                    raise RuntimeError(f"the one-day run ended {status}:\n{stack.log_tail()}")
                sensor_runs[executor].append(_measure(instance, [run_id]))
            if ui_backfill is None:
                backfill_id = stack.launch_backfill([days[runs].isoformat()])
                status = stack.wait_for_backfill(backfill_id)["status"]
                if status not in ("COMPLETED_SUCCESS", "COMPLETED"):
                    raise RuntimeError(f"the one-day backfill ended {status}:\n{stack.log_tail()}")
                run_ids = _backfill_run_ids(instance, backfill_id)
                ui_backfill, ui_backfill_runs = _measure(instance, run_ids), len(run_ids)
    assert ui_backfill is not None, "no executor to measure"
    return Measured(sensor_runs, ui_backfill, ui_backfill_runs)


def _row(label: str, runs: list[DayRun]) -> str:
    return (
        f"| {label} | {len(runs)} | {statistics.median(r.wall_seconds for r in runs):.1f} "
        f"| {statistics.median(r.compute_seconds for r in runs):.1f} "
        f"| {statistics.median(r.to_run_start_seconds for r in runs):.1f} "
        f"| {statistics.median(r.ratio for r in runs):.2f} |"
    )


def markdown(measured: Measured, time_scale: float) -> str:
    header = [
        "| {} | runs | wall s (median) | compute s (median) | created -> RUN_START s "
        "| wall / compute (target <= 2) |",
        "|---|---|---|---|---|---|",
    ]
    backfill_runs = f"multiprocess (default), {measured.ui_backfill_runs} run(s)"
    return "\n".join(
        [
            f"### One-day sensor runs (`{JOB_NAME}`), sandbox `realistic` at --time-scale {time_scale:g}, "
            "one after the other",
            "",
            header[0].format("WFM_SENSOR_STEP_EXECUTOR"),
            header[1],
            *(_row(executor, runs) for executor, runs in measured.sensor_runs.items()),
            "",
            "### One-day backfill from the UI (every asset, one partition)",
            "",
            header[0].format("WFM_STEP_EXECUTOR"),
            header[1],
            _row(backfill_runs, [measured.ui_backfill]),
        ]
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--executor", nargs="+", default=["in_process", "multiprocess", "forkserver"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wfm-day-run-", ignore_cleanup_errors=True) as tmp:
        measured = measure(args.executor, args.runs, args.time_scale, Path(tmp))
    return markdown(measured, args.time_scale)


if __name__ == "__main__":
    print(main())
