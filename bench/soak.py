"""Kill-anywhere soak (not a test): a backfill through the real `wfm-pipeline dev` while processes of the
stack are killed with -9 at random moments, then a check that it converged with no manual action.

    .venv/bin/python -m bench.soak [--kills 10] [--days 35] [--agents 40] [--days-per-run 7] [--seed 1]

The first kill is the sandbox right after it accepted export jobs; the others pick at random among the
run workers, step processes, the sandbox, `dagster dev`, the daemon, the webserver and the code server.
The soak never terminates or relaunches a run. Converged means: the backfill ends COMPLETED_SUCCESS,
every table equals an uninterrupted in-process run's over the same days (against a sandbox of the same
seed), every raw file listed by a manifest verifies against its sidecar and answers its own job's
request, and the export jobs the sandbox created stay within the reference's plus those of the sandbox
lifetimes that were killed.
Prints markdown; exit code 0 only when it converged.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import duckdb
import httpx
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from harness.devstack import DevStack
from harness.workspace import Workspace
from wfm_pipeline import warehouse
from wfm_pipeline.genesys import complete_file
from wfm_pipeline.raw_store import ADHERENCE, USER_DETAILS, RawStore
from wfm_pipeline.sandbox.launcher import SandboxProcess
from wfm_pipeline.timestamps import parse_utc

FIRST_DAY = date(2025, 5, 5)
ADHERENCE_SUBMISSIONS = "POST /api/v2/workforcemanagement/adherence/historical/bulk"
# victim kind -> command-line needles of the processes of that kind
PROCESS_KINDS: dict[str, tuple[str, ...]] = {
    "dagster dev": ("dagster dev -h",),
    "daemon": ("dagster._daemon run",),
    "webserver": ("dagster_webserver",),
    "code server": ("dagster api grpc",),
}


def jobs_created(sandbox_url: str) -> int:
    return sum(httpx.get(f"{sandbox_url}/sandbox/stats", timeout=5).json()["jobsCreated"].values())


class JobsCounter(threading.Thread):
    """Export jobs the sandbox created, per lifetime (its counters restart with it). ``before_kill`` is
    called with the sandbox still alive, so a lifetime's last jobs are counted however soon it dies."""

    def __init__(self, sandbox_url: str) -> None:
        super().__init__(daemon=True)
        self.url = sandbox_url
        self.lifetimes = [0]
        self.stopped = threading.Event()
        self._lock = threading.Lock()

    def _read(self) -> None:
        try:
            created = jobs_created(self.url)
        except (httpx.HTTPError, ValueError, KeyError):
            return
        with self._lock:
            self.lifetimes[-1] = max(self.lifetimes[-1], created)

    def before_kill(self) -> None:
        self._read()
        with self._lock:
            self.lifetimes.append(0)

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            self._read()


def run_workers(instance: DagsterInstance) -> list[int]:
    pids = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        starts = instance.all_logs(record.dagster_run.run_id, of_type=DagsterEventType.RUN_START)
        pids += [r.dagster_event.pid for r in starts if r.dagster_event and r.dagster_event.pid]
    return pids


def step_processes(instance: DagsterInstance) -> list[int]:
    pids = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        running: dict[str, int] = {}
        for r in instance.all_logs(record.dagster_run.run_id):
            event = r.dagster_event
            if event is None or r.step_key is None:
                continue
            if event.event_type == DagsterEventType.STEP_START and event.pid:
                running[r.step_key] = event.pid
            elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                running.pop(r.step_key, None)
        pids += running.values()
    return pids


def candidates(stack: DevStack, instance: DagsterInstance) -> dict[str, Callable[[], list[int]]]:
    found: dict[str, Callable[[], list[int]]] = {
        "run worker": lambda: run_workers(instance),
        "step process": lambda: step_processes(instance),
        "sandbox": lambda: stack.processes("wfm_pipeline.sandbox", f"--port {stack.sandbox_port}"),
    }
    for kind, needles in PROCESS_KINDS.items():
        found[kind] = lambda needles=needles: stack.processes(*needles)  # type: ignore[misc]
    return found


def kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def table_rows(path: Path, first: date, last: date) -> dict[str, list[tuple[object, ...]]]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return {
            spec.name: sorted(warehouse.read_slice(connection, spec, first, last).rows(), key=repr)
            for spec in warehouse.FACTS
        }


def raw_file_problems(data_dir: Path, days: list[date]) -> list[str]:
    """Manifest files that do not verify, or whose content answers another request than their job's."""
    store = RawStore(data_dir)
    problems = []
    for kind in (ADHERENCE, USER_DETAILS):
        for day in days:
            manifest = store.read_manifest(kind, day)
            if manifest is None:
                problems.append(f"{kind} {day}: no manifest")
                continue
            for entry in manifest.files:
                path = store.absolute(entry.path)
                if complete_file(path) is None:
                    problems.append(f"{entry.path}: does not verify against its sidecar")
                    continue
                document = json.loads(path.read_bytes())
                low, high = parse_utc(entry.window_start), parse_utc(entry.window_end)
                if kind == ADHERENCE:
                    if parse_utc(document["startDate"]) != low or parse_utc(document["endDate"]) != high:
                        problems.append(f"{entry.path}: covers {document['startDate']}, not its job's window")
                    continue
                for detail in document.get("userDetails") or []:
                    for record in detail.get("routingStatus") or []:
                        if parse_utc(record["startTime"]) >= high or (
                            record.get("endTime") and parse_utc(record["endTime"]) <= low
                        ):
                            problems.append(f"{entry.path}: a record outside its job's interval")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--days-per-run", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout-minutes", type=float, default=60.0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    days = [FIRST_DAY + timedelta(days=i) for i in range(args.days)]
    root = Path(tempfile.mkdtemp(prefix="wfm-soak-"))
    started = time.monotonic()

    with SandboxProcess(profile="fast", agents=args.agents) as sandbox:
        reference = Workspace(root / "reference", sandbox.base_url)
        for first in range(0, len(days), args.days_per_run):
            chunk = days[first : first + args.days_per_run]
            assert reference.materialize(chunk[0].isoformat(), chunk[-1].isoformat()).success
        reference_jobs = jobs_created(sandbox.base_url)
    reference_seconds = time.monotonic() - started

    stack = DevStack(
        root=root / "stack",
        sandbox_args=f"--profile fast --agents {args.agents}",
        extra_env={"WFM_BACKFILL_MAX_PARTITIONS_PER_RUN": str(args.days_per_run)},
    )
    stack.start()
    # The backfill alone: the sensor's first runs (recent days) finish before it starts, and the jobs they
    # made are not counted, so the backfill's jobs compare with the reference's.
    stack.stop_sensors()
    instance = DagsterInstance.from_config(str(stack.dagster_home))
    busy = RunsFilter(statuses=[DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED])
    deadline = time.monotonic() + 900
    while instance.get_run_records(busy) and time.monotonic() < deadline:
        time.sleep(2.0)
    before_backfill = jobs_created(stack.sandbox_url)
    jobs = JobsCounter(stack.sandbox_url)
    jobs.start()
    kinds = candidates(stack, instance)
    kills: list[tuple[float, str, int]] = []

    def accepted_submissions() -> int:
        stats = httpx.get(f"{stack.sandbox_url}/sandbox/stats", timeout=10).json()
        return int(stats["requests"].get(ADHERENCE_SUBMISSIONS, {}).get("202", 0))

    accepted_before = accepted_submissions()
    launched = time.monotonic()
    backfill_id = stack.launch_backfill([day.isoformat() for day in days])
    try:
        # 1. the sandbox right after it accepted the backfill's first export job
        deadline = time.monotonic() + 600
        while accepted_submissions() == accepted_before and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in kinds["sandbox"]():
            jobs.before_kill()
            if kill(pid):
                kills.append((time.monotonic() - launched, "sandbox after accepting jobs", pid))
        # 2. the rest at random moments, at random processes (whatever of that kind exists then)
        while len(kills) < args.kills:
            time.sleep(rng.uniform(2.0, 10.0))
            if stack.backfill_finished(backfill_id):
                break  # finished before every kill was spent: report what was done
            kind = rng.choice(sorted(kinds))
            pids = kinds[kind]()
            victim = rng.choice(pids) if pids else None
            if kind == "sandbox" and victim is not None:
                jobs.before_kill()
            if victim is not None and kill(victim):
                kills.append((time.monotonic() - launched, kind, victim))
        last_kill = launched + (kills[-1][0] if kills else 0.0)
        final = stack.wait_for_backfill(backfill_id, timeout=args.timeout_minutes * 60)
        finished = time.monotonic()
    finally:
        jobs.stopped.set()
        log = stack.log_tail(100_000)
        stack.stop()
    of_backfill = RunsFilter(tags={"dagster/backfill": backfill_id})
    runs = [record.dagster_run for record in instance.get_run_records(of_backfill)]
    retried = [run for run in runs if run.tags.get("dagster/parent_run_id")]
    failed = [run for run in runs if run.status == DagsterRunStatus.FAILURE]
    recovered = table_rows(stack.data_dir / "warehouse.duckdb", days[0], days[-1])
    expected = table_rows(reference.database, days[0], days[-1])
    unequal = [name for name in expected if recovered[name] != expected[name] or not expected[name]]
    problems = raw_file_problems(stack.data_dir, days)
    killed_lifetimes = sum(jobs.lifetimes[:-1]) - before_backfill if len(jobs.lifetimes) > 1 else 0
    backfill_jobs = sum(jobs.lifetimes) - before_backfill
    jobs_ok = backfill_jobs <= reference_jobs + killed_lifetimes
    converged = final.get("status") == "COMPLETED_SUCCESS" and not unequal and not problems and jobs_ok
    rows = [
        ("outcome", f"backfill {final.get('status')}; {'converged' if converged else 'DID NOT CONVERGE'}"),
        ("kills (-9)", f"{len(kills)}: " + ", ".join(f"{kind} @ {t:.0f} s" for t, kind, _ in kills)),
        ("supervisor restarts", f"{log.count('restarting it in')}"),
        ("code location reloads", f"{log.count('; reloaded it')}"),
        ("backfill runs / failed / retried", f"{len(runs)} / {len(failed)} / {len(retried)}"),
        ("wall time with kills", f"{finished - launched:.0f} s"),
        ("recovered after the last kill", f"{finished - last_kill:.0f} s"),
        ("uninterrupted reference (in process)", f"{reference_seconds:.0f} s"),
        ("tables equal to the reference", "all" if not unequal else "NOT " + ", ".join(unequal)),
        ("raw files not verifying or foreign", f"{len(problems)} {problems[:5] if problems else ''}"),
        (
            "export jobs created",
            f"{backfill_jobs} (reference {reference_jobs}, in killed sandbox lifetimes {killed_lifetimes})",
        ),
        ("directory", str(root)),
    ]
    print(f"### Soak: {args.days} days, {args.agents} agents, {args.days_per_run} days/run, seed {args.seed}")
    print()
    print("| measure | value |")
    print("| --- | --- |")
    for measure, value in rows:
        print(f"| {measure} | {value} |")
    return 0 if converged else 1


if __name__ == "__main__":
    sys.exit(main())
