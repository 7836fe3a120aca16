"""Public value types of the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from wfm_pipeline import wire
from wfm_pipeline.genesys._files import ExportedFile
from wfm_pipeline.genesys._metrics import RequestMetrics

ExportKind = Literal["adherence", "user_details"]


@dataclass(frozen=True)
class ManagementUnit:
    id: str
    name: str
    business_unit_id: str | None
    time_zone: str


@dataclass(frozen=True)
class AdherenceExportRequest:
    """Historical adherence to load for the local days [start, end) of each management unit.

    ``context_days``: each request window extends its core days by this many days on each side, and the
    job's files are loaded only for its core days (``JobResult.core_days``). Genesys reports an exception
    relative to the query window (one crossing the window start is counted again on the first day, one
    crossing the end is cut), so with context days a day's numbers do not depend on how days were grouped.
    """

    management_units: tuple[ManagementUnit, ...] | list[ManagementUnit]
    start: date
    end: date
    context_days: int = 0
    include_exceptions: bool = True
    include_actuals: bool = True

    def __post_init__(self) -> None:
        if self.context_days < 0:
            raise ValueError(f"context_days is {self.context_days}, expected 0 or more")


@dataclass(frozen=True)
class UserDetailsExportRequest:
    """Presence and routing-status detail records for [start, end) (tz-aware datetimes)."""

    start: datetime
    end: datetime
    user_ids: tuple[str, ...] | list[str] | None = None


@dataclass(frozen=True)
class LeftOut:
    """A part of the requested interval that was not exported (after dataAvailabilityDate)."""

    start: datetime
    end: datetime
    reason: str


@dataclass(frozen=True)
class ExportJob:
    kind: ExportKind
    job_id: str
    window_start: datetime
    window_end: datetime
    request: dict[str, Any] = field(hash=False, compare=True)
    submitted_at: datetime | None = None
    status: str = wire.ADHERENCE_JOB_PROCESSING
    # Registry key: hash of (kind, request body, client id, host); names the files of this job.
    key: str = ""
    download_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobResult:
    """One finished job and what it produced."""

    job: ExportJob
    files: tuple[ExportedFile, ...]  # downloaded (or reused) files of this job, in order
    # Adherence: the local days this job's files are loaded for (its window minus the context days).
    # User details: () -- its interval is not cut into days.
    core_days: tuple[date, ...] = ()


@dataclass(frozen=True)
class ExportResult:
    jobs: tuple[JobResult, ...]
    metrics: RequestMetrics
    left_out: tuple[LeftOut, ...]  # user details: the part after dataAvailabilityDate

    @property
    def files(self) -> tuple[ExportedFile, ...]:
        """Every job's files, in job order."""
        return tuple(file for job in self.jobs for file in job.files)

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)
