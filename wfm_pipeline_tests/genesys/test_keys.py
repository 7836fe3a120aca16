"""State-file keys stay byte-identical: budgets, tokens and registered jobs on users' machines stay valid."""

from __future__ import annotations

from pathlib import Path

from wfm_pipeline.genesys._auth import TokenCache
from wfm_pipeline.genesys._budget import budget_key
from wfm_pipeline.genesys._keys import stable_key
from wfm_pipeline.genesys._registry import job_key

# Computed with the code before the shared helper (three private sha256 lines); never change them.
BUDGET_KEY = "689c6cb8397fb4c974a7"
JOB_KEY = "9a03ea0ec1b9d71c97f7b20143fd043b"
TOKEN_FILE = "da69fdede42acf675985.json"


def test_budget_key_is_pinned() -> None:
    assert budget_key("wfm-sandbox", "127.0.0.1:8765") == BUDGET_KEY


def test_job_key_is_pinned() -> None:
    body = {"b": [1, 2], "a": "x"}
    assert job_key("adherence", body, "wfm-sandbox", "127.0.0.1:8765") == JOB_KEY


def test_token_file_name_is_pinned(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path, "cid", "api.mypurecloud.ie", lambda: ("token", 60.0))
    assert cache.path.name == TOKEN_FILE


def test_parts_are_separated_not_concatenated() -> None:
    assert stable_key("ab", "c", length=20) != stable_key("a", "bc", length=20)
    assert len(stable_key("a", length=32)) == 32
