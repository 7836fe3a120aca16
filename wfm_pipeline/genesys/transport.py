"""Every HTTP exchange with Genesys: budget, token, retries, error mapping and accounting in one place."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from wfm_pipeline import wire
from wfm_pipeline.genesys.auth import TokenCache
from wfm_pipeline.genesys.budget import SharedBudget
from wfm_pipeline.genesys.errors import (
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
from wfm_pipeline.genesys.metrics import RequestMetrics
from wfm_pipeline.genesys.responses import ResponseBody, correlation_id_of
from wfm_pipeline.genesys.retry import (
    RetryPolicy,
    is_retryable_exception,
    is_retryable_status,
    parse_retry_after,
)
from wfm_pipeline.genesys.settings import ClientSettings

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


class Transport:
    def __init__(
        self,
        settings: ClientSettings,
        http: httpx.Client,
        budget: SharedBudget,
        tokens_factory: Callable[[Callable[[], tuple[str, float]]], TokenCache],
        metrics: RequestMetrics,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
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
        self._sleep = sleep
        self._clock = clock
        self.tokens = tokens_factory(self._mint_token)
        # Run once, before the first API request or job slot (limits discovery; see GenesysClient).
        self.before_first_use: Callable[[], None] | None = None

    def prepare(self) -> None:
        """Run the one-time ``before_first_use`` hook (cleared first, so its own requests do not recurse)."""
        hook, self.before_first_use = self.before_first_use, None
        if hook is not None:
            hook()

    def _wait(self, seconds: float) -> None:
        self.metrics.waited_seconds += seconds
        self._sleep(seconds)

    # --- OAuth --------------------------------------------------------------------------------------------
    def _mint_token(self) -> tuple[str, float]:
        credentials = f"{self.settings.client_id}:{self.settings.client_secret}".encode()
        headers = {
            "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        response = self._send_with_retries(
            "POST",
            self.settings.login_base_url + wire.TOKEN_PATH,
            headers=headers,
            content=b"grant_type=client_credentials",
            budgeted=False,
            authenticated=False,
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
        """Send one logical request; returns a 2xx response or raises a typed GenesysError."""
        if budgeted:
            self.prepare()
        url = path_or_url if "://" in path_or_url else self.settings.api_base_url + path_or_url
        response = self._send_with_retries(
            method,
            url,
            json=json,
            params=params,
            authenticated=authenticated,
            budgeted=budgeted,
            submission=submission,
        )
        if response.is_success:
            return response
        raise error_for_response(response, self.settings)

    def request_json(self, method: str, path_or_url: str, **options: Any) -> ResponseBody:
        """``request`` and its JSON body (``UnexpectedResponseError`` naming the endpoint if not JSON)."""
        return ResponseBody.of(self.request(method, path_or_url, **options))

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json: Any,
        content: bytes | None,
        params: Mapping[str, Any] | None,
    ) -> httpx.Response:
        """One exchange, the body read in full but never past ``max_response_bytes`` decoded bytes (so a
        huge or decompression-bomb body fails fast instead of filling memory)."""
        request = self.http.build_request(
            method, url, headers=headers, json=json, content=content, params=params
        )
        cap = self.settings.max_response_bytes
        streamed = self.http.send(request, stream=True)
        try:
            body = bytearray()
            for chunk in streamed.iter_bytes():
                body += chunk
                if len(body) > cap:
                    raise ResponseTooLargeError(
                        f"{method} {request.url.path}: the response exceeds {cap:,} bytes "
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

    def _network_error(self, method: str, url: str, detail: str) -> NetworkError:
        target = httpx.URL(url)
        origin = f"{target.scheme}://{target.netloc.decode()}"
        where = ""
        if target.host == httpx.URL(self.settings.api_base_url).host:
            where = f" (the API address comes from {self.settings.api_base_url_source})"
        elif target.host == httpx.URL(self.settings.login_base_url).host:
            where = f" (the login address comes from {self.settings.api_base_url_source})"
        return NetworkError(f"{method} {target.path}: could not reach {origin}{where}: {detail}")

    def _send_with_retries(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        authenticated: bool,
        budgeted: bool,
        submission: bool = False,
    ) -> httpx.Response:
        """The first non-retryable response (2xx or error); NetworkError when the network keeps failing."""
        started = self._clock()
        attempt = 0
        refreshed_after_401 = False
        while True:
            attempt += 1
            if budgeted:
                waited = self.budget.acquire_submission() if submission else self.budget.acquire_request()
                self.metrics.waited_seconds += waited
            send_headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
            token = self.tokens.get() if authenticated else None
            if token is not None:
                send_headers["Authorization"] = f"Bearer {token}"
            self.metrics.requests += 1
            try:
                response = self._send_once(
                    method, url, headers=send_headers, json=json, content=content, params=params
                )
            except httpx.HTTPError as exc:
                if not is_retryable_exception(exc):
                    raise self._network_error(method, url, repr(exc)) from exc
                delay = self.policy.backoff(attempt)
                if not self.policy.should_retry(attempt, self._clock() - started, delay):
                    raise self._network_error(
                        method, url, f"{type(exc).__name__} ({exc}) after {attempt} attempts"
                    ) from exc
                self.metrics.retries += 1
                self._wait(delay)
                continue
            if budgeted:
                self.budget.observe(response.headers)
            status = response.status_code
            if status == 401 and authenticated and not refreshed_after_401 and token is not None:
                # Expired or revoked: mint once (or pick up another process's fresh token) and repeat.
                refreshed_after_401 = True
                self.tokens.invalidate(token)
                self.metrics.retries += 1
                attempt -= 1  # the refresh is not a failure of the retry budget
                continue
            if not is_retryable_status(status):
                return response
            if status == 429:
                self.metrics.throttled += 1
            retry_after = parse_retry_after(response.headers.get(wire.HEADER_RETRY_AFTER))
            delay = self.policy.delay(attempt, status, retry_after)
            if not self.policy.should_retry(attempt, self._clock() - started, delay):
                return response
            self.metrics.retries += 1
            if status == 429 and budgeted:
                # The token's budget is spent for everyone: pause all processes; our next acquire waits.
                self.budget.pause(delay)
            else:
                self._wait(delay)
