"""API-side assets (pool ``genesys_api``): export jobs and their downloaded raw files.

``adherence_export_jobs`` + ``adherence_raw_files`` (and the user-details pair) are two assets produced by
ONE step: submit (or resume -- the client persists jobs per request body in its state dir, so a retried run
reuses them), wait, download, then write one manifest per day listing the files covering that day plus a
snapshot of the organization (units, time zones, members), so the table loaders need no API call.

Why one step: the client caps jobs in flight (``max_jobs_in_flight``, shared by all processes) and frees a
slot only when the job's results are downloaded. With submit/wait in one step and download in the next, a
run holding pool slots while waiting for job slots and another run holding job slots while waiting for a
pool slot to download them deadlock (seen with 4 concurrent runs). ``client.run_export`` starts at most
``max_jobs_in_flight`` jobs, then waits and downloads them, so a step never waits on slots it holds.
"""

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg

from wfm_pipeline.defs.partitions import SETTINGS, backfill_policy, daily_partitions, partition_days
from wfm_pipeline.defs.pools import API_POOL
from wfm_pipeline.defs.resources import GenesysApiResource, RawStoreResource
from wfm_pipeline.genesys import (
    AdherenceExportRequest,
    ExportJob,
    ExportResult,
    GenesysClient,
    ManagementUnit,
    RequestMetrics,
    UserDetailsExportRequest,
)
from wfm_pipeline.processes import bind_step_to_run_worker
from wfm_pipeline.raw_store import (
    ADHERENCE,
    USER_DETAILS,
    AggregatesEntry,
    DayManifest,
    RawFileEntry,
    RawStore,
    entries_for,
)
from wfm_pipeline.timestamps import days_between, local_day_bounds, utc_span_of_days
from wfm_pipeline.transforms import ManagementUnitInfo

GROUP = "raw"
RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

# Genesys reports an adherence exception relative to the query window: one crossing the window start is
# counted again on the first day, and one crossing the window end is cut. Every adherence request therefore
# carries one context day on each side of its "core" days, and only core days are loaded from it -- so a
# day's numbers do not depend on how days were grouped into runs (range run == single-day runs). The client
# plans the windows (``AdherenceExportRequest.context_days``) and says which core days each job is for.
ADHERENCE_CONTEXT_DAYS = 1


def user_details_request(
    units: Sequence[ManagementUnit], first: date, last: date
) -> UserDetailsExportRequest:
    """From the earliest unit's local midnight of ``first`` to the latest unit's local end of ``last``."""
    start, end = utc_span_of_days((unit.time_zone for unit in units), first, last)
    return UserDetailsExportRequest(start=start, end=end)


def _units(client: GenesysClient) -> list[ManagementUnit]:
    units = client.management_units()
    if not units:
        raise dg.Failure(
            "the organization has no WFM management units: nothing to export", allow_retries=False
        )
    return units


def _snapshot(client: GenesysClient, units: Sequence[ManagementUnit]) -> tuple[ManagementUnitInfo, ...]:
    return tuple(
        ManagementUnitInfo(
            id=unit.id,
            name=unit.name,
            business_unit_id=unit.business_unit_id or "",
            time_zone=unit.time_zone,
            user_ids=tuple(sorted(client.management_unit_user_ids(unit.id))),
        )
        for unit in units
    )


def _sample_agents(user_ids: Sequence[str], count: int) -> list[str]:
    """A stable pseudo-random sample (by hash), so reruns compare the same agents."""
    return sorted(user_ids, key=lambda user_id: hashlib.sha256(user_id.encode()).hexdigest())[:count]


def _fetch_aggregates(
    client: GenesysClient,
    store: RawStore,
    snapshot: Sequence[ManagementUnitInfo],
    first: date,
    last: date,
    available_until: datetime,
) -> list[AggregatesEntry]:
    """Aggregates (PT30M, unit time zone) for a sample of agents, for the occupancy cross-check."""
    entries = []
    for unit in snapshot:
        sample = _sample_agents(unit.user_ids, SETTINGS.occupancy_sample_agents)
        start = local_day_bounds(first, unit.time_zone)[0]
        end = min(local_day_bounds(last, unit.time_zone)[1], available_until)
        if not sample or end <= start:
            continue
        response = client.user_aggregates(sample, start, end, granularity="PT30M", time_zone=unit.time_zone)
        path = store.raw_dir / "aggregates" / f"{first.isoformat()}_{last.isoformat()}_{unit.id}.json"
        store.write_file(path, json.dumps(response, sort_keys=True).encode())
        entries.append(AggregatesEntry(store.relative(path), unit.id, unit.time_zone, tuple(sample)))
    return entries


def _parts(
    store: RawStore, result: ExportResult, run_days: Sequence[date]
) -> list[tuple[set[date], list[ExportJob], list[RawFileEntry]]]:
    """(days a job's files are loaded for, the job, its manifest entries) per job: an adherence job's core
    days; a user-details job's files serve every day of the run."""
    return [
        (set(job.core_days or run_days), [job.job], entries_for(job.files, store, job.job))
        for job in result.jobs
    ]


def _job_metadata(
    jobs: Sequence[ExportJob], metrics: RequestMetrics, left_out: Sequence[Any]
) -> dict[str, Any]:
    return {
        "job_ids": dg.MetadataValue.json([job.job_id for job in jobs]),
        "windows": dg.MetadataValue.json(
            [f"{job.window_start.isoformat()}/{job.window_end.isoformat()}" for job in jobs]
        ),
        "job_count": len(jobs),
        "left_out": dg.MetadataValue.json(
            [f"{c.start.isoformat()}/{c.end.isoformat()}: {c.reason}" for c in left_out]
        ),
        "requests": metrics.requests,
        "retries": metrics.retries,
        "throttled_429s": metrics.throttled,
        "waited_seconds": round(metrics.waited_seconds, 3),
        "jobs_submitted": metrics.jobs_submitted,
        "jobs_resumed": metrics.jobs_resumed,
    }


def _export(
    context: dg.AssetExecutionContext, genesys: GenesysApiResource, raw_store: RawStoreResource, kind: str
) -> Iterator[dg.MaterializeResult]:
    bind_step_to_run_worker()
    first, last = partition_days(context)
    store = raw_store.store()
    dest = store.files_dir(kind)
    left_out: list[Any] = []
    aggregates: list[AggregatesEntry] = []
    availability: datetime | None = None
    with genesys.client() as client:
        before = client.metrics.snapshot()
        units = _units(client)
        snapshot = _snapshot(client, units)
        if kind == ADHERENCE:
            request = AdherenceExportRequest(
                tuple(units), first, last + timedelta(days=1), context_days=ADHERENCE_CONTEXT_DAYS
            )
            parts = _parts(store, client.run_export(request, dest), days_between(first, last))
        else:
            # Read before the export clamps its interval to the same watermark (which only moves on): the
            # manifest's instant is then never after what the jobs covered, so the coverage check and the
            # closing of open records agree with the files.
            availability = client.data_availability_date()
            result = client.run_export(user_details_request(units, first, last), dest)
            left_out = list(result.left_out)
            parts = _parts(store, result, days_between(first, last))
            aggregates = _fetch_aggregates(client, store, snapshot, first, last, availability)
        metrics = client.metrics.since(before)
        source = client.settings.source
    if left_out:
        context.log.warning(f"{kind}: not exported (after dataAvailabilityDate): {left_out}")
    manifests = []
    for day in days_between(first, last):
        manifest = DayManifest(
            kind=kind,
            day=day,
            files=tuple(entry for days, _, entries in parts if day in days for entry in entries),
            management_units=snapshot,
            data_availability_date=availability.isoformat() if availability else None,
            aggregates=tuple(aggregates),
            source=source,
            run_id=context.run.run_id,
        )
        manifests.append(store.relative(store.write_manifest(manifest)))
    jobs = [job for _, part_jobs, _ in parts for job in part_jobs]
    entries = [entry for _, _, part_entries in parts for entry in part_entries]
    days_meta = {"first_day": first.isoformat(), "last_day": last.isoformat(), "source": source}
    yield dg.MaterializeResult(
        asset_key=f"{kind}_export_jobs", metadata={**days_meta, **_job_metadata(jobs, metrics, left_out)}
    )
    yield dg.MaterializeResult(
        asset_key=f"{kind}_raw_files",
        metadata={
            **days_meta,
            "paths": dg.MetadataValue.json([entry.path for entry in entries]),
            "checksums": dg.MetadataValue.json({entry.path: entry.sha256 for entry in entries}),
            "file_count": len(entries),
            "bytes": sum(entry.bytes for entry in entries),
            "records": sum(entry.records for entry in entries),
            "manifests": dg.MetadataValue.json(manifests),
            "management_units": len(snapshot),
            "agents": sum(len(unit.user_ids) for unit in snapshot),
            "aggregates_samples": dg.MetadataValue.json([entry.path for entry in aggregates]),
        },
    )


def _specs(kind: str, what: str) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            f"{kind}_export_jobs",
            description=f"{what} export jobs covering the partition days (ids, windows, request counts).",
            group_name=GROUP,
            kinds={"api"},
        ),
        dg.AssetSpec(
            f"{kind}_raw_files",
            deps=[f"{kind}_export_jobs"],
            description=f"{what} results as served under $WFM_DATA_DIR/raw, plus per-day manifests.",
            group_name=GROUP,
            kinds={"api", "json"},
        ),
    ]


_COMMON: dict[str, Any] = {
    "partitions_def": daily_partitions,
    "backfill_policy": backfill_policy,
    "pool": API_POOL,
    "retry_policy": RETRY,
    "can_subset": False,
}


@dg.multi_asset(specs=_specs(ADHERENCE, "Bulk historical adherence"), name="adherence_export", **_COMMON)
def adherence_export(
    context: dg.AssetExecutionContext, genesys: GenesysApiResource, raw_store: RawStoreResource
) -> Iterator[dg.MaterializeResult]:
    yield from _export(context, genesys, raw_store, ADHERENCE)


@dg.multi_asset(specs=_specs(USER_DETAILS, "Analytics user-details"), name="user_details_export", **_COMMON)
def user_details_export(
    context: dg.AssetExecutionContext, genesys: GenesysApiResource, raw_store: RawStoreResource
) -> Iterator[dg.MaterializeResult]:
    yield from _export(context, genesys, raw_store, USER_DETAILS)


ASSETS = (adherence_export, user_details_export)
