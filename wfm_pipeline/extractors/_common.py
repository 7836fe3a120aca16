"""What both extractors share: the organization snapshot, the manifests and the typed result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from wfm_pipeline.errors import PipelineError
from wfm_pipeline.genesys import (
    ExportResult,
    GenesysClient,
    JobResult,
    LeftOut,
    ManagementUnit,
    PermissionDeniedError,
    RequestMetrics,
)
from wfm_pipeline.raw_store import AggregatesEntry, DayManifest, RawFileEntry, RawStore, entries_for
from wfm_pipeline.timestamps import days_between
from wfm_pipeline.transforms import ManagementUnitInfo


class NoManagementUnitsError(PipelineError):
    """The organization has no WFM management unit: there is nothing to export."""


class BeyondRetentionError(PipelineError):
    """Days of the run are older than the org keeps analytics data: Genesys would return nothing for
    them, and an empty day would look like a day without work."""


def refuse_days_beyond_retention(client: GenesysClient, first: date, today: date) -> int | None:
    """The org's analytics retention in days, after checking that ``first`` is within it (else
    ``BeyondRetentionError`` naming the oldest day it keeps). None, and no check, when the credentials may
    not read it (``analytics:dataRetention:view``)."""
    try:
        retention_days = client.data_retention_days()
    except PermissionDeniedError:
        return None
    oldest = today - timedelta(days=retention_days)
    if first < oldest:
        raise BeyondRetentionError(
            f"{first} is older than the org's analytics data retention ({retention_days} days: the oldest "
            f"day Genesys keeps is {oldest}); nothing was exported. Start the backfill at {oldest} or later "
            "(WFM_PARTITIONS_START, or the partitions you select)"
        )
    return retention_days


@dataclass(frozen=True)
class Organization:
    """The units the export covers, and their snapshot (members included) for the manifests."""

    units: tuple[ManagementUnit, ...]
    snapshot: tuple[ManagementUnitInfo, ...]

    @classmethod
    def read(cls, client: GenesysClient) -> Organization:
        units = tuple(client.management_units())
        if not units:
            raise NoManagementUnitsError("the organization has no WFM management units: nothing to export")
        snapshot = tuple(
            ManagementUnitInfo(
                id=unit.id,
                name=unit.name,
                business_unit_id=unit.business_unit_id or "",
                time_zone=unit.time_zone,
                user_ids=tuple(sorted(client.management_unit_user_ids(unit.id))),
            )
            for unit in units
        )
        return cls(units, snapshot)


@dataclass(frozen=True)
class DayFiles:
    """The manifest entries of one job, the days they are loaded for, and the days they are adjacent
    files of (the edge days of the same-zone windows next to this job's window)."""

    days: frozenset[date]
    entries: tuple[RawFileEntry, ...]
    adjacent_to: frozenset[date] = frozenset()


@dataclass(frozen=True)
class Extraction:
    kind: str
    first: date
    last: date
    result: ExportResult
    entries: tuple[RawFileEntry, ...]  # every file of the run, in job order
    manifests: tuple[str, ...]  # written, relative to the data directory
    organization: Organization
    aggregates: tuple[AggregatesEntry, ...]
    metrics: RequestMetrics  # of the whole step (discovery, export, aggregates)
    source: str  # "sandbox" or the org's API host

    @property
    def left_out(self) -> tuple[LeftOut, ...]:
        return self.result.left_out


def _adjacent_days(job: JobResult, jobs: Sequence[JobResult]) -> frozenset[date]:
    """The days of the run whose window is next to ``job``'s (same zone) on the side where the day is its
    window's first or last day: the last day of the window just before ``job``'s, the first of the one
    just after. User-details jobs (no window days) are adjacent to no day."""
    if not job.window_days:
        return frozenset()
    before, after = job.window_days[0] - timedelta(days=1), job.window_days[-1] + timedelta(days=1)
    adjacent: set[date] = set()
    for other in jobs:
        if other.time_zone != job.time_zone or not other.window_days:
            continue
        if other.window_days[-1] == before and before in other.core_days:
            adjacent.add(before)
        if other.window_days[0] == after and after in other.core_days:
            adjacent.add(after)
    return frozenset(adjacent)


def _day_files(store: RawStore, result: ExportResult, first: date, last: date) -> tuple[DayFiles, ...]:
    """Per job: its entries, for its core days (adherence) or for every day of the run (user details),
    and the days whose manifests list them as adjacent files."""
    run_days = frozenset(days_between(first, last))
    return tuple(
        DayFiles(
            frozenset(job.core_days) or (frozenset() if job.window_days else run_days),
            tuple(entries_for(job.files, store, job.job)),
            _adjacent_days(job, result.jobs),
        )
        for job in result.jobs
    )


@dataclass(frozen=True)
class ManifestContext:
    """What every manifest of the run records besides its files."""

    kind: str
    organization: Organization
    source: str
    run_id: str
    data_availability_date: datetime | None = None
    aggregates: tuple[AggregatesEntry, ...] = ()
    unassigned_time_zone: str | None = None  # user details: the local days of agents in no unit


def _write_manifests(
    store: RawStore, context: ManifestContext, parts: Sequence[DayFiles], first: date, last: date
) -> tuple[str, ...]:
    """One manifest per day listing the files that serve it and the adjacent files (replacing the day's
    previous manifest)."""
    written = []
    for day in days_between(first, last):
        manifest = DayManifest(
            kind=context.kind,
            day=day,
            files=tuple(entry for part in parts if day in part.days for entry in part.entries),
            adjacent_files=tuple(
                entry for part in parts if day in part.adjacent_to for entry in part.entries
            ),
            management_units=context.organization.snapshot,
            data_availability_date=(
                context.data_availability_date.isoformat() if context.data_availability_date else None
            ),
            aggregates=context.aggregates,
            source=context.source,
            run_id=context.run_id,
            unassigned_time_zone=context.unassigned_time_zone,
        )
        written.append(store.relative(store.write_manifest(manifest)))
    return tuple(written)


def record_extraction(
    store: RawStore,
    context: ManifestContext,
    result: ExportResult,
    days: tuple[date, date],
    metrics: RequestMetrics,
) -> Extraction:
    """Write the run's manifests (each day lists the files that serve it) and describe what was done."""
    first, last = days
    parts = _day_files(store, result, first, last)
    return Extraction(
        kind=context.kind,
        first=first,
        last=last,
        result=result,
        entries=tuple(entry for part in parts for entry in part.entries),
        manifests=_write_manifests(store, context, parts, first, last),
        organization=context.organization,
        aggregates=context.aggregates,
        metrics=metrics,
        source=context.source,
    )
