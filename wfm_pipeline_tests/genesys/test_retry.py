"""Retry policy: Retry-After parsing, backoff bounds, bounded attempts and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from wfm_pipeline.genesys._retry import (
    RetryPolicy,
    is_retryable_exception,
    is_retryable_status,
    parse_retry_after,
)


@pytest.mark.parametrize(("header", "expected"), [("42", 42.0), (" 3 ", 3.0), ("1.5", 1.5)])
def test_retry_after_seconds(header: str, expected: float) -> None:
    assert parse_retry_after(header) == expected


@pytest.mark.parametrize("header", [None, "", "0", "-5", "soon"])
def test_retry_after_missing_zero_or_garbage_means_backoff(header: str | None) -> None:
    assert parse_retry_after(header) is None


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)


def test_429_with_retry_after_waits_exactly_that() -> None:
    policy = RetryPolicy(random=lambda: 0.0)
    assert policy.delay(1, 429, 7.0) == 7.0
    assert policy.delay(1, 503, 2.0) == 2.0


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(retry_after_cap_seconds=100)
    assert policy.delay(1, 429, 10_000.0) == 100


def test_500_ignores_retry_after_and_backs_off() -> None:
    policy = RetryPolicy(backoff_base_seconds=1, backoff_cap_seconds=60, random=lambda: 1.0)
    assert policy.delay(3, 500, 99.0) == 4.0


def test_full_jitter_backoff_grows_exponentially_to_the_cap() -> None:
    policy = RetryPolicy(backoff_base_seconds=1, backoff_cap_seconds=10, random=lambda: 1.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_backoff_never_zero_so_no_tight_loop() -> None:
    policy = RetryPolicy(backoff_base_seconds=1, random=lambda: 0.0)
    assert policy.delay(1, 429, None) > 0
    assert policy.backoff(5) > 0


def test_jitter_spreads_within_bounds() -> None:
    draws = iter([0.25, 0.5, 0.75])
    policy = RetryPolicy(backoff_base_seconds=2, backoff_cap_seconds=100, random=lambda: next(draws))
    assert [policy.backoff(3) for _ in range(3)] == [2.0, 4.0, 6.0]


def test_bounded_by_attempts_and_by_time() -> None:
    policy = RetryPolicy(max_attempts=3, max_total_seconds=10)
    assert policy.should_retry(1, 0, 1)
    assert not policy.should_retry(3, 0, 1)
    assert not policy.should_retry(1, 9.5, 1)


def test_retryable_classification() -> None:
    assert all(is_retryable_status(s) for s in (429, 500, 502, 503, 504))
    assert not any(is_retryable_status(s) for s in (400, 401, 403, 404, 409, 413, 415))
    request = httpx.Request("GET", "http://x")
    assert is_retryable_exception(httpx.ReadTimeout("t", request=request))
    assert is_retryable_exception(httpx.ConnectError("c", request=request))
    assert is_retryable_exception(httpx.RemoteProtocolError("closed", request=request))
    assert not is_retryable_exception(httpx.UnsupportedProtocol("ftp", request=request))
