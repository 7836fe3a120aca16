"""Retry policy: which outcomes are retried and how long to wait before the next attempt.

A small explicit policy instead of tenacity/stamina: the wait after a 429 is not a local sleep but a shared
pause written to the budget (every process honours it), each attempt must re-enter the budget, and a 401 is
retried exactly once after a token refresh. A library would only contribute the attempt counter, while the
policy below stays a pure function that unit tests can pin down.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Statuses whose Retry-After we honour (the SDK's urllib3 default set is 413/429/503; 413 is never transient
# for us: the body is too large and will stay so).
RETRY_AFTER_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (integer seconds or HTTP-date); None when absent, unparsable or <= 0.

    ``<= 0`` maps to None on purpose: Genesys documents ``Retry-After >= 1``, and obeying ``0`` would make a
    tight retry loop; the caller falls back to exponential backoff instead.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return seconds if seconds > 0 else None


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_total_seconds: float = 300.0
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 60.0
    retry_after_cap_seconds: float = 180.0
    # Injected so tests can pin the jitter.
    random: Callable[[], float] = random.random

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))].

        A small floor keeps even an unlucky draw from becoming a tight loop.
        """
        ceiling = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2 ** max(0, attempt - 1))
        return max(0.05 * self.backoff_base_seconds, ceiling * self.random())

    def delay(self, attempt: int, status: int | None, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None and status in RETRY_AFTER_STATUSES:
            return min(retry_after, self.retry_after_cap_seconds)
        return self.backoff(attempt)

    def should_retry(self, attempt: int, elapsed: float, next_delay: float) -> bool:
        """Bounded in attempts and in total time (including the wait we are about to do)."""
        return attempt < self.max_attempts and elapsed + next_delay <= self.max_total_seconds


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def is_retryable_exception(exc: Exception) -> bool:
    """Timeouts and dropped/refused connections; not programming errors such as invalid URLs."""
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)
