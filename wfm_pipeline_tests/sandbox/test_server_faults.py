"""Fault switches, determinism of served bytes and robustness, over real sockets (subprocess sandbox)."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from typing import Any

import httpx
import pytest

from wfm_pipeline import wire
from wfm_pipeline.sandbox.launcher import SandboxProcess

MU_PATH = wire.MANAGEMENT_UNITS_PATH
DETAILS_JOB = wire.USER_DETAILS_JOB_PATH


def token(http: httpx.Client) -> dict[str, str]:
    reply = http.post(
        wire.TOKEN_PATH,
        auth=(wire.SANDBOX_CLIENT_ID, wire.SANDBOX_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
    )
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def set_faults(http: httpx.Client, rules: list[dict[str, Any]]) -> None:
    reply = http.put("/sandbox/faults", json=rules)
    assert reply.status_code == 200, reply.text


@pytest.fixture
def http(sandbox: SandboxProcess) -> Any:
    with httpx.Client(base_url=sandbox.base_url, timeout=30) as client:
        client.delete("/sandbox/faults")
        yield client
        client.delete("/sandbox/faults")


def wait_state(http: httpx.Client, headers: dict[str, str], job_id: str, done: tuple[str, ...]) -> str:
    for _ in range(400):
        state = http.get(DETAILS_JOB.format(job_id=job_id), headers=headers).json()["state"]
        if state in done:
            return state
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def bulk_job(http: httpx.Client, headers: dict[str, str]) -> str:
    mu = http.get(MU_PATH, headers=headers).json()["entities"][0]["id"]
    body = {
        "timeZone": "UTC",
        "items": [
            {"managementUnitId": mu, "startDate": "2024-02-01T00:00:00Z", "endDate": "2024-02-02T00:00:00Z"}
        ],
    }
    reply = http.post(wire.ADHERENCE_BULK_PATH, json=body, headers=headers)
    assert reply.status_code == 202
    return reply.json()["job"]["id"]


def wait_bulk(http: httpx.Client, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(400):
        body = http.get(wire.ADHERENCE_BULK_JOB_PATH.format(job_id=job_id), headers=headers).json()
        if body["job"]["status"] != "Processing":
            return body
        time.sleep(0.05)
    raise AssertionError("bulk job did not finish")


@pytest.mark.parametrize(
    ("kind", "retry_after", "status", "code"),
    [
        ("error_500", None, 500, wire.ERROR_INTERNAL_SERVER_ERROR),
        ("error_502", None, 502, "bad.gateway"),
        ("error_503", None, 503, wire.ERROR_SERVICE_UNAVAILABLE),
        ("error_503", 3, 503, wire.ERROR_SERVICE_UNAVAILABLE),
        ("error_504", None, 504, wire.ERROR_REQUEST_TIMEOUT),
        ("error_504", 2, 504, wire.ERROR_REQUEST_TIMEOUT),
        ("legacy_429", None, 429, wire.ERROR_TOO_MANY_REQUESTS),
        ("rate_limit_429", 4, 429, wire.ERROR_TOO_MANY_REQUESTS_RETRY_AFTER),
    ],
)
def test_error_faults(http: httpx.Client, kind: str, retry_after: int | None, status: int, code: str) -> None:
    headers = token(http)
    rule: dict[str, Any] = {"kind": kind, "route": MU_PATH, "count": 1}
    if retry_after is not None:
        rule["retryAfter"] = retry_after
    set_faults(http, [rule])
    before = http.get("/sandbox/stats").json()["faults"].get(kind, 0)
    reply = http.get(MU_PATH, headers=headers)
    assert reply.status_code == status
    body = reply.json()
    assert body["code"] == code and body["status"] == status
    assert body["contextId"] == reply.headers[wire.HEADER_CORRELATION_ID]
    if retry_after is None:
        assert wire.HEADER_RETRY_AFTER not in reply.headers
    else:
        assert reply.headers[wire.HEADER_RETRY_AFTER] == str(retry_after)
    assert http.get(MU_PATH, headers=headers).status_code == 200  # count=1: only the first request
    assert http.get("/sandbox/stats").json()["faults"][kind] == before + 1


def test_slow_fault_still_answers(http: httpx.Client) -> None:
    headers = token(http)
    set_faults(http, [{"kind": "slow", "route": MU_PATH, "count": 1, "delaySeconds": 0.2}])
    assert http.get(MU_PATH, headers=headers).status_code == 200
    assert http.get("/sandbox/stats").json()["faults"]["slow"] >= 1


def test_dropped_connection_closes_the_socket_without_a_response(http: httpx.Client) -> None:
    headers = token(http)
    set_faults(http, [{"kind": "drop_connection", "route": MU_PATH, "count": 1}])
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(MU_PATH, headers=headers)
    assert http.get(MU_PATH, headers=headers).status_code == 200
    assert http.get("/sandbox/stats").json()["requests"][f"GET {MU_PATH}"]["dropped"] >= 1


def test_truncated_download_sends_fewer_bytes_than_content_length(http: httpx.Client) -> None:
    headers = token(http)
    done = wait_bulk(http, headers, bulk_job(http, headers))
    url = done["downloadUrls"][0]
    whole = httpx.get(url)
    assert whole.status_code == 200
    set_faults(http, [{"kind": "truncate_download", "route": "/sandbox/downloads/*", "count": 1}])
    with httpx.stream("GET", url) as reply:
        assert int(reply.headers["content-length"]) == len(whole.content)
        with pytest.raises(httpx.RemoteProtocolError):
            reply.read()
    assert httpx.get(url).content == whole.content


def test_token_revocation_mid_run(http: httpx.Client) -> None:
    headers = token(http)
    assert http.get(MU_PATH, headers=headers).status_code == 200
    set_faults(http, [{"kind": "revoke_token", "route": MU_PATH, "count": 1}])
    revoked = http.get(MU_PATH, headers=headers)
    assert revoked.status_code == 401 and revoked.json()["code"] == wire.ERROR_BAD_CREDENTIALS
    assert http.get(MU_PATH, headers=headers).status_code == 401
    assert http.get(MU_PATH, headers=token(http)).status_code == 200


def test_failing_and_early_expiring_jobs(http: httpx.Client) -> None:
    headers = token(http)
    interval = {"interval": "2024-02-01T00:00:00Z/2024-02-02T00:00:00Z"}
    set_faults(http, [{"kind": "fail_job", "route": wire.USER_DETAILS_JOBS_PATH, "count": 1}])
    failed = http.post(wire.USER_DETAILS_JOBS_PATH, json=interval, headers=headers).json()["jobId"]
    assert wait_state(http, headers, failed, ("FAILED", "FULFILLED")) == "FAILED"
    assert http.get(DETAILS_JOB.format(job_id=failed), headers=headers).json()["errorMessage"]
    set_faults(http, [{"kind": "expire_job", "route": wire.USER_DETAILS_JOBS_PATH, "count": 1}])
    expired = http.post(wire.USER_DETAILS_JOBS_PATH, json=interval, headers=headers).json()["jobId"]
    assert wait_state(http, headers, expired, ("EXPIRED", "FULFILLED")) == "EXPIRED"
    normal = http.post(wire.USER_DETAILS_JOBS_PATH, json=interval, headers=headers).json()["jobId"]
    assert wait_state(http, headers, normal, ("EXPIRED", "FULFILLED", "FAILED")) == "FULFILLED"

    set_faults(http, [{"kind": "fail_job", "route": wire.ADHERENCE_BULK_PATH, "count": 1}])
    errored = wait_bulk(http, headers, bulk_job(http, headers))
    assert errored["job"]["status"] == "Error" and "downloadUrls" not in errored
    set_faults(http, [{"kind": "expire_job", "route": wire.ADHERENCE_BULK_PATH, "count": 1}])
    early = wait_bulk(http, headers, bulk_job(http, headers))
    denied = httpx.get(early["downloadUrls"][0])
    assert denied.status_code == 403 and "AccessDenied" in denied.text


EXHAUSTED_FOR_A_YEAR = {
    "inin-ratelimit-count": "300",
    "inin-ratelimit-allowed": "300",
    "inin-ratelimit-reset": "31536000",
}


def header_values(reply: httpx.Response, name: str) -> list[str]:
    """Every value of header ``name`` as sent on the wire (case-insensitive), one per header line."""
    return [value.decode() for key, value in reply.headers.raw if key.decode().lower() == name.lower()]


def test_ratelimit_headers_fault_replaces_the_sandbox_headers_on_a_normal_200(http: httpx.Client) -> None:
    headers = token(http)
    normal = http.get(MU_PATH, headers=headers)
    assert normal.status_code == 200
    assert header_values(normal, wire.HEADER_RATELIMIT_ALLOWED) == ["6000"]  # fast profile's budget
    set_faults(
        http, [{"kind": "ratelimit_headers", "route": MU_PATH, "count": 1, "headers": EXHAUSTED_FOR_A_YEAR}]
    )
    before = http.get("/sandbox/stats").json()["faults"].get("ratelimit_headers", 0)
    faulted = http.get(MU_PATH, headers=headers)
    assert faulted.status_code == 200 and faulted.content == normal.content  # handled normally
    for name, value in EXHAUSTED_FOR_A_YEAR.items():
        assert header_values(faulted, name) == [value]  # replaced: the sandbox's own value is gone
    assert faulted.headers[wire.HEADER_CORRELATION_ID]
    # count=1: the next response carries the sandbox's own budget again (3 requests so far on this token).
    after = http.get(MU_PATH, headers=headers)
    assert header_values(after, wire.HEADER_RATELIMIT_COUNT) == ["3"]
    assert header_values(after, wire.HEADER_RATELIMIT_ALLOWED) == ["6000"]
    assert http.get("/sandbox/stats").json()["faults"]["ratelimit_headers"] == before + 1
    described = http.get("/sandbox/faults").json()["rules"]
    assert described[0]["headers"] == EXHAUSTED_FOR_A_YEAR and described[0]["served"] == 1


def test_ratelimit_headers_replace_case_insensitively_also_on_another_faults_response(
    http: httpx.Client,
) -> None:
    headers = token(http)
    # The 429 fault comes first in the list and answers the request; the headers still dress that answer.
    set_faults(
        http,
        [
            {"kind": "rate_limit_429", "route": MU_PATH, "count": 1, "retryAfter": 2},
            {
                "kind": "ratelimit_headers",
                "route": MU_PATH,
                "count": 1,
                "headers": {"RETRY-AFTER": "7", "ININ-RateLimit-Count": "299"},
            },
        ],
    )
    reply = http.get(MU_PATH, headers=headers)
    assert reply.status_code == 429 and reply.json()["code"] == wire.ERROR_TOO_MANY_REQUESTS_RETRY_AFTER
    assert header_values(reply, wire.HEADER_RETRY_AFTER) == ["7"]
    assert header_values(reply, wire.HEADER_RATELIMIT_COUNT) == ["299"]
    assert header_values(reply, wire.HEADER_CORRELATION_ID) == [reply.json()["contextId"]]  # not named: kept


def test_ratelimit_headers_with_probability_hit_a_deterministic_share(http: httpx.Client) -> None:
    headers = token(http)
    rule = {
        "kind": "ratelimit_headers",
        "route": MU_PATH,
        "probability": 0.5,
        "headers": EXHAUSTED_FOR_A_YEAR,
    }
    set_faults(http, [rule])
    counts = [
        header_values(http.get(MU_PATH, headers=headers), wire.HEADER_RATELIMIT_COUNT) for _ in range(20)
    ]
    hit = [c == ["300"] for c in counts]
    assert any(hit) and not all(hit)  # the rule's RNG is seeded: the same mix on every run
    assert all(len(c) == 1 for c in counts)
    assert http.get("/sandbox/faults").json()["rules"][0]["served"] == sum(hit)


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "ratelimit_headers"},  # headers required
        {"kind": "ratelimit_headers", "headers": {}},
        {"kind": "ratelimit_headers", "headers": [["inin-ratelimit-count", "300"]]},
        {"kind": "ratelimit_headers", "headers": {"inin-ratelimit-count": 300}},  # values are strings
        {"kind": "ratelimit_headers", "headers": {"Content-Length": "1"}},  # could break the framing
        {"kind": "ratelimit_headers", "headers": {"X-Anything": "1"}},
        {"kind": "ratelimit_headers", "headers": {"inin-ratelimit-": "1"}},
        {"kind": "ratelimit_headers", "headers": {"inin-ratelimit-count": "1\r\nX-Injected: 1"}},
        {"kind": "ratelimit_headers", "headers": {"inin-ratelimit-count": "1", "ININ-RATELIMIT-COUNT": "2"}},
        {"kind": "error_500", "headers": {"inin-ratelimit-count": "1"}},  # headers only for this kind
    ],
)
def test_invalid_ratelimit_headers_rules_are_rejected(http: httpx.Client, rule: dict[str, Any]) -> None:
    reply = http.put("/sandbox/faults", json=[rule])
    assert reply.status_code == 400 and reply.json()["code"] == wire.ERROR_BAD_REQUEST, reply.text
    assert http.get("/sandbox/faults").json() == {"rules": []}


def test_invalid_fault_rules_are_rejected(http: httpx.Client) -> None:
    for rules in (
        [{"kind": "meteor"}],
        [{"kind": "error_500", "probability": 2}],
        {"kind": "error_500"},
        [{"kind": "error_500", "count": 1, "probability": 0.5}],
        [{"kind": "slow", "delaySeconds": -1}],
    ):
        reply = http.put("/sandbox/faults", json=rules)
        assert reply.status_code == 400 and reply.json()["code"] == wire.ERROR_BAD_REQUEST
    assert http.get("/sandbox/faults").json() == {"rules": []}


def fault_sequence(base_url: str) -> list[int]:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        headers = token(http)
        set_faults(http, [{"kind": "error_503", "route": MU_PATH, "probability": 0.5, "retryAfter": 1}])
        return [http.get(MU_PATH, headers=headers).status_code for _ in range(40)]


def test_probabilistic_faults_are_deterministic_under_the_seed(start_sandbox: Any) -> None:
    first = fault_sequence(start_sandbox(seed=5).base_url)
    second = fault_sequence(start_sandbox(seed=5).base_url)
    assert first == second and {200, 503} <= set(first)


def served_bytes(base_url: str) -> list[bytes]:
    """Run one fixed request sequence and return every body that should be a function of the seed.

    Job ids are not: each server start draws its own (so a restarted sandbox never hands a resumed id
    another request's results), and so are the cursors signed over them. They are masked here; the
    documents, pages, downloads and aggregates served for the same requests must stay byte-identical."""
    bodies: list[bytes] = []
    with httpx.Client(base_url=base_url, timeout=30) as http:
        headers = token(http)
        units = http.get(MU_PATH, headers=headers)
        bodies.append(units.content)
        bodies.append(http.get(wire.USERS_PATH, params={"pageSize": 50}, headers=headers).content)
        job = http.post(
            wire.USER_DETAILS_JOBS_PATH,
            json={"interval": "2024-04-01T00:00:00Z/2024-04-03T00:00:00Z"},
            headers=headers,
        )
        job_id = job.json()["jobId"]
        bodies.append(job.content.replace(job_id.encode(), b"<job id>"))
        wait_state(http, headers, job_id, ("FULFILLED",))
        cursor = None
        for _ in range(100):
            page = http.get(
                wire.USER_DETAILS_JOB_RESULTS_PATH.format(job_id=job_id),
                params={"pageSize": 40, **({"cursor": cursor} if cursor else {})},
                headers=headers,
            )
            # dataAvailabilityDate follows the wall clock and the cursor signs the per-start job id;
            # everything else (including whether a cursor follows) must be byte-identical.
            masked = re.sub(rb'"dataAvailabilityDate":"[^"]*"', b"", page.content)
            bodies.append(re.sub(rb'"cursor":"[^"]*"', b'"cursor":"<cursor>"', masked))
            cursor = page.json().get("cursor")
            if not cursor:
                break
        done = wait_bulk(http, headers, bulk_job(http, headers))
        bodies.append(httpx.get(done["downloadUrls"][0]).content)
        users = [
            u["id"]
            for u in http.get(wire.USERS_PATH, params={"pageSize": 5}, headers=headers).json()["entities"]
        ]
        aggregates = http.post(
            wire.USER_AGGREGATES_QUERY_PATH,
            headers=headers,
            json={
                "interval": "2024-04-01T00:00:00Z/2024-04-02T00:00:00Z",
                "granularity": "PT1H",
                "groupBy": ["userId"],
                "metrics": list(wire.USER_AGGREGATE_METRICS),
                "filter": {"type": "or", "predicates": [{"dimension": "userId", "value": u} for u in users]},
            },
        )
        bodies.append(aggregates.content)
    return bodies


def test_same_seed_serves_identical_bytes_apart_from_job_ids_on_two_server_processes(
    start_sandbox: Any,
) -> None:
    first = served_bytes(start_sandbox(seed=21, agents=50).base_url)
    second = served_bytes(start_sandbox(seed=21, agents=50).base_url)
    assert len(first) >= 6 and all(first)
    assert any(b'"cursor":"<cursor>"' in body for body in first)  # several pages: cursors were compared
    assert first == second
    other_seed = served_bytes(start_sandbox(seed=22, agents=50).base_url)
    assert other_seed[-1] != first[-1]


def test_server_survives_malformed_http(sandbox: SandboxProcess) -> None:
    host, port = sandbox.base_url.removeprefix("http://").split(":")
    for garbage in (
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"POST /oauth/token HTTP/1.1\r\n" + b"A" * 70000,
    ):
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(garbage)
            raw.shutdown(socket.SHUT_WR)
            with contextlib.suppress(ConnectionResetError, TimeoutError):
                raw.recv(4096)
    assert httpx.get(sandbox.base_url + "/sandbox/health").status_code == 200
    assert httpx.get(sandbox.base_url + "/sandbox/stats").json()["unhandledErrors"] == 0
