"""Client control flow against a scripted fake (MockTransport): exports, resume, retries, typed errors."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import httpx
import pytest

from wfm_pipeline.fileio import TEMP_MARKER
from wfm_pipeline.genesys import (
    AdherenceExportRequest,
    AuthenticationError,
    BadRequestError,
    ClientSettings,
    ExportJobFailed,
    GenesysClient,
    ManagementUnit,
    NetworkError,
    PermissionDeniedError,
    ServerError,
    UserDetailsExportRequest,
)
from wfm_pipeline.genesys._budget import SharedBudget, budget_key
from wfm_pipeline.genesys._files import SIDECAR_SUFFIX, sidecar_path
from wfm_pipeline_tests.genesys.fake_genesys import BU_ID, MEMBER_IDS, MU_ID, FakeGenesys, error

MU = ManagementUnit(MU_ID, "One", BU_ID, "UTC")
ADHERENCE = AdherenceExportRequest([MU], date(2024, 3, 1), date(2024, 3, 2))
START = datetime(2024, 3, 1, tzinfo=UTC)


def new_client(
    tmp_path: Path, fake: FakeGenesys, settings: ClientSettings, sleeps: list[float]
) -> GenesysClient:
    return GenesysClient(
        settings, tmp_path / "state", transport=httpx.MockTransport(fake), sleep=sleeps.append
    )


def test_discovery(client: GenesysClient) -> None:
    assert client.management_units() == [MU]
    assert client.management_unit_user_ids(MU_ID) == list(MEMBER_IDS)
    assert client.data_availability_date() == datetime(2030, 1, 1, tzinfo=UTC)


def test_adherence_export_writes_exact_bytes_with_sidecars(
    client: GenesysClient, fake: FakeGenesys, tmp_path: Path
) -> None:
    result = client.run_export(ADHERENCE, tmp_path / "out")
    assert len(result.files) == fake.download_urls
    for exported in result.files:
        data = exported.path.read_bytes()
        assert json.loads(data)["userResults"]  # the served document, unchanged
        meta = json.loads(sidecar_path(exported.path).read_text())
        assert meta["bytes"] == len(data) and meta["records"] == 3
    assert result.records == 3 * fake.download_urls
    assert result.metrics.jobs_submitted == 1
    assert fake.count("GET", "/downloads/") == fake.download_urls
    assert all(
        "Authorization" not in r.headers for r in fake.requests if r.url.path.startswith("/downloads/")
    )
    assert client.budget.jobs_in_flight() == 0


def test_user_details_pages_then_delete_job(client: GenesysClient, fake: FakeGenesys, tmp_path: Path) -> None:
    result = client.run_export(UserDetailsExportRequest(START, START + timedelta(days=1)), tmp_path / "out")
    assert len(result.files) == fake.pages
    assert result.records == 2 * fake.pages
    assert len(fake.deleted) == 1
    assert client.budget.jobs_in_flight() == 0


def test_expired_user_details_results_are_fetched_from_a_resubmitted_job_which_is_deleted(
    client: GenesysClient, fake: FakeGenesys, tmp_path: Path
) -> None:
    served_404: list[str] = []

    def results_expire_once(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/results") and not served_404:
            served_404.append(request.url.path)
            return error(404, "not.found", "The requested resource was not found.")
        return fake.handle(request)

    fake.script("GET", "/api/v2/analytics/users/details/jobs/", *[results_expire_once] * 50)
    result = client.run_export(UserDetailsExportRequest(START, START + timedelta(days=1)), tmp_path / "out")
    assert served_404 and len(fake.submissions) == 2
    expired, resubmitted = fake.jobs_submitted_ids
    assert len(result.files) == fake.pages
    assert fake.deleted == [resubmitted] and expired not in fake.deleted  # the job the files came from
    assert client.budget.jobs_in_flight() == 0


def test_user_details_clamped_and_left_out_reported(
    client: GenesysClient, fake: FakeGenesys, tmp_path: Path
) -> None:
    fake.availability = "2024-03-01T12:00:00.000Z"
    result = client.run_export(UserDetailsExportRequest(START, START + timedelta(days=1)), tmp_path / "out")
    assert len(result.jobs) == 1
    # the whole grid cell (from Monday 2024-02-26 00:00Z), its end clamped to the availability
    assert fake.submissions[0]["interval"] == "2024-02-26T00:00:00.000Z/2024-03-01T12:00:00.000Z"
    assert len(result.left_out) == 1
    assert (result.left_out[0].start, result.left_out[0].end) == (
        START + timedelta(hours=12),
        START + timedelta(days=1),
    )


def test_restarted_process_resumes_the_same_job(
    tmp_path: Path, fake: FakeGenesys, fake_settings: ClientSettings, sleeps: list[float]
) -> None:
    with new_client(tmp_path, fake, fake_settings, sleeps) as first:
        # killed while polling: the job is submitted and registered, nothing is downloaded
        fake.script("GET", "/api/v2/workforcemanagement/adherence/historical/bulk/jobs/", KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            first.run_export(ADHERENCE, tmp_path / "out")
        (job_id,) = fake.jobs
    with new_client(tmp_path, fake, fake_settings, sleeps) as second:
        (resumed,) = second.run_export(ADHERENCE, tmp_path / "out").jobs
        assert resumed.job.job_id == job_id
        assert second.metrics.jobs_resumed == 1
    assert len(fake.submissions) == 1
    with new_client(tmp_path, fake, fake_settings, sleeps) as third:
        # Downloaded already: the files on disk are reused without a request or a new job ...
        third.management_units()  # (the client's first requests, made by any first call)
        requests_before = len(fake.requests)
        (again,) = third.run_export(ADHERENCE, tmp_path / "out").jobs
        assert again.job.job_id == job_id and again.job.status == "Downloaded"
        assert len(again.files) == fake.download_urls and len(fake.requests) == requests_before
        assert len(fake.submissions) == 1
        # ... but a directory without them gets a fresh job.
        third.run_export(ADHERENCE, tmp_path / "elsewhere")
        assert len(fake.submissions) == 2


def test_complete_files_are_not_downloaded_again(
    client: GenesysClient, fake: FakeGenesys, tmp_path: Path
) -> None:
    request = UserDetailsExportRequest(START, START + timedelta(days=1))
    fake.script("DELETE", "/api/v2/analytics/users/details/jobs/", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):  # as if killed before the DELETE
        client.run_export(request, tmp_path / "out")
    first = sorted(p for p in (tmp_path / "out").glob("*page*.json") if not p.name.endswith(SIDECAR_SUFFIX))
    # (+1: run_export reads dataAvailabilityDate again, under the same path prefix)
    pages_before = fake.count("GET", "/api/v2/analytics/users/details/jobs/") + 1
    second = client.run_export(request, tmp_path / "out").files
    assert [f.sha256 for f in second] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in first]
    assert fake.count("GET", "/api/v2/analytics/users/details/jobs/") == pages_before  # nothing fetched again


def test_401_refreshes_token_once(client: GenesysClient, fake: FakeGenesys) -> None:
    client.management_units()
    fake.valid_tokens.clear()  # revoked server-side
    assert client.management_units() == [MU]
    assert fake.tokens_minted == 2


def test_persistent_401_is_an_authentication_error(client: GenesysClient, fake: FakeGenesys) -> None:
    fake.script(
        "GET", "/api/v2/workforcemanagement/managementunits", *[error(401, "bad.credentials", "nope")] * 3
    )
    with pytest.raises(AuthenticationError) as caught:
        client.management_units()
    assert caught.value.status == 401 and caught.value.code == "bad.credentials"
    assert caught.value.correlation_id


def test_bad_client_secret_names_the_credential(
    tmp_path: Path, fake: FakeGenesys, sleeps: list[float]
) -> None:
    settings = ClientSettings.from_env(
        {
            "GENESYSCLOUD_OAUTHCLIENT_ID": "cid",
            "GENESYSCLOUD_OAUTHCLIENT_SECRET": "wrong",
            "GENESYSCLOUD_REGION": "eu_west_1",
        }
    )
    fake.script(
        "POST",
        "/oauth/token",
        httpx.Response(400, json={"error": "invalid_client", "description": "authentication failed"}),
    )
    with new_client(tmp_path, fake, settings, sleeps) as client, pytest.raises(AuthenticationError) as caught:
        client.management_units()
    assert "GENESYSCLOUD_OAUTHCLIENT_SECRET" in str(caught.value)
    assert caught.value.code == "invalid_client"


def test_403_names_the_missing_permission(client: GenesysClient, fake: FakeGenesys, tmp_path: Path) -> None:
    fake.script(
        "POST",
        "/api/v2/workforcemanagement/adherence/historical/bulk",
        error(
            403,
            "missing.permissions",
            "Unable to perform the requested action. You are missing the following permission(s): "
            "wfm:historicalAdherence:view",
        ),
    )
    with pytest.raises(PermissionDeniedError) as caught:
        client.run_export(ADHERENCE, tmp_path / "out")
    assert caught.value.missing_permissions == ("wfm:historicalAdherence:view",)
    assert "wfm:historicalAdherence:view" in str(caught.value)
    assert client.budget.jobs_in_flight() == 0  # the slot taken for the submission was given back


def test_400_carries_the_server_reason(client: GenesysClient, fake: FakeGenesys) -> None:
    fake.script(
        "GET", "/api/v2/workforcemanagement/managementunits", error(400, "invalid.value", "Value [x] bad")
    )
    with pytest.raises(BadRequestError) as caught:
        client.management_units()
    assert "Value [x] bad" in str(caught.value) and caught.value.code == "invalid.value"


def test_429_with_retry_after_pauses_the_shared_budget(client: GenesysClient, fake: FakeGenesys) -> None:
    fake.script(
        "GET",
        "/api/v2/workforcemanagement/managementunits",
        error(429, "too.many.requests.retry.after", "Retry in [1] seconds", **{"Retry-After": "1"}),
    )
    before = datetime.now(UTC).timestamp()
    assert client.management_units() == [MU]
    assert client.budget.paused_until >= before + 1
    assert (client.metrics.throttled, client.metrics.retries) == (1, 1)
    assert client.metrics.waited_seconds > 0


@pytest.mark.parametrize("retry_after", [None, "0", "-1"])
def test_429_without_usable_retry_after_backs_off(
    client: GenesysClient, fake: FakeGenesys, retry_after: str | None
) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    fake.script(
        "GET",
        "/api/v2/workforcemanagement/managementunits",
        error(429, "too.many.requests", "slow", **headers),
    )
    assert client.management_units() == [MU]
    assert client.budget.paused_until > 0  # a positive backoff was applied, not an immediate retry


def test_5xx_retried_with_backoff_then_succeeds(
    client: GenesysClient, fake: FakeGenesys, sleeps: list[float]
) -> None:
    fake.script("GET", "/api/v2/workforcemanagement/managementunits", error(503, "service.unavailable", "x"))
    fake.script("GET", "/api/v2/workforcemanagement/managementunits", error(502, "bad.gateway", "x"))
    assert client.management_units() == [MU]
    assert len(sleeps) == 2 and all(s > 0 for s in sleeps)


def test_persistent_5xx_stops_after_max_attempts(client: GenesysClient, fake: FakeGenesys) -> None:
    fake.script(
        "GET", "/api/v2/workforcemanagement/managementunits", *[error(500, "internal.server.error", "x")] * 10
    )
    with pytest.raises(ServerError) as caught:
        client.management_units()
    assert caught.value.status == 500
    assert fake.count("GET", "/api/v2/workforcemanagement/managementunits") == client.settings.max_attempts


def test_dropped_connections_are_retried_then_typed(client: GenesysClient, fake: FakeGenesys) -> None:
    request = httpx.Request("GET", "http://genesys.test")
    fake.script(
        "GET",
        "/api/v2/workforcemanagement/managementunits",
        httpx.RemoteProtocolError("closed", request=request),
    )
    assert client.management_units() == [MU]
    fake.script(
        "GET",
        "/api/v2/workforcemanagement/managementunits",
        *[httpx.ReadTimeout("slow", request=request)] * 10,
    )
    with pytest.raises(NetworkError):
        client.management_units()


BULK_JOBS = "/api/v2/workforcemanagement/adherence/historical/bulk/jobs/"
DETAILS_JOBS = "/api/v2/analytics/users/details/jobs/"


def script_first_poll(fake: FakeGenesys, answer: httpx.Response) -> None:
    """``answer`` to the first status poll of a user-details job; availability and pages pass through."""

    def first_poll(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(("/availability", "/results")):
            fake.script("GET", DETAILS_JOBS, first_poll)  # not a poll: still waiting for it
            return fake.handle(request)
        return answer

    fake.script("GET", DETAILS_JOBS, first_poll)


def test_unknown_job_is_resubmitted(client: GenesysClient, fake: FakeGenesys, tmp_path: Path) -> None:
    forgotten: list[str] = []

    def forget_the_job(request: httpx.Request) -> httpx.Response:
        forgotten.append(request.url.path.rsplit("/", 1)[1])
        del fake.jobs[forgotten[0]]  # the server forgot it
        return fake.handle(request)

    fake.script("GET", BULK_JOBS, forget_the_job)
    (done,) = (result.job for result in client.run_export(ADHERENCE, tmp_path / "out").jobs)
    assert done.job_id != forgotten[0] and done.status == "Complete"
    assert len(fake.submissions) == 2


def test_expired_analytics_job_is_resubmitted(
    client: GenesysClient, fake: FakeGenesys, tmp_path: Path
) -> None:
    script_first_poll(fake, httpx.Response(200, json={"state": "EXPIRED"}))
    request = UserDetailsExportRequest(START, START + timedelta(hours=1))
    (done,) = (result.job for result in client.run_export(request, tmp_path / "out").jobs)
    expired = fake.jobs_submitted_ids[0]
    assert done.job_id != expired and done.status == "FULFILLED"


def test_failed_job_raises_typed_error(client: GenesysClient, fake: FakeGenesys, tmp_path: Path) -> None:
    script_first_poll(fake, httpx.Response(200, json={"state": "FAILED", "errorMessage": "boom"}))
    with pytest.raises(ExportJobFailed) as caught:
        client.run_export(UserDetailsExportRequest(START, START + timedelta(hours=1)), tmp_path / "out")
    (job_id,) = fake.jobs_submitted_ids
    assert caught.value.job_id == job_id and "boom" in str(caught.value)
    assert client.budget.jobs_in_flight() == 0


def test_adherence_error_status_raises(client: GenesysClient, fake: FakeGenesys, tmp_path: Path) -> None:
    def error_status(request: httpx.Request) -> httpx.Response:
        job_id = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json={"job": {"id": job_id, "status": "Error"}})

    fake.script("GET", BULK_JOBS, error_status)
    with pytest.raises(ExportJobFailed):
        client.run_export(ADHERENCE, tmp_path / "out")


def test_expired_download_urls_are_refreshed(
    client: GenesysClient, fake: FakeGenesys, tmp_path: Path
) -> None:
    def urls_expire_once_served(request: httpx.Request) -> httpx.Response:
        served = fake.handle(request)
        fake.url_generation += 1  # the URLs the job gave us have expired
        return served

    fake.script("GET", BULK_JOBS, urls_expire_once_served)
    files = client.run_export(ADHERENCE, tmp_path / "out").files
    assert len(files) == fake.download_urls
    assert len(fake.submissions) == 1  # refreshed by a poll, not resubmitted


def test_user_aggregates_split_at_100_users(client: GenesysClient, fake: FakeGenesys) -> None:
    users = [f"u{i}" for i in range(250)]
    result = client.user_aggregates(users, START, START + timedelta(days=1))
    assert fake.count("POST", "/api/v2/analytics/users/aggregates/query") == 3
    assert [r["group"]["userId"] for r in result["results"]] == users
    assert result["systemToOrganizationMappings"] == {"ON_QUEUE": ["org-1"]}


def test_more_jobs_than_slots_are_run_in_batches(
    tmp_path: Path, fake: FakeGenesys, fake_settings: ClientSettings, sleeps: list[float]
) -> None:
    settings = fake_settings.with_overrides(max_jobs_in_flight=2)
    request = AdherenceExportRequest([MU], date(2024, 3, 4), date(2024, 3, 25))  # three grid weeks
    with new_client(tmp_path, fake, settings, sleeps) as client:
        result = client.run_export(request, tmp_path / "out")  # run_export batches
        assert len(result.jobs) == 3 and len(fake.submissions) == 3


def test_run_export_never_waits_for_a_slot_while_holding_one(
    tmp_path: Path,
    fake: FakeGenesys,
    fake_settings: ClientSettings,
    sleeps: list[float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another process holds one of the two slots and (like us) waits for more: if we waited for a second
    # slot while holding the first, neither could ever proceed. A zero wait budget turns any blocking
    # slot wait into BudgetWaitTimeout instead of a hang.
    settings = fake_settings.with_overrides(max_jobs_in_flight=2)
    request = AdherenceExportRequest([MU], date(2024, 3, 4), date(2024, 3, 25))  # three grid weeks
    other_process = SharedBudget(tmp_path / "state", budget_key(settings.client_id, settings.api_host))
    assert other_process.try_acquire_job_slot("held-by-another-process")
    with new_client(tmp_path, fake, settings, sleeps) as client:
        monkeypatch.setattr(client.budget, "_max_wait", 0.0)
        result = client.run_export(request, tmp_path / "out")
        assert len(result.jobs) == 3 and len(fake.submissions) == 3
        assert client.budget.jobs_in_flight() == 1  # ours all released; the other process's kept
    other_process.close()


def test_run_export_failure_gives_its_slots_back(
    tmp_path: Path, fake: FakeGenesys, fake_settings: ClientSettings, sleeps: list[float]
) -> None:
    settings = fake_settings.with_overrides(max_jobs_in_flight=3)
    request = AdherenceExportRequest([MU], date(2024, 3, 4), date(2024, 3, 25))  # three grid weeks
    with new_client(tmp_path, fake, settings, sleeps) as client:
        # the first poll fails for good, while all three jobs are started (and hold slots)
        fake.script(
            "GET", "/api/v2/workforcemanagement/adherence/historical/bulk/jobs/", error(400, "bad", "no")
        )
        with pytest.raises(BadRequestError):
            client.run_export(request, tmp_path / "out")
        # Not held for slot_ttl_seconds (6 h): other processes can use them now.
        assert client.budget.jobs_in_flight() == 0


def test_each_job_carries_its_files_window_and_core_days(
    tmp_path: Path, fake: FakeGenesys, fake_settings: ClientSettings, sleeps: list[float]
) -> None:
    # Friday 03-01 to Tuesday 03-12 with a context day on each side, one zone (UTC): the grid weeks from
    # Monday 02-26, 03-04 and 03-11; neither end is a window edge, so no neighbour window.
    request = AdherenceExportRequest([MU], date(2024, 3, 1), date(2024, 3, 13), context_days=1)
    with new_client(tmp_path, fake, fake_settings, sleeps) as client:
        result = client.run_export(request, tmp_path / "out")
    assert [len(job.core_days) for job in result.jobs] == [3, 7, 2]
    assert [day for job in result.jobs for day in job.core_days] == [
        date(2024, 3, 1) + timedelta(days=offset) for offset in range(12)
    ]
    assert [job.window_days[0] for job in result.jobs] == [
        date(2024, 2, 26),
        date(2024, 3, 4),
        date(2024, 3, 11),
    ]
    for job in result.jobs:
        assert job.time_zone == "UTC" and len(job.window_days) == 7
        assert job.job.window_start == datetime.combine(job.window_days[0], time(), UTC)
        assert job.job.window_end == datetime.combine(job.window_days[-1] + timedelta(days=1), time(), UTC)
        assert len(job.files) == fake.download_urls
        assert all(job.job.key[:12] in file.path.name for file in job.files)
    assert result.files == tuple(file for job in result.jobs for file in job.files)


def test_user_details_jobs_have_no_core_days(client: GenesysClient, tmp_path: Path) -> None:
    result = client.run_export(UserDetailsExportRequest(START, START + timedelta(days=1)), tmp_path / "out")
    assert [(job.core_days, job.window_days, job.time_zone) for job in result.jobs] == [((), (), "")]


def test_stale_temporaries_are_removed_where_downloads_start(client: GenesysClient, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale, fresh = out / f".a.json{TEMP_MARKER}dead", out / f".b.json{TEMP_MARKER}live"
    for leftover in (stale, fresh):
        leftover.write_bytes(b"half a file")
    two_hours_ago = datetime.now(UTC).timestamp() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    client.run_export(ADHERENCE, out)
    assert not stale.exists()  # left by a killed writer
    assert fresh.exists()  # may belong to a live writer in another process
