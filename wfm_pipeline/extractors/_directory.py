"""The org's directory -- users in every state, divisions, business and management units with their
settings, activity codes, presence definitions, the analytics data retention -- as ONE snapshot file
``raw/directory/directory_<UTC stamp>.json``, written atomically, from which the dimension tables load.

A snapshot, not a change feed: Genesys keeps no history of these objects, so the dimension tables keep it
(``first_seen`` / ``last_seen``, and rows of objects that later vanished).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from wfm_pipeline.genesys import GenesysClient, PermissionDeniedError, RequestMetrics
from wfm_pipeline.raw_store import RawStore

SNAPSHOT_VERSION = 1


@dataclass(frozen=True)
class DirectorySnapshot:
    """What one directory fetch found (``counts`` per object kind) and where it was written."""

    path: str  # relative to the data directory
    observed_at: datetime
    counts: Mapping[str, int]
    retention_days: int | None  # None: the credentials may not read it (analytics:dataRetention:view)
    metrics: RequestMetrics
    source: str


def extract_directory(
    client: GenesysClient, store: RawStore, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> DirectorySnapshot:
    """Fetch the whole directory and write it as one snapshot (``SNAPSHOT_VERSION`` format)."""
    before = client.metrics.snapshot()
    observed_at = clock()
    business_units = client.business_units()
    objects: dict[str, list[Any]] = {
        "divisions": client.divisions(),
        "business_units": business_units,
        "management_units": client.management_unit_settings([unit.id for unit in client.management_units()]),
        "activity_codes": [code for unit in business_units for code in client.activity_codes(unit.id)],
        "presence_definitions": client.presence_definitions(),
        "users": client.users(),
    }
    try:
        retention_days: int | None = client.data_retention_days()
    except PermissionDeniedError:  # optional: it only guards partitions older than the org keeps
        retention_days = None
    payload = {
        "version": SNAPSHOT_VERSION,
        "observed_at": observed_at.isoformat(),
        "source": client.settings.source,
        "retention_days": retention_days,
        **{kind: [asdict(item) for item in items] for kind, items in objects.items()},
    }
    path = store.write_file(store.directory_path(observed_at), json.dumps(payload, sort_keys=True).encode())
    return DirectorySnapshot(
        path=store.relative(path),
        observed_at=observed_at,
        counts={kind: len(items) for kind, items in objects.items()},
        retention_days=retention_days,
        metrics=client.metrics.since(before),
        source=client.settings.source,
    )
