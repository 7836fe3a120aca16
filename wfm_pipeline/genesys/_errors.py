"""Typed errors. Each carries the HTTP status, the Genesys error code, the message and the correlation id,
and its text says what the user can do about it."""

from __future__ import annotations

import re
from typing import Any


class GenesysError(Exception):
    """Base of every error the client raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
        body: Any = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.correlation_id = correlation_id
        self.body = body
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [self.message]
        details = []
        if self.status is not None:
            details.append(f"status {self.status}")
        if self.code:
            details.append(f"code {self.code}")
        if self.correlation_id:
            details.append(f"correlation id {self.correlation_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)


class ConfigurationError(GenesysError):
    """Settings are incomplete or contradictory (raised before any request)."""


class UnknownRegionError(ConfigurationError):
    """The region is neither an SDK region name nor a known Genesys Cloud domain."""


class StateFileError(GenesysError):
    """A state file in ``state_dir`` cannot be used (corrupt, not SQLite, unreadable)."""


class BudgetWaitTimeout(GenesysError):
    """Waited longer than allowed for the shared budget (a stuck pause or a full job-slot table)."""


class AuthenticationError(GenesysError):
    """The OAuth client id/secret were rejected or a token stopped working (401)."""


class PermissionDeniedError(GenesysError):
    """403: the OAuth client's role lacks a permission; ``missing_permissions`` names it."""

    def __init__(self, message: str, *, missing_permissions: tuple[str, ...] = (), **kwargs: Any) -> None:
        self.missing_permissions = missing_permissions
        super().__init__(message, **kwargs)


class BadRequestError(GenesysError):
    """400/413/415: the server refused the request; the message is the server's reason."""


class NotFoundError(GenesysError):
    """404: the job, management unit or resource does not exist (or is not visible to this client)."""


class RateLimitedError(GenesysError):
    """429 persisted past the retry budget."""


class ServerError(GenesysError):
    """5xx persisted past the retry budget."""


class NetworkError(GenesysError):
    """Timeouts or dropped connections persisted past the retry budget."""


class UnexpectedResponseError(GenesysError):
    """A 2xx response whose body is not what the endpoint documents (not JSON, a field missing or of the
    wrong type, an id that is not a UUID, results that do not belong to their request)."""


class ResponseTooLargeError(GenesysError):
    """A response body (after decompression) exceeded ``ClientSettings.max_response_bytes``."""


class ExportJobFailed(GenesysError):
    """An export job ended in Error (adherence) or FAILED (analytics)."""

    def __init__(self, message: str, *, job_id: str | None = None, **kwargs: Any) -> None:
        self.job_id = job_id
        super().__init__(message, **kwargs)


_PERMISSION_RE = re.compile(r"[A-Za-z]+:[A-Za-z]+:[A-Za-z]+")


def missing_permissions_from(body: Any) -> tuple[str, ...]:
    """Permissions named in a 403 ErrorBody (messageParams first, else parsed from the message)."""
    if not isinstance(body, dict):
        return ()
    found: list[str] = []
    params = body.get("messageParams")
    if isinstance(params, dict):
        for value in params.values():
            found.extend(_PERMISSION_RE.findall(str(value)))
    if not found:
        found.extend(_PERMISSION_RE.findall(str(body.get("message", ""))))
    return tuple(dict.fromkeys(found))


class JobTimeout(GenesysError):
    """A job did not reach a terminal state within ``job_timeout_seconds``."""
