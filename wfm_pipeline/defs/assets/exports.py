"""API-side assets (pool ``genesys_api``): export jobs and their downloaded raw files.

``adherence_export_jobs`` + ``adherence_raw_files`` (and the user-details pair) are two assets produced by
ONE step: submit (or resume -- the client persists jobs per request body in its state dir, so a retried run
reuses them), wait, download, then write one manifest per day listing the files covering that day plus a
snapshot of the organization (units, time zones, members), so the table loaders need no API call. The work
is the extractors' (``wfm_pipeline.extractors``); the assets wire client, raw store and metadata.

Why one step: the client caps jobs in flight (``max_jobs_in_flight``, shared by all processes) and frees a
slot only when the job's results are downloaded. With submit/wait in one step and download in the next, a
run holding pool slots while waiting for job slots and another run holding job slots while waiting for a
pool slot to download them deadlock (seen with 4 concurrent runs). ``client.run_export`` starts at most
``max_jobs_in_flight`` jobs, then waits and downloads them, so a step never waits on slots it holds.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from wfm_pipeline.defs.executors import bind_to_run_worker
from wfm_pipeline.defs.failures import pipeline_errors_fail_the_step
from wfm_pipeline.defs.partitions import Partitioning, partition_days
from wfm_pipeline.defs.pools import API_POOL
from wfm_pipeline.defs.progress import progress_lines
from wfm_pipeline.defs.resources import GenesysApiResource, RawStoreResource
from wfm_pipeline.extractors import AggregatesSampling, Extraction, extract_adherence, extract_user_details
from wfm_pipeline.raw_store import ADHERENCE, USER_DETAILS

GROUP = "raw"
RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def _jobs_metadata(extraction: Extraction) -> dict[str, Any]:
    jobs = [job.job for job in extraction.result.jobs]
    metrics = extraction.metrics
    return {
        "job_ids": dg.MetadataValue.json([job.job_id for job in jobs]),
        "windows": dg.MetadataValue.json(
            [f"{job.window_start.isoformat()}/{job.window_end.isoformat()}" for job in jobs]
        ),
        "job_count": len(jobs),
        "left_out": dg.MetadataValue.json(
            [f"{cut.start.isoformat()}/{cut.end.isoformat()}: {cut.reason}" for cut in extraction.left_out]
        ),
        "requests": metrics.requests,
        "retries": metrics.retries,
        "throttled_429s": metrics.throttled,
        "waited_seconds": round(metrics.waited_seconds, 3),
        "jobs_submitted": metrics.jobs_submitted,
        "jobs_resumed": metrics.jobs_resumed,
    }


def _files_metadata(extraction: Extraction) -> dict[str, Any]:
    entries, snapshot = extraction.entries, extraction.organization.snapshot
    return {
        "paths": dg.MetadataValue.json([entry.path for entry in entries]),
        "checksums": dg.MetadataValue.json({entry.path: entry.sha256 for entry in entries}),
        "file_count": len(entries),
        "bytes": sum(entry.bytes for entry in entries),
        "records": sum(entry.records for entry in entries),
        "manifests": dg.MetadataValue.json(list(extraction.manifests)),
        "management_units": len(snapshot),
        "agents": sum(len(unit.user_ids) for unit in snapshot),
        "aggregates_samples": dg.MetadataValue.json([entry.path for entry in extraction.aggregates]),
    }


def _results(
    context: dg.AssetExecutionContext, extraction: Extraction
) -> Iterator[dg.MaterializeResult[None]]:
    kind = extraction.kind
    if extraction.left_out:
        context.log.warning(f"{kind}: not exported (no data yet): {list(extraction.left_out)}")
    days = {
        "first_day": extraction.first.isoformat(),
        "last_day": extraction.last.isoformat(),
        "source": extraction.source,
    }
    yield dg.MaterializeResult(
        asset_key=f"{kind}_export_jobs", metadata={**days, **_jobs_metadata(extraction)}
    )
    yield dg.MaterializeResult(
        asset_key=f"{kind}_raw_files", metadata={**days, **_files_metadata(extraction)}
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
            description=f"{what} results as served, under `$WFM_DATA_DIR/raw/`, plus per-day manifests.",
            group_name=GROUP,
            kinds={"api", "json"},
        ),
    ]


def export_assets(
    partitioning: Partitioning, sample: AggregatesSampling, default_time_zone: str | None
) -> list[dg.AssetsDefinition]:
    """The two export steps, partitioned by ``partitioning``; ``sample`` says whose aggregates are fetched
    for the occupancy cross-check; agents in no unit get the local days of ``default_time_zone`` (None:
    the org's)."""
    common: dict[str, Any] = {
        "partitions_def": partitioning.partitions_def,
        "backfill_policy": partitioning.backfill_policy,
        "pool": API_POOL,
        "retry_policy": RETRY,
        "can_subset": False,
    }

    @dg.multi_asset(specs=_specs(ADHERENCE, "Bulk historical adherence"), name="adherence_export", **common)
    def adherence_export(
        context: dg.AssetExecutionContext, genesys: GenesysApiResource, raw_store: RawStoreResource
    ) -> Iterator[dg.MaterializeResult[None]]:
        bind_to_run_worker(context)
        first, last = partition_days(context)
        with (
            pipeline_errors_fail_the_step(),
            genesys.client() as client,
            progress_lines(context.log.info, client.metrics, f"adherence {first}..{last}"),
        ):
            extraction = extract_adherence(client, raw_store.store(), first, last, context.run.run_id)
        yield from _results(context, extraction)

    @dg.multi_asset(
        specs=_specs(USER_DETAILS, "Analytics user-details"), name="user_details_export", **common
    )
    def user_details_export(
        context: dg.AssetExecutionContext, genesys: GenesysApiResource, raw_store: RawStoreResource
    ) -> Iterator[dg.MaterializeResult[None]]:
        bind_to_run_worker(context)
        first, last = partition_days(context)
        with (
            pipeline_errors_fail_the_step(),
            genesys.client() as client,
            progress_lines(context.log.info, client.metrics, f"user details {first}..{last}"),
        ):
            extraction = extract_user_details(
                client, raw_store.store(), first, last, context.run.run_id, sample, default_time_zone
            )
        yield from _results(context, extraction)

    return [adherence_export, user_details_export]
