"""Export steps report progress to the run log from a thread, whatever the client is blocked on."""

from __future__ import annotations

import threading

from wfm_pipeline.defs.progress import progress_line, progress_lines
from wfm_pipeline.genesys import RequestMetrics


def test_progress_lines_report_what_happened_since_the_step_began() -> None:
    metrics = RequestMetrics(requests=10, jobs_submitted=1)  # before the step: not counted
    lines: list[str] = []
    two_lines = threading.Event()

    def log(line: str) -> None:
        lines.append(line)
        if len(lines) == 2:
            two_lines.set()

    with progress_lines(log, metrics, "user details 2024-01-01..2024-01-07", every_seconds=0.01):
        metrics.jobs_submitted += 2
        metrics.jobs_done += 1
        metrics.files += 3
        metrics.bytes += 2_500_000
        metrics.requests += 7
        assert two_lines.wait(timeout=60)  # the block is blocked, as a step waiting on a job slot is
    count = len(lines)
    assert lines[0].startswith("user details 2024-01-01..2024-01-07 after ")
    assert "jobs 2 submitted, 0 resumed, 1 done; 3 files, 2.5 MB" in lines[-1]
    assert "7 requests" in lines[-1]
    threading.Event().wait(0.05)
    assert len(lines) == count  # nothing after the block ended


def test_a_progress_line_names_waits_and_throttling() -> None:
    line = progress_line("adherence", RequestMetrics(waited_seconds=42.4, throttled=1), 61.2)
    assert line == (
        "adherence after 61 s: jobs 0 submitted, 0 resumed, 0 done; 0 files, 0.0 MB, 0 records; "
        "0 requests, 42 s waited, 1 429s"
    )
