"""Sandbox HTTP server, in process with a manual clock: auth, error codes, job life cycles, paging."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from wfm_pipeline import wire
from wfm_pipeline.sandbox.app import create_app
from wfm_pipeline.sandbox.config import Behaviours, ClientSpec, ManualClock, SandboxConfig, default_clients
from wfm_pipeline.sandbox.errors import format_ts
from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg

# --- in-process harness: Starlette TestClient + ManualClock (no sockets, no waiting) ---------------

SEED = 11
HISTORY_START = date(2024, 1, 1)
NOW = datetime(2024, 6, 12, 15, 30, tzinfo=UTC)
START_OF_MAY = datetime(2024, 5, 1, tzinfo=UTC)
_ORG: SandboxOrg | None = None


def shared_org() -> SandboxOrg:
    """One small org for all in-process tests (the org is immutable; its caches are bounded)."""
    global _ORG
    if _ORG is None:
        _ORG = SandboxOrg(OrgConfig(seed=SEED, agents=40, history_start=HISTORY_START))
    return _ORG


@dataclass
class Harness:
    client: TestClient
    clock: ManualClock
    org: SandboxOrg
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, client_id: str = wire.SANDBOX_CLIENT_ID, secret: str = wire.SANDBOX_CLIENT_SECRET) -> str:
        reply = self.client.post(
            wire.TOKEN_PATH, auth=(client_id, secret), data={"grant_type": "client_credentials"}
        )
        assert reply.status_code == 200, reply.text
        return reply.json()["access_token"]

    def headers(
        self, client_id: str = wire.SANDBOX_CLIENT_ID, secret: str = wire.SANDBOX_CLIENT_SECRET
    ) -> dict[str, str]:
        if client_id not in self.tokens:
            self.tokens[client_id] = self.token(client_id, secret)
        return {"Authorization": f"Bearer {self.tokens[client_id]}"}

    def get(self, path: str, client_id: str = wire.SANDBOX_CLIENT_ID, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers(client_id, SECRETS[client_id]), **kwargs)

    def post(self, path: str, body: Any, client_id: str = wire.SANDBOX_CLIENT_ID) -> Any:
        return self.client.post(path, json=body, headers=self.headers(client_id, SECRETS[client_id]))

    def set_limits(self, **limits: Any) -> None:
        assert self.client.put("/sandbox/limits", json=limits).status_code == 200

    def limits(self) -> dict[str, Any]:
        return self.client.get("/sandbox/limits").json()["limits"]


SECRETS = {
    wire.SANDBOX_CLIENT_ID: wire.SANDBOX_CLIENT_SECRET,
    "other-client": "other-secret",
    "limited-client": "limited-secret",
}


def harness(
    profile: str = "fast",
    org: Any = None,
    time_scale: float = 1.0,
    behaviours: Behaviours | None = None,
    **overrides: Any,
) -> Harness:
    clients = default_clients()
    clients["other-client"] = ClientSpec("other-secret")
    clients["limited-client"] = ClientSpec("limited-secret", frozenset({wire.PERMISSION_WFM_AGENT_VIEW}))
    config = SandboxConfig(
        profile=profile,
        seed=SEED,
        agents=40,
        history_start=HISTORY_START,
        limit_overrides=overrides,
        clients=clients,
        time_scale=time_scale,
        behaviours=behaviours or Behaviours(),
    )
    clock = ManualClock(NOW)
    app = create_app(config, org=org or shared_org(), clock=clock)
    # base_url: the admin routes answer only a loopback Host (TestClient's default is "testserver").
    client = TestClient(app, base_url="http://localhost", raise_server_exceptions=False)
    return Harness(client, clock, shared_org())


BULK_JOB = wire.ADHERENCE_BULK_JOB_PATH
DETAILS_JOB = wire.USER_DETAILS_JOB_PATH
RESULTS = wire.USER_DETAILS_JOB_RESULTS_PATH


def assert_error(reply: Any, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["contextId"] == reply.headers[wire.HEADER_CORRELATION_ID]
    assert body["details"] is not None and body["errors"] == []
    return body


def departed_at(h: Harness, user_id: str) -> datetime:
    user = h.org.user(user_id)
    assert user is not None and user.departed_at is not None
    return user.departed_at


def mu_ids(h: Harness) -> list[str]:
    return [mu.id for mu in h.org.management_units]


def advance_until(
    h: Harness, read_state: Any, wanted: str, step: float = 0.05, limit: int = 2000
) -> list[str]:
    """Advance the manual clock step by step until ``read_state()`` == wanted; the states seen, in order."""
    seen: list[str] = []
    for _ in range(limit):
        state = read_state()
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == wanted:
            return seen
        h.clock.advance(step)
    raise AssertionError(f"never reached {wanted}; saw {seen}")


def details_state(h: Harness, job_id: str, client_id: str = wire.SANDBOX_CLIENT_ID) -> str:
    return h.get(DETAILS_JOB.format(job_id=job_id), client_id).json()["state"]


def submit_details(
    h: Harness, start: datetime, end: datetime, users: list[str] | None = None, **extra: Any
) -> str:
    body: dict[str, Any] = {"interval": f"{format_ts(start)}/{format_ts(end)}", **extra}
    if users is not None:
        body["userFilters"] = [
            {"type": "or", "predicates": [{"dimension": "userId", "value": u} for u in users]}
        ]
    reply = h.post(wire.USER_DETAILS_JOBS_PATH, body)
    assert reply.status_code == 202, reply.text
    return reply.json()["jobId"]


def all_pages(h: Harness, job_id: str, page_size: int = 50) -> list[dict[str, Any]]:
    pages, cursor = [], None
    for _ in range(1000):
        params = {"pageSize": page_size, **({"cursor": cursor} if cursor else {})}
        reply = h.get(RESULTS.format(job_id=job_id), params=params)
        assert reply.status_code == 200, reply.text
        pages.append(reply.json())
        cursor = reply.json().get("cursor")
        if not cursor:
            return pages
    raise AssertionError("paging did not end")


# --- OAuth ------------------------------------------------------------------------------------------


def test_token_endpoint_accepts_basic_auth_and_form_fields_and_rejects_bad_clients() -> None:
    h = harness()
    basic = h.client.post(
        wire.TOKEN_PATH, auth=("wfm-sandbox", "wfm-sandbox-secret"), data={"grant_type": "client_credentials"}
    )
    assert (
        basic.status_code == 200
        and basic.json()["token_type"] == "bearer"
        and basic.json()["expires_in"] == 86400
    )
    assert "refresh_token" not in basic.json() and wire.HEADER_CORRELATION_ID in basic.headers
    form = h.client.post(
        wire.TOKEN_PATH,
        data={
            "grant_type": "client_credentials",
            "client_id": "wfm-sandbox",
            "client_secret": "wfm-sandbox-secret",
        },
    )
    assert form.status_code == 200
    unknown = h.client.post(wire.TOKEN_PATH, auth=("nobody", "x"), data={"grant_type": "client_credentials"})
    assert unknown.status_code == 400 and unknown.json() == {
        "error": "invalid_client",
        "description": "client not found",
    }
    wrong = h.client.post(
        wire.TOKEN_PATH, auth=("wfm-sandbox", "nope"), data={"grant_type": "client_credentials"}
    )
    assert wrong.json() == {"error": "invalid_client", "description": "authentication failed"}
    grant = h.client.post(
        wire.TOKEN_PATH, auth=("wfm-sandbox", "wfm-sandbox-secret"), data={"grant_type": "password"}
    )
    assert grant.status_code == 400 and grant.json()["error"] == wire.OAUTH_ERROR_UNSUPPORTED_GRANT_TYPE


def test_missing_unknown_expired_and_revoked_tokens_get_the_genesys_401_codes() -> None:
    h = harness(token_ttl_seconds=300)
    assert_error(h.client.get(wire.MANAGEMENT_UNITS_PATH), 401, wire.ERROR_AUTHENTICATION_REQUIRED)
    assert_error(
        h.client.get(wire.MANAGEMENT_UNITS_PATH, headers={"Authorization": "Bearer made-up"}),
        401,
        wire.ERROR_BAD_CREDENTIALS,
    )
    token = h.token()
    bearer = {"Authorization": f"Bearer {token}"}
    assert h.client.get(wire.MANAGEMENT_UNITS_PATH, headers=bearer).status_code == 200
    h.clock.advance(299)
    assert h.client.get(wire.MANAGEMENT_UNITS_PATH, headers=bearer).status_code == 200
    h.clock.advance(1)
    assert_error(
        h.client.get(wire.MANAGEMENT_UNITS_PATH, headers=bearer), 401, wire.ERROR_CREDENTIALS_EXPIRED
    )
    fresh = {"Authorization": f"Bearer {h.token()}"}
    assert h.client.post("/sandbox/tokens/revoke", json={}).json()["revoked"] >= 1
    assert_error(h.client.get(wire.MANAGEMENT_UNITS_PATH, headers=fresh), 401, wire.ERROR_BAD_CREDENTIALS)


def test_a_client_without_the_permission_gets_403_naming_it() -> None:
    h = harness()
    mu = mu_ids(h)[0]
    assert (
        h.get(wire.MANAGEMENT_UNIT_USERS_PATH.format(management_unit_id=mu), "limited-client").status_code
        == 200
    )
    body = assert_error(
        h.post(
            wire.USER_DETAILS_JOBS_PATH,
            {"interval": "2024-05-01T00:00:00Z/2024-05-02T00:00:00Z"},
            "limited-client",
        ),
        403,
        wire.ERROR_MISSING_PERMISSIONS,
    )
    assert wire.PERMISSION_USER_DETAIL_VIEW in body["message"]
    body = assert_error(
        h.post(wire.ADHERENCE_BULK_PATH, {}, "limited-client"), 403, wire.ERROR_MISSING_PERMISSIONS
    )
    assert wire.PERMISSION_HISTORICAL_ADHERENCE_VIEW in body["message"]


# --- discovery ---------------------------------------------------------------------------------------


def test_discovery_routes_list_the_org_model() -> None:
    h = harness()
    bus = h.get(wire.BUSINESS_UNITS_PATH).json()["entities"]
    assert {bu["id"] for bu in bus} == {bu.id for bu in h.org.business_units}
    listed = []
    for bu in bus:
        listed += h.get(wire.BUSINESS_UNIT_MANAGEMENT_UNITS_PATH.format(business_unit_id=bu["id"])).json()[
            "entities"
        ]
    assert sorted(mu["id"] for mu in listed) == sorted(mu_ids(h))
    assert {mu["timeZone"] for mu in listed} == {mu.time_zone for mu in h.org.management_units}
    members = h.get(wire.MANAGEMENT_UNIT_USERS_PATH.format(management_unit_id=mu_ids(h)[0])).json()[
        "entities"
    ]
    assert [m["id"] for m in members] == h.org.agent_ids(mu_ids(h)[0])
    seen, page = [], 1
    while True:
        listing = h.get(wire.USERS_PATH, params={"pageSize": 7, "pageNumber": page}).json()
        seen += [u["id"] for u in listing["entities"]]
        if "nextUri" not in listing:
            break
        page += 1
    # Active users only (Genesys's default state): the active agents in unit order, then the staff.
    active = h.org.user_ids(("active",))
    assert seen == active and listing["total"] == len(active) and listing["pageCount"] == page
    presences = h.get(wire.PRESENCE_DEFINITIONS_PATH).json()["entities"]
    assert {p["systemPresence"] for p in presences} <= set(wire.WFM_SYSTEM_PRESENCES)
    assert_error(
        h.get(wire.BUSINESS_UNIT_MANAGEMENT_UNITS_PATH.format(business_unit_id="nope")),
        404,
        wire.ERROR_NOT_FOUND,
    )
    assert_error(h.get("/api/v2/does/not/exist"), 404, wire.ERROR_NOT_FOUND)


# --- bulk adherence ------------------------------------------------------------------------------------


def adherence_body(mu: str, start: str, end: str, **item: Any) -> dict[str, Any]:
    return {
        "timeZone": "UTC",
        "items": [{"managementUnitId": mu, "startDate": start, "endDate": end, **item}],
    }


@pytest.mark.parametrize(
    ("mutate", "code", "fragment"),
    [
        (lambda b: b.update(timeZone="Mars/Olympus"), wire.ERROR_INVALID_VALUE, "time zone"),
        (lambda b: b.pop("timeZone"), wire.ERROR_BAD_REQUEST, "timeZone"),
        (lambda b: b.update(items=[]), wire.ERROR_BAD_REQUEST, "items"),
        (
            lambda b: b["items"][0].update(managementUnitId="no-such-mu"),
            wire.ERROR_INVALID_VALUE,
            "does not exist",
        ),
        (lambda b: b["items"][0].update(startDate="yesterday"), wire.ERROR_INVALID_DATE, "ISO-8601"),
        (lambda b: b["items"][0].update(endDate="2024-05-01T00:00:00Z"), wire.ERROR_INVALID_VALUE, "before"),
        (lambda b: b["items"][0].update(endDate="2024-06-02T00:00:00Z"), wire.ERROR_BAD_REQUEST, "31 days"),
        (
            lambda b: b["items"][0].update(endDate="2024-05-09T00:00:00Z", includeExceptions=True),
            wire.ERROR_BAD_REQUEST,
            "7 days",
        ),
        (lambda b: b["items"][0].update(userIds="abc"), wire.ERROR_INVALID_VALUE, "userIds"),
    ],
)
def test_bulk_adherence_validation(mutate: Any, code: str, fragment: str) -> None:
    h = harness()
    body = adherence_body(mu_ids(h)[0], "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z")
    mutate(body)
    assert fragment in assert_error(h.post(wire.ADHERENCE_BULK_PATH, body), 400, code)["message"]


def test_range_limits_allow_exactly_31_and_7_days() -> None:
    h = harness()
    mu = mu_ids(h)[0]
    ok31 = adherence_body(mu, "2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z")
    ok7 = adherence_body(mu, "2024-05-01T00:00:00+02:00", "2024-05-08T00:00:00+02:00", includeExceptions=True)
    assert h.post(wire.ADHERENCE_BULK_PATH, ok31).status_code == 202
    assert h.post(wire.ADHERENCE_BULK_PATH, ok7).status_code == 202


def test_bulk_job_completes_with_presigned_downloads_that_expire() -> None:
    h = harness(download_url_ttl_seconds=120)
    mu_a, mu_b = mu_ids(h)[:2]
    members = h.org.agent_ids(mu_a)
    body = {
        "timeZone": "America/Chicago",
        "items": [
            {
                "managementUnitId": mu_a,
                "startDate": "2024-05-01T05:00:00Z",
                "endDate": "2024-05-03T05:00:00Z",
                "userIds": [members[0], members[1], h.org.agent_ids(mu_b)[0]],
                "includeActuals": True,
            },
            {
                "managementUnitId": mu_b,
                "startDate": "2024-05-01T05:00:00.000Z",
                "endDate": "2024-05-02T05:00:00.000Z",
            },
        ],
    }
    reply = h.post(wire.ADHERENCE_BULK_PATH, body)
    assert reply.status_code == 202 and reply.json()["job"]["status"] == "Processing"
    job_id = reply.json()["job"]["id"]
    assert reply.json()["job"]["selfUri"] == BULK_JOB.format(job_id=job_id)
    states = advance_until(
        h, lambda: h.get(BULK_JOB.format(job_id=job_id)).json()["job"]["status"], "Complete"
    )
    assert states == ["Processing", "Complete"]
    urls = h.get(BULK_JOB.format(job_id=job_id)).json()["downloadUrls"]
    assert len(urls) == 2 and all("/sandbox/downloads/" in u and "signature=" in u for u in urls)
    first = h.client.get(urls[0])  # no Bearer needed
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    document = first.json()
    assert document["managementUnitId"] == mu_a
    assert [u["userId"] for u in document["userResults"]] == members[
        :2
    ]  # userIds honoured, non-member dropped
    assert all("actuals" in u and "exceptionInfo" not in u for u in document["userResults"])
    assert document["startDate"] == "2024-05-01T05:00:00.000Z"
    second = h.client.get(urls[1]).json()
    assert [u["userId"] for u in second["userResults"]] == h.org.agent_ids(mu_b)
    tampered = urls[0].replace("signature=", "signature=0")
    assert (
        h.client.get(tampered).status_code == 403 and "SignatureDoesNotMatch" in h.client.get(tampered).text
    )
    h.clock.advance(121)
    expired = h.client.get(urls[0])
    assert expired.status_code == 403 and "<Code>AccessDenied</Code>" in expired.text
    fresh = h.get(BULK_JOB.format(job_id=job_id)).json()["downloadUrls"][0]  # a new poll signs a new URL
    assert h.client.get(fresh).status_code == 200


@pytest.mark.parametrize(
    "behaviours", [Behaviours(), Behaviours().without(["empty_download_urls_while_processing"])]
)
def test_a_processing_bulk_job_lists_no_download_urls_as_real_orgs_do(behaviours: Behaviours) -> None:
    h = harness(behaviours=behaviours)
    body = adherence_body(mu_ids(h)[0], "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z")
    submitted = h.post(wire.ADHERENCE_BULK_PATH, body).json()
    polled = h.get(BULK_JOB.format(job_id=submitted["job"]["id"])).json()
    expected = [] if behaviours.empty_download_urls_while_processing else None
    for reply in (submitted, polled):
        assert reply["job"]["status"] == "Processing"
        assert reply.get("downloadUrls") == expected and ("downloadUrls" in reply) == (expected is not None)
    with pytest.raises(ValueError, match="empty_download_urls_while_processing"):
        Behaviours().without(["no_such_behaviour"])


def test_jobs_are_visible_only_to_the_client_that_created_them() -> None:
    h = harness()
    bulk = h.post(
        wire.ADHERENCE_BULK_PATH, adherence_body(mu_ids(h)[0], "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z")
    )
    bulk_id = bulk.json()["job"]["id"]
    details_id = submit_details(h, datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))
    assert h.get(BULK_JOB.format(job_id=bulk_id)).status_code == 200
    assert_error(h.get(BULK_JOB.format(job_id=bulk_id), "other-client"), 404, wire.ERROR_NOT_FOUND)
    assert_error(h.get(DETAILS_JOB.format(job_id=details_id), "other-client"), 404, wire.ERROR_NOT_FOUND)
    assert_error(h.get(RESULTS.format(job_id=details_id), "other-client"), 404, wire.ERROR_NOT_FOUND)
    assert_error(
        h.get(BULK_JOB.format(job_id="00000000-0000-4000-8000-000000000000")), 404, wire.ERROR_NOT_FOUND
    )


# --- analytics user-details jobs -----------------------------------------------------------------------


def test_user_details_job_life_cycle_and_retention() -> None:
    h = harness(result_retention_seconds=600)
    job_id = submit_details(h, START_OF_MAY, datetime(2024, 5, 3, tzinfo=UTC))
    status = h.get(DETAILS_JOB.format(job_id=job_id)).json()
    assert status["state"] == "QUEUED" and "completionDate" not in status and "submissionDate" in status
    before = assert_error(h.get(RESULTS.format(job_id=job_id)), 400, wire.ERROR_BAD_REQUEST)
    assert "FULFILLED" in before["message"]
    states = advance_until(h, lambda: details_state(h, job_id), "FULFILLED")
    assert states == ["QUEUED", "PENDING", "FULFILLED"]
    done = h.get(DETAILS_JOB.format(job_id=job_id)).json()
    assert done["completionDate"] >= done["submissionDate"]
    pages = all_pages(h, job_id, page_size=10)
    assert len(pages) > 1 and all("dataAvailabilityDate" in p for p in pages) and "cursor" not in pages[-1]
    users = {d["userId"] for p in pages for d in p["userDetails"]}
    # Departed agents' records are served too, up to their departure.
    assert users == {
        *h.org.agent_ids(),
        *(u for u in h.org.departed_agent_ids() if departed_at(h, u) > START_OF_MAY),
    }
    h.clock.advance(601)
    assert details_state(h, job_id) == "EXPIRED"
    assert_error(h.get(RESULTS.format(job_id=job_id)), 404, wire.ERROR_NOT_FOUND)


def test_delete_removes_the_job() -> None:
    h = harness()
    job_id = submit_details(h, datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))
    headers = h.headers()
    assert h.client.delete(DETAILS_JOB.format(job_id=job_id), headers=headers).status_code == 204
    assert_error(h.get(DETAILS_JOB.format(job_id=job_id)), 404, wire.ERROR_NOT_FOUND)
    assert_error(
        h.client.delete(DETAILS_JOB.format(job_id=job_id), headers=headers), 404, wire.ERROR_NOT_FOUND
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, wire.ERROR_BAD_REQUEST),
        ({"interval": "2024-05-01T00:00:00Z"}, wire.ERROR_INVALID_DATE),
        ({"interval": "2024-05-02T00:00:00Z/2024-05-01T00:00:00Z"}, wire.ERROR_INVALID_VALUE),
        ({"interval": "2024-13-01T00:00:00Z/2024-05-01T00:00:00Z"}, wire.ERROR_INVALID_DATE),
        (
            {"interval": "2024-05-01T00:00:00Z/2024-05-02T00:00:00Z", "order": "sideways"},
            wire.ERROR_INVALID_VALUE,
        ),
        (
            {
                "interval": "2024-05-01T00:00:00Z/2024-05-02T00:00:00Z",
                "userFilters": [{"type": "or", "predicates": [{"dimension": "queueId", "value": "x"}]}],
            },
            wire.ERROR_INVALID_VALUE,
        ),
        (
            {
                "interval": "2024-05-01T00:00:00Z/2024-05-02T00:00:00Z",
                "routingStatusFilters": [
                    {"type": "or", "predicates": [{"dimension": "routingStatus", "value": "BUSY"}]}
                ],
            },
            wire.ERROR_INVALID_VALUE,
        ),
        (
            {"interval": "2024-05-01T00:00:00Z/2024-05-02T00:00:00Z", "presenceFilters": [{"type": "xor"}]},
            wire.ERROR_INVALID_VALUE,
        ),
    ],
)
def test_user_details_job_validation(body: dict[str, Any], code: str) -> None:
    assert_error(harness().post(wire.USER_DETAILS_JOBS_PATH, body), 400, code)


def test_invalid_cursor_and_page_size_are_rejected() -> None:
    h = harness()
    job_id = submit_details(h, datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))
    advance_until(h, lambda: details_state(h, job_id), "FULFILLED")
    first = h.get(RESULTS.format(job_id=job_id), params={"pageSize": 5}).json()
    assert first["cursor"]
    forged = base64.urlsafe_b64encode(b"5.0000000000000000").decode().rstrip("=")
    for cursor in ("garbage!!", forged):
        assert_error(
            h.get(RESULTS.format(job_id=job_id), params={"cursor": cursor}), 400, wire.ERROR_INVALID_VALUE
        )
    other = submit_details(h, datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))
    advance_until(h, lambda: details_state(h, other), "FULFILLED")
    # a cursor is bound to its job
    assert_error(
        h.get(RESULTS.format(job_id=other), params={"cursor": first["cursor"]}), 400, wire.ERROR_INVALID_VALUE
    )
    for size in ("0", "100000", "ten"):
        assert_error(
            h.get(RESULTS.format(job_id=job_id), params={"pageSize": size}), 400, wire.ERROR_INVALID_VALUE
        )


def spanning_status(h: Harness) -> tuple[str, datetime, dict[str, Any]]:
    """A (user, UTC midnight, presence record) where a non-OFFLINE status spans that midnight."""
    for day in range(1, 28):
        midnight = datetime(2024, 5, day, tzinfo=UTC)
        for user_id in h.org.agent_ids():
            for span in h.org.presence(
                user_id, midnight - timedelta(seconds=1), midnight + timedelta(seconds=1)
            ):
                if span.start < midnight < span.end and span.system_presence != "OFFLINE":
                    return (
                        user_id,
                        midnight,
                        {"startTime": format_ts(span.start), "endTime": format_ts(span.end)},
                    )
    raise AssertionError("the org has no logged-in status across a UTC midnight in May 2024")


def presence_copies(pages: list[dict[str, Any]], user_id: str, start_time: str) -> int:
    return sum(
        1
        for page in pages
        for doc in page["userDetails"]
        if doc["userId"] == user_id
        for record in doc.get("primaryPresence", [])
        if record["startTime"] == start_time
    )


def test_midnight_duplication_adjacent_jobs_both_return_a_spanning_status_one_job_returns_it_once() -> None:
    h = harness()
    user_id, midnight, record = spanning_status(h)
    day = timedelta(days=1)
    jobs = {
        "before": submit_details(h, midnight - day, midnight, [user_id]),
        "after": submit_details(h, midnight, midnight + day, [user_id]),
        "both": submit_details(h, midnight - day, midnight + day, [user_id]),
    }
    for job_id in jobs.values():
        advance_until(h, lambda job_id=job_id: details_state(h, job_id), "FULFILLED")
    copies = {
        name: presence_copies(all_pages(h, job_id), user_id, record["startTime"])
        for name, job_id in jobs.items()
    }
    assert copies == {"before": 1, "after": 1, "both": 1}
    # records are not clipped to the job interval
    after_pages = all_pages(h, jobs["after"])
    starts = [
        r["startTime"] for p in after_pages for d in p["userDetails"] for r in d.get("primaryPresence", [])
    ]
    assert min(starts) < format_ts(midnight)


def test_pages_come_back_shorter_than_page_size_where_redundant_copies_were_filtered() -> None:
    h = harness()
    job_id = submit_details(h, datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 4, 15, tzinfo=UTC))
    advance_until(h, lambda: details_state(h, job_id), "FULFILLED", step=0.5)
    pages = all_pages(h, job_id, page_size=40)
    short_with_more = [p for p in pages if "cursor" in p and len(p["userDetails"]) < 40]
    assert short_with_more, "expected short pages (documents holding only a redundant multi-day status)"
    keys = [
        (d["userId"], r["startTime"], r["systemPresence"])
        for p in pages
        for d in p["userDetails"]
        for r in d.get("primaryPresence", [])
    ]
    assert len(keys) == len(set(keys))  # within one job every status appears once


def test_the_lagging_profile_keeps_the_watermark_hours_behind() -> None:
    h = harness(profile="lagging")
    availability = h.get(wire.USER_DETAILS_AVAILABILITY_PATH).json()["dataAvailabilityDate"]
    assert availability == format_ts(NOW - timedelta(hours=4))
    assert (
        harness(profile="lagging").limits()["job_submission_quota"]
        == harness(profile="realistic").limits()["job_submission_quota"]
    )


def test_availability_watermark_cuts_job_results() -> None:
    h = harness(availability_lag_seconds=7200)
    availability = h.get(wire.USER_DETAILS_AVAILABILITY_PATH).json()["dataAvailabilityDate"]
    assert availability == format_ts(NOW - timedelta(hours=2))
    job_id = submit_details(h, NOW - timedelta(days=1), NOW)
    advance_until(h, lambda: details_state(h, job_id), "FULFILLED")
    pages = all_pages(h, job_id, page_size=100)
    assert {p["dataAvailabilityDate"] for p in pages} == {availability}
    starts = [
        r["startTime"]
        for p in pages
        for d in p["userDetails"]
        for kind in ("primaryPresence", "routingStatus")
        for r in d.get(kind, [])
    ]
    assert starts and max(starts) < availability  # nothing starting after the watermark
    truth_starts = [
        r["startTime"]
        for user_id in h.org.agent_ids()
        for r in h.client.get(
            "/sandbox/truth/timeline",
            params={"userId": user_id, "start": availability, "end": format_ts(NOW)},
        ).json()["primaryPresence"]
    ]
    assert any(start >= availability for start in truth_starts)  # the truth does have such data


@pytest.mark.parametrize("open_records", [True, False])
def test_a_status_still_open_at_the_watermark_has_no_end_time(open_records: bool) -> None:
    behaviours = Behaviours() if open_records else Behaviours().without(["open_records"])
    h = harness(availability_lag_seconds=7200, behaviours=behaviours)
    availability = h.get(wire.USER_DETAILS_AVAILABILITY_PATH).json()["dataAvailabilityDate"]
    job_id = submit_details(h, NOW - timedelta(days=1), NOW)
    advance_until(h, lambda: details_state(h, job_id), "FULFILLED")
    served = {
        (d["userId"], kind, r["startTime"]): r.get("endTime")
        for p in all_pages(h, job_id, page_size=100)
        for d in p["userDetails"]
        for kind in ("primaryPresence", "routingStatus")
        for r in d.get(kind, [])
    }
    truth_ends = {
        (user_id, kind, r["startTime"]): r["endTime"]
        for user_id in {user_id for user_id, _, _ in served}  # departed agents too
        for kind, records in h.client.get(
            "/sandbox/truth/timeline",
            params={"userId": user_id, "start": format_ts(NOW - timedelta(days=3)), "end": format_ts(NOW)},
        )
        .json()
        .items()
        if kind in ("primaryPresence", "routingStatus")
        for r in records
    }
    still_open = {key for key in served if truth_ends[key] > availability}
    assert still_open, "some status should span the watermark"
    for key, end in served.items():
        assert end == (None if open_records and key in still_open else truth_ends[key]), key


# --- aggregates ---------------------------------------------------------------------------------------


def aggregates_query(users: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "interval": "2024-05-02T00:00:00Z/2024-05-03T00:00:00Z",
        "granularity": "PT6H",
        "groupBy": ["userId"],
        "metrics": list(wire.USER_AGGREGATE_METRICS),
        "filter": {"type": "or", "predicates": [{"dimension": "userId", "value": u} for u in users]},
        **extra,
    }


def test_aggregates_query_groups_by_user_and_validates() -> None:
    h = harness()
    users = h.org.agent_ids()[:3]
    reply = h.post(wire.USER_AGGREGATES_QUERY_PATH, aggregates_query(users))
    assert reply.status_code == 200, reply.text
    results = reply.json()["results"]
    assert {r["group"]["userId"] for r in results} <= set(users) and results
    for result in results:
        for bucket in result["data"]:
            start, end = bucket["interval"].split("/")
            assert datetime.fromisoformat(end) - datetime.fromisoformat(start) == timedelta(hours=6)
    assert "ON_QUEUE" in reply.json()["systemToOrganizationMappings"]
    too_many = aggregates_query([f"00000000-0000-4000-8000-{i:012d}" for i in range(101)])
    assert (
        "100"
        in assert_error(h.post(wire.USER_AGGREGATES_QUERY_PATH, too_many), 400, wire.ERROR_BAD_REQUEST)[
            "message"
        ]
    )
    assert (
        h.post(wire.USER_AGGREGATES_QUERY_PATH, aggregates_query(users * 33 + users[:1])).status_code == 200
    )
    for bad in (
        {"metrics": ["nConnected"]},
        {"groupBy": ["queueId"]},
        {"granularity": "PT30X"},
        {"timeZone": "Nowhere"},
    ):
        assert_error(
            h.post(wire.USER_AGGREGATES_QUERY_PATH, aggregates_query(users, **bad)),
            400,
            wire.ERROR_INVALID_VALUE,
        )


# --- limits -------------------------------------------------------------------------------------------


def test_limits_namespace_reports_the_limits_in_force() -> None:
    h = harness(token_rate_per_minute=123)
    entities = h.get(wire.LIMITS_NAMESPACE_PATH.format(namespace="platform.api")).json()["entities"]
    values = {e["key"]: e["value"] for e in entities}
    assert values["token.rate.per.minute"] == 123 and values["request.bytes.max"] == wire.REQUEST_BYTES_MAX
    assert all(e["namespace"] == "platform.api" for e in entities)
    assert_error(
        h.get(wire.LIMITS_NAMESPACE_PATH.format(namespace="no.such.namespace")), 404, wire.ERROR_NOT_FOUND
    )


def limit_values(h: Harness, namespace: str) -> dict[str, int]:
    reply = h.get(wire.LIMITS_NAMESPACE_PATH.format(namespace=namespace))
    assert reply.status_code == 200, reply.text
    assert all(e["namespace"] == namespace for e in reply.json()["entities"])
    return {e["key"]: e["value"] for e in reply.json()["entities"]}


def test_limits_namespace_reports_wall_clock_limits_under_a_time_scale() -> None:
    # Realistic profile (README table): 300 requests per 60 s, 60 jobs per 3600 s, 10 concurrent jobs,
    # 86400 s token validity and result retention, 3600 s download URLs. K = 60 compresses time 60-fold.
    h = harness(profile="realistic", time_scale=60)
    platform = limit_values(h, "platform.api")
    assert platform["token.rate.per.minute"] == 300 * 60
    assert platform["client.credentials.token.rate.per.minute"] == 300 * 60
    assert platform["request.bytes.max"] == wire.REQUEST_BYTES_MAX  # a count: not scaled
    for namespace in ("analytics", "historical.adherence"):
        jobs = limit_values(h, namespace)
        assert jobs["sandbox.jobs.submission.max"] == 60  # counts are not scaled
        assert jobs["sandbox.jobs.submission.window.seconds"] == 3600 // 60
        assert jobs["sandbox.jobs.concurrent.max"] == 10
    assert limit_values(h, "analytics")["sandbox.user.details.jobs.results.retention.seconds"] == 86400 // 60
    assert limit_values(h, "historical.adherence")["sandbox.download.url.validity.seconds"] == 3600 // 60
    auth = limit_values(h, "auth.api")
    assert auth["sandbox.token.validity.seconds"] == 86400 // 60
    assert auth["sandbox.token.creation.window.seconds"] == 1  # 60 s / 60

    # Fractions of a wall second round up (never report a window shorter than enforced), minimum 1.
    odd = harness(
        profile="realistic",
        time_scale=60,
        job_submission_window_seconds=150,
        download_url_ttl_seconds=70,
        result_retention_seconds=0,
    )
    adherence = limit_values(odd, "historical.adherence")
    assert adherence["sandbox.jobs.submission.window.seconds"] == 3  # 2.5 s
    assert adherence["sandbox.download.url.validity.seconds"] == 2  # 1.17 s
    assert limit_values(odd, "analytics")["sandbox.user.details.jobs.results.retention.seconds"] == 1  # 0 s


def test_limits_namespace_follows_runtime_limit_changes_and_matches_what_is_enforced() -> None:
    h = harness(profile="realistic", time_scale=60)
    before = limit_values(h, "analytics")
    h.set_limits(
        token_rate_per_minute=42,
        job_submission_quota=2,
        job_submission_window_seconds=300,
        max_concurrent_jobs=50,
    )
    assert limit_values(h, "platform.api")["token.rate.per.minute"] == 42 * 60
    for namespace in ("analytics", "historical.adherence"):
        jobs = limit_values(h, namespace)
        assert jobs["sandbox.jobs.submission.max"] == 2 != before["sandbox.jobs.submission.max"]
        assert jobs["sandbox.jobs.submission.window.seconds"] == 300 // 60
        assert jobs["sandbox.jobs.concurrent.max"] == 50
    # The reported quota and window are the ones enforced, in wall-clock seconds.
    window = limit_values(h, "analytics")["sandbox.jobs.submission.window.seconds"]
    interval = {"interval": "2024-05-01T00:00:00Z/2024-05-02T00:00:00Z"}
    assert [h.post(wire.USER_DETAILS_JOBS_PATH, interval).status_code for _ in range(3)] == [202, 202, 429]
    h.clock.advance(window - 1)
    assert h.post(wire.USER_DETAILS_JOBS_PATH, interval).status_code == 429
    h.clock.advance(1)
    assert h.post(wire.USER_DETAILS_JOBS_PATH, interval).status_code == 202


def test_per_token_budget_answers_normalized_429_with_headers() -> None:
    h = harness(token_rate_per_minute=3)
    counts = []
    for _ in range(3):
        reply = h.get(wire.MANAGEMENT_UNITS_PATH)
        assert reply.status_code == 200
        assert reply.headers[wire.HEADER_RATELIMIT_ALLOWED] == "3"
        counts.append(int(reply.headers[wire.HEADER_RATELIMIT_COUNT]))
    assert counts == [1, 2, 3]
    refused = h.get(wire.MANAGEMENT_UNITS_PATH)
    body = assert_error(refused, 429, wire.ERROR_TOO_MANY_REQUESTS_RETRY_AFTER)
    retry_after = int(refused.headers[wire.HEADER_RETRY_AFTER])
    assert 1 <= retry_after <= 60 and f"[{retry_after}]" in body["message"]
    other = h.client.get(wire.MANAGEMENT_UNITS_PATH, headers={"Authorization": f"Bearer {h.token()}"})
    assert other.status_code == 200  # the budget is per token
    h.clock.advance(60)
    assert h.get(wire.MANAGEMENT_UNITS_PATH).status_code == 200
    assert h.client.get("/sandbox/stats").json()["rateLimited"] == {"token.rate.per.minute": 1}


def test_job_submission_quota_and_concurrency_cap_throttle_job_creation() -> None:
    h = harness(job_submission_quota=2, job_submission_window_seconds=3600, max_concurrent_jobs=50)
    interval = {"interval": "2024-05-01T00:00:00Z/2024-05-02T00:00:00Z"}
    assert [h.post(wire.USER_DETAILS_JOBS_PATH, interval).status_code for _ in range(2)] == [202, 202]
    refused = h.post(wire.USER_DETAILS_JOBS_PATH, interval)
    assert_error(refused, 429, wire.ERROR_TOO_MANY_REQUESTS_RETRY_AFTER)
    assert int(refused.headers[wire.HEADER_RETRY_AFTER]) >= 3000  # the oldest submission leaves the window
    assert int(refused.headers[wire.HEADER_RATELIMIT_COUNT]) < int(
        refused.headers[wire.HEADER_RATELIMIT_ALLOWED]
    )
    h.clock.advance(3601)
    assert h.post(wire.USER_DETAILS_JOBS_PATH, interval).status_code == 202

    c = harness(max_concurrent_jobs=2, user_details_latency_base_seconds=100)
    assert [c.post(wire.USER_DETAILS_JOBS_PATH, interval).status_code for _ in range(3)] == [202, 202, 429]
    c.clock.advance(101)
    assert c.post(wire.USER_DETAILS_JOBS_PATH, interval).status_code == 202
    stats = c.client.get("/sandbox/stats").json()
    assert stats["rateLimited"] == {"jobs.concurrent.max": 1} and stats["peakConcurrentJobs"] == 2
    assert h.client.get("/sandbox/stats").json()["rateLimited"] == {"jobs.submission.rate": 1}


def test_token_creation_rate_limit() -> None:
    h = harness(token_creation_per_window=2, token_creation_window_seconds=60)
    grant = {"grant_type": "client_credentials"}
    codes = [
        h.client.post(wire.TOKEN_PATH, auth=("wfm-sandbox", "wfm-sandbox-secret"), data=grant).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    h.clock.advance(61)
    assert (
        h.client.post(wire.TOKEN_PATH, auth=("wfm-sandbox", "wfm-sandbox-secret"), data=grant).status_code
        == 200
    )
    assert h.client.get("/sandbox/stats").json()["rateLimited"] == {"token.creation.rate": 1}


# --- 4xx answers not covered above -------------------------------------------------------------------

MU_PATH = wire.MANAGEMENT_UNITS_PATH + "/{management_unit_id}"
TRUTH_USER = "00000000-0000-4000-8000-000000000000"  # not an agent of the org


def aggregates_with(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "interval": "2024-05-01T00:00:00Z/2024-05-02T00:00:00Z",
        "metrics": ["tSystemPresence"],
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("method", "path", "json_body", "status", "code"),
    [
        ("GET", MU_PATH.format(management_unit_id="nope"), None, 404, wire.ERROR_NOT_FOUND),
        (
            "GET",
            wire.MANAGEMENT_UNIT_USERS_PATH.format(management_unit_id="nope"),
            None,
            404,
            wire.ERROR_NOT_FOUND,
        ),
        ("GET", wire.USERS_PATH + "?pageSize=0", None, 400, wire.ERROR_INVALID_VALUE),
        ("GET", wire.USERS_PATH + "?pageSize=501", None, 400, wire.ERROR_INVALID_VALUE),
        ("GET", wire.USERS_PATH + "?pageNumber=zero", None, 400, wire.ERROR_INVALID_VALUE),
        ("DELETE", wire.MANAGEMENT_UNITS_PATH, None, 405, "method.not.allowed"),
        ("GET", wire.USER_DETAILS_JOBS_PATH, None, 405, "method.not.allowed"),
        (
            "POST",
            wire.USER_AGGREGATES_QUERY_PATH,
            aggregates_with(interval=None),
            400,
            wire.ERROR_BAD_REQUEST,
        ),
        ("POST", wire.USER_AGGREGATES_QUERY_PATH, aggregates_with(metrics=[]), 400, wire.ERROR_BAD_REQUEST),
        (
            "POST",
            wire.USER_AGGREGATES_QUERY_PATH,
            aggregates_with(granularity="PT30S"),
            400,
            wire.ERROR_INVALID_VALUE,
        ),
        (
            "POST",
            wire.USER_AGGREGATES_QUERY_PATH,
            aggregates_with(interval="2023-01-01T00:00:00Z/2024-01-01T00:00:00Z", granularity="PT1M"),
            400,
            wire.ERROR_BAD_REQUEST,
        ),
        (
            "POST",
            wire.USER_AGGREGATES_QUERY_PATH,
            aggregates_with(interval="2024-05-02T00:00:00Z/2024-05-01T00:00:00Z"),
            400,
            wire.ERROR_INVALID_VALUE,
        ),
    ],
)
def test_api_routes_answer_4xx_with_an_error_body(
    method: str, path: str, json_body: Any, status: int, code: str
) -> None:
    h = harness()
    reply = h.client.request(method, path, json=json_body, headers=h.headers())
    assert_error(reply, status, code)


@pytest.mark.parametrize(
    ("method", "path", "content", "status", "code"),
    [
        ("GET", f"/sandbox/truth/schedule?userId={TRUTH_USER}", None, 404, wire.ERROR_NOT_FOUND),
        ("GET", f"/sandbox/truth/timeline?userId={TRUTH_USER}", None, 404, wire.ERROR_NOT_FOUND),
        (
            "GET",
            "/sandbox/truth/timeline?userId={agent}&start=yesterday&end=now",
            None,
            400,
            wire.ERROR_INVALID_DATE,
        ),
        (
            "GET",
            "/sandbox/truth/schedule?userId={agent}&start=2024-05-02T00:00:00Z&end=2024-05-01T00:00:00Z",
            None,
            400,
            wire.ERROR_INVALID_VALUE,
        ),
        (
            "GET",
            "/sandbox/truth/schedule?userId={agent}&start=2022-01-01T00:00:00Z&end=2024-05-01T00:00:00Z",
            None,
            400,
            wire.ERROR_INVALID_VALUE,
        ),
        ("POST", "/sandbox/tokens/revoke", b"{not json", 400, wire.ERROR_BAD_REQUEST),
        ("PUT", "/sandbox/faults", b"[{", 400, wire.ERROR_BAD_REQUEST),
        ("POST", "/sandbox/limits", b"{}", 405, "method.not.allowed"),
    ],
)
def test_admin_and_truth_routes_answer_4xx_with_an_error_body(
    method: str, path: str, content: bytes | None, status: int, code: str
) -> None:
    h = harness()
    url = path.format(agent=h.org.agent_ids()[0])
    assert_error(h.client.request(method, url, content=content), status, code)


# --- bodies and garbage -------------------------------------------------------------------------------


def test_media_type_size_and_malformed_bodies() -> None:
    h = harness()
    headers = h.headers()
    url = wire.USER_DETAILS_JOBS_PATH
    assert_error(
        h.client.post(url, content=b"interval=x", headers={**headers, "Content-Type": "text/plain"}),
        415,
        wire.ERROR_UNSUPPORTED_MEDIA_TYPE,
    )
    big = b'{"interval": "' + b"x" * (wire.REQUEST_BYTES_MAX + 10) + b'"}'
    assert_error(
        h.client.post(url, content=big, headers={**headers, "Content-Type": "application/json"}),
        413,
        wire.ERROR_REQUEST_ENTITY_TOO_LARGE,
    )
    for garbage in (b"{", b"[1, 2]", b"\xff\xfe", b"null"):
        reply = h.client.post(url, content=garbage, headers={**headers, "Content-Type": "application/json"})
        assert_error(reply, 400, wire.ERROR_BAD_REQUEST)


def test_server_survives_garbage_input_without_unhandled_errors() -> None:
    h = harness()
    headers = {**h.headers(), "Content-Type": "application/json"}
    bodies = [
        b"",
        b"0",
        b'"text"',
        b"{}",
        b'{"items": [null]}',
        b'{"items": [{"managementUnitId": 5}]}',
        b'{"interval": 7}',
        b'{"interval": "a/b/c"}',
        b'{"metrics": {}}',
        b'{"filter": []}',
        b'{"timeZone": ["UTC"], "items": "x"}',
        b'{"userFilters": [{"type": "or", "predicates": [7]}],'
        b' "interval": "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z"}',
        b'{"interval": "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z", "granularity": "P",'
        b' "metrics": ["tSystemPresence"]}',
        b"\x00" * 50,
    ]
    posts = (
        wire.ADHERENCE_BULK_PATH,
        wire.USER_DETAILS_JOBS_PATH,
        wire.USER_AGGREGATES_QUERY_PATH,
        wire.TOKEN_PATH,
        "/sandbox/faults",
        "/sandbox/limits",
        "/sandbox/tokens/revoke",
    )
    for path in posts:
        for body in bodies:
            method = "PUT" if path in ("/sandbox/faults", "/sandbox/limits") else "POST"
            reply = h.client.request(method, path, content=body, headers=headers)
            assert 400 <= reply.status_code < 500 or reply.status_code in (200, 202), (path, body, reply.text)
    for path in (
        RESULTS.format(job_id="x") + "?pageSize=-1&cursor=%00",
        "/sandbox/downloads/x?expires=1&signature=z",
        "/sandbox/truth/schedule?userId=nobody",
        "/api/v2/users?pageSize=abc",
        "/%ff%fe",
    ):
        assert h.client.get(path, headers=headers).status_code < 500
    assert h.client.get("/sandbox/stats").json()["unhandledErrors"] == 0
    h.tokens.clear()
    assert h.get(wire.MANAGEMENT_UNITS_PATH).status_code == 200


class BrokenOrg:
    """The shared org, except that presence timelines raise: a stand-in for any bug in the model."""

    def __getattr__(self, name: str) -> Any:
        return getattr(shared_org(), name)

    def presence(self, *args: Any) -> Any:
        raise RuntimeError("simulated bug in the org model")

    def presence_epochs(self, *args: Any) -> Any:  # what result pages read
        raise RuntimeError("simulated bug in the org model")


def test_a_bug_becomes_a_500_error_body_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = harness(org=BrokenOrg())
    job_id = submit_details(h, datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))
    advance_until(h, lambda: details_state(h, job_id), "FULFILLED")
    body = assert_error(h.get(RESULTS.format(job_id=job_id)), 500, wire.ERROR_INTERNAL_SERVER_ERROR)
    assert "Traceback" not in body["message"] and "simulated" not in body["message"]
    assert h.client.get("/sandbox/stats").json()["unhandledErrors"] == 1
    assert h.get(wire.MANAGEMENT_UNITS_PATH).status_code == 200


def test_adherence_jobs_are_forgotten_after_retention_and_concurrency_429_waits_for_the_next_completion() -> (
    None
):
    h = harness(adherence_job_retention_seconds=100, max_concurrent_jobs=1, adherence_latency_base_seconds=50)
    body = adherence_body(mu_ids(h)[0], "2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z")
    job_id = h.post(wire.ADHERENCE_BULK_PATH, body).json()["job"]["id"]
    h.clock.advance(10)
    refused = h.post(wire.ADHERENCE_BULK_PATH, body)
    assert_error(refused, 429, wire.ERROR_TOO_MANY_REQUESTS_RETRY_AFTER)
    retry_after = int(refused.headers[wire.HEADER_RETRY_AFTER])
    assert 1 <= retry_after <= 50
    h.clock.advance(retry_after)
    assert h.get(BULK_JOB.format(job_id=job_id)).json()["job"]["status"] == "Complete"
    assert h.post(wire.ADHERENCE_BULK_PATH, body).status_code == 202
    h.clock.advance(100)
    assert_error(h.get(BULK_JOB.format(job_id=job_id)), 404, wire.ERROR_NOT_FOUND)


def test_aggregates_have_no_data_from_the_future() -> None:
    h = harness()
    users = h.org.agent_ids()[:10]
    future = aggregates_query(users, interval=f"{format_ts(NOW)}/{format_ts(NOW + timedelta(days=1))}")
    assert h.post(wire.USER_AGGREGATES_QUERY_PATH, future).json()["results"] == []
    today = aggregates_query(
        users,
        interval=f"{format_ts(NOW - timedelta(hours=12))}/{format_ts(NOW + timedelta(hours=12))}",
        granularity="PT1H",
    )
    results = h.post(wire.USER_AGGREGATES_QUERY_PATH, today).json()["results"]
    starts = [bucket["interval"].split("/")[0] for r in results for bucket in r["data"]]
    assert starts and max(starts) < format_ts(NOW)


def test_cli_builds_the_config_and_rejects_bad_options() -> None:
    from wfm_pipeline.sandbox.cli import build_parser, config_from_args

    args = build_parser().parse_args(
        [
            "--profile",
            "fast",
            "--time-scale",
            "60",
            "--token-ttl",
            "600",
            "--limit",
            "max_concurrent_jobs=3",
            "--client",
            "x:y:wfm:agent:view",
        ]
    )
    config = config_from_args(args)
    limits = config.limits()
    assert limits.max_concurrent_jobs == 3 and limits.token_ttl_seconds == 600
    assert limits.scaled(config.time_scale).token_ttl_seconds == 10
    assert config.clients["x"].permissions == frozenset({"wfm:agent:view"})
    assert wire.SANDBOX_CLIENT_ID in config.clients
    for bad in (["--limit", "nope=1"], ["--profile", "slow"], ["--client", "lonely"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)


def test_time_scale_divides_windows_and_ttls_but_retry_after_stays_a_whole_second() -> None:
    h = harness(profile="realistic", time_scale=60, token_rate_per_minute=2)
    grant = {"grant_type": "client_credentials"}
    issued = h.client.post(
        wire.TOKEN_PATH, auth=(wire.SANDBOX_CLIENT_ID, wire.SANDBOX_CLIENT_SECRET), data=grant
    )
    assert issued.json()["expires_in"] == 86400 // 60
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    assert [h.client.get(wire.MANAGEMENT_UNITS_PATH, headers=bearer).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    refused = h.client.get(wire.MANAGEMENT_UNITS_PATH, headers=bearer)
    assert refused.headers[wire.HEADER_RETRY_AFTER] == "1"  # the 60 s window is 1 s of wall time
    h.clock.advance(1)  # one compressed minute later the budget is back
    assert h.client.get(wire.MANAGEMENT_UNITS_PATH, headers=bearer).status_code == 200
    h.clock.advance(86400 / 60)
    assert_error(
        h.client.get(wire.MANAGEMENT_UNITS_PATH, headers=bearer), 401, wire.ERROR_CREDENTIALS_EXPIRED
    )


def test_job_latency_grows_with_agents_times_days() -> None:
    h = harness(user_details_latency_base_seconds=1, user_details_latency_per_agent_day_seconds=1)
    small = submit_details(
        h, datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC), h.org.agent_ids()[:1]
    )
    large = submit_details(
        h, datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 8, tzinfo=UTC), h.org.agent_ids()[:10]
    )
    advance_until(h, lambda: details_state(h, small), "FULFILLED", step=1)
    assert details_state(h, large) in ("QUEUED", "PENDING")
    more = 0
    while details_state(h, large) != "FULFILLED" and more < 1000:
        h.clock.advance(1)
        more += 1
    assert 50 < more < 1000  # 10 agents x 7 days at 1 s each, minus the few seconds already passed


def test_admin_routes_limits_faults_and_stats_reset() -> None:
    h = harness()
    for bad in ({"no_such_limit": 1}, {"max_concurrent_jobs": "many"}, {"token_ttl_seconds": -5}, [1, 2]):
        assert_error(h.client.put("/sandbox/limits", json=bad), 400, wire.ERROR_BAD_REQUEST)
    h.set_limits(max_concurrent_jobs=4)
    assert h.limits()["max_concurrent_jobs"] == 4
    rules = [{"kind": "error_503", "route": wire.USERS_PATH, "count": 2, "retryAfter": 7}]
    assert h.client.put("/sandbox/faults", json=rules).json()["rules"][0]["served"] == 0
    assert [h.get(wire.USERS_PATH).status_code for _ in range(3)] == [503, 503, 200]
    assert h.client.get("/sandbox/faults").json()["rules"][0]["served"] == 2
    stats = h.client.get("/sandbox/stats").json()
    assert stats["requests"][f"GET {wire.USERS_PATH}"] == {"503": 2, "200": 1}
    assert stats["faults"] == {"error_503": 2} and stats["tokensIssued"] == 1
    assert h.client.post("/sandbox/stats/reset").status_code == 204
    assert h.client.get("/sandbox/stats").json()["faultsTotal"] == 0
    assert h.client.delete("/sandbox/faults").json() == {"rules": []}
