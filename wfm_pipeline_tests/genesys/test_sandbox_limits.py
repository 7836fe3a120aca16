"""Limits discovery over HTTP: client defaults against a `realistic` sandbox, several processes, no 429s."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from wfm_pipeline.sandbox.launcher import SandboxProcess
from wfm_pipeline_tests.genesys.sandbox_helpers import SandboxAdmin
from wfm_pipeline_tests.genesys.test_sandbox_processes import (  # noqa: F401 (autouse fixture)
    _kill_leftover_workers,
    finish,
    spawn,
)

LIMITS_ROUTE = "GET /api/v2/organizations/limits/namespaces/{namespace}"
USERS_ROUTE = "GET /api/v2/workforcemanagement/managementunits/{management_unit_id}/users"


def test_job_submissions_follow_the_discovered_quota_across_processes(
    start_sandbox: Callable[..., SandboxProcess], tmp_path: Path
) -> None:
    # realistic: 60 submissions per rolling hour; compressed 1200x (a 3 s window) and lowered to 6.
    sandbox = start_sandbox(
        profile="realistic", time_scale=1200, agents=12, seed=5, limit=["job_submission_quota=6"]
    )
    admin = SandboxAdmin(sandbox.base_url)
    quota = int(admin.limits()["effectiveWallClock"]["job_submission_quota"])
    window = float(admin.limits()["effectiveWallClock"]["job_submission_window_seconds"])
    processes, per_process = 3, 5  # 15 submissions: more than two windows' quota
    start_at = time.time() + 3.0
    workers = [
        spawn(
            {
                "mode": "jobs",
                "base_url": sandbox.base_url,
                "settings": {"poll_initial_seconds": 0.05, "poll_cap_seconds": 0.2},  # budget: defaults
                "state_dir": str(tmp_path / "state"),
                "dest": str(tmp_path / f"out-{index}"),
                "out": str(tmp_path / f"jobs-{index}.json"),
                "unit_index": index,
                "first_day": f"2024-0{1 + index}-01",
                "count": per_process,
                "start_at": start_at,
            }
        )
        for index in range(processes)
    ]
    for worker in workers:
        finish(worker, timeout=120)
    records = [json.loads((tmp_path / f"jobs-{i}.json").read_text()) for i in range(processes)]
    stats = admin.stats()
    assert stats["rateLimited"] == {}, stats["rateLimited"]
    assert sum(stats["jobsCreated"].values()) == processes * per_process
    for record in records:  # every process sized its budget from the org's report, not the defaults
        assert record["budget"]["submissions_per_window"] == quota
        assert record["budget"]["submission_window_seconds"] >= window
        assert record["budget"]["max_jobs_in_flight"] == stats_cap(admin)
        assert record["metrics"]["throttled"] == 0
    assert sum(record["metrics"]["waited_seconds"] for record in records) > 0
    sent = sorted(t for record in records for t in record["submissions"])
    assert len(sent) == processes * per_process
    # Never more than `quota` in any rolling window: submission i + quota comes a window after i (client
    # clocks; 0.3 s for the gap between taking the budget and the request hook).
    gaps = [sent[i + quota] - sent[i] for i in range(len(sent) - quota)]
    assert min(gaps) >= window - 0.3, gaps
    assert admin.requests_to(LIMITS_ROUTE) == 3  # one discovery, shared through state_dir


def stats_cap(admin: SandboxAdmin) -> int:
    return int(admin.limits()["effectiveWallClock"]["max_concurrent_jobs"])


def test_discovered_token_rate_is_used_in_a_compressed_window(
    start_sandbox: Callable[..., SandboxProcess], tmp_path: Path
) -> None:
    # realistic at 60x: 300 requests per 1 s server window = 18000 per wall minute (reported).
    sandbox = start_sandbox(profile="realistic", time_scale=60, agents=12, seed=5)
    admin = SandboxAdmin(sandbox.base_url)
    processes, seconds = 4, 4.0
    start_at = time.time() + 3.0
    workers = [
        spawn(
            {
                "mode": "hammer",
                "base_url": sandbox.base_url,
                "settings": {},  # the client's defaults: 300 per 60 s until discovery says otherwise
                "state_dir": str(tmp_path / "state"),
                "dest": str(tmp_path / f"out-{index}"),
                "out": str(tmp_path / f"events-{index}.json"),
                "seconds": seconds,
                "first_day": "2024-01-01",
                "extract": False,
                "start_at": start_at,
            }
        )
        for index in range(processes)
    ]
    for worker in workers:
        finish(worker, timeout=120)
    stats = admin.stats()
    assert stats["rateLimited"] == {}, stats["rateLimited"]
    served = stats["requests"][USERS_ROUTE].get("200", 0)
    # A 300-per-60-s budget could not serve more than 300 in these few seconds; the discovered one does.
    assert served > 300, served
    assert admin.requests_to(LIMITS_ROUTE) == 3
