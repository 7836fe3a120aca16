"""Client control flow against a scripted fake (MockTransport): exports, resume, retries, typed errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from wfm_pipeline.genesys import (
    AdherenceExportRequest,
    AuthenticationError,
    BadRequestError,
    ClientSettings,
    ConfigurationError,
    ExportJobFailed,
    GenesysClient,
    ManagementUnit,
    NetworkError,
    PermissionDeniedError,
    ServerError,
    UserDetailsExportRequest,
)
from wfm_pipeline.genesys.budget import SharedBudget, budget_key
from wfm_pipeline.genesys.files import sidecar_path
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
    served_404 = []

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


def test_user_details_clamped_and_left_out_reported(client: GenesysClient, fake: FakeGenesys) -> None:
    fake.availability = "2024-03-01T12:00:00.000Z"
    jobs = client.start_user_details_exports(UserDetailsExportRequest(START, START + timedelta(days=1)))
    assert len(jobs) == 1
    assert fake.submissions[0]["interval"] == "2024-03-01T00:00:00.000Z/2024-03-01T12:00:00.000Z"
    assert jobs[0].left_out is not None
    assert (jobs[0].left_out.start, jobs[0].left_out.end) == (
        START + timedelta(hours=12),
        START + timedelta(days=1),
    )


def test_restarted_process_resumes_the_same_job(
    tmp_path: Path, fake: FakeGenesys, fake_settings: ClientSettings, sleeps: list[float]
) -> None:
    with new_client(tmp_path, fake, fake_settings, sleeps) as first:
        (job,) = first.start_adherence_exports(ADHERENCE)
    with new_client(tmp_path, fake, fake_settings, sleeps) as second:
        (resumed,) = second.start_adherence_exports(ADHERENCE)
        assert resumed.job_id == job.job_id
        assert second.metrics.jobs_resumed == 1
        second.download(second.wait_for(resumed), tmp_path / "out")
    assert len(fake.submissions) == 1
    with new_client(tmp_path, fake, fake_settings, sleeps) as third:
        # Downloaded already: the files on disk are reused without a request or a new job ...
        (again,) = third.start_adherence_exports(ADHERENCE)
        assert again.job_id == job.job_id and again.status == "Downloaded"
        requests_before = len(fake.requests)
        files = third.download(third.wait_for(again), tmp_path / "out")
        assert len(files) == fake.download_urls and len(fake.requests) == requests_before
        assert len(fake.submissions) == 1
        # ... but a directory without them gets a fresh job.
        third.download(again, tmp_path / "elsewhere")
        assert len(fake.submissions) == 2


def test_complete_files_are_not_downloaded_again(
    client: GenesysClient, fake: FakeGenesys, tmp_path: Path
) -> None:
    (job,) = client.start_user_details_exports(UserDetailsExportRequest(START, START + timedelta(days=1)))
    job = client.wait_for(job)
    first = client._jobs._download_user_details(job, tmp_path / "out")  # as if killed before the DELETE
    pages_before = fake.count("GET", "/api/v2/analytics/users/details/jobs/")
    second = client.download(job, tmp_path / "out")
    assert [f.sha256 for f in second] == [f.sha256 for f in first]
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


def test_403_names_the_missing_permission(client: GenesysClient, fake: FakeGenesys) -> None:
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
        client.start_adherence_exports(ADHERENCE)
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


def test_unknown_job_is_resubmitted(client: GenesysClient, fake: FakeGenesys) -> None:
    (job,) = client.start_adherence_exports(ADHERENCE)
    del fake.jobs[job.job_id]  # the server forgot it
    done = client.wait_for(job)
    assert done.job_id != job.job_id and done.status == "Complete"
    assert len(fake.submissions) == 2


def test_expired_analytics_job_is_resubmitted(client: GenesysClient, fake: FakeGenesys) -> None:
    (job,) = client.start_user_details_exports(UserDetailsExportRequest(START, START + timedelta(hours=1)))
    fake.script(
        "GET", "/api/v2/analytics/users/details/jobs/", httpx.Response(200, json={"state": "EXPIRED"})
    )
    done = client.wait_for(job)
    assert done.job_id != job.job_id and done.status == "FULFILLED"


def test_failed_job_raises_typed_error(client: GenesysClient, fake: FakeGenesys) -> None:
    (job,) = client.start_user_details_exports(UserDetailsExportRequest(START, START + timedelta(hours=1)))
    fake.script(
        "GET",
        "/api/v2/analytics/users/details/jobs/",
        httpx.Response(200, json={"state": "FAILED", "errorMessage": "boom"}),
    )
    with pytest.raises(ExportJobFailed) as caught:
        client.wait_for(job)
    assert caught.value.job_id == job.job_id and "boom" in str(caught.value)
    assert client.budget.jobs_in_flight() == 0


def test_adherence_error_status_raises(client: GenesysClient, fake: FakeGenesys) -> None:
    (job,) = client.start_adherence_exports(ADHERENCE)
    fake.script(
        "GET",
        "/api/v2/workforcemanagement/adherence/historical/bulk/jobs/",
        httpx.Response(200, json={"job": {"id": job.job_id, "status": "Error"}}),
    )
    with pytest.raises(ExportJobFailed):
        client.wait_for(job)


def test_expired_download_urls_are_refreshed(
    client: GenesysClient, fake: FakeGenesys, tmp_path: Path
) -> None:
    (job,) = client.start_adherence_exports(ADHERENCE)
    job = client.wait_for(job)
    fake.url_generation += 1  # the URLs the job gave us have expired
    files = client.download(job, tmp_path / "out")
    assert len(files) == fake.download_urls


def test_user_aggregates_split_at_100_users(client: GenesysClient, fake: FakeGenesys) -> None:
    users = [f"u{i}" for i in range(250)]
    result = client.user_aggregates(users, START, START + timedelta(days=1))
    assert fake.count("POST", "/api/v2/analytics/users/aggregates/query") == 3
    assert [r["group"]["userId"] for r in result["results"]] == users
    assert result["systemToOrganizationMappings"] == {"ON_QUEUE": ["org-1"]}


def test_more_jobs_than_slots_in_one_start_is_refused_up_front(
    tmp_path: Path, fake: FakeGenesys, fake_settings: ClientSettings, sleeps: list[float]
) -> None:
    settings = fake_settings.with_overrides(max_jobs_in_flight=2)
    request = AdherenceExportRequest([MU], date(2024, 3, 1), date(2024, 3, 22))  # three 7-day windows
    with new_client(tmp_path, fake, settings, sleeps) as client:
        with pytest.raises(ConfigurationError) as caught:
            client.start_adherence_exports(request)
        assert "max_jobs_in_flight" in str(caught.value)
        assert fake.submissions == []
        result = client.run_export(request, tmp_path / "out")  # run_export batches instead
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
    request = AdherenceExportRequest([MU], date(2024, 3, 1), date(2024, 3, 22))  # three 7-day windows
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
    request = AdherenceExportRequest([MU], date(2024, 3, 1), date(2024, 3, 22))  # three 7-day windows
    with new_client(tmp_path, fake, settings, sleeps) as client:
        # the first poll fails for good, while all three jobs are started (and hold slots)
        fake.script(
            "GET", "/api/v2/workforcemanagement/adherence/historical/bulk/jobs/", error(400, "bad", "no")
        )
        with pytest.raises(BadRequestError):
            client.run_export(request, tmp_path / "out")
        # Not held for slot_ttl_seconds (6 h): other processes can use them now.
        assert client.budget.jobs_in_flight() == 0
