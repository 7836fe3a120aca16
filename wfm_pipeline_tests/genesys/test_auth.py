"""Token cache: shared across instances/processes, private file, renewal before expiry, renewal on 401."""

from __future__ import annotations

import stat
from pathlib import Path

from wfm_pipeline.genesys._auth import TokenCache, renew_margin


class Minter:
    def __init__(self, lifetime: float = 3600.0) -> None:
        self.calls = 0
        self.lifetime = lifetime

    def __call__(self) -> tuple[str, float]:
        self.calls += 1
        return f"token-{self.calls}", self.lifetime


def test_one_mint_shared_by_two_caches(tmp_path: Path) -> None:
    minter = Minter()
    first = TokenCache(tmp_path, "cid", "host", minter)
    second = TokenCache(tmp_path, "cid", "host", minter)
    assert first.get() == second.get() == "token-1"
    assert minter.calls == 1


def test_cache_file_is_private_and_token_not_in_repr(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path, "cid", "host", Minter())
    cache.get()
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600
    assert cache._token is not None and "token-1" not in repr(cache._token)


def test_separate_clients_do_not_share(tmp_path: Path) -> None:
    minter = Minter()
    assert TokenCache(tmp_path, "a", "host", minter).get() != TokenCache(tmp_path, "b", "host", minter).get()


def test_renewed_before_expiry(tmp_path: Path) -> None:
    now = [0.0]
    minter = Minter(lifetime=1000.0)
    cache = TokenCache(tmp_path, "cid", "host", minter, clock=lambda: now[0])
    assert cache.get() == "token-1"
    now[0] = 1000.0 - renew_margin(1000.0) - 1
    assert cache.get() == "token-1"
    now[0] = 1000.0 - renew_margin(1000.0) + 1  # still valid at the server, but inside the renewal margin
    assert cache.get() == "token-2"


def test_invalidate_mints_once_and_others_pick_it_up(tmp_path: Path) -> None:
    minter = Minter()
    first = TokenCache(tmp_path, "cid", "host", minter)
    second = TokenCache(tmp_path, "cid", "host", minter)
    rejected = first.get()
    assert first.invalidate(rejected) == "token-2"
    # The second process also saw a 401 with the old token: it adopts the fresh one instead of minting.
    assert second.invalidate(rejected) == "token-2"
    assert minter.calls == 2
