"""OAuth client-credentials tokens: issue, look up, expire, revoke; client credential parsing."""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs

from wfm_pipeline import wire
from wfm_pipeline.sandbox.config import ClientSpec
from wfm_pipeline.sandbox.errors import ApiError


@dataclass(frozen=True)
class Token:
    value: str
    client_id: str
    issued_at: datetime
    expires_at: datetime


class OAuthError(Exception):
    """Token-endpoint error: its body is ``{"error", "description"}``, not an ErrorBody."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class TokenStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}
        self._revoked: set[str] = set()

    def issue(self, client_id: str, now: datetime, ttl_seconds: float) -> Token:
        token = Token(secrets.token_urlsafe(32), client_id, now, now + timedelta(seconds=ttl_seconds))
        with self._lock:
            self._tokens[token.value] = token
            if len(self._tokens) > 50_000:  # forget long-expired tokens; they then read as unknown
                for value in [v for v, t in self._tokens.items() if t.expires_at < now - timedelta(days=2)]:
                    del self._tokens[value]
        return token

    def revoke(self, value: str | None = None) -> int:
        """Revoke one token, or every token when ``value`` is None; returns how many were revoked."""
        with self._lock:
            if value is None:
                live = set(self._tokens) - self._revoked
                self._revoked.update(live)
                return len(live)
            if value in self._tokens and value not in self._revoked:
                self._revoked.add(value)
                return 1
            return 0

    def authenticate(self, authorization: str | None, now: datetime) -> Token:
        """The token a ``Bearer`` header names, or an ApiError 401 with the Genesys code."""
        if not authorization or not authorization[:7].lower() == "bearer " or not authorization[7:].strip():
            raise ApiError(
                401,
                wire.ERROR_AUTHENTICATION_REQUIRED,
                "No authentication bearer token specified in authorization header.",
            )
        value = authorization[7:].strip()
        with self._lock:
            token = self._tokens.get(value)
            revoked = value in self._revoked
        if token is None or revoked:
            raise ApiError(401, wire.ERROR_BAD_CREDENTIALS, "Invalid login credentials.")
        if now >= token.expires_at:
            raise ApiError(
                401,
                wire.ERROR_CREDENTIALS_EXPIRED,
                "The supplied credentials are expired and cannot be used.",
            )
        return token


def client_credentials(authorization: str | None, form_body: bytes) -> tuple[str, str, str]:
    """(grant_type, client_id, client_secret) from Basic auth or ``client_id``/``client_secret`` fields."""
    try:
        form = parse_qs(form_body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise OAuthError(400, "invalid_request", "request body is not valid form data") from None
    grant_type = form.get("grant_type", [""])[0]
    client_id, client_secret = form.get("client_id", [""])[0], form.get("client_secret", [""])[0]
    if authorization and authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError(400, wire.OAUTH_ERROR_INVALID_CLIENT, "client not found") from None
        client_id, _, client_secret = decoded.partition(":")
    return grant_type, client_id, client_secret


def check_client(clients: Mapping[str, ClientSpec], client_id: str, client_secret: str) -> ClientSpec:
    spec = clients.get(client_id)
    if spec is None:
        raise OAuthError(400, wire.OAUTH_ERROR_INVALID_CLIENT, "client not found")
    if not secrets.compare_digest(spec.secret.encode(), client_secret.encode()):
        raise OAuthError(400, wire.OAUTH_ERROR_INVALID_CLIENT, "authentication failed")
    return spec


def require_permission(spec: ClientSpec | None, permission: str) -> None:
    """403 ``missing.permissions`` naming ``permission`` when the client lacks it."""
    if spec is None or spec.permissions is None or permission in spec.permissions:
        return
    raise ApiError(
        403,
        wire.ERROR_MISSING_PERMISSIONS,
        "Unable to perform the requested action. You are missing the following permission(s): "
        f"[{permission}]",
    )
