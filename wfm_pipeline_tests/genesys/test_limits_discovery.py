"""Limits discovery against a scripted server: reported limits size the budget; nothing reported keeps it."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from wfm_pipeline.genesys import (
    AdherenceExportRequest,
    BudgetWaitTimeout,
    ClientSettings,
    GenesysClient,
    ManagementUnit,
)
from wfm_pipeline.genesys._budget import SharedBudget
from wfm_pipeline.genesys._limits import SUBMISSION_WINDOW_GUARD_SECONDS, LimitsCache, LimitsDiscovery
from wfm_pipeline_tests.genesys.fake_genesys import BU_ID, MU_ID, FakeGenesys, error

LIMITS = "/api/v2/organizations/limits/namespaces/"
BULK = "/api/v2/workforcemanagement/adherence/historical/bulk"


def entities(**values: float) -> dict[str, Any]:
    return {"entities": [{"key": key, "namespace": "ns", "value": value} for key, value in values.items()]}


def job_limits(quota: int, window: int, concurrent: int) -> dict[str, Any]:
    return entities(
        **{
            "sandbox.jobs.submission.max": quota,
            "sandbox.jobs.submission.window.seconds": window,
            "sandbox.jobs.concurrent.max": concurrent,
        }
    )


def script_limits(
    fake: FakeGenesys, rate: int, allowed: int, quota: int, window: int, concurrent: int
) -> None:
    fake.script(
        "GET",
        LIMITS + "platform.api",
        httpx.Response(
            200,
            json=entities(**{"token.rate.per.minute": rate}),
            headers={"inin-ratelimit-allowed": str(allowed), "inin-ratelimit-count": "1"},
        ),
    )
    jobs = job_limits(quota, window, concurrent)
    for namespace in ("analytics", "historical.adherence"):
        fake.script("GET", LIMITS + namespace, httpx.Response(200, json=jobs))


def make_client(fake: FakeGenesys, state_dir: Path, **settings: Any) -> GenesysClient:
    options: dict[str, Any] = {"max_attempts": 2, "backoff_base_seconds": 0.01, "backoff_cap_seconds": 0.01}
    return GenesysClient(
        ClientSettings.for_sandbox("http://genesys.test", **(options | settings)),
        state_dir,
        transport=httpx.MockTransport(fake),
        sleep=lambda _: None,
    )


def test_reported_limits_replace_the_defaults(tmp_path: Path) -> None:
    fake = FakeGenesys()
    # A sandbox compressed 60x: 18000 per wall minute, counted 300 at a time -> a 1 s server window.
    script_limits(fake, rate=18000, allowed=300, quota=6, window=120, concurrent=10)
    with make_client(fake, tmp_path) as client:
        assert fake.count("GET", LIMITS) == 0  # lazily: nothing before first use
        client.management_units()
        assert fake.count("GET", LIMITS) == 3
        assert client.budget.window_seconds == pytest.approx(60 * 300 / 18000)
        assert client.budget.allowed == 300
        assert client.budget.submissions_per_window == 6
        assert client.budget.submission_window_seconds == pytest.approx(120 + SUBMISSION_WINDOW_GUARD_SECONDS)
        assert client.max_jobs_in_flight == 10
        client.management_units()
        assert fake.count("GET", LIMITS) == 3  # once per client


def test_explicit_job_settings_cap_the_reported_limits(tmp_path: Path) -> None:
    fake = FakeGenesys()
    script_limits(fake, rate=300, allowed=300, quota=60, window=3600, concurrent=10)
    with make_client(fake, tmp_path, submissions_per_window=4, max_jobs_in_flight=3) as client:
        client.management_units()
        assert client.budget.window_seconds == pytest.approx(60.0)  # 300 per minute counted 300 at a time
        assert client.budget.submissions_per_window == 4  # configured 4 < reported 60
        reported_window = 3600 + SUBMISSION_WINDOW_GUARD_SECONDS
        assert client.budget.submission_window_seconds == pytest.approx(reported_window)
        assert client.max_jobs_in_flight == 3  # configured 3 < reported 10


def test_job_slots_are_sized_by_discovery_before_the_first_submission(tmp_path: Path) -> None:
    fake = FakeGenesys()
    script_limits(fake, rate=300, allowed=300, quota=60, window=3600, concurrent=2)
    with make_client(fake, tmp_path, max_budget_wait_seconds=0.5, max_pause_seconds=0.5) as client:
        other_process = SharedBudget(tmp_path, client.budget.key)
        assert other_process.try_acquire_job_slot("theirs-1") and other_process.try_acquire_job_slot(
            "theirs-2"
        )
        unit = ManagementUnit(MU_ID, "One", BU_ID, "UTC")  # no API call before the export
        with pytest.raises(BudgetWaitTimeout):
            client.run_export(
                AdherenceExportRequest([unit], date(2024, 1, 1), date(2024, 1, 6)), tmp_path / "o"
            )
        assert fake.count("POST", BULK) == 0  # the org's cap of 2 was in force before our first slot
        assert client.max_jobs_in_flight == 2
        other_process.close()


def test_reported_job_cap_bounds_an_export_with_more_jobs(tmp_path: Path) -> None:
    fake = FakeGenesys()
    script_limits(fake, rate=300, allowed=300, quota=60, window=3600, concurrent=2)
    with make_client(fake, tmp_path) as client:
        slots_taken: list[int] = []

        def submit(request: httpx.Request) -> httpx.Response:
            slots_taken.append(client.budget.jobs_in_flight())  # this job's slot included
            return fake.handle(request)

        fake.script("POST", BULK, *[submit] * 10)
        unit = ManagementUnit(MU_ID, "One", BU_ID, "UTC")  # no API call before the export
        client.run_export(
            AdherenceExportRequest([unit], date(2024, 1, 1), date(2024, 1, 22)), tmp_path / "out"
        )
        paths = [request.url.path for request in fake.requests]
        assert paths.index(BULK) > max(i for i, path in enumerate(paths) if path.startswith(LIMITS))
        assert client.max_jobs_in_flight == 2
        assert len(slots_taken) >= 3 and max(slots_taken) == 2  # more jobs than slots, never above the cap


def test_reading_the_slot_cap_sends_nothing(tmp_path: Path) -> None:
    fake = FakeGenesys()
    with make_client(fake, tmp_path, max_jobs_in_flight=3) as client:
        assert client.max_jobs_in_flight == 3
    assert fake.requests == []


def test_discovery_applies_once_and_its_own_requests_do_not_repeat_it(tmp_path: Path) -> None:
    settings = ClientSettings.for_sandbox("http://genesys.test")
    budget = SharedBudget(tmp_path, "k")
    discovery = LimitsDiscovery(settings, budget, LimitsCache(tmp_path, "k", max_age_seconds=300))
    fetched: list[str] = []

    def request(path: str) -> httpx.Response:
        fetched.append(path)
        discovery.apply_once(request)  # what the transport does before each budgeted request
        return httpx.Response(200, json=job_limits(quota=6, window=120, concurrent=4))

    discovery.apply_once(request)
    discovery.apply_once(request)
    assert len(fetched) == 3  # the three namespaces, once
    assert discovery.found is not None and budget.max_jobs_in_flight == 4
    assert budget.submission_window_seconds == pytest.approx(120 + SUBMISSION_WINDOW_GUARD_SECONDS)
    budget.close()


@pytest.mark.parametrize(
    "answer",
    [
        error(404, "not.found", "no such namespace"),
        error(403, "missing.any.permissions", "missing permission"),
        httpx.Response(200, json={"entities": []}),
        httpx.Response(200, json=entities(**{"some.other.key": 5})),
    ],
    ids=["404", "403", "empty", "other-keys"],
)
def test_unreported_limits_keep_the_configured_settings(
    tmp_path: Path, answer: httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeGenesys()
    for namespace in ("platform.api", "analytics", "historical.adherence"):
        fake.script("GET", LIMITS + namespace, answer)
    defaults = ClientSettings.for_sandbox("http://genesys.test")
    caplog.set_level(logging.DEBUG, logger="wfm_pipeline.genesys._limits")
    with make_client(fake, tmp_path) as client:
        client.management_units()
        assert fake.count("GET", LIMITS) == 3
        assert client.budget.window_seconds == defaults.window_seconds
        assert client.budget.allowed == defaults.requests_per_window
        assert client.budget.submissions_per_window == defaults.submissions_per_window
        assert client.budget.submission_window_seconds == defaults.submission_window_seconds
        assert client.max_jobs_in_flight == defaults.max_jobs_in_flight
    assert any(r.levelno == logging.DEBUG and "configured" in r.getMessage() for r in caplog.records)


def test_discovery_is_shared_through_state_dir_until_it_ages(tmp_path: Path) -> None:
    fake = FakeGenesys()
    script_limits(fake, rate=600, allowed=300, quota=6, window=120, concurrent=5)
    with make_client(fake, tmp_path) as first:
        first.management_units()
    assert fake.count("GET", LIMITS) == 3
    with make_client(fake, tmp_path) as second:  # another process on the same host
        second.management_units()
        assert fake.count("GET", LIMITS) == 3  # read from the cache, not fetched again
        assert second.budget.submissions_per_window == 6
        assert second.budget.window_seconds == pytest.approx(30.0)
    script_limits(fake, rate=600, allowed=300, quota=7, window=120, concurrent=5)
    with make_client(fake, tmp_path, limits_cache_seconds=0.0) as third:  # the cached copy is too old
        third.management_units()
        assert fake.count("GET", LIMITS) == 6
        assert third.budget.submissions_per_window == 7


def test_a_failed_discovery_is_not_cached(tmp_path: Path) -> None:
    fake = FakeGenesys()
    fake.script("GET", LIMITS + "platform.api", *[error(500, "internal.server.error", "boom")] * 2)
    with make_client(fake, tmp_path) as client:
        client.management_units()  # still works, on the configured budget
        assert client.limits is None
        assert client.budget.window_seconds == 60.0
    script_limits(fake, rate=300, allowed=300, quota=6, window=120, concurrent=5)
    with make_client(fake, tmp_path) as client:
        client.management_units()
        assert client.limits is not None and client.budget.submissions_per_window == 6


def test_discovery_can_be_turned_off(tmp_path: Path) -> None:
    fake = FakeGenesys()
    with make_client(fake, tmp_path, discover_limits=False) as client:
        client.management_units()
        assert fake.count("GET", LIMITS) == 0
