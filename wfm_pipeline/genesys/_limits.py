"""Limits discovery: what the org reports at ``GET /api/v2/organizations/limits/namespaces/{namespace}``.

Read once per client by ``LimitsDiscovery``, which the client gives its transport: the transport applies it
before its first budgeted request (``Transport.apply_org_limits``, also called before the first job slot),
so the budget is sized by the org's figures before anything is spent. Cached in ``state_dir/limits/`` for
``limits_cache_seconds`` so several processes on one host do not each fetch it (a file lock makes one
process fetch while the others wait and read its answer).

Keys used (values are what a client experiences in wall-clock time):
- ``platform.api`` ``token.rate.per.minute`` R (documented Genesys key): requests per token per 60 wall
  seconds. The server counts them in fixed windows of ``allowed`` requests (``inin-ratelimit-allowed``, 300 on
  Genesys), so its window is ``60 * allowed / R`` seconds: 60 s on Genesys, shorter on a compressed sandbox.
  The budget paces ``allowed`` per that window, never R per 60 s (one burst of R would overrun a short
  window).
- ``analytics`` / ``historical.adherence`` ``sandbox.jobs.submission.max``, ``.submission.window.seconds``,
  ``.concurrent.max``: modelled keys (the sandbox's; Genesys publishes no figure). One org-wide quota
  shared by both job kinds, so the smaller of the two namespaces' values is used.

A 403/404 or a missing key leaves the configured setting in force (logged at debug).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import httpx
from filelock import FileLock

from wfm_pipeline import wire
from wfm_pipeline.fileio import atomic_write_bytes
from wfm_pipeline.genesys._budget import RateLimitHeaders, SharedBudget
from wfm_pipeline.genesys._errors import (
    AuthenticationError,
    GenesysError,
    NotFoundError,
    PermissionDeniedError,
)
from wfm_pipeline.genesys._settings import ClientSettings

logger = logging.getLogger(__name__)

TOKEN_RATE_KEY = "token.rate.per.minute"
SUBMISSION_MAX_KEY = "sandbox.jobs.submission.max"
SUBMISSION_WINDOW_KEY = "sandbox.jobs.submission.window.seconds"
CONCURRENT_MAX_KEY = "sandbox.jobs.concurrent.max"
JOB_NAMESPACES = ("analytics", "historical.adherence")
# A derived server window outside these bounds means inconsistent figures: keep the configured window.
MIN_TOKEN_WINDOW_SECONDS = 0.01
MAX_TOKEN_WINDOW_SECONDS = 3600.0
# Our clock stamps a submission before the server sees it; with variable latency a rolling window measured
# from our stamps could admit one more than the server's. A little slack on the window absorbs that.
SUBMISSION_WINDOW_GUARD_SECONDS = 0.5


@dataclass(frozen=True)
class DiscoveredLimits:
    """What the server reported; None = not reported (keep the configured setting)."""

    token_rate_per_minute: int | None = None
    # inin-ratelimit-allowed on the same response as the rate: together they give the server's window.
    token_allowed: int | None = None
    submissions_max: int | None = None
    submission_window_seconds: float | None = None
    concurrent_jobs_max: int | None = None
    fetched_at: float = 0.0

    def token_window_seconds(self, default_allowed: int) -> float | None:
        """The server's token window in wall seconds: ``60 * allowed / R`` (None when R is unknown)."""
        if not self.token_rate_per_minute:
            return None
        allowed = self.token_allowed or default_allowed
        window = 60.0 * allowed / self.token_rate_per_minute
        if not MIN_TOKEN_WINDOW_SECONDS <= window <= MAX_TOKEN_WINDOW_SECONDS:
            return None
        return window

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> DiscoveredLimits:
        raw = json.loads(text)
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


def _positive_number(entities: list[Any], key: str) -> float | None:
    for entity in entities:
        if isinstance(entity, dict) and entity.get("key") == key:
            value = entity.get("value")
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                return float(value)
            logger.debug("limit %s has an unusable value %r; ignoring it", key, value)
    return None


def _smallest(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


# (namespace) -> (entities, response headers) or None when the namespace is not readable.
FetchNamespace = Callable[[str], "tuple[list[Any], Mapping[str, str]] | None"]


def discover(fetch: FetchNamespace) -> DiscoveredLimits:
    """Read the three namespaces through ``fetch``; keys not reported stay None."""
    token_rate: float | None = None
    token_allowed: int | None = None
    platform = fetch("platform.api")
    if platform is not None:
        entities, headers = platform
        token_rate = _positive_number(entities, TOKEN_RATE_KEY)
        token_allowed = RateLimitHeaders.from_headers(headers).allowed
    submissions: list[float | None] = []
    windows: list[float | None] = []
    concurrent: list[float | None] = []
    for namespace in JOB_NAMESPACES:
        found = fetch(namespace)
        if found is None:
            continue
        entities, _ = found
        submissions.append(_positive_number(entities, SUBMISSION_MAX_KEY))
        windows.append(_positive_number(entities, SUBMISSION_WINDOW_KEY))
        concurrent.append(_positive_number(entities, CONCURRENT_MAX_KEY))
    submissions_max = _smallest(submissions)
    window = _smallest(windows)
    concurrent_max = _smallest(concurrent)
    # A quota without its window (or the reverse) cannot be applied safely: keep the configured pair.
    if (submissions_max is None) != (window is None):
        logger.debug("job submission quota and window not both reported; keeping the configured ones")
        submissions_max = window = None
    limits = DiscoveredLimits(
        token_rate_per_minute=int(token_rate) if token_rate else None,
        token_allowed=token_allowed,
        submissions_max=int(submissions_max) if submissions_max else None,
        submission_window_seconds=window,
        concurrent_jobs_max=int(concurrent_max) if concurrent_max else None,
        fetched_at=time.time(),
    )
    for name in ("token_rate_per_minute", "submissions_max", "concurrent_jobs_max"):
        if getattr(limits, name) is None:
            logger.debug("limits discovery: %s not reported; the configured setting stays", name)
    return limits


def fetch_with(request: Callable[[str], httpx.Response]) -> FetchNamespace:
    """A ``FetchNamespace`` over ``request(path) -> httpx.Response``: 403/404 -> None, other errors raise."""

    def fetch(namespace: str) -> tuple[list[Any], Mapping[str, str]] | None:
        try:
            response = request(wire.LIMITS_NAMESPACE_PATH.format(namespace=namespace))
        except (NotFoundError, PermissionDeniedError) as exc:
            logger.debug("limits namespace %s not readable (%s); configured settings stay", namespace, exc)
            return None
        try:
            payload = response.json()
        except ValueError:
            return None
        entities = payload.get("entities") if isinstance(payload, dict) else None
        return (entities if isinstance(entities, list) else []), response.headers

    return fetch


class LimitsCache:
    """``state_dir/limits/<key>.json``: the last discovery, shared by the processes of one host."""

    def __init__(self, state_dir: Path, key: str, max_age_seconds: float) -> None:
        directory = Path(state_dir) / "limits"
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{key}.json"
        self._lock = FileLock(str(directory / f"{key}.lock"), timeout=120)
        self.max_age = max_age_seconds

    def _fresh(self) -> DiscoveredLimits | None:
        try:
            cached = DiscoveredLimits.from_json(self.path.read_text())
        except (OSError, ValueError, TypeError):
            return None
        age = time.time() - cached.fetched_at
        return cached if 0 <= age < self.max_age else None

    def get_or_discover(self, discover_now: Callable[[], DiscoveredLimits]) -> DiscoveredLimits | None:
        """The cached limits if fresh, else ``discover_now()`` (stored); None when discovery failed."""
        with self._lock:
            cached = self._fresh()
            if cached is not None:
                return cached
            try:
                found = discover_now()
            except AuthenticationError:
                raise  # every other call would fail the same way: say so now
            except GenesysError as exc:
                # A transient failure: use the configured settings now, let the next client try again.
                logger.warning("limits discovery failed (%s); using the configured budget", exc)
                return None
            atomic_write_bytes(self.path, found.to_json().encode())
            return found


class LimitsDiscovery:
    """The org's limits, read once per client (or taken from the host's cache) and applied to its budget.
    Explicit settings of the job throttles cap what is reported (README "Budget rules")."""

    def __init__(self, settings: ClientSettings, budget: SharedBudget, cache: LimitsCache) -> None:
        self._settings = settings
        self._budget = budget
        self._cache = cache
        self._started = False
        self.found: DiscoveredLimits | None = None  # what the org reported (None: not yet / nothing)

    def apply_once(self, request: Callable[[str], httpx.Response]) -> None:
        """Discover through ``request(path)`` and size the budget, the first time only: marked as done
        before fetching, so the fetch's own budgeted requests (and a failed discovery) do not repeat it."""
        if self._started:
            return
        self._started = True
        self.found = self._cache.get_or_discover(lambda: discover(fetch_with(request)))
        if self.found is not None:
            self._apply(self.found)

    def _apply(self, found: DiscoveredLimits) -> None:
        s = self._settings
        quota, window = found.submissions_max, found.submission_window_seconds
        if quota is not None and window is not None:
            window += SUBMISSION_WINDOW_GUARD_SECONDS
            if s.is_configured("submissions_per_window") or s.is_configured("submission_window_seconds"):
                # The stricter of each part: at most the configured rate and the reported one.
                quota = min(quota, s.submissions_per_window)
                window = max(window, s.submission_window_seconds)
        concurrent = found.concurrent_jobs_max
        if concurrent is not None and s.is_configured("max_jobs_in_flight"):
            concurrent = min(concurrent, s.max_jobs_in_flight)
        self._budget.apply_limits(
            token_allowed=found.token_allowed,
            token_window_seconds=found.token_window_seconds(s.requests_per_window),
            submissions_per_window=quota,
            submission_window_seconds=window,
            max_jobs_in_flight=concurrent,
        )
