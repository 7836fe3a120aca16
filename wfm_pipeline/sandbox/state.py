"""Per-server state shared by every route: config, org, clock, limits in force, tokens, jobs, caches."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request

from wfm_pipeline import wire
from wfm_pipeline.sandbox import limits as limit_names
from wfm_pipeline.sandbox.auth import Token, TokenStore
from wfm_pipeline.sandbox.config import Clock, Limits, SandboxConfig, retry_after_seconds
from wfm_pipeline.sandbox.errors import ApiError
from wfm_pipeline.sandbox.faults import FaultBook
from wfm_pipeline.sandbox.jobs import JobRegistry
from wfm_pipeline.sandbox.limits import FixedWindowBudget, RollingWindowQuota
from wfm_pipeline.sandbox.org import SandboxOrg
from wfm_pipeline.sandbox.stats import Stats

ADMIN_PREFIX = "/sandbox/"  # admin and truth routes stay fault-free ...
DOWNLOADS_PREFIX = "/sandbox/downloads/"  # ... except the presigned downloads
ORG_KEY = "org"  # one org per sandbox: the key of org-wide quotas


class BytesCache:
    """Thread-safe LRU of generated response bodies, bounded in total bytes (memory stays flat)."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: OrderedDict[Any, bytes] = OrderedDict()
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Any) -> bytes | None:
        with self._lock:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, key: Any, body: bytes) -> None:
        if len(body) > self._max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            self._bytes += len(body) - (len(previous) if previous is not None else 0)
            self._entries[key] = body
            while self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)


class SandboxState:
    """Everything a request handler needs: config, org, clock, limits, tokens, jobs, faults, stats."""

    def __init__(self, config: SandboxConfig, org: SandboxOrg, clock: Clock) -> None:
        self.config = config
        self.org = org
        self.clock = clock
        self.base_limits: Limits = config.limits()
        self._scaled_limits = self.base_limits.scaled(config.time_scale)
        self.tokens = TokenStore()
        self.budget = FixedWindowBudget()
        self.job_quota = RollingWindowQuota()
        self.token_quota = RollingWindowQuota()
        self.faults = FaultBook(config.seed)
        self.stats = Stats()
        self.jobs = JobRegistry(config.seed)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-org")
        self.pages = BytesCache(32 * 1024 * 1024)
        self.downloads = BytesCache(64 * 1024 * 1024)
        self.signing_key = hashlib.sha256(f"wfm-sandbox|{config.seed}|signing".encode()).digest()
        self._job_lock = threading.Lock()

    @property
    def limits(self) -> Limits:
        """Limits in force in wall-clock seconds (time scale applied)."""
        return self._scaled_limits

    def set_limits(self, overrides: dict[str, Any]) -> None:
        self.base_limits = self.base_limits.with_overrides(overrides)
        self._scaled_limits = self.base_limits.scaled(self.config.time_scale)

    def now(self) -> datetime:
        return self.clock.now()

    async def compute(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run org work on the single worker thread (the org model is not shared across threads)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    def sign(self, payload: str) -> str:
        return hmac.new(self.signing_key, payload.encode(), hashlib.sha256).hexdigest()[:32]

    def throttle(self, limit_name: str, wall_seconds: float) -> ApiError:
        """A normalized 429 for ``limit_name`` (counted in stats)."""
        self.stats.record_throttle(limit_name)
        seconds = retry_after_seconds(wall_seconds)
        return ApiError(
            429,
            wire.ERROR_TOO_MANY_REQUESTS_RETRY_AFTER,
            f"Rate limit exceeded the maximum. Retry the request in [{seconds}] seconds",
            headers={wire.HEADER_RETRY_AFTER: str(seconds)},
        )

    def admit_job(self, kind: str) -> None:
        """Concurrent-job cap, then the rolling submission quota; records the job in stats."""
        limits, now = self.limits, self.now()
        with self._job_lock:
            running = self.jobs.running(now)
            if running >= limits.max_concurrent_jobs:
                # Retry when the earliest running job completes and frees a slot.
                raise self.throttle(limit_names.LIMIT_CONCURRENT_JOBS, self.jobs.next_completion_seconds(now))
            wait = self.job_quota.try_acquire(
                ORG_KEY, limits.job_submission_quota, limits.job_submission_window_seconds, now
            )
            if wait is not None:
                raise self.throttle(limit_names.LIMIT_JOB_SUBMISSION, wait)
            self.stats.record_job(kind, running + 1)


@dataclass(frozen=True)
class Caller:
    token: Token
    now: datetime


def sandbox_of(request: Request) -> SandboxState:
    sandbox: SandboxState = request.app.state.sandbox
    return sandbox
