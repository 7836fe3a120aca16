"""API-side assets (pool ``genesys_api``): export jobs, then their downloaded raw files.

The export-job assets submit (or resume: the client persists jobs per request body in its state dir) the
jobs covering the run's days and wait until they complete. The raw-file assets ask the client for the same
jobs again -- it returns the persisted ones, so nothing is resubmitted -- and download their results, then
write one manifest per day listing the files covering that day plus a snapshot of the organization (units,
time zones, members) so the table loaders need no API call.
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg

from wfm_pipeline import wire
from wfm_pipeline.defs.partitions import SETTINGS, backfill_policy, daily_partitions, partition_days
from wfm_pipeline.defs.pools import API_POOL
from wfm_pipeline.defs.raw_store import (
    ADHERENCE,
    USER_DETAILS,
    AggregatesEntry,
    DayManifest,
    RawFileEntry,
    RawStore,
    atomic_write_bytes,
    entries_for,
)
from wfm_pipeline.defs.resources import GenesysApiResource, RawStoreResource
from wfm_pipeline.genesys import (
    AdherenceExportRequest,
    ExportJob,
    GenesysClient,
    ManagementUnit,
    RequestMetrics,
    UserDetailsExportRequest,
)
from wfm_pipeline.transforms import ManagementUnitInfo, days_between, local_day_bounds, utc_span_of_days

GROUP = "raw"
RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


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


# Genesys reports an adherence exception relative to the query window: one crossing the window start is
# counted again on the first day, and one crossing the window end is cut. Every adherence request therefore
# carries one context day on each side of its "core" days, and only core days are loaded from it -- so a
# day's numbers do not depend on how days were grouped into runs (range run == single-day runs).
ADHERENCE_CONTEXT_DAYS = 1
ADHERENCE_CORE_DAYS = wire.ADHERENCE_MAX_DAYS_WITH_EXCEPTIONS - 2 * ADHERENCE_CONTEXT_DAYS


def adherence_cores(first: date, last: date) -> list[tuple[date, date]]:
    """The run's days in chunks of at most ADHERENCE_CORE_DAYS (each chunk = one request window)."""
    days = days_between(first, last)
    return [
        (days[index], days[min(index + ADHERENCE_CORE_DAYS, len(days)) - 1])
        for index in range(0, len(days), ADHERENCE_CORE_DAYS)
    ]


def _adherence_request(
    units: Sequence[ManagementUnit], core_first: date, core_last: date
) -> AdherenceExportRequest:
    context = timedelta(days=ADHERENCE_CONTEXT_DAYS)
    return AdherenceExportRequest(
        management_units=tuple(units),
        start=core_first - context,
        end=core_last + timedelta(days=1) + context,
        include_exceptions=True,
    )


def _user_details_request(
    units: Sequence[ManagementUnit], first: date, last: date
) -> UserDetailsExportRequest:
    start, end = utc_span_of_days((unit.time_zone for unit in units), first, last)
    return UserDetailsExportRequest(start=start, end=end)


def _job_metadata(jobs: Sequence[ExportJob], metrics: RequestMetrics) -> dict[str, Any]:
    return {
        "job_ids": dg.MetadataValue.json([job.job_id for job in jobs]),
        "windows": dg.MetadataValue.json(
            [f"{job.window_start.isoformat()}/{job.window_end.isoformat()}" for job in jobs]
        ),
        "job_count": len(jobs),
        "left_out": dg.MetadataValue.json(
            [
                f"{job.left_out.start.isoformat()}/{job.left_out.end.isoformat()}: {job.left_out.reason}"
                for job in jobs
                if job.left_out
            ]
        ),
        "requests": metrics.requests,
        "retries": metrics.retries,
        "throttled_429s": metrics.throttled,
        "waited_seconds": round(metrics.waited_seconds, 3),
        "jobs_submitted": metrics.jobs_submitted,
        "jobs_resumed": metrics.jobs_resumed,
    }


def _start_jobs(
    client: GenesysClient, kind: str, first: date, last: date
) -> tuple[list[tuple[ExportJob, set[date]]], list[ManagementUnit]]:
    """Start (or resume) the jobs of the run's days; each job comes with the days it is loaded for."""
    units = _units(client)
    if kind == ADHERENCE:
        jobs = []
        for core_first, core_last in adherence_cores(first, last):
            core = set(days_between(core_first, core_last))
            jobs += [
                (job, core)
                for job in client.start_adherence_exports(_adherence_request(units, core_first, core_last))
            ]
        return jobs, units
    zones = [unit.time_zone for unit in units]
    started = client.start_user_details_exports(_user_details_request(units, first, last))
    return [
        (job, {day for day in days_between(first, last) if _covers(job, zones, day)}) for job in started
    ], units


def _export_jobs(
    context: dg.AssetExecutionContext, genesys: GenesysApiResource, kind: str
) -> dg.MaterializeResult:
    first, last = partition_days(context)
    with genesys.client() as client:
        before = client.metrics.snapshot()
        jobs, _ = _start_jobs(client, kind, first, last)
        finished = [client.wait_for(job) for job, _ in jobs]
        metrics = client.metrics.since(before)
    context.log.info(f"{kind}: {len(finished)} export job(s) complete for {first}..{last}")
    return dg.MaterializeResult(metadata={"first_day": first.isoformat(), "last_day": last.isoformat(),
                                          **_job_metadata(finished, metrics)})  # fmt: skip


def _covers(job: ExportJob, zones: Sequence[str], day: date) -> bool:
    start, end = utc_span_of_days(zones, day, day)
    return job.window_start < end and job.window_end > start


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
    entries = []
    for unit in snapshot:
        sample = _sample_agents(unit.user_ids, SETTINGS.occupancy_sample_agents)
        start = local_day_bounds(first, unit.time_zone)[0]
        end = min(local_day_bounds(last, unit.time_zone)[1], available_until)
        if not sample or end <= start:
            continue
        response = client.user_aggregates(sample, start, end, granularity="PT30M", time_zone=unit.time_zone)
        path = store.raw_dir / "aggregates" / f"{first.isoformat()}_{last.isoformat()}_{unit.id}.json"
        atomic_write_bytes(path, json.dumps(response, sort_keys=True).encode())
        entries.append(AggregatesEntry(store.relative(path), unit.id, unit.time_zone, tuple(sample)))
    return entries


def _raw_files(
    context: dg.AssetExecutionContext, genesys: GenesysApiResource, raw_store: RawStoreResource, kind: str
) -> dg.MaterializeResult:
    first, last = partition_days(context)
    store = raw_store.store()
    with genesys.client() as client:
        before = client.metrics.snapshot()
        jobs, units = _start_jobs(client, kind, first, last)  # the persisted jobs of the export asset
        snapshot = _snapshot(client, units)
        downloaded: list[tuple[ExportJob, set[date], list[RawFileEntry]]] = []
        for job, days in jobs:
            finished = client.wait_for(job)
            files = client.download(finished, store.files_dir(kind))
            downloaded.append((finished, days, entries_for(files, store, finished)))
        availability: datetime | None = None
        aggregates: list[AggregatesEntry] = []
        if kind == USER_DETAILS:
            availability = client.data_availability_date()
            aggregates = _fetch_aggregates(client, store, snapshot, first, last, availability)
        metrics = client.metrics.since(before)
    manifests = []
    for day in days_between(first, last):
        entries = tuple(entry for _, days, job_entries in downloaded if day in days for entry in job_entries)
        manifest = DayManifest(
            kind=kind,
            day=day,
            files=entries,
            management_units=snapshot,
            data_availability_date=availability.isoformat() if availability else None,
            aggregates=tuple(aggregates),
            run_id=context.run.run_id,
        )
        manifests.append(store.relative(store.write_manifest(manifest)))
    all_entries = [entry for _, _, job_entries in downloaded for entry in job_entries]
    return dg.MaterializeResult(
        metadata={
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "paths": dg.MetadataValue.json([entry.path for entry in all_entries]),
            "checksums": dg.MetadataValue.json({entry.path: entry.sha256 for entry in all_entries}),
            "file_count": len(all_entries),
            "bytes": sum(entry.bytes for entry in all_entries),
            "records": sum(entry.records for entry in all_entries),
            "manifests": dg.MetadataValue.json(manifests),
            "management_units": len(snapshot),
            "agents": sum(len(unit.user_ids) for unit in snapshot),
            "aggregates_samples": dg.MetadataValue.json([entry.path for entry in aggregates]),
            **_job_metadata([job for job, _, _ in downloaded], metrics),
        }
    )


_COMMON: dict[str, Any] = {
    "partitions_def": daily_partitions,
    "backfill_policy": backfill_policy,
    "pool": API_POOL,
    "group_name": GROUP,
    "kinds": {"api"},
    "retry_policy": RETRY,
}


@dg.asset(description="Bulk historical adherence export jobs covering the partition days.", **_COMMON)
def adherence_export_jobs(
    context: dg.AssetExecutionContext, genesys: GenesysApiResource
) -> dg.MaterializeResult:
    return _export_jobs(context, genesys, ADHERENCE)


@dg.asset(description="Analytics user-details export jobs covering every unit's local days.", **_COMMON)
def user_details_export_jobs(
    context: dg.AssetExecutionContext, genesys: GenesysApiResource
) -> dg.MaterializeResult:
    return _export_jobs(context, genesys, USER_DETAILS)


@dg.asset(
    description="Adherence result files as served, plus per-day manifests under $WFM_DATA_DIR/raw.",
    deps=[adherence_export_jobs],
    **_COMMON,
)
def adherence_raw_files(
    context: dg.AssetExecutionContext, genesys: GenesysApiResource, raw_store: RawStoreResource
) -> dg.MaterializeResult:
    return _raw_files(context, genesys, raw_store, ADHERENCE)


@dg.asset(
    description="User-details result pages as served, an aggregates sample, and per-day manifests.",
    deps=[user_details_export_jobs],
    **_COMMON,
)
def user_details_raw_files(
    context: dg.AssetExecutionContext, genesys: GenesysApiResource, raw_store: RawStoreResource
) -> dg.MaterializeResult:
    return _raw_files(context, genesys, raw_store, USER_DETAILS)


ASSETS = (adherence_export_jobs, user_details_export_jobs, adherence_raw_files, user_details_raw_files)
