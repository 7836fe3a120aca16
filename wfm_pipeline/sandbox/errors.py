"""Wire-format responses: Genesys ``ErrorBody`` errors, JSON bodies and ISO-8601 timestamps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from starlette.responses import Response

from wfm_pipeline import wire

JSON_MEDIA_TYPE = "application/json"  # exactly this: the SDK compares the Content-Type verbatim

STATUS_DEFAULT_CODES: dict[int, tuple[str, str]] = {
    400: (
        wire.ERROR_BAD_REQUEST,
        "The request could not be understood by the server due to malformed syntax.",
    ),
    401: (
        wire.ERROR_AUTHENTICATION_REQUIRED,
        "No authentication bearer token specified in authorization header.",
    ),
    403: ("not.authorized", "You are not authorized to perform the requested action."),
    404: (wire.ERROR_NOT_FOUND, "The requested resource was not found."),
    405: ("method.not.allowed", "The requested method is not allowed on this resource."),
    413: (wire.ERROR_REQUEST_ENTITY_TOO_LARGE, "The request is over the size limit. Maximum bytes: %s"),
    415: (wire.ERROR_UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type - Unsupported or incorrect media type."),
    500: (
        wire.ERROR_INTERNAL_SERVER_ERROR,
        "The server encountered an unexpected condition which prevented it from fulfilling the request.",
    ),
    502: ("bad.gateway", "Bad Gateway"),
    503: (wire.ERROR_SERVICE_UNAVAILABLE, "Service Unavailable - The server is currently unavailable."),
    504: (wire.ERROR_REQUEST_TIMEOUT, "The request timed out."),
}


class ApiError(Exception):
    """Raised by handlers; the app turns it into an ErrorBody response."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        field_name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.field_name = field_name


def bad_request(message: str, code: str = wire.ERROR_BAD_REQUEST, field_name: str | None = None) -> ApiError:
    return ApiError(400, code, message, field_name=field_name)


def not_found(message: str = "The requested resource was not found.") -> ApiError:
    return ApiError(404, wire.ERROR_NOT_FOUND, message)


def dumps(payload: Any) -> bytes:
    """Compact, key-order-preserving JSON (deterministic for the same input)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status_code=status, headers=headers, media_type=JSON_MEDIA_TYPE)


def error_body(
    status: int, code: str, message: str, context_id: str, field_name: str | None = None
) -> dict[str, Any]:
    details = [{"errorCode": code, "fieldName": field_name}] if field_name else []
    return {
        "message": message,
        "code": code,
        "status": status,
        "contextId": context_id,
        "details": details,
        "errors": [],
    }


def error_response(
    status: int,
    code: str,
    message: str,
    context_id: str,
    headers: dict[str, str] | None = None,
    field_name: str | None = None,
) -> Response:
    return json_response(error_body(status, code, message, context_id, field_name), status, headers)


def default_error(status: int, context_id: str, headers: dict[str, str] | None = None) -> Response:
    code, message = STATUS_DEFAULT_CODES.get(status, (wire.ERROR_BAD_REQUEST, "Error"))
    return error_response(status, code, message, context_id, headers)


# --- timestamps ------------------------------------------------------------------------------------


def format_ts(moment: datetime) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# ``HH:MM:`` of every minute of a day and ``SS.000Z`` of every second of a minute.
_HOURS_MINUTES = tuple(f"{minute // 60:02d}:{minute % 60:02d}:" for minute in range(1440))
_SECONDS = tuple(f"{second:02d}.000Z" for second in range(60))


def format_epoch(seconds: int) -> str:
    """``format_ts`` of whole epoch seconds, without building a datetime: pages format millions of
    timestamps, and strftime per timestamp was a fifth of a page's cost."""
    day, second = divmod(seconds, 86400)
    return f"{_utc_date_prefix(day)}{_HOURS_MINUTES[second // 60]}{_SECONDS[second % 60]}"


@lru_cache(maxsize=4096)
def _utc_date_prefix(epoch_day: int) -> str:
    """``YYYY-MM-DDT`` of a UTC day counted from the epoch (formatted by strftime, as ``format_ts``)."""
    return datetime.fromtimestamp(epoch_day * 86400, UTC).strftime("%Y-%m-%dT")


def parse_ts(text: Any, field_name: str) -> datetime:
    """ISO-8601 with ``Z`` or an offset, with or without fractions; naive means UTC (as Genesys does)."""
    if not isinstance(text, str) or not text.strip():
        raise bad_request(
            f"{field_name}: Dates must be specified as ISO-8601 strings. "
            "For example: yyyy-MM-ddTHH:mm:ss.SSSZ",
            wire.ERROR_INVALID_DATE,
            field_name,
        )
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # Offsets written as "-07" (hours only) appear in Genesys docs; fromisoformat wants "-07:00".
    if len(value) >= 3 and value[-3] in "+-" and value[-2:].isdigit() and "T" in value:
        value = value + ":00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(
            f"{field_name}: '{text}' is not a valid ISO-8601 date. For example: yyyy-MM-ddTHH:mm:ss.SSSZ",
            wire.ERROR_INVALID_DATE,
            field_name,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_interval(text: Any, field_name: str = "interval") -> tuple[datetime, datetime]:
    """``start/end`` ISO-8601 interval with start < end."""
    if not isinstance(text, str) or text.count("/") != 1:
        raise bad_request(
            f"{field_name} must be an ISO-8601 interval 'start/end', got {text!r}",
            wire.ERROR_INVALID_DATE,
            field_name,
        )
    start_text, end_text = text.split("/")
    start, end = parse_ts(start_text, field_name), parse_ts(end_text, field_name)
    if start >= end:
        raise bad_request(f"{field_name}: start must be before end", wire.ERROR_INVALID_VALUE, field_name)
    return start, end
