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
    ServerError,
    missing_permissions_from,
)
from wfm_pipeline.genesys.metrics import RequestMetrics
from wfm_pipeline.genesys.retry import (
    RetryPolicy,
    is_retryable_exception,
    is_retryable_status,
    parse_retry_after,
)
from wfm_pipeline.genesys.settings import ClientSettings

USER_AGENT = "wfm-pipeline (httpx)"


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def correlation_id_of(response: httpx.Response, body: Any = None) -> str | None:
    found = response.headers.get(wire.HEADER_CORRELATION_ID)
    if not found and isinstance(body, dict):
        found = body.get("contextId")
    return found


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
            retry_after_cap_seconds=settings.retry_after_cap_seconds,
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
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthenticationError(
                f"Token response from {self.settings.login_base_url} had no access_token"
            )
        return str(token), float(body.get("expires_in") or 86400)

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
                response = self.http.request(
                    method, url, headers=send_headers, json=json, content=content, params=params
                )
            except httpx.HTTPError as exc:
                if not is_retryable_exception(exc):
                    raise NetworkError(f"{method} {httpx.URL(url).path}: {exc!r}") from exc
                delay = self.policy.backoff(attempt)
                if not self.policy.should_retry(attempt, self._clock() - started, delay):
                    raise NetworkError(
                        f"{method} {httpx.URL(url).path}: {type(exc).__name__} after {attempt} attempts"
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
