"""The transport's pieces alone: the token auth flow, the retry loop, and the per-wire-request accounting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from wfm_pipeline.genesys._auth import ClientCredentialsAuth, TokenCache
from wfm_pipeline.genesys._budget import SharedBudget
from wfm_pipeline.genesys._metrics import RequestMetrics
from wfm_pipeline.genesys._retry import NetworkFailure, RetryPolicy, send_with_retries
from wfm_pipeline.genesys._settings import ClientSettings
from wfm_pipeline.genesys._transport import Transport

API = "http://genesys.test"


class Minter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> tuple[str, float]:
        self.calls += 1
        return f"token-{self.calls}", 3600.0


def server(valid: set[str], seen: list[str | None]) -> httpx.MockTransport:
    """An API accepting only ``valid`` bearer tokens; records each request's Authorization header."""

    def handle(request: httpx.Request) -> httpx.Response:
        authorization = request.headers.get("Authorization")
        seen.append(authorization)
        if authorization is not None and authorization.removeprefix("Bearer ") in valid:
            return httpx.Response(200, json={})
        return httpx.Response(401, json={"code": "bad.credentials"})

    return httpx.MockTransport(handle)


# --- ClientCredentialsAuth -------------------------------------------------------------------------------
def test_auth_sets_the_cached_bearer_token(tmp_path: Path) -> None:
    minter, seen = Minter(), []
    auth = ClientCredentialsAuth(TokenCache(tmp_path, "cid", "host", minter))
    with httpx.Client(transport=server({"token-1"}, seen), auth=auth) as http:
        assert http.get(f"{API}/a").status_code == 200
        assert http.get(f"{API}/b").status_code == 200
    assert seen == ["Bearer token-1", "Bearer token-1"] and minter.calls == 1


def test_auth_mints_once_after_a_401_and_repeats_the_request(tmp_path: Path) -> None:
    minter, seen = Minter(), []
    auth = ClientCredentialsAuth(TokenCache(tmp_path, "cid", "host", minter))
    with httpx.Client(transport=server({"token-2"}, seen), auth=auth) as http:  # token-1 was revoked
        assert http.get(f"{API}/a").status_code == 200
    assert seen == ["Bearer token-1", "Bearer token-2"] and minter.calls == 2


def test_auth_repeats_only_once_so_a_second_401_is_the_answer(tmp_path: Path) -> None:
    minter, seen = Minter(), []
    auth = ClientCredentialsAuth(TokenCache(tmp_path, "cid", "host", minter))
    with httpx.Client(transport=server(set(), seen), auth=auth) as http:
        assert http.get(f"{API}/a").status_code == 401
    assert seen == ["Bearer token-1", "Bearer token-2"] and minter.calls == 2


# --- send_with_retries -----------------------------------------------------------------------------------
def scripted(*outcomes: httpx.Response | httpx.HTTPError) -> Callable[[], httpx.Response]:
    queue = list(outcomes)

    def send() -> httpx.Response:
        outcome = queue.pop(0)
        if isinstance(outcome, httpx.HTTPError):
            raise outcome
        return outcome

    return send


POLICY = RetryPolicy(max_attempts=3, backoff_base_seconds=1.0, random=lambda: 1.0)
REQUEST = httpx.Request("GET", API)


def test_retryable_statuses_are_retried_with_their_delays() -> None:
    waits: list[tuple[int | None, float]] = []
    metrics = RequestMetrics()
    send = scripted(
        httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(503), httpx.Response(200)
    )
    outcome = send_with_retries(
        send, POLICY, metrics, wait=lambda s, d: waits.append((s, d)), clock=lambda: 0.0
    )
    assert isinstance(outcome, httpx.Response) and outcome.status_code == 200
    assert waits == [(429, 7.0), (503, 2.0)]  # Retry-After, then backoff for attempt 2
    assert (metrics.retries, metrics.throttled) == (2, 1)


def test_a_429_is_counted_even_when_the_policy_gives_up() -> None:
    metrics = RequestMetrics()
    send = scripted(httpx.Response(429))
    policy = RetryPolicy(max_attempts=1)
    outcome = send_with_retries(send, policy, metrics, wait=lambda s, d: None, clock=lambda: 0.0)
    assert isinstance(outcome, httpx.Response) and outcome.status_code == 429
    assert (metrics.retries, metrics.throttled) == (0, 1)


def test_a_final_error_response_is_returned_at_once() -> None:
    waits: list[tuple[int | None, float]] = []
    outcome = send_with_retries(
        scripted(httpx.Response(404)),
        POLICY,
        RequestMetrics(),
        wait=lambda s, d: waits.append((s, d)),
        clock=lambda: 0.0,
    )
    assert isinstance(outcome, httpx.Response) and outcome.status_code == 404 and waits == []


def test_network_errors_are_retried_then_reported_with_the_attempts() -> None:
    waits: list[tuple[int | None, float]] = []
    timeout = httpx.ReadTimeout("slow", request=REQUEST)
    outcome = send_with_retries(
        scripted(timeout, timeout, timeout),
        POLICY,
        RequestMetrics(),
        wait=lambda s, d: waits.append((s, d)),
        clock=lambda: 0.0,
    )
    assert outcome == NetworkFailure(timeout, attempts=3, retryable=True)
    assert waits == [(None, 1.0), (None, 2.0)]


def test_a_network_error_not_worth_retrying_ends_the_loop_at_once() -> None:
    unsupported = httpx.UnsupportedProtocol("ftp", request=REQUEST)
    outcome = send_with_retries(
        scripted(unsupported), POLICY, RequestMetrics(), wait=lambda s, d: None, clock=lambda: 0.0
    )
    assert outcome == NetworkFailure(unsupported, attempts=1, retryable=False)


def test_the_loop_is_bounded_in_time() -> None:
    now = [0.0]
    policy = RetryPolicy(max_attempts=10, max_total_seconds=5.0, backoff_base_seconds=1.0, random=lambda: 1.0)

    def wait(status: int | None, delay: float) -> None:
        now[0] += delay

    send = scripted(*[httpx.Response(500)] * 10)
    outcome = send_with_retries(send, policy, RequestMetrics(), wait=wait, clock=lambda: now[0])
    assert isinstance(outcome, httpx.Response) and outcome.status_code == 500
    assert now[0] == 3.0  # waited 1 + 2; a further 4 s would pass the 5 s bound


# --- Transport: accounting per wire request --------------------------------------------------------------
def make_transport(
    tmp_path: Path, handle: Callable[[httpx.Request], httpx.Response]
) -> tuple[Transport, RequestMetrics]:
    settings = ClientSettings.for_sandbox(API, discover_limits=False)
    metrics = RequestMetrics()
    transport = Transport(
        settings,
        httpx.Client(transport=httpx.MockTransport(handle)),
        SharedBudget(tmp_path, "k"),
        lambda mint: TokenCache(tmp_path, settings.client_id, settings.api_host, mint),
        metrics,
        sleep=lambda _: None,
    )
    return transport, metrics


def token_then(api: Callable[[httpx.Request], httpx.Response]) -> Callable[[httpx.Request], httpx.Response]:
    minted = [0]

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            minted[0] += 1
            return httpx.Response(200, json={"access_token": f"token-{minted[0]}", "expires_in": 3600})
        return api(request)

    return handle


def test_the_repeat_after_a_401_passes_the_budget_and_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = [httpx.Response(401, json={}), httpx.Response(200, json={"ok": True})]
    transport, metrics = make_transport(tmp_path, token_then(lambda request: answers.pop(0)))
    admitted: list[str] = []
    acquire = transport.budget.acquire_request
    monkeypatch.setattr(transport.budget, "acquire_request", lambda: admitted.append("x") or acquire())
    assert transport.request_json("GET", "/api/v2/x").value("ok") is True
    assert len(admitted) == 2  # the first request and its repeat with the fresh token
    assert transport.tokens.minted == 2
    assert (metrics.requests, metrics.retries) == (4, 1)  # two token requests, two API requests


def test_unauthenticated_requests_carry_no_token_and_spend_no_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[httpx.Request] = []

    def download(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"{}")

    transport, metrics = make_transport(tmp_path, token_then(download))
    monkeypatch.setattr(transport.budget, "acquire_request", lambda: pytest.fail("budget spent"))
    transport.request("GET", "http://dl.test/file?sig=x", authenticated=False, budgeted=False)
    assert [r.headers.get("Authorization") for r in seen] == [None]
    assert transport.tokens.minted == 0 and metrics.requests == 1
