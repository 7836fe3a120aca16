"""Analytics user details (presence and routing-status records) for the run's days, plus a sample of
user aggregates for the occupancy cross-check."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import date, datetime

from wfm_pipeline.extractors._common import Extraction, ManifestContext, Organization, record_extraction
from wfm_pipeline.genesys import GenesysClient, UserDetailsExportRequest
from wfm_pipeline.raw_store import USER_DETAILS, AggregatesEntry, RawStore
from wfm_pipeline.timestamps import local_day_bounds, utc_span_of_days
from wfm_pipeline.transforms import ManagementUnitInfo


def _sample_agents(user_ids: Sequence[str], count: int) -> list[str]:
    """A stable pseudo-random sample (by hash), so reruns compare the same agents."""
    return sorted(user_ids, key=lambda user_id: hashlib.sha256(user_id.encode()).hexdigest())[:count]


def _fetch_aggregates(
    client: GenesysClient,
    store: RawStore,
    units: Sequence[ManagementUnitInfo],
    days: tuple[date, date],
    available_until: datetime,
    sample_agents: int,
) -> tuple[AggregatesEntry, ...]:
    """Aggregates (PT30M, unit time zone) for a sample of each unit's agents over the run's days."""
    first, last = days
    entries = []
    for unit in units:
        sample = _sample_agents(unit.user_ids, sample_agents)
        start = local_day_bounds(first, unit.time_zone)[0]
        end = min(local_day_bounds(last, unit.time_zone)[1], available_until)
        if not sample or end <= start:
            continue
        response = client.user_aggregates(sample, start, end, granularity="PT30M", time_zone=unit.time_zone)
        path = store.raw_dir / "aggregates" / f"{first.isoformat()}_{last.isoformat()}_{unit.id}.json"
        store.write_file(path, json.dumps(response, sort_keys=True).encode())
        entries.append(AggregatesEntry(store.relative(path), unit.id, unit.time_zone, tuple(sample)))
    return tuple(entries)


def extract_user_details(
    client: GenesysClient, store: RawStore, first: date, last: date, run_id: str, sample_agents: int
) -> Extraction:
    """From the earliest unit's local midnight of ``first`` to the latest unit's local end of ``last``."""
    before = client.metrics.snapshot()
    organization = Organization.read(client)
    # Read before the export clamps its interval to the same watermark (which only moves on): the
    # manifest's instant is then never after what the jobs covered, so the coverage check and the closing
    # of open records agree with the files.
    availability = client.data_availability_date()
    start, end = utc_span_of_days((unit.time_zone for unit in organization.units), first, last)
    result = client.run_export(UserDetailsExportRequest(start=start, end=end), store.files_dir(USER_DETAILS))
    aggregates = _fetch_aggregates(
        client, store, organization.snapshot, (first, last), availability, sample_agents
    )
    context = ManifestContext(
        USER_DETAILS, organization, client.settings.source, run_id, availability, aggregates
    )
    return record_extraction(store, context, result, (first, last), client.metrics.since(before))
