"""One request budget per (client id, API host), shared by every process on the host through ``state_dir``.

Pieces:
- the request rate: a pyrate-limiter ``SQLiteBucket`` (sliding-window log, file-locked so processes share it)
  sized to ``safety_margin * allowed`` per window. ``allowed`` starts at the configured limit and follows the
  server's ``inin-ratelimit-allowed`` header, which every process records in the shared state.
- a shared pause: ``paused_until`` in a small SQLite state file. A 429 (Retry-After or backoff) and a server
  ``inin-ratelimit-count`` at or above our share (someone else uses the same token) both move it forward, and
  every process waits for it before its next request.
- job submissions: a second pyrate-limiter bucket (``submissions_per_window``).
- jobs in flight: slot rows in the state file, capped at ``max_jobs_in_flight`` and released when a job is
  deleted; rows older than ``slot_ttl_seconds`` are reclaimed (a process killed with -9 cannot release).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyrate_limiter import Rate, RateItem, SQLiteBucket

from wfm_pipeline import wire
from wfm_pipeline.genesys._errors import BudgetWaitTimeout, StateFileError
from wfm_pipeline.genesys._keys import stable_key

logger = logging.getLogger(__name__)

# Shortest sleep of any budget wait loop: a computed wait of 0 (or an unknown one) must not spin.
MIN_RETRY_SLEEP_SECONDS = 0.05
# Longest single sleep inside a shared pause: the pause is re-read after each slice, so a pause that another
# process shortened, or one that turned out to be bogus, never holds a process longer than this extra.
PAUSE_SLICE_SECONDS = 1.0


def budget_key(client_id: str, api_host: str) -> str:
    """Names the budget's (and the limits cache's) files: one budget per client id and API host."""
    return stable_key(client_id, api_host, length=20)


def effective_limit(allowed: int, safety_margin: float) -> int:
    """Requests per window we allow ourselves: server allowance minus a safety share (>= 1 spare)."""
    if allowed <= 1:
        return 1
    return max(1, min(allowed - 1, math.floor(allowed * safety_margin)))


def pause_reserve(allowed: int, safety_margin: float) -> int:
    """Remaining server allowance at or below which every process pauses until the server's reset."""
    return max(1, (allowed - effective_limit(allowed, safety_margin)) // 3)


@dataclass(frozen=True)
class RateLimitHeaders:
    allowed: int | None
    count: int | None
    reset_seconds: float | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitHeaders:
        def number(name: str) -> float | None:
            value = headers.get(name)
            if value is None:
                return None
            try:
                return float(value)
            except ValueError:
                return None

        allowed = number(wire.HEADER_RATELIMIT_ALLOWED)
        count = number(wire.HEADER_RATELIMIT_COUNT)
        return cls(
            allowed=int(allowed) if allowed is not None and allowed > 0 else None,
            count=int(count) if count is not None else None,
            reset_seconds=number(wire.HEADER_RATELIMIT_RESET),
        )


def enable_wal(conn: sqlite3.Connection, attempts: int = 100) -> None:
    """``PRAGMA journal_mode=WAL``, retried: on a fresh file it needs an exclusive lock and does not wait on
    the busy timeout, so processes starting together on a new state_dir can see "database is locked"."""
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def open_state_database(path: Path, *ddl: str) -> sqlite3.Connection:
    """A shared SQLite state file in WAL mode with its tables; a corrupt or unreadable file is a
    ``StateFileError`` naming it and saying how to reset it (the file only holds caches and pacing)."""
    try:
        conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        enable_wal(conn)
        for statement in ddl:
            conn.execute(statement)
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            raise
        raise StateFileError(
            f"state file {path} cannot be used ({exc}). Stop every pipeline process on this host, then "
            f"delete {path} and its -wal/-shm files: it holds only pacing and resume state, rebuilt on the "
            "next run (a deleted job registry makes the next run submit its export jobs again)."
        ) from exc
    return conn


def _open_bucket(path: Path, table: str, rate: Rate) -> SQLiteBucket:
    """A file-locked pyrate-limiter log shared by the host's processes (corrupt file: ``StateFileError``)."""
    try:
        return SQLiteBucket.init_from_file([rate], table=table, db_path=str(path), use_file_lock=True)
    except sqlite3.DatabaseError as exc:
        raise StateFileError(
            f"state file {path} cannot be used ({exc}). Stop every pipeline process on this host, then "
            f"delete {path}: it only paces requests and is rebuilt on the next run."
        ) from exc


class _SharedState:
    """Key/value numbers and job slots in one SQLite file; every write is one IMMEDIATE transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = open_state_database(
            path,
            "CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value REAL NOT NULL)",
            "CREATE TABLE IF NOT EXISTS job_slots (slot TEXT PRIMARY KEY, acquired_at REAL NOT NULL)",
        )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def get(self, name: str) -> float | None:
        row = self._conn.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else float(row[0])

    def get_all(self) -> dict[str, float]:
        return {name: float(value) for name, value in self._conn.execute("SELECT name, value FROM state")}

    @staticmethod
    def put(conn: sqlite3.Connection, name: str, value: float) -> None:
        conn.execute(
            "INSERT INTO state (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def raise_to(self, name: str, value: float) -> float:
        """Set ``name`` to max(current, value) atomically; returns the stored value."""
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
            current = None if row is None else float(row[0])
            if current is None or value > current:
                self.put(conn, name, value)
                return value
            return current

    def set(self, name: str, value: float) -> None:
        with self.transaction() as conn:
            self.put(conn, name, value)

    def count_job_slots(self) -> int:
        (taken,) = self._conn.execute("SELECT COUNT(*) FROM job_slots").fetchone()
        return int(taken)

    def close(self) -> None:
        self._conn.close()


def _bucket_now(bucket: SQLiteBucket) -> int:
    """The bucket's clock in ms (its own, so every process stamps the shared log the same way)."""
    now: int = bucket.now()  # type: ignore[no-untyped-call]  # pyrate-limiter leaves now() unannotated
    return now


class SharedBudget:
    """The budget every request, submission and job of one (client id, host) passes through."""

    def __init__(
        self,
        state_dir: Path,
        key: str,
        *,
        requests_per_window: int = 300,
        window_seconds: float = 60.0,
        safety_margin: float = 0.95,
        submissions_per_window: int = 30,
        submission_window_seconds: float = 60.0,
        max_jobs_in_flight: int = 8,
        max_wait_seconds: float = 900.0,
        max_pause_seconds: float = 180.0,
        slot_ttl_seconds: float = 6 * 3600.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        directory = Path(state_dir) / "budget"
        directory.mkdir(parents=True, exist_ok=True)
        self.key = key
        self._configured_allowed = requests_per_window
        self._window_ms = int(window_seconds * 1000)
        self._margin = safety_margin
        self._max_jobs = max_jobs_in_flight
        self._max_wait = max_wait_seconds
        self._max_pause = min(max_pause_seconds, max_wait_seconds)
        self._warned_pause_until: float | None = None
        self._slot_ttl = slot_ttl_seconds
        self._clock = clock
        self._sleep = sleep
        self._state = _SharedState(directory / f"{key}-state.sqlite")
        self._limit = effective_limit(self.allowed, safety_margin)
        self._requests = _open_bucket(
            directory / f"{key}-requests.sqlite", "requests", Rate(self._limit, self._window_ms)
        )
        self._submission_quota = max(1, submissions_per_window)
        self._submission_window_ms = int(submission_window_seconds * 1000)
        self._submissions = _open_bucket(
            directory / f"{key}-submissions.sqlite",
            "submissions",
            Rate(self._submission_quota, self._submission_window_ms),
        )
        self._puts_since_leak = 0

    # --- limits discovered after construction (see limits.py) ---------------------------------------------
    def apply_limits(
        self,
        *,
        token_allowed: int | None = None,
        token_window_seconds: float | None = None,
        submissions_per_window: int | None = None,
        submission_window_seconds: float | None = None,
        max_jobs_in_flight: int | None = None,
    ) -> None:
        """Replace the configured figures with discovered ones; None keeps the current value."""
        if token_allowed is not None and token_allowed > 0:
            self._configured_allowed = token_allowed
        if token_window_seconds is not None and token_window_seconds > 0:
            self._window_ms = max(1, round(token_window_seconds * 1000))
            self._limit = -1  # force _sync_rate to install the new window
            self._sync_rate()
        if submissions_per_window is not None or submission_window_seconds is not None:
            quota = submissions_per_window or self._submission_quota
            window_ms = (
                max(1, round(submission_window_seconds * 1000))
                if submission_window_seconds
                else self._submission_window_ms
            )
            self._submission_quota, self._submission_window_ms = max(1, quota), window_ms
            self._submissions.rates = [Rate(self._submission_quota, window_ms)]
        if max_jobs_in_flight is not None and max_jobs_in_flight > 0:
            self._max_jobs = max_jobs_in_flight

    @property
    def window_seconds(self) -> float:
        """The token window the request log paces over (the server's, when discovered)."""
        return self._window_ms / 1000

    @property
    def submissions_per_window(self) -> int:
        return self._submission_quota

    @property
    def submission_window_seconds(self) -> float:
        return self._submission_window_ms / 1000

    @property
    def max_jobs_in_flight(self) -> int:
        return self._max_jobs

    # --- what the server told us ---------------------------------------------------------------------------
    @property
    def allowed(self) -> int:
        """The server allowance per window as last reported by any process (configured limit until then)."""
        stored = self._state.get("allowed")
        return int(stored) if stored else self._configured_allowed

    @property
    def limit(self) -> int:
        """Requests per window this budget lets through (the allowance minus the safety share)."""
        return self._limit

    @property
    def paused_until(self) -> float:
        """End of the shared pause. A stored end further away than ``max_pause_seconds`` (written by a bad
        header before the cap existed, or by a process with a larger cap) is ignored, with a warning."""
        stored = self._state.get("paused_until") or 0.0
        if stored - self._clock() > self._max_pause:
            if self._warned_pause_until != stored:
                self._warned_pause_until = stored
                logger.warning(
                    "ignoring a shared pause until %.0f (%.0f s away, more than max_pause_seconds=%.0f) "
                    "in %s",
                    stored,
                    stored - self._clock(),
                    self._max_pause,
                    self._state.path,
                )
            return 0.0
        return stored

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from ``inin-ratelimit-*`` headers of any response."""
        info = RateLimitHeaders.from_headers(headers)
        if info.allowed is not None and info.allowed != self.allowed:
            self._state.set("allowed", info.allowed)
        if info.count is not None and info.reset_seconds is not None and info.reset_seconds > 0:
            allowed = info.allowed or self.allowed
            # Our log admits at most our share per window; the spare above it absorbs arrival jitter (a
            # request admitted late in our window can land in the server's next one). A count eating into
            # the last part of the spare means another client uses the same token: nobody sends again
            # until the server's window resets.
            if allowed - info.count <= pause_reserve(allowed, self._margin):
                self.pause(info.reset_seconds)

    def pause(self, seconds: float) -> float:
        """Pause every process sharing this budget for ``seconds`` from now (at most ``max_pause_seconds``:
        a server figure beyond it is a fault, not a reason to stop for a year); returns the pause end."""
        if seconds > self._max_pause:
            logger.warning(
                "server asked for a %.0f s pause; capped at max_pause_seconds=%.0f", seconds, self._max_pause
            )
            seconds = self._max_pause
        return self._state.raise_to("paused_until", self._clock() + seconds)

    # --- waiting for permission ---
    def acquire_request(self) -> float:
        """Block until one request may be sent; returns the seconds waited."""
        return self._acquire(self._requests, "request")

    def acquire_submission(self) -> float:
        """Block until a job submission may be sent (on top of the request budget); returns seconds waited."""
        waited = self._acquire(self._submissions, "submission")
        return waited + self.acquire_request()

    def _sync_rate(self) -> None:
        limit = effective_limit(self.allowed, self._margin)
        if limit != self._limit:
            self._limit = limit
            self._requests.rates = [Rate(limit, self._window_ms)]

    def _acquire(self, bucket: SQLiteBucket, name: str) -> float:
        started = self._clock()
        waited = 0.0
        while True:
            if waited > self._max_wait:
                raise BudgetWaitTimeout(f"waited {waited:.0f} s for the shared {name} budget")
            pause_left = self.paused_until - self._clock()
            if pause_left > 0:
                self._sleep(min(pause_left, PAUSE_SLICE_SECONDS))
                waited = self._clock() - started
                continue
            self._sync_rate()
            item = RateItem(name, _bucket_now(bucket))
            if bucket.put(item):
                self._maybe_leak(bucket)
                return waited
            wait_ms = bucket.waiting(item)
            assert isinstance(wait_ms, int)  # a synchronous bucket answers at once, never an awaitable
            # Sleep until the oldest counted entry leaves the window (a few ms extra keeps us off its edge),
            # never less than MIN_RETRY_SLEEP_SECONDS: an unknown or zero wait (-1/0 from waiting()) must not
            # turn this into a tight loop of file locks and SQLite reads.
            self._sleep(max(wait_ms / 1000 + 0.01, MIN_RETRY_SLEEP_SECONDS))
            waited = self._clock() - started

    def _maybe_leak(self, bucket: SQLiteBucket) -> None:
        # The log keeps one row per request; trim rows older than the window now and then.
        self._puts_since_leak += 1
        if self._puts_since_leak >= 100:
            self._puts_since_leak = 0
            bucket.leak(_bucket_now(bucket))

    # --- jobs in flight ---
    def try_acquire_job_slot(self, slot: str) -> bool:
        """Take a job slot now if one is free (idempotent per ``slot``); never waits."""
        now = self._clock()
        with self._state.transaction() as conn:
            conn.execute("DELETE FROM job_slots WHERE acquired_at < ?", (now - self._slot_ttl,))
            if conn.execute("SELECT 1 FROM job_slots WHERE slot = ?", (slot,)).fetchone():
                return True
            (taken,) = conn.execute("SELECT COUNT(*) FROM job_slots").fetchone()
            if taken < self._max_jobs:
                conn.execute("INSERT INTO job_slots (slot, acquired_at) VALUES (?, ?)", (slot, now))
                return True
        return False

    def acquire_job_slot(self, slot: str, poll_seconds: float = 1.0) -> float:
        """Take a job slot (idempotent per ``slot``); blocks while ``max_jobs_in_flight`` are taken.

        Deadlock rule for callers: never block here while holding other slots (those holders may be waiting
        for yours) or a file lock another slot holder may need. ``GenesysClient.run_export`` and
        ``ExportJobs.start`` follow it; use ``try_acquire_job_slot`` to take more slots opportunistically.
        """
        started = self._clock()
        while not self.try_acquire_job_slot(slot):
            waited = self._clock() - started
            if waited > self._max_wait:
                raise BudgetWaitTimeout(f"all {self._max_jobs} job slots stayed taken for {waited:.0f} s")
            # Slots are freed by other processes' downloads (no wake-up signal): poll at a steady rate.
            self._sleep(max(poll_seconds, MIN_RETRY_SLEEP_SECONDS))
        return self._clock() - started

    def release_job_slot(self, slot: str) -> None:
        with self._state.transaction() as conn:
            conn.execute("DELETE FROM job_slots WHERE slot = ?", (slot,))

    def jobs_in_flight(self) -> int:
        return self._state.count_job_slots()

    def close(self) -> None:
        self._requests.close()  # type: ignore[no-untyped-call]  # pyrate-limiter leaves close() unannotated
        self._submissions.close()  # type: ignore[no-untyped-call]  # as above
        self._state.close()
