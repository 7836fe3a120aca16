"""Atomic file writes with a ``<file>.meta.json`` sidecar (sha256, bytes, records).

A file becomes visible only complete: bytes go to a temporary name in the same directory, are fsynced and
renamed over the final name; the sidecar is written the same way afterwards. A file whose sidecar is missing
or does not match is treated as absent, so a process killed mid-download leaves nothing a reader could trust.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wfm_pipeline.fileio import atomic_write_bytes

SIDECAR_SUFFIX = ".meta.json"


@dataclass(frozen=True)
class ExportedFile:
    path: Path
    bytes: int
    sha256: str
    records: int


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


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
