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

    Days are fetched in fixed grid windows per time zone (see ``genesys/_windows.py``), so a day's window
    does not depend on how days were grouped into runs. ``context_days``: also fetch the grid windows that
    hold a day within this many days before ``start`` or after ``end`` -- with 1, the window before (after)
    the run when its first (last) day is a window edge. Genesys cuts an exception at the window's bounds,
    so the loader needs the neighbour window to stitch one crossing an edge back together
    (``JobResult.window_days``; the extractor lists those files as ``DayManifest.adjacent_files``).
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
    """A part of the requested interval that was not exported (no data yet: after dataAvailabilityDate, or
    an adherence window starting at or after the submission instant)."""

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
    # Adherence: the local days of the request's [start, end) in this job's window, the days its files are
    # loaded for (empty for a neighbour window fetched only for context). User details: ().
    core_days: tuple[date, ...] = ()
    # Adherence: every local day of the job's grid window, in order (a neighbour window of a run's edge
    # day is the same-zone window ending the day before or starting the day after). User details: ().
    window_days: tuple[date, ...] = ()
    time_zone: str = ""  # adherence: the IANA zone of the window's days; user details: ""


@dataclass(frozen=True)
class ExportResult:
    jobs: tuple[JobResult, ...]
    metrics: RequestMetrics
    # User details: the part after dataAvailabilityDate. Adherence: the grid windows that start at or after
    # the submission instant (no data yet), one per (window, zone).
    left_out: tuple[LeftOut, ...]

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


# --- The org's directory (what the dimension tables are built from) -----------------------------------
@dataclass(frozen=True)
class Division:
    id: str
    name: str


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str | None
    state: str  # one of wire.USER_STATES
    division_id: str | None
    department: str | None
    title: str | None
    manager_id: str | None


@dataclass(frozen=True)
class BusinessUnit:
    id: str
    name: str
    division_id: str | None
    time_zone: str | None  # IANA zone of the unit's settings, when served
    start_day_of_week: str | None  # "Sunday" ... "Saturday"


@dataclass(frozen=True)
class ManagementUnitSettings:
    """A management unit with its adherence settings (``ManagementUnit.settings.adherence``)."""

    id: str
    name: str
    business_unit_id: str | None
    time_zone: str
    start_day_of_week: str | None
    division_id: str | None
    adherence_target_percent: int | None
    adherence_exception_threshold_seconds: int | None
    severe_alert_threshold_minutes: int | None
    non_on_queue_activities_equivalent: bool | None
    track_on_queue_activity: bool | None


@dataclass(frozen=True)
class ActivityCode:
    business_unit_id: str
    id: str  # not always a UUID: the default codes of a unit have ids such as "0"
    name: str
    category: str  # one of wire.ACTIVITY_CATEGORIES
    active: bool | None
    default_code: bool | None
    length_in_minutes: int | None
    counts_as_paid_time: bool | None
    counts_as_work_time: bool | None
    secondary_presence_ids: tuple[str, ...]


@dataclass(frozen=True)
class PresenceDefinition:
    id: str
    name: str  # the en_US label, else the definition's name
    system_presence: str  # one of wire.WFM_SYSTEM_PRESENCES
    type: str | None  # "System" or "User"
    deactivated: bool
