"""Scale benchmark (not a test): one 35-day run of every asset at 1,000 and 5,000 agents against a `fast`
sandbox, each run in a fresh process.

    .venv/bin/python -m bench.bench_scale [--agents 1000 5000] [--days 35]

Per org size: the peak RSS of the run process (``ru_maxrss``: the run is one in-process ``materialize()``,
so its process is the run process), wall time of each step, agent-days per second, rows per second
written by the table steps, and the CPU seconds the sandbox spent serving, beside the run's own (the
sandbox must not be what the numbers measure). Prints markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

FIRST_DAY = date(2024, 3, 4)
ROOT = Path(__file__).resolve().parent.parent


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux ``/proc``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(sandbox_url: str, root: Path, days: int) -> dict[str, Any]:
    """In the child: materialize every asset for ``days`` days as one range run; report what it did."""
    import dagster as dg
    import duckdb

    from harness.devstack import step_intervals
    from harness.workspace import Workspace
    from wfm_pipeline import warehouse

    workspace = Workspace(root, sandbox_url)
    last = FIRST_DAY + timedelta(days=days - 1)
    instance = dg.DagsterInstance.ephemeral()
    started = time.monotonic()
    result = workspace.materialize(FIRST_DAY.isoformat(), last.isoformat(), instance=instance)
    wall = time.monotonic() - started
    if not result.success:
        failures = [event.message for event in result.all_events if event.is_failure]
        raise SystemExit(f"the run failed: {failures[:3]}")
    spans, _ = step_intervals(instance, [result.run_id])
    steps = {step: sum(end - start for start, end in windows) for step, windows in spans.items()}

    with duckdb.connect(str(workspace.database), read_only=True) as connection:
        rows = {
            spec.name: warehouse.count_slice(connection, spec, FIRST_DAY, last) for spec in warehouse.FACTS
        }
    return {
        "wall_seconds": wall,
        "steps": steps,
        "rows": rows,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_seconds": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
    }


def measure(agents: int, days: int) -> dict[str, Any]:
    from wfm_pipeline.sandbox.launcher import SandboxProcess

    with (
        tempfile.TemporaryDirectory(prefix="wfm-scale-") as tmp,
        SandboxProcess(profile="fast", agents=agents) as sandbox,
    ):
        assert sandbox.pid is not None
        sandbox_cpu_before = _cpu_seconds(sandbox.pid)
        child = subprocess.run(
            [sys.executable, "-m", "bench.bench_scale", "--child", sandbox.base_url, tmp, str(days)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        sandbox_cpu = _cpu_seconds(sandbox.pid) - sandbox_cpu_before
    if child.returncode != 0:
        raise RuntimeError(f"the {agents}-agent run failed:\n{child.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    report["sandbox_cpu_seconds"] = sandbox_cpu
    return report


def _table_seconds(report: dict[str, Any]) -> float:
    return float(sum(seconds for step, seconds in report["steps"].items() if step.endswith("_tables")))


def markdown(results: dict[int, dict[str, Any]], days: int) -> str:
    lines = [
        f"### One {days}-day run of every asset, `fast` sandbox, in-process `materialize()`",
        "",
        "| agents | peak RSS of the run process (target <= 1024 MiB at 5,000) | wall s | agent-days/s "
        "| rows written | rows/s in the table steps | run CPU s | sandbox CPU s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for agents, report in sorted(results.items()):
        rows = sum(report["rows"].values())
        lines.append(
            f"| {agents:,} | {report['peak_rss_mib']:.0f} MiB | {report['wall_seconds']:.0f} "
            f"| {agents * days / report['wall_seconds']:,.0f} | {rows:,} "
            f"| {rows / _table_seconds(report):,.0f} | {report['cpu_seconds']:.0f} "
            f"| {report['sandbox_cpu_seconds']:.0f} |"
        )
    lines += ["", "Seconds per step (STEP_START to STEP_SUCCESS):", ""]
    steps = sorted({step for report in results.values() for step in report["steps"]})
    lines += [f"| step | {' | '.join(f'{agents:,} agents' for agents in sorted(results))} |"]
    lines += [f"|---|{'---|' * len(results)}"]
    for step in steps:
        cells = " | ".join(f"{results[agents]['steps'].get(step, 0):.0f}" for agents in sorted(results))
        lines.append(f"| {step} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--days", type=int, default=35)
    args = parser.parse_args(argv)
    return markdown({agents: measure(agents, args.days) for agents in args.agents}, args.days)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(run_child(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))))
    else:
        print(main())
