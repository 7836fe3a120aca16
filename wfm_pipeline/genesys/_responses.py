"""Reading 2xx bodies: JSON with the fields an endpoint documents, and ids safe to put in paths and names.

Every value the client takes from a response goes through ``ResponseBody``, so shape drift surfaces as one
``UnexpectedResponseError`` naming the endpoint, the field, the value, the status and the correlation id,
never as a bare ``KeyError`` deep in the pipeline. Ids are checked to be UUIDs (every Genesys id is one)
before they reach a request path or a file name: a served ``x/../../ESCAPED`` is refused, not followed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from wfm_pipeline import wire
from wfm_pipeline.genesys._errors import UnexpectedResponseError


def correlation_id_of(response: httpx.Response, body: Any = None) -> str | None:
    found: str | None = response.headers.get(wire.HEADER_CORRELATION_ID)
    if not found and isinstance(body, dict):
        context_id = body.get("contextId")
        found = context_id if isinstance(context_id, str) else None
    return found


def is_genesys_id(value: object) -> bool:
    """A Genesys id: a UUID in its canonical hyphenated form (any case)."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def api_path(template: str, **ids: str) -> str:
    """``template`` with each id percent-encoded (a checked id needs none; this is the second guard)."""
    return template.format(**{name: quote(value, safe="") for name, value in ids.items()})


@dataclass(frozen=True)
class ResponseBody:
    """A parsed 2xx body and where it came from, for errors that name the endpoint."""

    data: Any
    where: str  # "GET /api/v2/..."
    status: int
    correlation_id: str | None

    @classmethod
    def of(cls, response: httpx.Response) -> ResponseBody:
        where = f"{response.request.method} {response.request.url.path}"
        correlation_id = correlation_id_of(response)
        try:
            data = response.json()
        except (ValueError, RecursionError) as exc:
            raise UnexpectedResponseError(
                f"{where}: the response is not JSON ({type(exc).__name__}: {str(exc)[:200]}); "
                f"first bytes {response.content[:80]!r}",
                status=response.status_code,
                correlation_id=correlation_id,
            ) from exc
        return cls(data, where, response.status_code, correlation_id)

    def error(self, what: str) -> UnexpectedResponseError:
        return UnexpectedResponseError(
            f"{self.where}: {what}. Genesys changed the response shape or this is not a Genesys Cloud API; "
            "nothing was written",
            status=self.status,
            correlation_id=self.correlation_id,
        )

    def _lookup(self, data: Any, path: tuple[str, ...]) -> Any:
        value = data
        for depth, key in enumerate(path):
            if not isinstance(value, dict):
                where = ".".join(path[:depth]) or "the body"
                raise self.error(f"{where} is {type(value).__name__}, expected an object")
            value = value.get(key)
        return value

    def value(self, *path: str, default: Any = None) -> Any:
        """The value at ``path`` (``default`` when absent or null); any JSON type."""
        value = self._lookup(self.data, path)
        return default if value is None else value

    def text(self, *path: str, default: str | None = None) -> str:
        value = self._lookup(self.data, path)
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or not value:
            raise self.error(f"field {'.'.join(path)} is {value!r}, expected a non-empty string")
        return value

    def items(self, *path: str) -> list[dict[str, Any]]:
        """A list of objects at ``path``; absent or null is an empty list (Genesys omits empty lists)."""
        value = self._lookup(self.data, path)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(f"field {'.'.join(path)} is not a list of objects")
        return value

    def identifier(self, *path: str, item: dict[str, Any] | None = None) -> str:
        """A Genesys id at ``path`` (of ``item`` when given): refused unless it is a UUID."""
        value = self._lookup(self.data if item is None else item, path)
        if not is_genesys_id(value):
            raise self.error(f"field {'.'.join(path)} is {value!r}, expected a Genesys id (a UUID)")
        return str(value)
