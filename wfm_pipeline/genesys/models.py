"""Public value types of the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from wfm_pipeline.genesys.files import ExportedFile
from wfm_pipeline.genesys.metrics import RequestMetrics

ExportKind = Literal["adherence", "user_details"]


@dataclass(frozen=True)
class ManagementUnit:
    id: str
    name: str
    business_unit_id: str | None
    time_zone: str


@dataclass(frozen=True)
class AdherenceExportRequest:
    """Historical adherence for the local days [start, end) of each management unit."""

    management_units: tuple[ManagementUnit, ...] | list[ManagementUnit]
    start: date
    end: date
    include_exceptions: bool = True
    include_actuals: bool = True


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
    status: str = "Processing"
    left_out: LeftOut | None = None
    # Registry key: hash of (kind, request body, client id, host); names the files of this job.
    key: str = ""
    download_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExportResult:
    jobs: list[ExportJob]
    files: list[ExportedFile]
    metrics: RequestMetrics
    left_out: list[LeftOut]

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)
