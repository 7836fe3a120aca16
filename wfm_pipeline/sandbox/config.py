"""Sandbox configuration: limit profiles, OAuth clients, the injectable clock and time scaling.

Every duration in :class:`Limits` is in *sandbox seconds* (what a client of the real API would
experience). ``--time-scale K`` divides each of them by K (:meth:`Limits.scaled`), so a realistic hour
plays out in 3600/K wall-clock seconds while counts (requests, jobs, quotas) stay unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from wfm_pipeline import wire


class Clock(Protocol):
    """Source of "now" for job progression, token expiry, windows and retention."""

    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: makes expiry and job progression testable in-process."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Limits:
    """Limits in force. ``[doc]`` = Genesys documentation; ``[model]`` = modelled (no public figure)."""

    # [doc] platform.api token.rate.per.minute / client.credentials.token.rate.per.minute
    token_rate_per_minute: int = 300
    token_rate_window_seconds: float = 60.0
    # [doc] OAuthClientRequest.accessTokenValiditySeconds default (24 h; 300..172800 allowed)
    token_ttl_seconds: float = 86400.0
    # [model] token creations per client id per window (auth.api has such limits; value not public)
    token_creation_per_window: int = 30
    token_creation_window_seconds: float = 60.0
    # [doc] platform.api request.bytes.max
    request_bytes_max: int = wire.REQUEST_BYTES_MAX
    # [model] secondary throttle: job submissions (adherence + user details) per org, rolling window
    job_submission_quota: int = 60
    job_submission_window_seconds: float = 3600.0
    # [model] queued/running jobs per org at any time
    max_concurrent_jobs: int = 10
    # [model] job latency = base + per_agent_day * agents * days
    adherence_latency_base_seconds: float = 5.0
    adherence_latency_per_agent_day_seconds: float = 0.02
    user_details_latency_base_seconds: float = 8.0
    user_details_latency_per_agent_day_seconds: float = 0.005
    # [model] share of the latency spent QUEUED before PENDING (analytics jobs)
    queued_fraction: float = 0.25
    # [model] analytics job results retention after completion, then EXPIRED
    result_retention_seconds: float = 86400.0
    # [model] adherence job records kept after completion, then 404
    adherence_job_retention_seconds: float = 86400.0
    # [model] presigned download URL lifetime (S3 style)
    download_url_ttl_seconds: float = 3600.0
    # [model] dataAvailabilityDate = now - availability lag
    availability_lag_seconds: float = 1800.0
    # [model] user-details results paging
    results_default_page_size: int = 100
    results_max_page_size: int = 1000
    # [doc-ish] /api/v2/users paging (25 default is common; max UNCERTAIN)
    users_default_page_size: int = 25
    users_max_page_size: int = 500
    # [doc-ish] /api/v2/authorization/divisions paging (same defaults as users: UNCERTAIN)
    divisions_default_page_size: int = 25
    divisions_max_page_size: int = 500

    def scaled(self, time_scale: float) -> Limits:
        """Every ``*_seconds`` field divided by ``time_scale``; counts unchanged."""
        if time_scale <= 0:
            raise ValueError("time scale must be > 0")
        changes = {
            f.name: getattr(self, f.name) / time_scale for f in fields(self) if f.name.endswith("_seconds")
        }
        return replace(self, **changes)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Limits:
        """A copy with ``overrides`` applied; unknown names or wrong types raise ValueError."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            if name not in known:
                raise ValueError(f"unknown limit {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, name)
            try:
                converted = type(current)(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"limit {name!r} needs a {type(current).__name__}, got {value!r}") from exc
            if isinstance(converted, float) and not math.isfinite(converted):
                raise ValueError(f"limit {name!r} must be finite")
            if converted < 0 or (isinstance(value, bool)):
                raise ValueError(f"limit {name!r} must be a non-negative number")
            changes[name] = converted
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# `fast`: the same mechanisms with small latencies and generous quotas, for tests.
FAST_LIMITS = Limits(
    token_rate_per_minute=6000,
    token_creation_per_window=1000,
    job_submission_quota=1000,
    job_submission_window_seconds=60.0,
    max_concurrent_jobs=100,
    adherence_latency_base_seconds=0.3,
    adherence_latency_per_agent_day_seconds=0.0005,
    user_details_latency_base_seconds=0.3,
    user_details_latency_per_agent_day_seconds=0.0002,
    result_retention_seconds=600.0,
    adherence_job_retention_seconds=600.0,
    download_url_ttl_seconds=600.0,
    availability_lag_seconds=300.0,
)
# `lagging`: realistic, with the availability watermark hours behind, as a third-party production report
# saw it (issue #12); the realistic profile's 30 minutes is what the docs suggest.
LAGGING_LIMITS = replace(Limits(), availability_lag_seconds=4 * 3600.0)
PROFILES: dict[str, Limits] = {"realistic": Limits(), "fast": FAST_LIMITS, "lagging": LAGGING_LIMITS}


@dataclass(frozen=True)
class ClientSpec:
    """An OAuth client; ``permissions`` None means every permission."""

    secret: str
    permissions: frozenset[str] | None = None


def default_clients() -> dict[str, ClientSpec]:
    return {wire.SANDBOX_CLIENT_ID: ClientSpec(wire.SANDBOX_CLIENT_SECRET)}


@dataclass(frozen=True)
class Behaviours:
    """What real orgs do that a client must cope with, beyond the documented contract: each on by default,
    each switchable (``--without NAME``) to test a client against the contract alone. README "Behaviours"
    names the source of each."""

    # A bulk adherence job still Processing lists "downloadUrls": [] (the key is there, empty).
    empty_download_urls_while_processing: bool = True
    # A user-details record still open at the job's dataAvailabilityDate has no endTime.
    open_records: bool = True
    # The System presence definitions have Genesys's ids, the same in every org (off: seed-derived ids).
    fixed_system_presence_ids: bool = True

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def without(self, names: Iterable[str]) -> Behaviours:
        unknown = sorted(set(names) - set(self.names()))
        if unknown:
            raise ValueError(f"unknown sandbox behaviour(s) {unknown}; choose from {list(self.names())}")
        return replace(self, **dict.fromkeys(names, False))


@dataclass(frozen=True)
class SandboxConfig:
    host: str = wire.SANDBOX_DEFAULT_HOST
    port: int = wire.SANDBOX_DEFAULT_PORT
    profile: str = "realistic"
    time_scale: float = 1.0
    agents: int = 300
    seed: int = 7
    history_start: date = date(2023, 1, 1)
    departed_agents: int | None = None  # None: OrgConfig's default share
    default_time_zone: str | None = None  # None: the first business unit's zone
    retention_days: int = 1825
    behaviours: Behaviours = field(default_factory=Behaviours)
    limit_overrides: Mapping[str, Any] = field(default_factory=dict)
    clients: Mapping[str, ClientSpec] = field(default_factory=default_clients)
    exit_with_parent: int | None = None  # pid: the server exits when that process is gone
    log_level: str = "warning"

    def limits(self) -> Limits:
        """Profile limits with overrides, in sandbox seconds (unscaled)."""
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; choose from {sorted(PROFILES)}")
        return PROFILES[self.profile].with_overrides(self.limit_overrides)


def retry_after_seconds(wall_seconds: float) -> int:
    """Retry-After header value: integer seconds, rounded up, never below 1."""
    return max(1, math.ceil(wall_seconds - 1e-9))
