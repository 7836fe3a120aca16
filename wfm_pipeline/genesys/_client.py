"""GenesysClient: the public face. Small on purpose: budget, tokens, retries, jobs live elsewhere."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from wfm_pipeline import wire
from wfm_pipeline.genesys._auth import TokenCache
from wfm_pipeline.genesys._budget import SharedBudget, budget_key
from wfm_pipeline.genesys._directory import (
    DIVISIONS_PAGE_SIZE,
    activity_code_of,
    activity_codes_download_url,
    business_unit_of,
    checked_time_zone,
    division_of,
    management_unit_settings_of,
    pages,
    presence_definition_of,
    retention_days_of,
    unique_by_id,
    user_of,
)
from wfm_pipeline.genesys._jobs import ExportJobs
from wfm_pipeline.genesys._limits import DiscoveredLimits, LimitsCache, LimitsDiscovery
from wfm_pipeline.genesys._metrics import RequestMetrics
from wfm_pipeline.genesys._models import (
    ActivityCode,
    AdherenceExportRequest,
    BusinessUnit,
    Division,
    ExportResult,
    LeftOut,
    ManagementUnit,
    ManagementUnitSettings,
    PresenceDefinition,
    User,
    UserDetailsExportRequest,
)
from wfm_pipeline.genesys._registry import JobRegistry
from wfm_pipeline.genesys._responses import ResponseBody, api_path
from wfm_pipeline.genesys._settings import ClientSettings
from wfm_pipeline.genesys._transport import Transport
from wfm_pipeline.genesys._windows import PlannedJob, plan_adherence_jobs, plan_user_details_jobs
from wfm_pipeline.timestamps import format_utc, parse_utc


def default_state_dir() -> Path:
    """Per user, never a shared /tmp (the token cache must not sit where others can plant files):
    ``$XDG_STATE_HOME/wfm-pipeline/genesys``, else ``~/.local/state/wfm-pipeline/genesys``."""
    base = os.environ.get("XDG_STATE_HOME", "").strip() or str(Path.home() / ".local" / "state")
    return Path(base) / "wfm-pipeline" / "genesys"


class GenesysClient:
    def __init__(
        self,
        settings: ClientSettings | None = None,
        state_dir: Path | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
        event_hooks: dict[str, list[Callable[..., Any]]] | None = None,
    ) -> None:
        """``transport``/``sleep``/``wall_clock`` (epoch seconds: submission instants, resume ages, which
        adherence windows have begun) are for tests; ``event_hooks`` are httpx's (request/response
        observers)."""
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
        self._registry = JobRegistry(self.state_dir, clock=wall_clock)
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
                    time_zone=checked_time_zone(source, unit_id, time_zone),
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

    # --- directory (what the dimension tables are built from) ----------------------------------------------
    def divisions(self) -> list[Division]:
        """Every division of the org (every page of the listing)."""
        return unique_by_id(
            division_of(page, entity)
            for page in self._pages(wire.DIVISIONS_PATH, DIVISIONS_PAGE_SIZE)
            for entity in page.items("entities")
        )

    def users(self) -> list[User]:
        """Every user in every state (active, inactive, deleted), every page of the listing."""
        return unique_by_id(
            user_of(page, entity)
            for page in self._pages(wire.USERS_PATH, self.settings.users_page_size, state=wire.USER_STATE_ANY)
            for entity in page.items("entities")
        )

    def business_units(self) -> list[BusinessUnit]:
        """Every business unit with its settings: the listing, then each unit with ``expand=settings``
        (the listing has no time zone)."""
        listing = self._transport.request_json("GET", wire.BUSINESS_UNITS_PATH)
        expand = {"expand": wire.BUSINESS_UNIT_EXPAND_SETTINGS}
        units = []
        for entity in listing.items("entities"):
            path = api_path(wire.BUSINESS_UNIT_PATH, business_unit_id=listing.identifier("id", item=entity))
            units.append(business_unit_of(self._transport.request_json("GET", path, params=expand)))
        return units

    def management_unit_settings(self, unit_ids: Sequence[str]) -> list[ManagementUnitSettings]:
        """Each unit with ``expand=settings`` (its adherence settings), in the order given."""
        return [
            management_unit_settings_of(
                self._transport.request_json(
                    "GET",
                    api_path(wire.MANAGEMENT_UNIT_PATH, management_unit_id=unit_id),
                    params={"expand": wire.MANAGEMENT_UNIT_EXPAND_SETTINGS},
                )
            )
            for unit_id in unit_ids
        ]

    def activity_codes(self, business_unit_id: str) -> list[ActivityCode]:
        """The business unit's activity codes (from the download service when Genesys sends them there)."""
        path = api_path(wire.BUSINESS_UNIT_ACTIVITY_CODES_PATH, business_unit_id=business_unit_id)
        listing = self._transport.request_json("GET", path)
        download_url = activity_codes_download_url(listing)
        if download_url is not None:
            # A presigned URL, as for job results: no Bearer may leak there, and it is not the token's budget.
            listing = self._transport.request_json("GET", download_url, authenticated=False, budgeted=False)
        return [activity_code_of(listing, business_unit_id, entity) for entity in listing.items("entities")]

    def presence_definitions(self) -> list[PresenceDefinition]:
        """Every presence definition, active and deactivated (each listing holds only one of the two)."""
        definitions: list[PresenceDefinition] = []
        for deactivated, query in (
            (False, wire.PRESENCE_DEACTIVATED_FALSE),
            (True, wire.PRESENCE_DEACTIVATED_TRUE),
        ):
            params = {"deactivated": query}
            listing = self._transport.request_json("GET", wire.PRESENCE_DEFINITIONS_PATH, params=params)
            definitions += [
                presence_definition_of(listing, entity, deactivated) for entity in listing.items("entities")
            ]
        return unique_by_id(definitions)

    def data_retention_days(self) -> int:
        """How many days Genesys keeps the org's analytics data (``retentionDays``)."""
        return retention_days_of(self._transport.request_json("GET", wire.DATA_RETENTION_PATH))

    def _pages(self, path: str, page_size: int, **params: str) -> Iterator[ResponseBody]:
        def fetch_page(paging: Mapping[str, int]) -> ResponseBody:
            return self._transport.request_json("GET", path, params={**params, **paging})

        return pages(fetch_page, page_size)

    # --- exports --------------------------------------------------------------------------------------------
    def run_export(
        self, request: AdherenceExportRequest | UserDetailsExportRequest, dest_dir: Path
    ) -> ExportResult:
        """Plan ``request`` into jobs, then start (or resume), wait for and download every job into
        ``dest_dir``, at most ``max_jobs_in_flight`` at a time. One ``JobResult`` per job, in plan order."""
        before = self.metrics.snapshot()
        plans, left_out = self._plan(request)
        self._transport.apply_org_limits()  # slots are sized by the discovered limits
        jobs = self._jobs.run(plans, Path(dest_dir))
        return ExportResult(jobs=tuple(jobs), metrics=self.metrics.since(before), left_out=left_out)

    def _plan(
        self, request: AdherenceExportRequest | UserDetailsExportRequest
    ) -> tuple[Sequence[PlannedJob], tuple[LeftOut, ...]]:
        if isinstance(request, AdherenceExportRequest):
            return plan_adherence_jobs(request, datetime.fromtimestamp(self._registry.clock(), UTC))
        available_until = self.data_availability_date()
        return plan_user_details_jobs(request, available_until, self.settings.user_details_cell)

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
