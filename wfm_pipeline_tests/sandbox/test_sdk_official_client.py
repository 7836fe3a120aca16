"""The official Genesys SDK (purecloudplatformclientv2 269) against the sandbox, end to end.

Every response is parsed into the SDK's models; any enum the SDK does not know would appear as
``outdated_sdk_version``, so the models are walked recursively for that value.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import PureCloudPlatformClientV2 as sdk
import pytest

from wfm_pipeline import wire
from wfm_pipeline.sandbox.launcher import SandboxProcess

OUTDATED = "outdated_sdk_version"


def outdated_values(value: Any, path: str = "$") -> list[str]:
    """Paths of every ``outdated_sdk_version`` inside an SDK model tree."""
    if isinstance(value, str):
        return [path] if value == OUTDATED else []
    if isinstance(value, list | tuple):
        return [p for i, item in enumerate(value) for p in outdated_values(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in outdated_values(item, f"{path}.{key}")]
    if hasattr(value, "swagger_types"):
        return [
            p for name in value.swagger_types for p in outdated_values(getattr(value, name), f"{path}.{name}")
        ]
    return []


def parsed(model: Any) -> Any:
    """Assert the model tree has no unknown enum values and return it."""
    assert outdated_values(model) == []
    return model


class DownloadedResponse:
    """The tiny part of urllib3's response that ``ApiClient.deserialize`` reads."""

    def __init__(self, reply: httpx.Response) -> None:
        self.data = reply.text
        self._headers = reply.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self._headers.get(name, default)


def wait_until(check: Any, attempts: int = 600, pause: float = 0.1) -> Any:
    for _ in range(attempts):
        result = check()
        if result is not None:
            return result
        time.sleep(pause)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def api_client(sandbox: SandboxProcess) -> Any:
    client = sdk.ApiClient(host=sandbox.base_url)
    return client.get_client_credentials_token(wire.SANDBOX_CLIENT_ID, wire.SANDBOX_CLIENT_SECRET)


def test_sdk_discovers_the_org(api_client: Any) -> None:
    wfm = sdk.WorkforceManagementApi(api_client)
    business_units = parsed(wfm.get_workforcemanagement_businessunits()).entities
    assert business_units
    units = parsed(wfm.get_workforcemanagement_managementunits()).entities
    zones = {mu.time_zone for mu in units}
    assert len(zones) >= 3 and all(mu.start_day_of_week for mu in units)
    per_bu = [
        mu
        for bu in business_units
        for mu in parsed(wfm.get_workforcemanagement_businessunit_managementunits(bu.id)).entities
    ]
    assert sorted(mu.id for mu in per_bu) == sorted(mu.id for mu in units)
    members = parsed(wfm.get_workforcemanagement_managementunit_users(units[0].id)).entities
    assert members
    users = parsed(sdk.UsersApi(api_client).get_users(page_size=10, page_number=1))
    assert users.total >= len(members) and len(users.entities) == 10 and users.next_uri
    presences = parsed(sdk.PresenceApi(api_client).get_presence_definitions()).entities
    assert {p.system_presence for p in presences} >= {"OnQueue", "Available", "Offline"}
    limits = parsed(
        sdk.OrganizationApi(api_client).get_organizations_limits_namespace("platform.api")
    ).entities
    assert {limit.key for limit in limits} >= {"token.rate.per.minute"}


def test_sdk_reads_the_directory(api_client: Any, sandbox: SandboxProcess) -> None:
    """Divisions, users in every state, unit and business-unit settings, activity codes (inline and
    through the download service), presence definitions of both kinds and the data retention."""
    divisions = parsed(
        sdk.AuthorizationApi(api_client).get_authorization_divisions(page_size=2, page_number=1)
    )
    assert divisions.total >= 2 and len(divisions.entities) == 2 and divisions.next_uri
    assert [d.home_division for d in divisions.entities].count(True) == 1
    users_api = sdk.UsersApi(api_client)
    for state in wire.USER_STATES:
        listing = parsed(users_api.get_users(state=state, page_size=500, page_number=1))
        assert listing.entities and {u.state for u in listing.entities} == {state}
    everyone = parsed(users_api.get_users(state=wire.USER_STATE_ANY, page_size=500, page_number=1)).entities
    assert all(u.division.id and u.department and u.title for u in everyone)
    assert {u.manager.id for u in everyone if u.manager} <= {u.id for u in everyone}

    wfm = sdk.WorkforceManagementApi(api_client)
    units = wfm.get_workforcemanagement_managementunits().entities
    expanded = [
        parsed(
            wfm.get_workforcemanagement_managementunit(mu.id, expand=[wire.MANAGEMENT_UNIT_EXPAND_SETTINGS])
        )
        for mu in units
    ]
    thresholds = [mu.settings.adherence.adherence_exception_threshold_seconds for mu in expanded]
    assert len(set(thresholds)) == len(units) and all(60 <= t <= 300 for t in thresholds)
    assert parsed(wfm.get_workforcemanagement_managementunit(units[0].id)).settings is None
    for bu in wfm.get_workforcemanagement_businessunits().entities:
        response = parsed(
            wfm.get_workforcemanagement_businessunit(bu.id, expand=[wire.BUSINESS_UNIT_EXPAND_SETTINGS])
        )
        assert response.settings.time_zone and response.settings.start_day_of_week
        codes = parsed(wfm.get_workforcemanagement_businessunit_activitycodes(bu.id)).entities
        assert {c.category for c in codes} <= set(wire.ACTIVITY_CATEGORIES) and all(c.id for c in codes)
        linked = parsed(
            wfm.get_workforcemanagement_businessunit_activitycodes(bu.id, force_download_service=True)
        )
        assert linked.entities is None and linked.download_url.startswith(sandbox.base_url)
        downloaded = parsed(
            api_client.deserialize(
                DownloadedResponse(httpx.get(linked.download_url)), "BusinessUnitActivityCodeListing"
            )
        )
        assert [c.to_dict() for c in downloaded.entities] == [c.to_dict() for c in codes]

    presence = sdk.PresenceApi(api_client)
    active = parsed(presence.get_presence_definitions(deactivated=wire.PRESENCE_DEACTIVATED_FALSE)).entities
    deactivated = parsed(
        presence.get_presence_definitions(deactivated=wire.PRESENCE_DEACTIVATED_TRUE)
    ).entities
    assert deactivated and all(p.deactivated and p.type == "User" for p in deactivated)
    assert not any(p.deactivated for p in active)
    retention = parsed(sdk.AnalyticsApi(api_client).get_analytics_dataretention_settings())
    assert retention.retention_days == 1825 and retention.date_created.tzinfo is not None


def test_sdk_runs_a_user_details_job_and_pages_all_results(api_client: Any) -> None:
    analytics = sdk.AnalyticsApi(api_client)
    availability = parsed(analytics.get_analytics_users_details_jobs_availability()).data_availability_date
    assert availability.tzinfo is not None
    query = sdk.AsyncUserDetailsQuery()
    query.interval = "2024-03-01T00:00:00.000Z/2024-03-03T00:00:00.000Z"
    query.order = "asc"
    job_id = parsed(analytics.post_analytics_users_details_jobs(query)).job_id

    def fulfilled() -> Any:
        status = parsed(analytics.get_analytics_users_details_job(job_id))
        assert status.state in ("QUEUED", "PENDING", "FULFILLED")
        return status if status.state == "FULFILLED" else None

    status = wait_until(fulfilled)
    assert status.completion_date >= status.submission_date
    cursor, records, pages = None, 0, 0
    for _ in range(1000):
        kwargs = {"page_size": 100, **({"cursor": cursor} if cursor else {})}
        page = parsed(analytics.get_analytics_users_details_job_results(job_id, **kwargs))
        pages += 1
        for detail in page.user_details:
            records += len(detail.primary_presence or []) + len(detail.routing_status or [])
            assert all(
                r.system_presence in wire.ANALYTICS_SYSTEM_PRESENCES for r in detail.primary_presence or []
            )
        cursor = page.cursor
        if not cursor:
            break
    assert pages > 1 and records > 0 and cursor is None
    analytics.delete_analytics_users_details_job(job_id)
    with pytest.raises(sdk.rest.ApiException) as missing:
        analytics.get_analytics_users_details_job(job_id)
    assert missing.value.status == 404


def test_sdk_runs_a_bulk_adherence_job_and_the_downloads_deserialize(api_client: Any) -> None:
    wfm = sdk.WorkforceManagementApi(api_client)
    units = wfm.get_workforcemanagement_managementunits().entities[:2]
    query = sdk.WfmHistoricalAdherenceBulkQuery()
    query.time_zone = "Europe/London"
    items = []
    for mu in units:
        item = sdk.WfmHistoricalAdherenceBulkItem()
        item.management_unit_id = mu.id
        item.start_date = datetime(2024, 3, 4, tzinfo=UTC)  # the SDK sends isoformat(): +00:00 offsets
        item.end_date = datetime(2024, 3, 6, tzinfo=UTC)
        item.include_exceptions = True
        item.include_actuals = True
        items.append(item)
    query.items = items
    started = parsed(wfm.post_workforcemanagement_adherence_historical_bulk(query))
    assert started.job.status == "Processing"

    def complete() -> Any:
        response = parsed(wfm.get_workforcemanagement_adherence_historical_bulk_job(started.job.id))
        return response if response.job.status == "Complete" else None

    done = wait_until(complete)
    assert len(done.download_urls) == len(units)
    for mu, url in zip(units, done.download_urls, strict=True):
        reply = httpx.get(url)
        assert reply.status_code == 200
        result = parsed(api_client.deserialize(DownloadedResponse(reply), "WfmHistoricalAdherenceBulkResult"))
        assert result.management_unit_id == mu.id
        assert result.user_results and all(len(u.day_metrics) == 2 for u in result.user_results)
        assert any(u.exception_info for u in result.user_results)
        assert any(u.actuals for u in result.user_results)


def test_sdk_runs_an_aggregates_query(api_client: Any, sandbox: SandboxProcess) -> None:
    wfm = sdk.WorkforceManagementApi(api_client)
    mu = wfm.get_workforcemanagement_managementunits().entities[0]
    user_ids = [u.id for u in wfm.get_workforcemanagement_managementunit_users(mu.id).entities[:5]]
    query = sdk.UserAggregationQuery()
    start = date(2024, 3, 5)
    query.interval = f"{start.isoformat()}T00:00:00Z/{(start + timedelta(days=1)).isoformat()}T00:00:00Z"
    query.granularity = "PT1H"
    query.group_by = ["userId"]
    query.metrics = list(wire.USER_AGGREGATE_METRICS)
    predicates = []
    for user_id in user_ids:
        predicate = sdk.UserAggregateQueryPredicate()
        predicate.dimension = "userId"
        predicate.value = user_id
        predicates.append(predicate)
    query.filter = sdk.UserAggregateQueryFilter()
    query.filter.type = "or"
    query.filter.predicates = predicates
    response = parsed(sdk.AnalyticsApi(api_client).post_analytics_users_aggregates_query(query))
    assert response.results and {r.group["userId"] for r in response.results} <= set(user_ids)
    metrics = {m.metric for r in response.results for d in r.data for m in d.metrics}
    assert metrics <= set(wire.USER_AGGREGATE_METRICS) and "tAgentRoutingStatus" in metrics


def test_sdk_sees_401_after_token_revocation(sandbox: SandboxProcess) -> None:
    client = sdk.ApiClient(host=sandbox.base_url).get_client_credentials_token(
        wire.SANDBOX_CLIENT_ID, wire.SANDBOX_CLIENT_SECRET
    )
    wfm = sdk.WorkforceManagementApi(client)
    wfm.get_workforcemanagement_businessunits()
    assert httpx.post(
        sandbox.base_url + "/sandbox/tokens/revoke", json={"token": client.access_token}
    ).json() == {"revoked": 1}
    with pytest.raises(sdk.rest.ApiException) as revoked:
        wfm.get_workforcemanagement_businessunits()
    assert revoked.value.status == 401


def test_the_presence_category_map_is_spelled_as_the_sdk_spells_both_sides() -> None:
    assert sorted(wire.ACTIVITY_CATEGORY_OF_PRESENCE) == sorted(wire.ANALYTICS_SYSTEM_PRESENCES)
    for presence, category in wire.ACTIVITY_CATEGORY_OF_PRESENCE.items():
        record = sdk.AnalyticsUserPresenceRecord()
        record.system_presence = presence
        assert record.system_presence == presence
        if category is not None:
            actuals = sdk.HistoricalAdherenceActuals()
            actuals.actual_activity_category = category
            assert actuals.actual_activity_category == category
