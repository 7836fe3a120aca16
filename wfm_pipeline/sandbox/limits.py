"""Rate limiters: the per-token request budget, rolling-window quotas and the concurrent-job cap.

Limit names (the keys of ``/sandbox/stats`` ``rateLimited``):
- ``token.rate.per.minute``: per access token, fixed window (Genesys documents 300/min);
- ``jobs.submission.rate``: job submissions per org in a rolling window (modelled secondary throttle);
- ``jobs.concurrent.max``: queued/running jobs per org (modelled);
- ``token.creation.rate``: token grants per OAuth client in a rolling window (modelled).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

LIMIT_TOKEN_RATE = "token.rate.per.minute"
LIMIT_JOB_SUBMISSION = "jobs.submission.rate"
LIMIT_CONCURRENT_JOBS = "jobs.concurrent.max"
LIMIT_TOKEN_CREATION = "token.creation.rate"


@dataclass(frozen=True)
class BudgetState:
    """What the ``inin-ratelimit-*`` headers report after a request was counted (or refused)."""

    allowed: int
    count: int
    reset_seconds: float
    exceeded: bool


class FixedWindowBudget:
    """Per-key request budget over fixed windows that start at the key's first request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[datetime, int]] = {}

    def hit(self, key: str, allowed: int, window_seconds: float, now: datetime) -> BudgetState:
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now >= start + timedelta(seconds=window_seconds):
                start, count = now, 0
            reset = (start + timedelta(seconds=window_seconds) - now).total_seconds()
            if count >= allowed:
                self._windows[key] = (start, count)
                return BudgetState(allowed, count, reset, exceeded=True)
            count += 1
            self._windows[key] = (start, count)
            if len(self._windows) > 10_000:  # drop stale windows so memory stays bounded
                self._prune(now, window_seconds)
            return BudgetState(allowed, count, reset, exceeded=False)

    def _prune(self, now: datetime, window_seconds: float) -> None:
        cutoff = now - timedelta(seconds=window_seconds)
        for key in [k for k, (start, _) in self._windows.items() if start < cutoff]:
            del self._windows[key]


class RollingWindowQuota:
    """At most ``quota`` events per ``window_seconds`` per key, counted over a rolling window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, deque[datetime]] = {}

    def try_acquire(self, key: str, quota: int, window_seconds: float, now: datetime) -> float | None:
        """Record an event and return None, or return the wall seconds until one slot frees up."""
        with self._lock:
            events = self._events.setdefault(key, deque())
            cutoff = now - timedelta(seconds=window_seconds)
            while events and events[0] <= cutoff:
                events.popleft()
            if len(events) >= quota:
                if quota == 0 or not events:
                    return window_seconds
                return (events[0] - cutoff).total_seconds()
            events.append(now)
            return None

    def used(self, key: str, window_seconds: float, now: datetime) -> int:
        with self._lock:
            cutoff = now - timedelta(seconds=window_seconds)
            return sum(1 for moment in self._events.get(key, ()) if moment > cutoff)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
