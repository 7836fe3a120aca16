"""Every HTTP exchange with Genesys, composed of small pieces:

- ``ClientCredentialsAuth`` (auth.py): the bearer token and the one repeat after a 401, an httpx auth flow;
- ``_Accounting`` (here): an auth flow around it that admits each wire request through the shared budget
  (when the call is budgeted), counts it and shows the budget every response's ``inin-ratelimit-*``;
- ``send_with_retries`` (retry.py): the retry loop and its policy; the 429 pause goes to the shared budget;
- ``error_for_response`` / ``token_error`` / ``Transport._network_error`` (here): the error mapping;
- ``Transport._exchange``: one send, its body streamed and capped at ``max_response_bytes``;
- ``LimitsDiscovery`` (limits.py), given by the client: applied before the first budgeted request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

import httpx

from wfm_pipeline import wire
from wfm_pipeline.genesys._auth import ClientCredentialsAuth, TokenCache, TokenMinter
from wfm_pipeline.genesys._budget import SharedBudget
from wfm_pipeline.genesys._errors import (
    AuthenticationError,
    BadRequestError,
    GenesysError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseTooLargeError,
    ServerError,
    missing_permissions_from,
)
from wfm_pipeline.genesys._limits import LimitsDiscovery
from wfm_pipeline.genesys._metrics import RequestMetrics
from wfm_pipeline.genesys._responses import ResponseBody, correlation_id_of
from wfm_pipeline.genesys._retry import NetworkFailure, RetryPolicy, send_with_retries
from wfm_pipeline.genesys._settings import ClientSettings

USER_AGENT = "wfm-pipeline (httpx)"
# Headers that describe the body as sent on the wire, not the decoded bytes a Response is rebuilt with.
_ENCODED_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def error_for_response(response: httpx.Response, settings: ClientSettings) -> GenesysError:
    """The typed exception for a non-retryable (or exhausted) error response, worded so a user can act."""
    body = _json_or_none(response)
    status = response.status_code
    code = body.get("code") if isinstance(body, dict) else None
    server_message = (body.get("message") if isinstance(body, dict) else None) or response.text[:500] or ""
    where = f"{response.request.method} {response.request.url.path}"
    common: dict[str, Any] = {
        "status": status,
        "code": code,
        "correlation_id": correlation_id_of(response, body),
        "body": body,
    }
    if status == 401:
        return AuthenticationError(
            f"{where}: Genesys rejected the token of the OAuth client from {settings.client_id_source} "
            f"even after minting a new one ({server_message}). Check that the client still exists, is "
            "allowed the client-credentials grant, and that its secret was not rotated.",
            **common,
        )
    if status == 403:
        missing = missing_permissions_from(body)
        named = ", ".join(missing) if missing else "(not named by the server)"
        return PermissionDeniedError(
            f"{where}: permission denied; missing permission(s): {named}. Grant them to the role of "
            f"the OAuth client from {settings.client_id_source}. Server said: {server_message}",
            missing_permissions=missing,
            **common,
        )
    if status == 404:
        return NotFoundError(f"{where}: not found. Server said: {server_message}", **common)
    if status == 429:
        return RateLimitedError(
            f"{where}: still rate limited after retrying. Server said: {server_message}", **common
        )
    if status >= 500:
        return ServerError(
            f"{where}: server error persisted after retrying. Server said: {server_message}", **common
        )
    return BadRequestError(f"{where}: request refused: {server_message}", **common)


def token_error(response: httpx.Response, settings: ClientSettings) -> AuthenticationError:
    body = _json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    description = ""
    if isinstance(body, dict):
        description = str(
            body.get("description") or body.get("error_description") or body.get("message") or ""
        )
    lowered = description.lower()
    if "not found" in lowered:
        hint = f"the OAuth client id is unknown in this region: check {settings.client_id_source}"
    elif "authentication failed" in lowered or "secret" in lowered:
        hint = f"the client secret is wrong: check {settings.client_secret_source}"
    else:
        hint = f"check {settings.client_id_source} and {settings.client_secret_source}"
    return AuthenticationError(
        f"Token request to {settings.login_base_url} failed: {hint} "
        f"({error or 'error'}: {description or response.text[:200]})",
        status=response.status_code,
        code=error,
        correlation_id=correlation_id_of(response, body),
        body=body,
    )


# Admits one wire request through the shared budget; returns the seconds it waited.
Admission = Callable[[], float]


class _Accounting(httpx.Auth):
    """The wire requests of one attempt, as the inner flow produces them (the first and, after a 401, its
    repeat): each waits for ``admit`` (budgeted calls) and is counted; each response shows ``observe`` its
    headers. A repeat counts as a retry."""

    def __init__(
        self,
        inner: httpx.Auth,
        metrics: RequestMetrics,
        admit: Admission | None,
        observe: Callable[[httpx.Headers], None] | None,
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._admit = admit
        self._observe = observe

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._count_admitted()  # before the inner flow: a token is taken after the budget wait, not before
        flow = self._inner.sync_auth_flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            if self._observe is not None:
                self._observe(response.headers)
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return
            self._metrics.retries += 1
            self._count_admitted()

    def _count_admitted(self) -> None:
        if self._admit is not None:
            self._metrics.waited_seconds += self._admit()
        self._metrics.requests += 1


class Transport:
    def __init__(
        self,
        settings: ClientSettings,
        http: httpx.Client,
        budget: SharedBudget,
        tokens_factory: Callable[[TokenMinter], TokenCache],
        metrics: RequestMetrics,
        *,
        limits: LimitsDiscovery | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``tokens_factory`` builds the token cache around this transport's minting call; ``limits``, when
        given, is applied before the first budgeted request (``apply_org_limits``)."""
        self.settings = settings
        self.http = http
        self.budget = budget
        self.metrics = metrics
        self.policy = policy or RetryPolicy(
            max_attempts=settings.max_attempts,
            max_total_seconds=settings.max_retry_seconds,
            backoff_base_seconds=settings.backoff_base_seconds,
            backoff_cap_seconds=settings.backoff_cap_seconds,
            retry_after_cap_seconds=settings.max_pause_seconds,
        )
        self._limits = limits
        self._sleep = sleep
        self._clock = clock
        self.tokens = tokens_factory(self._mint_token)
        self.auth = ClientCredentialsAuth(self.tokens)
        self._client_credentials = httpx.BasicAuth(settings.client_id, settings.client_secret)

    def apply_org_limits(self) -> None:
        """Size the budget by the org's reported limits, the first time only (no-op without discovery).
        Every budgeted request calls it; call it before taking job slots, which are sized by it."""
        if self._limits is not None:
            self._limits.apply_once(lambda path: self.request("GET", path))

    # --- OAuth --------------------------------------------------------------------------------------------
    def _mint_token(self) -> tuple[str, float]:
        response = self._send(
            "POST",
            self.settings.login_base_url + wire.TOKEN_PATH,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            content=b"grant_type=client_credentials",
            auth=self._client_credentials,
            admit=None,
        )
        if response.status_code != 200:
            raise token_error(response, self.settings)
        body = ResponseBody.of(response)
        expires_in = body.value("expires_in", default=86400)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
            raise body.error(f"expires_in is {expires_in!r}, expected a positive number of seconds")
        return body.text("access_token"), float(expires_in)

    # --- API calls ----------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        authenticated: bool = True,
        budgeted: bool = True,
        submission: bool = False,
    ) -> httpx.Response:
        """Send one logical request; returns a 2xx response or raises a typed GenesysError. Unauthenticated
        and unbudgeted: presigned download URLs (they carry their own signature; no token may leak there)."""
        admit: Admission | None = None
        if budgeted:
            self.apply_org_limits()
            admit = self.budget.acquire_submission if submission else self.budget.acquire_request
        url = path_or_url if "://" in path_or_url else self.settings.api_base_url + path_or_url
        auth = self.auth if authenticated else None
        response = self._send(method, url, json=json, params=params, auth=auth, admit=admit)
        if response.is_success:
            return response
        raise error_for_response(response, self.settings)

    def request_json(self, method: str, path_or_url: str, **options: Any) -> ResponseBody:
        """``request`` and its JSON body (``UnexpectedResponseError`` naming the endpoint if not JSON)."""
        return ResponseBody.of(self.request(method, path_or_url, **options))

    def _send(
        self,
        method: str,
        url: str,
        *,
        auth: httpx.Auth | None,
        admit: Admission | None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """The first non-retryable response (2xx or error); NetworkError when the network keeps failing."""
        accounting = _Accounting(
            auth or httpx.Auth(), self.metrics, admit, self.budget.observe if admit is not None else None
        )
        send_headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}

        def attempt() -> httpx.Response:
            request = self.http.build_request(
                method, url, headers=send_headers, json=json, content=content, params=params
            )
            return self._exchange(request, accounting)

        def wait(status: int | None, delay: float) -> None:
            if status == 429 and admit is not None:
                # The token's budget is spent for everyone: pause all processes; our next admission waits.
                self.budget.pause(delay)
            else:
                self.metrics.waited_seconds += delay
                self._sleep(delay)

        outcome = send_with_retries(attempt, self.policy, self.metrics, wait=wait, clock=self._clock)
        if isinstance(outcome, NetworkFailure):
            raise self._network_error(method, url, outcome) from outcome.error
        return outcome

    def _exchange(self, request: httpx.Request, auth: httpx.Auth) -> httpx.Response:
        """One attempt, the body read in full but never past ``max_response_bytes`` decoded bytes (so a
        huge or decompression-bomb body fails fast instead of filling memory)."""
        cap = self.settings.max_response_bytes
        streamed = self.http.send(request, auth=auth, stream=True)
        try:
            body = bytearray()
            for chunk in streamed.iter_bytes():
                body += chunk
                if len(body) > cap:
                    raise ResponseTooLargeError(
                        f"{request.method} {request.url.path}: the response exceeds {cap:,} bytes "
                        "(ClientSettings.max_response_bytes); nothing was kept. Raise the setting if the "
                        "server is right, or lower the request's window or page size.",
                        status=streamed.status_code,
                        correlation_id=correlation_id_of(streamed),
                    )
        finally:
            streamed.close()
        # The decoded body under the original status and headers (minus those describing the encoded one).
        kept = [(k, v) for k, v in streamed.headers.multi_items() if k not in _ENCODED_BODY_HEADERS]
        return httpx.Response(
            streamed.status_code,
            headers=kept,
            content=bytes(body),
            request=request,
            extensions=streamed.extensions,
        )

    def _network_error(self, method: str, url: str, failure: NetworkFailure) -> NetworkError:
        exc = failure.error
        detail = (
            f"{type(exc).__name__} ({exc}) after {failure.attempts} attempts"
            if failure.retryable
            else repr(exc)
        )
        target = httpx.URL(url)
        origin = f"{target.scheme}://{target.netloc.decode()}"
        where = ""
        if target.host == httpx.URL(self.settings.api_base_url).host:
            where = f" (the API address comes from {self.settings.api_base_url_source})"
        elif target.host == httpx.URL(self.settings.login_base_url).host:
            where = f" (the login address comes from {self.settings.api_base_url_source})"
        return NetworkError(f"{method} {target.path}: could not reach {origin}{where}: {detail}")
