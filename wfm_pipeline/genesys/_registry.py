"""Persisted job registry: a submitted job's identity survives the process.

The row is written right after the 202, keyed by a hash of (kind, request body, client id, host), so a
restarted process finds the job it (or a killed sibling) submitted and resumes it instead of submitting again.

Each row also records ``complete_until``: the instant up to which the job's data was complete when it was
submitted (adherence: the submission instant; user details: the dataAvailabilityDate its window was clamped
to). A job is never reused for a day that ends after it (``ExportJobs._resumable``): the same body is then
submitted again and replaces the row. Rows written before the column existed read it as their
``submitted_at``, the latest instant their data can have been complete at (safe for both kinds).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wfm_pipeline.genesys._budget import open_state_database
from wfm_pipeline.genesys._keys import stable_key

# Registry-only statuses (the server never serves them).
DOWNLOADED = "Downloaded"  # every file of the job is on disk
GONE = "GONE"  # finished: the job kept vanishing (or its results did) through every resubmission
FOREIGN = "FOREIGN"  # finished: the job kept serving another request's results


def job_key(kind: str, body: dict[str, Any], client_id: str, host: str) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return stable_key(kind, canonical, client_id, host, length=32)


@dataclass(frozen=True)
class RegisteredJob:
    key: str
    kind: str
    job_id: str
    body: dict[str, Any]
    submitted_at: float
    status: str
    finished: bool
    files: tuple[str, ...] = ()
    complete_until: float = 0.0  # epoch seconds (see the module docstring)


class JobRegistry:
    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        self.clock = clock  # wall clock, epoch seconds: submission instants and the resume age
        self._conn = open_state_database(
            Path(state_dir) / "jobs.sqlite",
            """CREATE TABLE IF NOT EXISTS jobs (
                key TEXT PRIMARY KEY, kind TEXT NOT NULL, job_id TEXT NOT NULL, body TEXT NOT NULL,
                submitted_at REAL NOT NULL, status TEXT NOT NULL, finished INTEGER NOT NULL DEFAULT 0,
                updated_at REAL NOT NULL, files TEXT NOT NULL DEFAULT '[]', complete_until REAL)""",
        )
        self._add_complete_until()

    def _add_complete_until(self) -> None:
        """Migrate a registry from before ``complete_until`` (its rows keep NULL: see the docstring)."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(jobs)")}
        if "complete_until" in columns:
            return
        try:
            self._conn.execute("ALTER TABLE jobs ADD COLUMN complete_until REAL")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):  # another process migrated it first
                raise

    def get(self, key: str) -> RegisteredJob | None:
        row = self._conn.execute(
            """SELECT key, kind, job_id, body, submitted_at, status, finished, files,
                      COALESCE(complete_until, submitted_at) FROM jobs WHERE key = ?""",
            (key,),
        ).fetchone()
        if row is None:
            return None
        body, files = json.loads(row[3]), tuple(json.loads(row[7]))
        return RegisteredJob(row[0], row[1], row[2], body, row[4], row[5], bool(row[6]), files, row[8])

    def record_submission(
        self,
        key: str,
        kind: str,
        job_id: str,
        body: dict[str, Any],
        status: str,
        complete_until: float | None = None,
    ) -> float:
        """Register (or replace) the job of ``key``; ``complete_until`` None means the submission instant.
        Returns the submission instant."""
        now = self.clock()
        self._conn.execute(
            """INSERT INTO jobs (key, kind, job_id, body, submitted_at, status, finished, updated_at,
                                 complete_until)
               VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)
               ON CONFLICT(key) DO UPDATE SET job_id = excluded.job_id, body = excluded.body,
                 submitted_at = excluded.submitted_at, status = excluded.status, finished = 0,
                 updated_at = excluded.updated_at, files = '[]', complete_until = excluded.complete_until""",
            (
                key,
                kind,
                job_id,
                json.dumps(body, sort_keys=True),
                now,
                status,
                now,
                now if complete_until is None else complete_until,
            ),
        )
        return now

    def update_status(self, key: str, status: str, finished: bool = False) -> None:
        self._conn.execute(
            "UPDATE jobs SET status = ?, finished = ?, updated_at = ? WHERE key = ?",
            (status, int(finished), self.clock(), key),
        )

    def record_download(self, key: str, file_names: list[str]) -> None:
        """The job's files are all on disk: later starts of the same request reuse them."""
        self._conn.execute(
            "UPDATE jobs SET status = ?, finished = 1, files = ?, updated_at = ? WHERE key = ?",
            (DOWNLOADED, json.dumps(file_names), self.clock(), key),
        )

    def close(self) -> None:
        self._conn.close()
