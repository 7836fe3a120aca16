"""Analytics user details (presence and routing-status records) for the run's days, plus a sample of
user aggregates for the occupancy cross-check."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from wfm_pipeline.extractors._common import (
    Extraction,
    ManifestContext,
    Organization,
    record_extraction,
    refuse_days_beyond_retention,
)
from wfm_pipeline.genesys import GenesysClient, UserDetailsExportRequest
from wfm_pipeline.raw_store import USER_DETAILS, AggregatesEntry, RawStore
from wfm_pipeline.timestamps import local_day_bounds, utc_span_of_days
from wfm_pipeline.transforms import ManagementUnitInfo, OccupancyInterval


def _sample_agents(user_ids: Sequence[str], count: int) -> list[str]:
    """A stable pseudo-random sample (by hash), so reruns compare the same agents."""
    return sorted(user_ids, key=lambda user_id: hashlib.sha256(user_id.encode()).hexdigest())[:count]


def unassigned_time_zone(client: GenesysClient, configured: str | None) -> str:
    """The zone whose local days agents in no management unit get: ``configured`` (WFM_DEFAULT_TIME_ZONE),
    else the zone of the org's business units when they agree, else UTC (Genesys has no org-wide zone)."""
    if configured:
        return configured
    zones = {unit.time_zone for unit in client.business_units() if unit.time_zone}
    return zones.pop() if len(zones) == 1 else "UTC"


def _fetch_aggregates(
    client: GenesysClient,
    store: RawStore,
    units: Sequence[ManagementUnitInfo],
    days: tuple[date, date],
    available_until: datetime,
    sample: AggregatesSampling,
) -> tuple[AggregatesEntry, ...]:
    """Aggregates (at the occupancy interval, unit time zone) for a sample of each unit's agents over the
    run's days."""
    first, last = days
    entries = []
    granularity = sample.interval.value
    for unit in units:
        agents = _sample_agents(unit.user_ids, sample.agents_per_unit)
        start = local_day_bounds(first, unit.time_zone)[0]
        end = min(local_day_bounds(last, unit.time_zone)[1], available_until)
        if not agents or end <= start:
            continue
        response = client.user_aggregates(
            agents, start, end, granularity=granularity, time_zone=unit.time_zone
        )
        path = store.raw_dir / "aggregates" / f"{first.isoformat()}_{last.isoformat()}_{unit.id}.json"
        store.write_file(path, json.dumps(response, sort_keys=True).encode())
        entries.append(
            AggregatesEntry(store.relative(path), unit.id, unit.time_zone, tuple(agents), granularity)
        )
    return tuple(entries)


@dataclass(frozen=True)
class AggregatesSampling:
    """How many agents per unit get their aggregates fetched for the occupancy cross-check, and at which
    granularity (the occupancy interval the table steps load)."""

    agents_per_unit: int
    interval: OccupancyInterval = OccupancyInterval.PT30M


def extract_user_details(
    client: GenesysClient,
    store: RawStore,
    first: date,
    last: date,
    run_id: str,
    sample: AggregatesSampling,
    default_time_zone: str | None = None,
) -> Extraction:
    """From the earliest local midnight of ``first`` to the latest local end of ``last`` among the units'
    zones and the zone of agents in no unit (``unassigned_time_zone``), for every user of the org."""
    before = client.metrics.snapshot()
    refuse_days_beyond_retention(client, first, datetime.now(UTC).date())
    organization = Organization.read(client)
    unassigned = unassigned_time_zone(client, default_time_zone)
    # Read before the export clamps its interval to the same watermark (which only moves on): the
    # manifest's instant is then never after what the jobs covered, so the coverage check and the closing
    # of open records agree with the files.
    availability = client.data_availability_date()
    zones = [*(unit.time_zone for unit in organization.units), unassigned]
    start, end = utc_span_of_days(zones, first, last)
    result = client.run_export(UserDetailsExportRequest(start=start, end=end), store.files_dir(USER_DETAILS))
    aggregates = _fetch_aggregates(client, store, organization.snapshot, (first, last), availability, sample)
    context = ManifestContext(
        USER_DETAILS,
        organization,
        client.settings.source,
        run_id,
        availability,
        aggregates,
        unassigned_time_zone=unassigned,
    )
    return record_extraction(store, context, result, (first, last), client.metrics.since(before))
