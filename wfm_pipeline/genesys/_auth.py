"""Client-credentials tokens, cached in ``state_dir``, shared by every process of the same client + host,
and the httpx auth flow that puts them on requests.

The cache file is created with mode 0600 (never readable by other users) and the token is never logged.
A file lock makes sure only one process mints a token when the cached one is missing, near expiry or was
rejected with 401; the others wait for the lock and then read the fresh token from the file.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import httpx
from filelock import FileLock

from wfm_pipeline.fileio import atomic_write_bytes
from wfm_pipeline.genesys._errors import ConfigurationError
from wfm_pipeline.genesys._keys import stable_key


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # epoch seconds
    renew_at: float  # epoch seconds; renew from here on, before the server starts rejecting it

    def __repr__(self) -> str:  # never print the secret part
        return f"AccessToken(expires_at={self.expires_at:.0f})"

    def usable(self, now: float) -> bool:
        return now < self.renew_at


def renew_margin(expires_in: float) -> float:
    """Renew at 90% of the lifetime, at most 5 minutes early (lifetimes run 300 s .. 48 h)."""
    return min(expires_in * 0.1, 300.0)


def private_directory(directory: Path) -> Path:
    """``directory`` created 0700, and refused unless it is ours and closed to everyone else: a token
    cache another user can read (or replace) would leak the org's access."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigurationError(f"token directory {directory} is not a directory")
    if info.st_uid != os.getuid():
        raise ConfigurationError(
            f"token directory {directory} belongs to uid {info.st_uid}, not to this user ({os.getuid()}): "
            "point WFM_STATE_DIR at a directory of your own"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ConfigurationError(
            f"token directory {directory} has mode {stat.S_IMODE(info.st_mode):o}; others can reach the "
            f"tokens. Run `chmod 700 {directory}` (and check who could read it), then start again"
        )
    return directory


# Mints a token: returns (access_token, expires_in seconds). Raises on failure.
TokenMinter = Callable[[], tuple[str, float]]


class TokenCache:
    def __init__(
        self,
        state_dir: Path,
        client_id: str,
        host: str,
        mint: TokenMinter,
        *,
        clock: Callable[[], float] = time.time,
        lock_timeout: float = 120.0,
    ) -> None:
        directory = private_directory(Path(state_dir) / "tokens")
        name = stable_key(client_id, host, length=20)
        self.path = directory / f"{name}.json"
        self._lock = FileLock(str(directory / f"{name}.lock"), timeout=lock_timeout)
        self._mint = mint
        self._clock = clock
        self._token: AccessToken | None = None
        self.minted = 0  # tokens this process created (tests and metrics)

    def get(self) -> str:
        now = self._clock()
        if self._token is not None and self._token.usable(now):
            return self._token.value
        cached = self._read()
        if cached is not None and cached.usable(now):
            self._token = cached
            return cached.value
        with self._lock:
            cached = self._read()  # another process may have minted while we waited for the lock
            if cached is not None and cached.usable(self._clock()):
                self._token = cached
                return cached.value
            return self._mint_and_store().value

    def invalidate(self, rejected: str) -> str:
        """The server rejected ``rejected`` (401): mint a new one unless another process already did."""
        with self._lock:
            cached = self._read()
            if cached is not None and cached.value != rejected and cached.usable(self._clock()):
                self._token = cached
                return cached.value
            return self._mint_and_store().value

    def _mint_and_store(self) -> AccessToken:
        value, expires_in = self._mint()
        now = self._clock()
        token = AccessToken(value, now + expires_in, now + expires_in - renew_margin(expires_in))
        self._write(token)
        self._token = token
        self.minted += 1
        return token

    def _read(self) -> AccessToken | None:
        try:
            data = json.loads(self.path.read_text())
            return AccessToken(str(data["access_token"]), float(data["expires_at"]), float(data["renew_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write(self, token: AccessToken) -> None:
        payload = json.dumps(
            {"access_token": token.value, "expires_at": token.expires_at, "renew_at": token.renew_at}
        ).encode()
        atomic_write_bytes(self.path, payload, mode=0o600)


class ClientCredentialsAuth(httpx.Auth):
    """Bearer token from the shared ``TokenCache``; a 401 has the cache mint a fresh one (once, under its
    lock, or adopt another process's) and the request is sent once more. A second 401 is the answer."""

    def __init__(self, tokens: TokenCache) -> None:
        self.tokens = tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.tokens.get()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:  # expired or revoked
            request.headers["Authorization"] = f"Bearer {self.tokens.invalidate(token)}"
            yield request
