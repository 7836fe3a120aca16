"""GenesysClient: the public face. Small on purpose: budget, tokens, retries, jobs live elsewhere."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from wfm_pipeline import wire
from wfm_pipeline.genesys.auth import TokenCache
from wfm_pipeline.genesys.budget import SharedBudget, budget_key
from wfm_pipeline.genesys.errors import ConfigurationError
from wfm_pipeline.genesys.files import ExportedFile
from wfm_pipeline.genesys.jobs import ExportJobs
from wfm_pipeline.genesys.limits import DiscoveredLimits, LimitsCache, LimitsDiscovery
from wfm_pipeline.genesys.metrics import RequestMetrics
from wfm_pipeline.genesys.models import (
    AdherenceExportRequest,
    ExportJob,
    ExportResult,
    LeftOut,
    ManagementUnit,
    UserDetailsExportRequest,
)
from wfm_pipeline.genesys.registry import JobRegistry
from wfm_pipeline.genesys.responses import ResponseBody, api_path
from wfm_pipeline.genesys.settings import ClientSettings
from wfm_pipeline.genesys.transport import Transport
from wfm_pipeline.genesys.windows import (
    clamp_to_availability,
    format_utc,
    parse_utc,
    plan_adherence_jobs,
    split_interval,
    user_details_body,
)

def default_state_dir() -> Path:
    """Per user, never a shared /tmp (the token cache must not sit where others can plant files):
    ``$XDG_STATE_HOME/wfm-pipeline/genesys``, else ``~/.local/state/wfm-pipeline/genesys``."""
    base = os.environ.get("XDG_STATE_HOME", "").strip() or str(Path.home() / ".local" / "state")
    return Path(base) / "wfm-pipeline" / "genesys"


def _checked_time_zone(source: ResponseBody, unit_id: str, time_zone: object) -> str:
    """The unit's IANA zone: without it local days cannot be cut, so absence is an error, never UTC."""
    if not isinstance(time_zone, str) or not time_zone:
        raise source.error(f"management unit {unit_id} has no timeZone")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise source.error(f"management unit {unit_id} has timeZone {time_zone!r}, not an IANA zone") from exc
    return time_zone


class GenesysClient:
    def __init__(
        self,
        settings: ClientSettings | None = None,
        state_dir: Path | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        event_hooks: dict[str, list[Callable[..., Any]]] | None = None,
    ) -> None:
        """``transport``/``sleep`` are for tests; ``event_hooks`` are httpx's (request/response observers)."""
        self.settings = settings or ClientSettings.from_env()
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        s = self.settings
        self.metrics = RequestMetrics()
        self._http = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(s.read_timeout_seconds, connect=s.connect_timeout_seconds),
            follow_redirects=True,
            event_hooks=event_hooks,
        )
        self.budget = SharedBudget(
            self.state_dir,
            budget_key(s.client_id, s.api_host),
            requests_per_window=s.requests_per_window,
            window_seconds=s.window_seconds,
            safety_margin=s.safety_margin,
            submissions_per_window=s.submissions_per_window,
            submission_window_seconds=s.submission_window_seconds,
            max_jobs_in_flight=s.max_jobs_in_flight,
            max_wait_seconds=s.max_budget_wait_seconds,
            max_pause_seconds=s.max_pause_seconds,
        )
        self._limits_discovery = (
            LimitsDiscovery(
                s,
                self.budget,
                LimitsCache(self.state_dir, self.budget.key, max_age_seconds=s.limits_cache_seconds),
            )
            if s.discover_limits
            else None
        )
        extra: dict[str, Any] = {"sleep": sleep} if sleep else {}
        self._transport = Transport(
            s,
            self._http,
            self.budget,
            lambda mint: TokenCache(self.state_dir, s.client_id, s.api_host, mint),
            self.metrics,
            limits=self._limits_discovery,
            **extra,
        )
        self._registry = JobRegistry(self.state_dir)
        self._jobs = ExportJobs(self._transport, self._registry, self.state_dir, **extra)

    # --- lifecycle ------------------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()
        self.budget.close()
        self._registry.close()

    def __enter__(self) -> GenesysClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def tokens(self) -> TokenCache:
        return self._transport.tokens

    # --- limits -------------------------------------------------------------------------------------------
    @property
    def limits(self) -> DiscoveredLimits | None:
        """What the org reported (None: not discovered yet, discovery off or failed, nothing reported)."""
        return self._limits_discovery.found if self._limits_discovery is not None else None

    @property
    def max_jobs_in_flight(self) -> int:
        """Job slots in force: the setting, or the org's reported cap once discovered (a plain read)."""
        return self.budget.max_jobs_in_flight

    # --- discovery ------------------------------------------------------------------------------------------
    def management_units(self) -> list[ManagementUnit]:
        """Every management unit with its IANA time zone (from the listing, else from the unit itself)."""
        listing = self._transport.request_json("GET", wire.MANAGEMENT_UNITS_PATH)
        units = []
        for entity in listing.items("entities"):
            unit_id = listing.identifier("id", item=entity)
            time_zone = entity.get("timeZone")
            source = listing
            if not time_zone:  # some listings omit it; the unit itself always has it
                source = self._transport.request_json(
                    "GET", api_path(wire.MANAGEMENT_UNIT_PATH, management_unit_id=unit_id)
                )
                time_zone = source.value("timeZone")
            business_unit = entity.get("businessUnit")
            units.append(
                ManagementUnit(
                    id=unit_id,
                    name=str(entity.get("name") or ""),
                    business_unit_id=business_unit.get("id") if isinstance(business_unit, dict) else None,
                    time_zone=_checked_time_zone(source, unit_id, time_zone),
                )
            )
        return units

    def management_unit_user_ids(self, management_unit_id: str) -> list[str]:
        path = api_path(wire.MANAGEMENT_UNIT_USERS_PATH, management_unit_id=management_unit_id)
        members = self._transport.request_json("GET", path)
        return [members.identifier("id", item=entity) for entity in members.items("entities")]

    def data_availability_date(self) -> datetime:
        body = self._transport.request_json("GET", wire.USER_DETAILS_AVAILABILITY_PATH)
        raw = body.text("dataAvailabilityDate")
        try:
            return parse_utc(raw)
        except ValueError as exc:
            raise body.error(f"dataAvailabilityDate {raw!r} is not a timestamp") from exc

    # --- export jobs ---
    def start_adherence_exports(self, request: AdherenceExportRequest) -> list[ExportJob]:
        """One bulk job per (window <= 7/31 days, time zone); resumes persisted jobs for the same body."""
        plans = plan_adherence_jobs(request)
        self._check_job_count(len(plans))
        return [self._jobs.start("adherence", plan.body) for plan in plans]

    def _check_job_count(self, count: int) -> None:
        # Each started job holds a slot until it is downloaded; more than the cap in one call would wait
        # forever for slots only this caller can free.
        cap = self.max_jobs_in_flight
        if count > cap:
            raise ConfigurationError(
                f"this request needs {count} export jobs at once but max_jobs_in_flight is "
                f"{cap}: split it (run_export batches automatically) or raise "
                "ClientSettings.max_jobs_in_flight"
            )

    def start_user_details_exports(self, request: UserDetailsExportRequest) -> list[ExportJob]:
        """Jobs for [start, end) clamped to dataAvailabilityDate; the last job carries what was left out.
        Returns [] when the whole interval lies after dataAvailabilityDate."""
        kept, left_out = clamp_to_availability(request.start, request.end, self.data_availability_date())
        if kept is None:
            return []
        windows = split_interval(kept[0], kept[1], self.settings.user_details_max_window)
        self._check_job_count(len(windows))
        jobs = []
        for position, (start, end) in enumerate(windows):
            body = user_details_body(start, end, request.user_ids)
            jobs.append(
                self._jobs.start("user_details", body, left_out if position == len(windows) - 1 else None)
            )
        return jobs

    def wait_for(self, job: ExportJob) -> ExportJob:
        return self._jobs.wait_for(job)

    def download(self, job: ExportJob, dest_dir: Path) -> list[ExportedFile]:
        return self._jobs.download(job, Path(dest_dir))

    def run_export(
        self, request: AdherenceExportRequest | UserDetailsExportRequest, dest_dir: Path
    ) -> ExportResult:
        """Start, wait and download every job of ``request``, at most ``max_jobs_in_flight`` at a time."""
        before = self.metrics.snapshot()
        left_out: list[LeftOut] = []
        bodies: list[tuple[str, dict[str, Any], LeftOut | None]]
        if isinstance(request, AdherenceExportRequest):
            bodies = [("adherence", plan.body, None) for plan in plan_adherence_jobs(request)]
        else:
            kept, cut = clamp_to_availability(request.start, request.end, self.data_availability_date())
            if cut is not None:
                left_out.append(cut)
            windows = split_interval(*kept, self.settings.user_details_max_window) if kept else []
            bodies = [("user_details", user_details_body(s, e, request.user_ids), None) for s, e in windows]
        jobs: list[ExportJob] = []
        files: list[ExportedFile] = []
        in_flight: deque[ExportJob] = deque()  # started here, slot held, not yet downloaded

        def finish_oldest() -> None:
            finished = self.wait_for(in_flight[0])
            files.extend(self.download(finished, dest_dir))  # releases its slot
            in_flight.popleft()
            jobs.append(finished)

        self._transport.apply_org_limits()  # slots are sized by the discovered limits
        try:
            for kind, body, cut in bodies:
                key = self._jobs.key_for(kind, body)  # type: ignore[arg-type]
                # Never wait for a slot while holding one: processes that each hold some slots and wait for
                # more can all wait forever (the full table only empties by downloads). Finish our own jobs
                # first; start() only blocks when we hold nothing (or returns at once: the slot is ours).
                while in_flight and not self.budget.try_acquire_job_slot(key):
                    finish_oldest()
                in_flight.append(self._jobs.start(kind, body, cut))  # type: ignore[arg-type]
            while in_flight:
                finish_oldest()
        except BaseException:
            # Give the slots back now rather than after slot_ttl_seconds (6 h): other processes wait for
            # them. The jobs stay registered, so a retry resumes them (taking a slot again).
            for job in in_flight:
                self.budget.release_job_slot(job.key)
            raise
        return ExportResult(jobs=jobs, files=files, metrics=self.metrics.since(before), left_out=left_out)

    # --- aggregates ---
    def user_aggregates(
        self,
        user_ids: Sequence[str],
        start: datetime,
        end: datetime,
        granularity: str = "PT30M",
        time_zone: str = "UTC",
        metrics: Sequence[str] = wire.USER_AGGREGATE_METRICS,
    ) -> dict[str, Any]:
        """Raw UserAggregateQueryResponse; more than 100 users are split into several queries and merged."""
        merged: dict[str, Any] = {"systemToOrganizationMappings": {}, "results": []}
        ids = list(dict.fromkeys(user_ids))
        size = wire.AGGREGATES_MAX_USER_PREDICATES
        for first in range(0, len(ids), size):
            body = {
                "interval": f"{format_utc(start)}/{format_utc(end)}",
                "granularity": granularity,
                "timeZone": time_zone,
                "groupBy": ["userId"],
                "metrics": list(metrics),
                "filter": {
                    "type": "or",
                    "predicates": [
                        {"type": "dimension", "dimension": "userId", "operator": "matches", "value": user_id}
                        for user_id in ids[first : first + size]
                    ],
                },
            }
            answer = self._transport.request_json("POST", wire.USER_AGGREGATES_QUERY_PATH, json=body)
            mappings = answer.value("systemToOrganizationMappings", default={})
            if not isinstance(mappings, dict):
                raise answer.error("systemToOrganizationMappings is not an object")
            for presence, org_ids in mappings.items():
                known = merged["systemToOrganizationMappings"].setdefault(presence, [])
                known.extend(i for i in org_ids if i not in known)
            merged["results"].extend(answer.items("results"))
        return merged
