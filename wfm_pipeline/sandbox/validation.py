"""Request validation shared by the API routes: JSON bodies, time zones, booleans, paging, list parameters."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request

from wfm_pipeline import wire
from wfm_pipeline.sandbox.errors import JSON_MEDIA_TYPE, ApiError, bad_request
from wfm_pipeline.sandbox.state import SandboxState


async def read_json_object(request: Request, sandbox: SandboxState) -> dict[str, Any]:
    """The JSON object body: 415 for another media type, 413 over the size limit, 400 when malformed."""
    max_bytes = sandbox.base_limits.request_bytes_max
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(
            413,
            wire.ERROR_REQUEST_ENTITY_TOO_LARGE,
            f"The request is over the size limit. Maximum bytes: {max_bytes}",
        )
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise ApiError(
            415,
            wire.ERROR_UNSUPPORTED_MEDIA_TYPE,
            f"Unsupported Media Type - Content-Type must be application/json, got {media_type or 'none'!r}",
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(
                413,
                wire.ERROR_REQUEST_ENTITY_TOO_LARGE,
                f"The request is over the size limit. Maximum bytes: {max_bytes}",
            )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body could not be parsed as JSON.") from None
    if not isinstance(payload, dict):
        raise bad_request("The request body must be a JSON object.")
    return payload


def valid_time_zone(value: Any, field_name: str = "timeZone") -> str:
    if isinstance(value, str) and value and ".." not in value and not value.startswith("/"):
        try:
            ZoneInfo(value)
            return value
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise bad_request(
        f"{field_name}: '{value}' is not a valid IANA (olson) time zone, e.g. 'America/New_York'",
        wire.ERROR_INVALID_VALUE,
        field_name,
    )


def optional_bool(item: dict[str, Any], key: str, where: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise bad_request(f"{where}.{key} must be true or false", wire.ERROR_INVALID_VALUE, key)
    return value


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {raw!r}", wire.ERROR_INVALID_VALUE, name) from None
    if not low <= value <= high:
        raise bad_request(
            f"{name} must be between {low} and {high}, got {value}", wire.ERROR_INVALID_VALUE, name
        )
    return value


def query_bool(request: Request, name: str, default: bool) -> bool:
    """A ``true``/``false`` query parameter, compared case-insensitively (the SDK documents ``TRUE``/``FALSE``
    for some and sends Python's ``true``/``false`` for others)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() not in ("true", "false"):
        raise bad_request(f"{name} must be true or false, got {raw!r}", wire.ERROR_INVALID_VALUE, name)
    return raw.lower() == "true"


def query_list(request: Request, name: str) -> list[str]:
    """Every value of a list query parameter: repeated (``?id=a&id=b``) or comma-joined, as the SDK sends
    lists (``?id=a,b``)."""
    return [value for raw in request.query_params.getlist(name) for value in raw.split(",") if value]
