"""`make bench`: every benchmark, each in its own process, their markdown collected into BENCHMARKS.md."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = [
    ("Sandbox: status polls, result pages, memory of a 5,000-agent org", ["bench/bench_sandbox.py"]),
    ("Client: requests per extracted day, share of the per-token budget used", ["bench/bench_client.py"]),
    ("Scale: one 35-day run at 1,000 and 5,000 agents", ["-m", "bench.bench_scale"]),
    ("Start-up: one-day runs, wall time against compute, per step executor", ["-m", "bench.bench_day_run"]),
    (
        "Pipeline: a year's backfill from the UI vs the report's approach; cleaning rate",
        ["-m", "bench.bench_backfill"],
    ),
    ("Recovery: a backfill under 10 kill -9s at random moments and processes", ["-m", "bench.soak"]),
]


# Everything below this line in BENCHMARKS.md is written by hand (what the numbers mean, targets and gaps)
# and kept when the numbers above it are measured again.
NOTES_MARKER = "<!-- hand-written notes below: kept by make bench -->"


def _notes(path: Path) -> list[str]:
    text = path.read_text() if path.exists() else ""
    _, marker, notes = text.partition(NOTES_MARKER)
    return ["", NOTES_MARKER, notes.strip("\n")] if marker else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    sections = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.platform()}. Rerun with `make bench`.",
    ]
    failed = False
    for title, command in BENCHMARKS:
        print(f"== {title}", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        sections += ["", f"## {title}", ""]
        if result.returncode == 0:
            sections.append(result.stdout.strip())
        else:
            failed = True
            # What the section measured before failing (the soak's table says why it did not converge),
            # then the end of its log.
            sections.append(
                f"FAILED (exit {result.returncode}):\n\n{result.stdout.strip()}\n\n"
                f"```\n{result.stderr.strip()[-3000:]}\n```"
            )
        sections.append(f"\n_took {elapsed:.0f} s_")
        print(sections[-2], flush=True)
    args.output.write_text("\n".join([*sections, *_notes(args.output)]) + "\n")
    print(f"written to {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
