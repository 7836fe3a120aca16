"""Asynchronous jobs: bulk historical adherence and analytics user-details.

A job's state is a pure function of the clock (submitted_at, ready_at, expires_at), so nothing runs in
the background and an injected clock drives progression in tests. Job ids come from a generator seeded
by the sandbox seed *and a nonce drawn at every start*: ids never repeat across restarts, so a client
resuming a job id from before a restart gets 404, never another request's results. Everything else a
job serves (statuses, result documents, downloads) stays a function of the seed and the requests.
"""

from __future__ import annotations

import math
import os
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal, TypeVar

from wfm_pipeline import wire
from wfm_pipeline.sandbox.adherence import adherence_user_result
from wfm_pipeline.sandbox.errors import format_epoch, format_ts
from wfm_pipeline.sandbox.localdays import ceil_epoch, to_epoch
from wfm_pipeline.sandbox.org import PresenceSpan, RoutingSpan, SandboxOrg

UserDetailsOrder = Literal["asc", "desc", "unordered"]


@dataclass(frozen=True)
class AdherenceItem:
    management_unit_id: str
    start: datetime
    end: datetime
    user_ids: tuple[str, ...]  # resolved: MU members, limited to userIds when given
    include_exceptions: bool
    include_actuals: bool


@dataclass
class AdherenceJob:
    id: str
    client_id: str
    time_zone: str
    items: tuple[AdherenceItem, ...]
    submitted_at: datetime
    ready_at: datetime
    gone_at: datetime  # after this the job reads as 404 (retention)
    download_ttl_seconds: float
    fails: bool = False
    downloads_expire_early: bool = False

    def status(self, now: datetime) -> str:
        if now < self.ready_at:
            return "Processing"
        return "Error" if self.fails else "Complete"

    def download_expiry(self, now: datetime) -> datetime:
        if self.downloads_expire_early:
            return self.ready_at
        return now + timedelta(seconds=self.download_ttl_seconds)


@dataclass
class UserDetailsJob:
    id: str
    client_id: str
    start: datetime
    end: datetime
    user_ids: tuple[str, ...]
    presence_filters: tuple[dict[str, Any], ...]
    routing_status_filters: tuple[dict[str, Any], ...]
    order: UserDetailsOrder
    submitted_at: datetime
    pending_at: datetime
    ready_at: datetime
    expires_at: datetime
    availability: datetime  # dataAvailabilityDate when the job ran: later data is absent
    fails: bool = False
    # A record still open at ``availability`` is served without endTime (behaviour open_records).
    open_records: bool = False

    def state(self, now: datetime) -> str:
        if now < self.pending_at:
            return "QUEUED"
        if now < self.ready_at:
            return "PENDING"
        if self.fails:
            return "FAILED"
        if now >= self.expires_at:
            return "EXPIRED"
        return "FULFILLED"

    def days(self) -> list[datetime]:
        """UTC midnights of the days the interval touches: the user-day documents' days."""
        first = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        days, day = [], first
        while day < self.end:
            days.append(day)
            day += timedelta(days=1)
        return days


Job = AdherenceJob | UserDetailsJob
JobT = TypeVar("JobT", AdherenceJob, UserDetailsJob)


class JobRegistry:
    """All jobs of the org, their visibility per OAuth client, and the concurrent-job count."""

    def __init__(self, seed: int, nonce: bytes | None = None) -> None:
        """``nonce`` defaults to 16 random bytes per registry (per sandbox start); pass one to replay ids."""
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self.nonce = os.urandom(16) if nonce is None else nonce
        # Seed alone would repeat ids after a restart, and a client holding an old id would read the
        # new job that happens to get it; the nonce makes each start's id sequence its own.
        self._ids = random.Random(f"{seed}:job-ids:{self.nonce.hex()}")

    def new_id(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def get(self, job_id: str, client_id: str, kind: type[JobT], now: datetime) -> JobT | None:
        """The job if it exists, is of ``kind``, belongs to ``client_id`` and is retained; else None."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or not isinstance(job, kind) or job.client_id != client_id:
            return None
        if isinstance(job, AdherenceJob) and now >= job.gone_at:
            return None
        return job

    def find(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def next_completion_seconds(self, now: datetime) -> float:
        """Seconds until the earliest queued/running job completes (0 when none runs)."""
        with self._lock:
            pending = [job.ready_at for job in self._jobs.values() if now < job.ready_at]
        return (min(pending) - now).total_seconds() if pending else 0.0

    def running(self, now: datetime) -> int:
        """Queued or running jobs (not yet at ready_at); also drops long-gone jobs."""
        with self._lock:
            stale = [
                job_id
                for job_id, job in self._jobs.items()
                if (isinstance(job, AdherenceJob) and now >= job.gone_at + timedelta(days=1))
                or (isinstance(job, UserDetailsJob) and now >= job.expires_at + timedelta(days=1))
            ]
            for job_id in stale:
                del self._jobs[job_id]
            return sum(1 for job in self._jobs.values() if now < job.ready_at)


def latency_seconds(base: float, per_agent_day: float, agents: int, days: float) -> float:
    """Job latency grows with request size (agents x days)."""
    return base + per_agent_day * max(agents, 1) * max(days, 1.0)


def adherence_response(job: AdherenceJob, now: datetime, download_urls: list[str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job": {
            "id": job.id,
            "status": job.status(now),
            "selfUri": wire.ADHERENCE_BULK_JOB_PATH.format(job_id=job.id),
        }
    }
    if download_urls is not None:
        body["downloadUrls"] = download_urls
    return body


def filter_matches(spec: dict[str, Any], values: dict[str, str]) -> bool:
    """Evaluate an analytics filter ``{type: and|or, predicates, clauses}`` against dimension values."""
    results = [predicate_matches(p, values) for p in spec.get("predicates") or []]
    results += [filter_matches(c, values) for c in spec.get("clauses") or []]
    if not results:
        return True
    return all(results) if spec.get("type") == "and" else any(results)


def predicate_matches(predicate: dict[str, Any], values: dict[str, str]) -> bool:
    dimension = predicate.get("dimension")
    if dimension not in values:
        return True  # a predicate on another record kind's dimension does not restrict this one
    operator = predicate.get("operator", "matches")
    if operator == "exists":
        return values[dimension] is not None
    if operator == "notExists":
        return values[dimension] is None
    return values[dimension] == predicate.get("value")


# --- user-details result pages ---------------------------------------------------------------------


def user_details_document_count(job: UserDetailsJob) -> int:
    return len(job.days()) * len(job.user_ids)


def user_details_page(
    org: SandboxOrg, job: UserDetailsJob, offset: int, page_size: int
) -> list[dict[str, Any]]:
    """The user-day documents [offset, offset + page_size) of a job, with redundant copies removed.

    As in Genesys' datalake, a status is stored once per UTC day it touches and a job iterates
    (day, user) documents. Within one job the copy in the earliest document the job reads is kept
    (the day the status starts, or the job's first day), the others are filtered out; a document left
    empty disappears, so pages can be shorter than ``page_size``. Records are not clipped. Data
    starting at or after the job's dataAvailabilityDate is absent.
    """
    days = job.days()
    users = job.user_ids
    total = len(days) * len(users)
    indices = range(offset, min(offset + page_size, total))
    if job.order == "desc":
        indices = range(total - 1 - offset, max(total - 1 - offset - page_size, -1), -1)
    reader = _UserDayReader(org, job, days[0] if days else job.start)
    documents = [reader.document(days[index // len(users)], users[index % len(users)]) for index in indices]
    return [document for document in documents if document is not None]


class _UserDayReader:
    """Builds one job's (UTC day, user) documents in epoch seconds (the datetimes stay at the edge)."""

    def __init__(self, org: SandboxOrg, job: UserDetailsJob, first_day: datetime) -> None:
        self._org, self._job, self._first_day = org, job, first_day
        # start < availability <=> start < ceil(availability), for whole-second starts.
        self._availability = ceil_epoch(job.availability)
        # a record ending after this is still open when the job ran: served without endTime
        self._open_after = job.availability.timestamp() if job.open_records else math.inf
        self._presence_passes = _memoized_filters(
            job.presence_filters, ("systemPresence", "organizationPresenceId")
        )
        self._routing_passes = _memoized_filters(job.routing_status_filters, ("routingStatus",))

    def document(self, day: datetime, user_id: str) -> dict[str, Any] | None:
        """One (UTC day, user) document of the job, None when nothing of it is served."""
        job = self._job
        window_start = max(day, job.start)
        window_end = min(day + timedelta(days=1), job.end, job.availability)
        if window_end <= window_start:
            return None
        start, end = to_epoch(window_start), ceil_epoch(window_end)
        # A record is kept in the document of the day it starts in (any earlier start in the job's
        # first day) if it starts before the availability.
        earliest = -math.inf if day == self._first_day else to_epoch(day)
        availability, open_after = self._availability, self._open_after
        presence_passes, routing_passes = self._presence_passes, self._routing_passes
        presence = [
            _presence_shape(format_epoch(s), None if e > open_after else format_epoch(e), system, presence_id)
            for s, e, system, presence_id in self._org.presence_epochs(user_id, start, end)
            if earliest <= s < availability and presence_passes(system, presence_id)
        ]
        routing = [
            _routing_shape(format_epoch(s), None if e > open_after else format_epoch(e), status)
            for s, e, status in self._org.routing_epochs(user_id, start, end)
            if earliest <= s < availability and routing_passes(status)
        ]
        if job.order == "desc":
            presence.reverse()
            routing.reverse()
        if not presence and not routing:
            return None
        document: dict[str, Any] = {"userId": user_id}
        if presence:
            document["primaryPresence"] = presence
        if routing:
            document["routingStatus"] = routing
        return document


def _memoized_filters(
    filters: tuple[dict[str, Any], ...], dimensions: tuple[str, ...]
) -> Callable[..., bool]:
    """The job's filters as a predicate on dimension values, memoized: a page tests the same few
    values (five routing statuses, fourteen presences) thousands of times."""
    if not filters:
        return _always

    @cache
    def passes(*values: str) -> bool:
        return _passes(filters, dict(zip(dimensions, values, strict=True)))

    return passes


def _always(*values: str) -> bool:
    return True


def presence_record(span: PresenceSpan) -> dict[str, Any]:
    """An ``AnalyticsUserPresenceRecord`` as served (user-details pages and the truth timeline)."""
    return _presence_shape(
        format_ts(span.start), format_ts(span.end), span.system_presence, span.organization_presence_id
    )


def routing_record(span: RoutingSpan) -> dict[str, Any]:
    """An ``AnalyticsRoutingStatusRecord`` as served (user-details pages and the truth timeline)."""
    return _routing_shape(format_ts(span.start), format_ts(span.end), span.routing_status)


def _presence_shape(start: str, end: str | None, system_presence: str, presence_id: str) -> dict[str, Any]:
    """``end`` None: a record still open, served as Genesys does, without ``endTime``."""
    if end is None:
        return {"startTime": start, "systemPresence": system_presence, "organizationPresenceId": presence_id}
    return {
        "startTime": start,
        "endTime": end,
        "systemPresence": system_presence,
        "organizationPresenceId": presence_id,
    }


def _routing_shape(start: str, end: str | None, status: str) -> dict[str, Any]:
    if end is None:
        return {"startTime": start, "routingStatus": status}
    return {"startTime": start, "endTime": end, "routingStatus": status}


def _passes(filters: tuple[dict[str, Any], ...], values: dict[str, str]) -> bool:
    return all(filter_matches(spec, values) for spec in filters)


def adherence_document(org: SandboxOrg, job: AdherenceJob, item: AdherenceItem) -> dict[str, Any]:
    """One download file: ``WfmHistoricalAdherenceBulkResult`` for one item of the job."""
    return {
        "startDate": format_ts(item.start),
        "endDate": format_ts(item.end),
        "managementUnitId": item.management_unit_id,
        "userResults": [
            adherence_user_result(
                org,
                user_id,
                item.start,
                item.end,
                job.time_zone,
                include_exceptions=item.include_exceptions,
                include_actuals=item.include_actuals,
            )
            for user_id in item.user_ids
        ],
        "lookupIdToSecondaryPresenceId": org.secondary_presence_lookup(),
    }
