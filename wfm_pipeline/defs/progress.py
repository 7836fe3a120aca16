"""Progress lines in the run log while an export step waits on Genesys: the client's counters every
``every_seconds`` (jobs submitted, resumed and done, files, bytes, records, requests, waits, 429s), from a
thread beside the step, so a step blocked on a job slot, a poll or the request budget still reports."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from wfm_pipeline.genesys import RequestMetrics

PROGRESS_SECONDS = 15.0


def progress_line(what: str, done: RequestMetrics, elapsed_seconds: float) -> str:
    return (
        f"{what} after {elapsed_seconds:.0f} s: jobs {done.jobs_submitted} submitted, {done.jobs_resumed} "
        f"resumed, {done.jobs_done} done; {done.files} files, {done.bytes / 1e6:.1f} MB, {done.records} "
        f"records; {done.requests} requests, {done.waited_seconds:.0f} s waited, {done.throttled} 429s"
    )


@contextlib.contextmanager
def progress_lines(
    log: Callable[[str], None],
    metrics: RequestMetrics,
    what: str,
    every_seconds: float = PROGRESS_SECONDS,
    monotonic: Callable[[], float] = time.monotonic,
) -> Iterator[threading.Event]:
    """``log`` a ``progress_line`` every ``every_seconds`` until the block ends (the event it yields is set
    then; tests set it to stop early)."""
    stop = threading.Event()
    start, started = metrics.snapshot(), monotonic()

    def report() -> None:
        while not stop.wait(every_seconds):
            log(progress_line(what, metrics.since(start), monotonic() - started))

    thread = threading.Thread(target=report, name=f"progress:{what}", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join()
