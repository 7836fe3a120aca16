"""Atomic file writes with a ``<file>.meta.json`` sidecar (sha256, bytes, records).

A file becomes visible only complete: bytes go to a temporary name in the same directory, are fsynced and
renamed over the final name; the sidecar is written the same way afterwards. A file whose sidecar is missing
or does not match is treated as absent, so a process killed mid-download leaves nothing a reader could trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SIDECAR_SUFFIX = ".meta.json"
TEMP_MARKER = ".partial-"


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    bytes: int
    sha256: str
    records: int


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden temp name in the same directory: same filesystem, so the rename is atomic.
    tmp = path.with_name(f".{path.name}{TEMP_MARKER}{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as handle:
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
    # Makes the rename itself durable; not supported everywhere, and losing it only costs a re-download.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_export_file(
    path: Path, data: bytes, records: int, extra: dict[str, Any] | None = None
) -> ExportedFile:
    """Write ``data`` atomically, then its sidecar. The sidecar is the completion marker."""
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(path, data)
    meta = {"sha256": digest, "bytes": len(data), "records": records, **(extra or {})}
    atomic_write_bytes(sidecar_path(path), json.dumps(meta, indent=2, sort_keys=True).encode())
    return ExportedFile(path=path, bytes=len(data), sha256=digest, records=records)


def read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(sidecar_path(path).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def complete_file(path: Path) -> ExportedFile | None:
    """The file if it exists and matches its sidecar (size and sha256), else None."""
    meta = read_sidecar(path)
    if meta is None:
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) != meta.get("bytes") or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        return None
    return ExportedFile(
        path=path, bytes=len(data), sha256=str(meta["sha256"]), records=int(meta.get("records", 0))
    )


def remove_stale_temporaries(directory: Path, older_than_seconds: float = 3600.0) -> int:
    """Delete temp files left by killed writers (hidden, never read). Only old ones: a live writer in another
    process may own a fresh one. Returns how many were removed."""
    removed = 0
    if not directory.is_dir():
        return 0
    cutoff = time.time() - older_than_seconds
    for candidate in directory.iterdir():
        if candidate.name.startswith(".") and TEMP_MARKER in candidate.name:
            with contextlib.suppress(OSError):
                if candidate.stat().st_mtime < cutoff:
                    candidate.unlink()
                    removed += 1
    return removed
