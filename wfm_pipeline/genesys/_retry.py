"""Retry policy and loop: which outcomes are retried, how long to wait before the next attempt, and the
loop that sends one logical request until it gets a final answer.

A small explicit policy instead of tenacity/stamina: the wait after a 429 is not a local sleep but a shared
pause written to the budget (every process honours it; the loop's ``wait`` callback decides), each attempt
re-enters the budget (the attempt itself does), and a 401 is repeated once after a token refresh by the auth
flow (``auth.ClientCredentialsAuth``), inside one attempt. A library would only contribute the attempt
counter, while the policy below stays a pure function that unit tests can pin down.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from wfm_pipeline import wire
from wfm_pipeline.genesys._metrics import RequestMetrics

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
        ceiling = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2.0 ** max(0, attempt - 1))
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


@dataclass(frozen=True)
class NetworkFailure:
    """The network error that ended a retry loop, and how many attempts were made."""

    error: httpx.HTTPError
    attempts: int
    retryable: bool  # False: not worth a retry (e.g. an unsupported URL), given up at once


# Waits out ``delay`` seconds after a retryable outcome: ``status`` is the response's, None after a network
# error (the transport pauses the shared budget after a 429 and sleeps otherwise).
WaitBeforeRetry = Callable[[int | None, float], None]


def _attempt(send: Callable[[], httpx.Response]) -> httpx.Response | httpx.HTTPError:
    try:
        return send()
    except httpx.HTTPError as exc:
        return exc


def send_with_retries(
    send: Callable[[], httpx.Response],
    policy: RetryPolicy,
    metrics: RequestMetrics,
    *,
    wait: WaitBeforeRetry,
    clock: Callable[[], float],
) -> httpx.Response | NetworkFailure:
    """Call ``send`` until its response is not retryable (returned, 2xx or not), the policy gives up (the last
    response, or the last network error as a ``NetworkFailure``) or a network error is not retryable.
    Counts ``retries`` and ``throttled`` (every 429 received) in ``metrics``."""
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        outcome = _attempt(send)
        if isinstance(outcome, httpx.HTTPError):
            if not is_retryable_exception(outcome):
                return NetworkFailure(outcome, attempt, retryable=False)
            status, delay = None, policy.backoff(attempt)
        else:
            status = outcome.status_code
            if not is_retryable_status(status):
                return outcome
            if status == 429:
                metrics.throttled += 1
            retry_after = parse_retry_after(outcome.headers.get(wire.HEADER_RETRY_AFTER))
            delay = policy.delay(attempt, status, retry_after)
        if not policy.should_retry(attempt, clock() - started, delay):
            if isinstance(outcome, httpx.HTTPError):
                return NetworkFailure(outcome, attempt, retryable=True)
            return outcome
        metrics.retries += 1
        wait(status, delay)
