"""Request, throttling, fault and job counters served by ``GET /sandbox/stats``."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque
from typing import Any

THROTTLE_TIMES_KEPT = 10_000


class Stats:
    """Thread-safe counters. Route keys are ``METHOD /route/template`` so ids do not explode the map."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._throttled: Counter[str] = Counter()
            # wall-clock time (epoch seconds) of the latest 429s per limit, for tests that need the server's
            # own moment rather than when a response reached a client
            self._throttled_at: defaultdict[str, deque[float]] = defaultdict(
                lambda: deque(maxlen=THROTTLE_TIMES_KEPT)
            )
            self._faults: Counter[str] = Counter()
            self._jobs_created: Counter[str] = Counter()
            self._unhandled_errors = 0
            self._tokens_issued = 0
            self._peak_concurrent_jobs = 0

    def record_request(self, route: str, status: int | str) -> None:
        """``status``: the HTTP status, or "dropped" for a connection closed without a response."""
        with self._lock:
            self._requests[route][str(status)] += 1

    def record_throttle(self, limit_name: str) -> None:
        with self._lock:
            self._throttled[limit_name] += 1
            self._throttled_at[limit_name].append(time.time())

    def record_fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def record_job(self, kind: str, concurrent_jobs: int) -> None:
        with self._lock:
            self._jobs_created[kind] += 1
            self._peak_concurrent_jobs = max(self._peak_concurrent_jobs, concurrent_jobs)

    def record_token(self) -> None:
        with self._lock:
            self._tokens_issued += 1

    def record_unhandled_error(self) -> None:
        with self._lock:
            self._unhandled_errors += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {route: dict(counts) for route, counts in sorted(self._requests.items())},
                "rateLimited": dict(self._throttled),
                "rateLimitedTotal": sum(self._throttled.values()),
                "rateLimitedAt": {name: list(times) for name, times in self._throttled_at.items()},
                "faults": dict(self._faults),
                "faultsTotal": sum(self._faults.values()),
                "jobsCreated": dict(self._jobs_created),
                "peakConcurrentJobs": self._peak_concurrent_jobs,
                "tokensIssued": self._tokens_issued,
                "unhandledErrors": self._unhandled_errors,
            }
