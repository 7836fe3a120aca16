"""The one key hash of the client's state files: budget and token files, limits cache, job registry rows.

Keys name files and rows in users' ``state_dir``: changing the hash (separator, digest, length) would orphan
every existing budget, token and job, so ``wfm_pipeline_tests/genesys/test_keys.py`` pins known values.
"""

from __future__ import annotations

import hashlib


def stable_key(*parts: str, length: int) -> str:
    """The first ``length`` hex digits of sha256 over ``parts`` joined by NUL (the separator keeps
    ``("ab", "c")`` and ``("a", "bc")`` apart)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]
