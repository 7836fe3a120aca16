"""Atomic file writes, the one implementation every writer of the project uses (raw files, sidecars,
manifests, aggregates samples, the token cache).

Readers see the old file or the new one, never half of one: bytes go to a hidden temporary name in the same
directory (same filesystem, so the rename is atomic), are fsynced and renamed over the final name, and the
directory is fsynced so the rename itself survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path

# Temporary files are ``.<name>.partial-<hex>``: hidden, never read, removed by remove_stale_temporaries.
TEMP_MARKER = ".partial-"


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` at ``path`` atomically. ``mode`` applies from creation (0600 for a secret: it is
    never in a file others can read, not even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TEMP_MARKER}{uuid.uuid4().hex}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with open(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename durable; not supported everywhere, and losing it only costs a re-download.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temporaries(directory: Path, older_than_seconds: float = 3600.0) -> int:
    """Delete temporaries left by killed writers in ``directory``. Only old ones: a live writer in another
    process may own a fresh one. Returns how many were removed."""
    if not directory.is_dir():
        return 0
    removed = 0
    cutoff = time.time() - older_than_seconds
    for candidate in directory.iterdir():
        if candidate.name.startswith(".") and TEMP_MARKER in candidate.name:
            with contextlib.suppress(OSError):
                if candidate.stat().st_mtime < cutoff:
                    candidate.unlink()
                    removed += 1
    return removed


def remove_stale_work_directories(
    directory: Path, prefix: str, older_than_seconds: float = 6 * 3600.0
) -> int:
    """Delete the ``<prefix>*`` working directories that killed processes left in ``directory`` (a clean exit
    removes its own). Only those where nothing changed for ``older_than_seconds``: a live process may own
    a fresh one. Returns how many were removed."""
    if not directory.is_dir():
        return 0
    removed = 0
    cutoff = time.time() - older_than_seconds
    for candidate in directory.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            touched = [candidate.stat().st_mtime, *(item.stat().st_mtime for item in candidate.rglob("*"))]
            if candidate.is_dir() and max(touched) < cutoff:
                shutil.rmtree(candidate)
                removed += 1
    return removed
