"""Shared budget: limit math, header adaptation, the shared pause, job slots, and sharing across processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from wfm_pipeline.genesys import BudgetWaitTimeout
from wfm_pipeline.genesys._budget import (
    RateLimitHeaders,
    SharedBudget,
    effective_limit,
    pause_reserve,
)


@pytest.mark.parametrize(
    ("allowed", "margin", "expected"),
    [(300, 0.95, 285), (300, 1.0, 299), (60, 0.9, 54), (10, 0.95, 9), (2, 0.5, 1), (1, 0.95, 1)],
)
def test_effective_limit_keeps_a_spare(allowed: int, margin: float, expected: int) -> None:
    assert effective_limit(allowed, margin) == expected


def test_headers_parse_case_insensitively_via_httpx() -> None:
    import httpx

    headers = httpx.Headers(
        {"ININ-RateLimit-Allowed": "180", "inin-ratelimit-count": "3", "inin-ratelimit-reset": "61"}
    )
    assert RateLimitHeaders.from_headers(headers) == RateLimitHeaders(180, 3, 61.0)
    assert RateLimitHeaders.from_headers(httpx.Headers({})) == RateLimitHeaders(None, None, None)


def _budget(tmp_path: Path, **options: object) -> SharedBudget:
    return SharedBudget(tmp_path, "k", **options)  # type: ignore[arg-type]


def test_allowance_learned_from_headers_is_shared(tmp_path: Path) -> None:
    first, second = _budget(tmp_path, requests_per_window=300), _budget(tmp_path, requests_per_window=300)
    assert second.allowed == 300
    first.observe(
        {"inin-ratelimit-allowed": "120", "inin-ratelimit-count": "1", "inin-ratelimit-reset": "50"}
    )
    assert second.allowed == 120
    second.acquire_request()
    assert second.limit == effective_limit(120, 0.95)


@pytest.mark.parametrize(("allowed", "reserve"), [(300, 5), (120, 2), (40, 1), (2, 1)])
def test_pause_reserve_is_part_of_the_spare(allowed: int, reserve: int) -> None:
    assert pause_reserve(allowed, 0.95) == reserve
    assert reserve <= max(1, allowed - effective_limit(allowed, 0.95))


def test_server_count_near_the_allowance_pauses_everyone_until_reset(tmp_path: Path) -> None:
    first, second = _budget(tmp_path), _budget(tmp_path)
    before = time.time()
    # Another client on the same token: the server counted 296 of 300 in this window.
    first.observe(
        {"inin-ratelimit-allowed": "300", "inin-ratelimit-count": "296", "inin-ratelimit-reset": "30"}
    )
    assert second.paused_until >= before + 30


@pytest.mark.parametrize("count", [100, 285, 290])
def test_count_within_our_share_or_jitter_does_not_pause(tmp_path: Path, count: int) -> None:
    budget = _budget(tmp_path)
    budget.observe(
        {"inin-ratelimit-allowed": "300", "inin-ratelimit-count": str(count), "inin-ratelimit-reset": "30"}
    )
    assert budget.paused_until == 0.0


def test_pause_only_moves_forward(tmp_path: Path) -> None:
    budget = _budget(tmp_path)
    late = budget.pause(100)
    assert budget.pause(1) == late


def test_acquire_waits_for_a_pause_set_by_another_instance(tmp_path: Path) -> None:
    first, second = _budget(tmp_path), _budget(tmp_path)
    end = first.pause(0.3)
    second.acquire_request()
    assert time.time() >= end  # ordering, not speed: the request was admitted only after the pause ended


def test_rate_admits_limit_then_makes_the_next_wait(tmp_path: Path) -> None:
    budget = _budget(tmp_path, requests_per_window=5, window_seconds=0.5, safety_margin=1.0)
    assert budget.limit == 4
    first_admitted = time.time()
    assert [budget.acquire_request() for _ in range(4)] == [0.0] * 4
    budget.acquire_request()
    assert time.time() >= first_admitted + 0.5  # the fifth waited for the first to leave the window


def test_job_slots_cap_idempotence_and_release(tmp_path: Path) -> None:
    sleeps: list[float] = []
    budget = SharedBudget(tmp_path, "k", max_jobs_in_flight=2, max_wait_seconds=0.0, sleep=sleeps.append)
    budget.acquire_job_slot("a")
    budget.acquire_job_slot("b")
    budget.acquire_job_slot("a")  # already held: no new slot needed
    assert budget.jobs_in_flight() == 2
    with pytest.raises(BudgetWaitTimeout):
        budget.acquire_job_slot("c")
    budget.release_job_slot("a")
    budget.acquire_job_slot("c")
    assert budget.jobs_in_flight() == 2


def test_stale_job_slots_are_reclaimed(tmp_path: Path) -> None:
    now = [1000.0]
    budget = SharedBudget(
        tmp_path, "k", max_jobs_in_flight=1, slot_ttl_seconds=60, max_wait_seconds=0.0, clock=lambda: now[0]
    )
    budget.acquire_job_slot("killed-process-job")
    now[0] += 61
    budget.acquire_job_slot("new-job")
    assert budget.jobs_in_flight() == 1


def _hammer(state_dir: str, count: int) -> None:
    budget = SharedBudget(Path(state_dir), "k", requests_per_window=9, window_seconds=0.6, safety_margin=1.0)
    for _ in range(count):
        budget.acquire_request()
    budget.close()


def test_budget_is_shared_across_processes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(str(tmp_path), 6)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    with sqlite3.connect(tmp_path / "budget" / "k-requests.sqlite") as conn:
        stamps = sorted(row[0] for row in conn.execute("SELECT item_timestamp FROM requests"))
    assert len(stamps) == 24
    limit, window_ms = 8, 600
    for index, stamp in enumerate(stamps):
        in_window = sum(1 for other in stamps[index:] if other < stamp + window_ms)
        assert in_window <= limit, f"{in_window} admissions within {window_ms} ms from {stamp}"


# --- blocked waits sleep (CPU time, not wall time: a spinning wait burns ~the whole wait in CPU) ---
BLOCKED_SECONDS = 2.0
MAX_BLOCKED_CPU_SECONDS = 0.3


def cpu_seconds_of(action: Callable[[], float]) -> tuple[float, float]:
    """(seconds the action reports it waited, CPU seconds this process used meanwhile)."""
    cpu_before = time.process_time()
    waited = action()
    return waited, time.process_time() - cpu_before


def test_process_blocked_on_submission_budget_sleeps(tmp_path: Path) -> None:
    budget = SharedBudget(tmp_path, "k", submissions_per_window=1, submission_window_seconds=BLOCKED_SECONDS)
    budget.acquire_submission()
    waited, cpu = cpu_seconds_of(budget.acquire_submission)
    assert waited >= BLOCKED_SECONDS * 0.9  # it really was blocked for about the window
    assert cpu < MAX_BLOCKED_CPU_SECONDS
    budget.close()


def test_process_blocked_on_request_budget_sleeps(tmp_path: Path) -> None:
    # allowed 2 -> one request per window for us (one spare)
    budget = SharedBudget(tmp_path, "k", requests_per_window=2, window_seconds=BLOCKED_SECONDS)
    budget.acquire_request()
    waited, cpu = cpu_seconds_of(budget.acquire_request)
    assert waited >= BLOCKED_SECONDS * 0.9
    assert cpu < MAX_BLOCKED_CPU_SECONDS
    budget.close()


def test_process_blocked_on_job_slot_sleeps(tmp_path: Path) -> None:
    holder = SharedBudget(tmp_path, "k", max_jobs_in_flight=1)
    waiter = SharedBudget(tmp_path, "k", max_jobs_in_flight=1)
    holder.acquire_job_slot("theirs")
    release = threading.Timer(BLOCKED_SECONDS, holder.release_job_slot, args=("theirs",))
    release.start()
    try:
        waited, cpu = cpu_seconds_of(lambda: waiter.acquire_job_slot("mine", poll_seconds=0.5))
    finally:
        release.join()
    assert waited >= BLOCKED_SECONDS * 0.9
    assert cpu < MAX_BLOCKED_CPU_SECONDS
    assert waiter.jobs_in_flight() == 1
    holder.close()
    waiter.close()


def test_try_acquire_job_slot_never_waits(tmp_path: Path) -> None:
    sleeps: list[float] = []
    budget = SharedBudget(tmp_path, "k", max_jobs_in_flight=1, sleep=sleeps.append)
    assert budget.try_acquire_job_slot("a")
    assert budget.try_acquire_job_slot("a")  # idempotent
    assert not budget.try_acquire_job_slot("b")
    assert sleeps == [] and budget.jobs_in_flight() == 1
    budget.close()
