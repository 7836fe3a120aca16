"""Every sandbox fault switch ends in success or a typed error within bounded attempts (over HTTP)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from wfm_pipeline import wire
from wfm_pipeline.genesys import (
    AdherenceExportRequest,
    AuthenticationError,
    ClientSettings,
    ExportJobFailed,
    GenesysClient,
    GenesysError,
    NetworkError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UserDetailsExportRequest,
)
from wfm_pipeline.genesys._files import complete_file
from wfm_pipeline_tests.genesys.sandbox_helpers import SandboxAdmin

MU_ROUTE = "/api/v2/workforcemanagement/managementunits"
MU_STATS = "GET /api/v2/workforcemanagement/managementunits"
MAX_ATTEMPTS = 4


def make_client(admin: SandboxAdmin, tmp_path: Path, **overrides: object) -> GenesysClient:
    return GenesysClient(admin.settings(max_attempts=MAX_ATTEMPTS, **overrides), tmp_path / "state")


@pytest.mark.parametrize(
    "kind", ["error_500", "error_502", "error_503", "error_504", "legacy_429", "drop_connection"]
)
def test_transient_fault_is_retried_to_success(
    sandbox_admin: SandboxAdmin, tmp_path: Path, kind: str
) -> None:
    sandbox_admin.set_faults([{"kind": kind, "route": MU_ROUTE, "count": 2}])
    with make_client(sandbox_admin, tmp_path) as client:
        units = client.management_units()
        assert {u.id for u in units} == {m["id"] for m in sandbox_admin.org()["managementUnits"]}
        assert client.metrics.retries == 2
        assert client.metrics.throttled == (2 if kind == "legacy_429" else 0)
    stats = sandbox_admin.stats()
    assert stats["faults"][kind] == 2  # both faulted attempts were retried ...
    assert stats["requests"][MU_STATS].get("200") == 1  # ... and the third one succeeded


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("error_500", ServerError),
        ("error_503", ServerError),
        ("error_504", ServerError),
        ("legacy_429", RateLimitedError),
        ("drop_connection", NetworkError),
    ],
)
def test_persistent_fault_ends_in_typed_error_after_bounded_attempts(
    sandbox_admin: SandboxAdmin, tmp_path: Path, kind: str, error: type[GenesysError]
) -> None:
    sandbox_admin.set_faults([{"kind": kind, "route": MU_ROUTE, "probability": 1.0}])
    with make_client(sandbox_admin, tmp_path) as client, pytest.raises(error) as caught:
        client.management_units()
    if kind != "drop_connection":
        assert caught.value.status is not None and caught.value.correlation_id
    assert sandbox_admin.stats()["faults"][kind] == MAX_ATTEMPTS


def test_rate_limit_429_pauses_the_shared_budget_for_retry_after(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    sandbox_admin.set_faults([{"kind": "rate_limit_429", "route": MU_ROUTE, "count": 1, "retryAfter": 1}])
    with make_client(sandbox_admin, tmp_path) as client:
        before = time.time()
        client.management_units()
        assert client.budget.paused_until >= before + 1
        assert time.time() >= before + 1  # the retry was sent only after Retry-After
        assert client.metrics.throttled == 1


def test_rate_limit_429_with_zero_retry_after_backs_off_without_tight_loop(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    sandbox_admin.set_faults([{"kind": "rate_limit_429", "route": MU_ROUTE, "count": 3, "retryAfter": 0}])
    with make_client(sandbox_admin, tmp_path) as client:
        client.management_units()
        assert client.metrics.waited_seconds > 0
        assert client.metrics.throttled == 3
    assert sandbox_admin.stats()["faults"]["rate_limit_429"] == 3


def test_slow_response_times_out_and_is_retried(sandbox_admin: SandboxAdmin, tmp_path: Path) -> None:
    # delaySeconds is in sandbox seconds: 120 at time scale 60 is 2 s, above the 0.5 s read timeout.
    sandbox_admin.set_faults([{"kind": "slow", "route": MU_ROUTE, "count": 1, "delaySeconds": 120}])
    with make_client(sandbox_admin, tmp_path, read_timeout_seconds=0.5) as client:
        assert client.management_units()
        assert client.metrics.retries == 1


def test_revoked_token_is_renewed_once(sandbox_admin: SandboxAdmin, tmp_path: Path) -> None:
    with make_client(sandbox_admin, tmp_path) as client:
        client.management_units()
        sandbox_admin.set_faults([{"kind": "revoke_token", "route": MU_ROUTE, "count": 1}])
        assert client.management_units()
        assert client.tokens.minted == 2
    assert sandbox_admin.stats()["tokensIssued"] == 2


def test_truncated_download_is_retried_and_file_is_complete(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    sandbox_admin.set_faults([{"kind": "truncate_download", "route": "/sandbox/downloads/*", "count": 1}])
    with make_client(sandbox_admin, tmp_path) as client:
        unit = client.management_units()[0]
        result = client.run_export(
            AdherenceExportRequest([unit], date(2024, 3, 4), date(2024, 3, 5)), tmp_path / "out"
        )
    assert len(result.files) == 1
    exported = result.files[0]
    assert complete_file(exported.path) == exported
    document = json.loads(exported.path.read_bytes())
    assert document["managementUnitId"] == unit.id
    assert sandbox_admin.stats()["faults"]["truncate_download"] == 1


@pytest.mark.parametrize("kind", ["adherence", "user_details"])
def test_failed_job_raises_export_job_failed(sandbox_admin: SandboxAdmin, tmp_path: Path, kind: str) -> None:
    route = (
        "/api/v2/workforcemanagement/adherence/historical/bulk"
        if kind == "adherence"
        else "/api/v2/analytics/users/details/jobs"
    )
    sandbox_admin.set_faults([{"kind": "fail_job", "route": route, "method": "POST", "count": 1}])
    with make_client(sandbox_admin, tmp_path) as client:
        with pytest.raises(ExportJobFailed) as caught:
            if kind == "adherence":
                unit = client.management_units()[0]
                request = AdherenceExportRequest([unit], date(2024, 3, 4), date(2024, 3, 5))
                client.run_export(request, tmp_path / "o")
            else:
                end = client.data_availability_date()
                client.run_export(UserDetailsExportRequest(end - timedelta(hours=6), end), tmp_path / "o")
        assert caught.value.job_id
        assert client.budget.jobs_in_flight() == 0  # the failed job's slot was given back


def test_expired_user_details_job_is_resubmitted(sandbox_admin: SandboxAdmin, tmp_path: Path) -> None:
    route = "/api/v2/analytics/users/details/jobs"
    sandbox_admin.set_faults([{"kind": "expire_job", "route": route, "method": "POST", "count": 1}])
    with make_client(sandbox_admin, tmp_path) as client:
        end = client.data_availability_date()
        result = client.run_export(UserDetailsExportRequest(end - timedelta(hours=6), end), tmp_path / "o")
    assert result.records > 0
    assert result.metrics.jobs_submitted == 2
    assert sandbox_admin.stats()["jobsCreated"]["user_details"] == 2


def test_expiring_adherence_download_urls_lead_to_a_fresh_job(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    route = "/api/v2/workforcemanagement/adherence/historical/bulk"
    sandbox_admin.set_faults([{"kind": "expire_job", "route": route, "method": "POST", "count": 1}])
    with make_client(sandbox_admin, tmp_path) as client:
        unit = client.management_units()[0]
        result = client.run_export(
            AdherenceExportRequest([unit], date(2024, 3, 4), date(2024, 3, 5)), tmp_path / "o"
        )
    assert len(result.files) == 1 and complete_file(result.files[0].path) is not None
    assert sandbox_admin.stats()["jobsCreated"]["adherence"] == 2


def test_wrong_secret_is_an_authentication_error_naming_the_secret(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    settings = ClientSettings(
        client_id=wire.SANDBOX_CLIENT_ID, client_secret="wrong", api_base_url=sandbox_admin.base_url
    )
    with GenesysClient(settings, tmp_path / "state") as client, pytest.raises(AuthenticationError) as caught:
        client.management_units()
    assert "ClientSettings.client_secret" in str(caught.value)
    assert caught.value.code == wire.OAUTH_ERROR_INVALID_CLIENT


def test_missing_permission_is_named(start_sandbox: Callable[..., Any], tmp_path: Path) -> None:
    limited = start_sandbox(time_scale=60, agents=4, client=["limited:limited-secret:wfm:agent:view"])
    settings = ClientSettings(
        client_id="limited", client_secret="limited-secret", api_base_url=limited.base_url
    )
    with GenesysClient(settings, tmp_path / "state") as client:
        unit = client.management_units()[0]
        with pytest.raises(PermissionDeniedError) as caught:
            request = AdherenceExportRequest([unit], date(2024, 3, 4), date(2024, 3, 5))
            client.run_export(request, tmp_path / "out")
        assert caught.value.missing_permissions == (wire.PERMISSION_HISTORICAL_ADHERENCE_VIEW,)
        assert caught.value.status == 403 and caught.value.correlation_id
        assert client.budget.jobs_in_flight() == 0
