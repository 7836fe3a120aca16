"""The newest directory snapshot (``extractors.extract_directory``) -> the rows of the dimension tables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from wfm_pipeline import warehouse
from wfm_pipeline.raw_store import RawFileError, RawStore
from wfm_pipeline.timestamps import parse_utc
from wfm_pipeline.transforms import (
    RawRecordError,
    activity_code_rows,
    agent_rows,
    business_unit_rows,
    management_unit_rows,
    presence_definition_rows,
)


@dataclass(frozen=True)
class DirectoryLoad:
    """One snapshot's rows per dimension, and what the snapshot says about itself."""

    path: str  # relative to the data directory
    observed_at: datetime
    source: str
    retention_days: int | None
    frames: tuple[warehouse.Chunk, ...]  # (dimension, its rows)


def _read(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise RawFileError(
            path, f"not a readable directory snapshot ({exc}); materialize directory_raw_files"
        ) from exc
    if not isinstance(payload, dict):
        raise RawFileError(path, "a directory snapshot is a JSON object; materialize directory_raw_files")
    return payload


def load_directory(store: RawStore) -> DirectoryLoad:
    """The dimension rows of the newest snapshot; a snapshot that does not parse is an error naming it."""
    path = store.latest_directory()
    payload = _read(path)
    try:
        observed_at = parse_utc(str(payload["observed_at"]))
        found = {
            kind: payload[kind]
            for kind in (
                "users",
                "divisions",
                "business_units",
                "management_units",
                "activity_codes",
                "presence_definitions",
            )
        }
        frames = (
            (warehouse.AGENTS, agent_rows(found["users"], found["divisions"], observed_at)),
            (warehouse.BUSINESS_UNITS, business_unit_rows(found["business_units"], observed_at)),
            (warehouse.MANAGEMENT_UNITS, management_unit_rows(found["management_units"], observed_at)),
            (warehouse.ACTIVITY_CODES, activity_code_rows(found["activity_codes"], observed_at)),
            (
                warehouse.PRESENCE_DEFINITIONS,
                presence_definition_rows(found["presence_definitions"], observed_at),
            ),
        )
    except (KeyError, ValueError, RawRecordError) as exc:
        raise RawFileError(path, f"not a directory snapshot this version reads ({exc!r})") from exc
    retention = payload.get("retention_days")
    return DirectoryLoad(
        path=store.relative(path),
        observed_at=observed_at,
        source=str(payload.get("source") or ""),
        retention_days=retention if isinstance(retention, int) else None,
        frames=frames,
    )
