"""Backfill benchmark (not a test): a year of the default org through the real `wfm-pipeline dev`, against
the sandbox's `realistic` limits compressed with --time-scale, beside the report's approach.

    .venv/bin/python -m bench.bench_backfill [--days 365] [--time-scale 60] [--baseline-minutes 5]

Measures wall time and its ratio to the lower bound the sandbox's limits imply, requests per day, retries,
429s and peak memory of the whole process tree; then the rows/s of the cleaning transforms against DuckDB's
own `read_json` of the same raw files. Prints markdown.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, EventRecordsFilter, RunsFilter

from bench import cleaning, report_baseline
from harness.devstack import DevStack, step_intervals
from wfm_pipeline import wire

BACKFILL_START = date(2024, 1, 1)


# Process kinds of a stack, by a fragment of their command line (the first that matches names it).
PROCESS_KINDS = (
    ("sandbox", "wfm_pipeline.sandbox"),
    ("step process", "multiprocessing"),  # or a run worker: see TreeSampler.run
    ("code server", "grpc"),
    ("webserver", "dagster_webserver"),
    ("daemon", "dagster._daemon"),
    ("dagster dev", "dagster dev"),
    ("wfm-pipeline dev", "wfm-pipeline"),
)


class TreeSampler(threading.Thread):
    """Peak of the summed RSS of every process of one stack (found by its DAGSTER_HOME), and the CPU
    seconds each kind of process used: the last utime + stime seen of every pid, summed by kind (a process
    that lived less than one interval is missed, and one's last interval is lost)."""

    def __init__(self, stack: DevStack, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.stack, self.interval, self.peak_mib = stack, interval, 0.0
        self._cpu_ticks: dict[int, tuple[str, int]] = {}  # pid -> (kind, utime + stime)
        self._stopped = threading.Event()

    def run(self) -> None:
        marker = f"DAGSTER_HOME={self.stack.dagster_home}".encode()
        while not self._stopped.wait(self.interval):
            total_kib = 0
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    if marker not in (proc / "environ").read_bytes().split(b"\0"):
                        continue
                    status = (proc / "status").read_text()
                    stat = (proc / "stat").read_text()
                    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                fields = stat[stat.rindex(")") + 2 :].split()
                kind = next((name for name, fragment in PROCESS_KINDS if fragment in command), "other")
                parent_kind = self._cpu_ticks.get(int(fields[1]), ("", 0))[0]
                if kind == "step process" and parent_kind == "code server":
                    kind = "run worker"  # the code server starts run workers as multiprocessing children
                self._cpu_ticks[int(proc.name)] = (kind, int(fields[11]) + int(fields[12]))
                for line in status.splitlines():
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
            self.peak_mib = max(self.peak_mib, total_kib / 1024)

    def cpu_seconds_by_kind(self) -> dict[str, float]:
        ticks: dict[str, int] = {}
        for kind, used in self._cpu_ticks.values():
            ticks[kind] = ticks.get(kind, 0) + used
        return {kind: used / os.sysconf("SC_CLK_TCK") for kind, used in ticks.items()}

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=10)


@dataclass(frozen=True)
class LowerBound:
    seconds: float
    jobs: int
    binding: str


def lower_bound(
    limits: dict[str, Any], windows_per_zone: int, agents_per_zone: list[int], extra_jobs: int = 1
) -> LowerBound:
    """The fastest a client could finish ``windows_per_zone`` 7-day adherence jobs per time zone plus
    ``extra_jobs`` users-details jobs, paced by the submission quota, the concurrent-jobs cap and the job
    latencies (wall-clock seconds under the sandbox's time scale). Requests are not the binding limit here
    (a few per day against 300 per minute), so they are left out."""
    jobs = windows_per_zone * len(agents_per_zone) + extra_jobs
    quota, window = limits["job_submission_quota"], limits["job_submission_window_seconds"]
    latency = [
        limits["adherence_latency_base_seconds"]
        + limits["adherence_latency_per_agent_day_seconds"] * agents * wire.ADHERENCE_MAX_DAYS_WITH_EXCEPTIONS
        for agents in agents_per_zone
        for _ in range(windows_per_zone)
    ]
    quota_bound = ((jobs - 1) // quota) * window + min(latency)
    concurrency_bound = sum(latency) / limits["max_concurrent_jobs"]
    if quota_bound >= concurrency_bound:
        return LowerBound(quota_bound, jobs, "job submission quota")
    return LowerBound(concurrency_bound, jobs, "concurrent jobs cap")


def _host_cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU since boot (``/proc/stat``). The bench runs alone on the host,
    so the busy share over the backfill is the stack's (a process tree's own accounting would miss the
    processes no parent reaps)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _stats_since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's counters of what was served after ``before`` (jobs, requests, 429s)."""
    return {
        "jobsCreated": {
            kind: count - before["jobsCreated"].get(kind, 0) for kind, count in after["jobsCreated"].items()
        },
        "requests": {
            route: {status: n - before["requests"].get(route, {}).get(status, 0) for status, n in by.items()}
            for route, by in after["requests"].items()
        },
        "rateLimitedTotal": after["rateLimitedTotal"] - before["rateLimitedTotal"],
    }


def run_pipeline_backfill(
    days: int, time_scale: float, workdir: Path, step_executor: str = "multiprocess"
) -> dict[str, Any]:
    stack = DevStack(
        root=workdir / "pipeline",
        sandbox_args=f"--profile realistic --time-scale {time_scale}",
        extra_env={"WFM_STEP_EXECUTOR": step_executor},
    )
    stack.start()
    sampler = TreeSampler(stack)
    sampler.start()
    try:
        # The bench measures the backfill alone: switch the automation off, as a user would in the UI.
        stack.stop_sensors()
        # The sensor's first tick may have requested a run of the recent days: let it end, and count only
        # what the backfill sends from here on.
        stack.wait_until_idle()
        with httpx.Client(base_url=stack.sandbox_url, timeout=30) as http:
            before = http.get("/sandbox/stats").json()
        busy_before, total_before = _host_cpu_ticks()
        keys = [(BACKFILL_START + timedelta(days=i)).isoformat() for i in range(days)]
        started = time.monotonic()
        backfill_id = stack.launch_backfill(keys)
        status = stack.wait_for_backfill(backfill_id, timeout=24 * 3600)["status"]
        wall = time.monotonic() - started
        busy_after, total_after = _host_cpu_ticks()
        with httpx.Client(base_url=stack.sandbox_url, timeout=30) as http:
            stats = _stats_since(before, http.get("/sandbox/stats").json())
            limits = http.get("/sandbox/limits").json()["effectiveWallClock"]
            org = http.get("/sandbox/truth/org").json()
    finally:
        stack.stop()
        sampler.stop()
    client_metrics = _client_metrics(stack.dagster_home)
    failures = _failures(stack.dagster_home, backfill_id)
    profile = _step_profile(stack.dagster_home, backfill_id)
    zones: dict[str, int] = {}
    for unit in org["managementUnits"]:
        zones[unit["timeZone"]] = zones.get(unit["timeZone"], 0) + len(unit["userIds"])
    agents_per_zone = list(zones.values())
    # Any client: Genesys allows 7 days per adherence job with exceptions, one time zone per job.
    bound = lower_bound(limits, math.ceil(days / wire.ADHERENCE_MAX_DAYS_WITH_EXCEPTIONS), agents_per_zone)
    # This pipeline's plan: weekly grid windows per zone (plus DST splits and the neighbour windows that
    # serve the stitching of exceptions at the backfill's edges), as many jobs as it made.
    adherence_jobs = stats["jobsCreated"].get("adherence", 0)
    plan_bound = lower_bound(
        limits,
        adherence_jobs // max(1, len(zones)),
        agents_per_zone,
        extra_jobs=sum(stats["jobsCreated"].values()) - adherence_jobs,
    )
    # Everything a client sends (API, token, presigned downloads), not the bench's own admin calls.
    api_requests = sum(
        count
        for route, by_status in stats["requests"].items()
        if not route.split(" ", 1)[-1].startswith(("/sandbox/stats", "/sandbox/limits", "/sandbox/truth"))
        for count in by_status.values()
    )
    windows = wall / limits["job_submission_window_seconds"]
    return {
        "status": status,
        "wall_seconds": wall,
        "adherence_jobs": adherence_jobs,
        "minimum_adherence_jobs": math.ceil(days / wire.ADHERENCE_MAX_DAYS_WITH_EXCEPTIONS) * len(zones),
        # the share of the job-submission quota the backfill's wall time made available that it used
        "quota_utilization": sum(stats["jobsCreated"].values()) / (limits["job_submission_quota"] * windows),
        "bound": bound,
        "plan_bound": plan_bound,
        "api_requests": api_requests,
        "jobs": sum(stats["jobsCreated"].values()),
        "throttled": stats["rateLimitedTotal"],
        "retries": client_metrics.get("retries", 0),
        "peak_mib": sampler.peak_mib,
        "cpu_by_kind": sampler.cpu_seconds_by_kind(),
        "host_cpu_busy": (busy_after - busy_before) / max(1, total_after - total_before),
        "failures": failures,
        "profile": profile,
    }


def _failures(dagster_home: Path, backfill_id: str) -> list[str]:
    """The first error line of every failed step of the backfill's runs."""
    instance = DagsterInstance.from_config(str(dagster_home))
    messages = []
    runs = instance.get_run_records(
        RunsFilter(tags={"dagster/backfill": backfill_id}, statuses=[DagsterRunStatus.FAILURE])
    )
    for run in runs:
        for record in instance.all_logs(run.dagster_run.run_id, of_type=DagsterEventType.STEP_FAILURE):
            error = record.dagster_event.step_failure_data.error if record.dagster_event else None
            # "Exceeded max_retries" says nothing: follow the cause chain to the failing exception.
            chain = []
            while error is not None:
                if error.message:
                    chain.append(error.message.strip().splitlines()[0][:200])
                error = error.cause
            messages.append(f"{record.step_key}: {' <- '.join(chain) or '?'}")
    return messages


def _step_profile(dagster_home: Path, backfill_id: str) -> list[str]:
    """Where the wall time went: per step, runs, total and longest seconds from STEP_START to its end."""
    instance = DagsterInstance.from_config(str(dagster_home))
    runs = instance.get_run_records(RunsFilter(tags={"dagster/backfill": backfill_id}))
    spans, _ = step_intervals(instance, [run.dagster_run.run_id for run in runs])
    durations = {step: [end - start for start, end in windows] for step, windows in spans.items()}
    return [
        f"| {step} | {len(seconds)} | {sum(seconds):.0f} | {max(seconds):.0f} |"
        for step, seconds in sorted(durations.items(), key=lambda item: -sum(item[1]))
    ]


def _client_metrics(dagster_home: Path) -> dict[str, float]:
    """Client accounting summed over the export assets' materializations."""
    instance = DagsterInstance.from_config(str(dagster_home))
    totals: dict[str, float] = {}
    records = instance.get_event_records(
        EventRecordsFilter(event_type=DagsterEventType.ASSET_MATERIALIZATION)
    )
    for record in records:
        materialization = record.asset_materialization
        if materialization is None or not materialization.asset_key.path[-1].endswith("_export_jobs"):
            continue
        for name in ("requests", "retries", "throttled_429s", "waited_seconds"):
            value = materialization.metadata.get(name)
            if value is not None:
                totals[name] = totals.get(name, 0) + float(value.value)
    return totals


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--time-scale", type=float, default=60.0)
    parser.add_argument("--baseline-minutes", type=float, default=5.0)
    parser.add_argument("--step-executor", default="multiprocess", help="WFM_STEP_EXECUTOR of the backfill")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="wfm-bench-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp)
        pipeline = run_pipeline_backfill(args.days, args.time_scale, workdir, args.step_executor)
        baseline = report_baseline.run(
            days=args.days, time_scale=args.time_scale, budget_seconds=args.baseline_minutes * 60
        )
    cleaning_rates = cleaning.main(["--days", "14"])

    bound: LowerBound = pipeline["bound"]
    plan_bound: LowerBound = pipeline["plan_bound"]
    ratio = pipeline["wall_seconds"] / bound.seconds
    baseline_ratio = f"{baseline['projected_seconds'] / bound.seconds:.2f}" + (
        "" if baseline["finished"] else " (projected)"
    )
    lines = [
        f"### Backfill of {args.days} days, sandbox `realistic` at --time-scale {args.time_scale:g}",
        "",
        "| measure | wfm-pipeline (dagster dev backfill) | report's approach (baseline) |",
        "|---|---|---|",
        f"| outcome | backfill {pipeline['status']} | {baseline['summary']} |",
        f"| wall time | {pipeline['wall_seconds']:.0f} s | {baseline['wall_text']} |",
        f"| lower bound ({bound.binding}, {bound.jobs} jobs) | {bound.seconds:.0f} s | same |",
        f"| ratio to the lower bound (target <= 1.25) | {ratio:.2f} | {baseline_ratio} |",
        f"| lower bound for the jobs this pipeline's plan submits ({plan_bound.jobs}) "
        f"| {plan_bound.seconds:.0f} s (ratio {pipeline['wall_seconds'] / plan_bound.seconds:.2f}) | |",
        f"| API requests per day | {pipeline['api_requests'] / args.days:.1f} "
        f"| {baseline['requests_per_day']:.1f} |",
        f"| export jobs | {pipeline['jobs']} | {baseline['jobs']} |",
        f"| adherence jobs vs the minimum (ceil(days / 7) per time zone) | {pipeline['adherence_jobs']} vs "
        f"{pipeline['minimum_adherence_jobs']} | |",
        f"| job-submission quota used over the wall time | {pipeline['quota_utilization']:.0%} | |",
        f"| client retries | {pipeline['retries']:.0f} | {baseline['retries']} |",
        f"| 429s served (target 0) | {pipeline['throttled']} | {baseline['throttled']} |",
        f"| peak memory, whole process tree | {pipeline['peak_mib']:.0f} MiB | n/a |",
        f"| host CPU busy during the backfill ({os.cpu_count()} cores, nothing else running) "
        f"| {pipeline['host_cpu_busy']:.0%} | n/a |",
        f"| WFM_STEP_EXECUTOR | {args.step_executor} | |",
        "",
        *(
            ["Failed steps of the backfill:", "", *(f"- {line}" for line in pipeline["failures"]), ""]
            if pipeline["failures"]
            else []
        ),
        "CPU seconds by process kind over the stack's life (start-up and the sensor's first run included; "
        "sampled each second from /proc):",
        "",
        "| process kind | CPU s |",
        "|---|---|",
        *(
            f"| {kind} | {seconds:.0f} |"
            for kind, seconds in sorted(pipeline["cpu_by_kind"].items(), key=lambda item: -item[1])
        ),
        "",
        "Steps of the backfill's runs (seconds from step start to step end, summed over runs):",
        "",
        "| step | runs | total s | longest s |",
        "|---|---|---|---|",
        *pipeline["profile"],
        "",
        cleaning_rates,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
