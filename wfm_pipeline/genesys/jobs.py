"""Export jobs: submit (or resume) -> poll -> download -> delete, for bulk adherence and user-details jobs."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from wfm_pipeline import wire
from wfm_pipeline.genesys.errors import ExportJobFailed, GenesysError, NotFoundError
from wfm_pipeline.genesys.files import ExportedFile, complete_file, read_sidecar, write_export_file
from wfm_pipeline.genesys.models import ExportJob, ExportKind, LeftOut
from wfm_pipeline.genesys.registry import DOWNLOADED, JobRegistry, job_key
from wfm_pipeline.genesys.transport import Transport
from wfm_pipeline.genesys.windows import parse_utc

logger = logging.getLogger(__name__)

ADHERENCE = "adherence"
USER_DETAILS = "user_details"


class JobTimeout(GenesysError):
    """A job did not reach a terminal state within ``job_timeout_seconds``."""


class ResubmitJob(Exception):
    """Internal: the job is gone (expired, cancelled, unknown) and must be submitted again."""


def _window_of(kind: str, body: dict[str, Any]) -> tuple[datetime, datetime]:
    if kind == ADHERENCE:
        item = body["items"][0]
        return parse_utc(item["startDate"]), parse_utc(item["endDate"])
    start, end = body["interval"].split("/")
    return parse_utc(start), parse_utc(end)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


class ExportJobs:
    def __init__(
        self,
        transport: Transport,
        registry: JobRegistry,
        state_dir: Path,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.settings = transport.settings
        self.budget = transport.budget
        self.metrics = transport.metrics
        self.registry = registry
        self._locks = Path(state_dir) / "locks"
        self._locks.mkdir(parents=True, exist_ok=True)
        self._sleep = sleep
        self._clock = clock

    # --- submit or resume -------------------------------------------------------------------------------
    def key_for(self, kind: ExportKind, body: dict[str, Any]) -> str:
        """The registry key (and job-slot name) of a job body."""
        return job_key(kind, body, self.settings.client_id, self.settings.api_host)

    def start(self, kind: ExportKind, body: dict[str, Any], left_out: LeftOut | None = None) -> ExportJob:
        self.transport.prepare()  # job slots are sized by the discovered limits
        key = self.key_for(kind, body)
        window_start, window_end = _window_of(kind, body)
        # The slot is taken before the key's file lock, never while holding it: a process waiting for a slot
        # inside the lock would block every slot holder that needs the same lock to resubmit (lock order:
        # job slot, then file lock).
        self.metrics.waited_seconds += self.budget.acquire_job_slot(key)
        try:
            return self._start_holding_slot(kind, body, key, window_start, window_end, left_out)
        except BaseException:
            self.budget.release_job_slot(key)
            raise

    def _start_holding_slot(
        self,
        kind: ExportKind,
        body: dict[str, Any],
        key: str,
        window_start: datetime,
        window_end: datetime,
        left_out: LeftOut | None,
    ) -> ExportJob:
        # One process at a time decides "resume or submit" for a key, so two processes never both submit it.
        with FileLock(str(self._locks / f"{key}.lock"), timeout=self.settings.job_timeout_seconds):
            known = self.registry.get(key)
            max_age = self.settings.job_resume_max_age.total_seconds()
            recent = known is not None and time.time() - known.submitted_at < max_age
            if known is not None and recent and (known.status == DOWNLOADED or not known.finished):
                if known.status == DOWNLOADED:  # downloaded jobs hold no slot: download() reuses their files
                    self.budget.release_job_slot(key)
                self.metrics.jobs_resumed += 1
                logger.info("resuming %s job %s (%s)", kind, known.job_id, known.status)
                return ExportJob(
                    kind=kind,
                    job_id=known.job_id,
                    window_start=window_start,
                    window_end=window_end,
                    request=body,
                    submitted_at=datetime.fromtimestamp(known.submitted_at, UTC),
                    status=known.status,
                    left_out=left_out,
                    key=key,
                )
            return self._submit(kind, body, key, window_start, window_end, left_out)

    def _submit(
        self,
        kind: ExportKind,
        body: dict[str, Any],
        key: str,
        window_start: datetime,
        window_end: datetime,
        left_out: LeftOut | None,
    ) -> ExportJob:
        # Normally already held (start/resubmit take it before the file lock): then this returns at once.
        self.metrics.waited_seconds += self.budget.acquire_job_slot(key)
        path = wire.ADHERENCE_BULK_PATH if kind == ADHERENCE else wire.USER_DETAILS_JOBS_PATH
        try:
            response = self.transport.request("POST", path, json=body, submission=True)
        except BaseException:
            self.budget.release_job_slot(key)
            raise
        payload = response.json()
        if kind == ADHERENCE:
            job_id, status = payload["job"]["id"], payload["job"].get("status", "Processing")
            urls = tuple(payload.get("downloadUrls") or ())
        else:
            job_id, status, urls = payload["jobId"], "QUEUED", ()
        submitted = self.registry.record_submission(key, kind, job_id, body, status)
        self.metrics.jobs_submitted += 1
        logger.info("submitted %s job %s", kind, job_id)
        return ExportJob(
            kind=kind,
            job_id=job_id,
            window_start=window_start,
            window_end=window_end,
            request=body,
            submitted_at=datetime.fromtimestamp(submitted, UTC),
            status=status,
            left_out=left_out,
            key=key,
            download_urls=urls,
        )

    def resubmit(self, job: ExportJob, reason: str) -> ExportJob:
        logger.warning("%s job %s %s; submitting it again", job.kind, job.job_id, reason)
        # Slot first, file lock second (see start()); a no-op when this job's slot is still ours.
        self.metrics.waited_seconds += self.budget.acquire_job_slot(job.key)
        with FileLock(str(self._locks / f"{job.key}.lock"), timeout=self.settings.job_timeout_seconds):
            known = self.registry.get(job.key)
            if known is not None and not known.finished and known.job_id != job.job_id:
                # Another process already resubmitted it: follow that job.
                return replace(job, job_id=known.job_id, status=known.status, download_urls=())
            return self._submit(
                job.kind, job.request, job.key, job.window_start, job.window_end, job.left_out
            )

    # --- poll ---------------------------------------------------------------------------------------------
    def status(self, job: ExportJob) -> ExportJob:
        """One poll. Raises ResubmitJob when the job is gone, ExportJobFailed when it failed."""
        if job.kind == ADHERENCE:
            try:
                payload = self.transport.request(
                    "GET", wire.ADHERENCE_BULK_JOB_PATH.format(job_id=job.job_id)
                ).json()
            except NotFoundError as exc:
                raise ResubmitJob("is unknown to the server (404)") from exc
            status = str(payload.get("job", {}).get("status", "Processing"))
            urls = tuple(payload.get("downloadUrls") or ())
            if status == "Error":
                self._finish(job, status)
                raise ExportJobFailed(
                    f"adherence job {job.job_id} ended in Error", job_id=job.job_id, body=payload
                )
            return replace(job, status=status, download_urls=urls or job.download_urls)
        try:
            payload = self.transport.request(
                "GET", wire.USER_DETAILS_JOB_PATH.format(job_id=job.job_id)
            ).json()
        except NotFoundError as exc:
            raise ResubmitJob("is unknown to the server (404)") from exc
        state = str(payload.get("state", "QUEUED"))
        if state == "FAILED":
            self._finish(job, state)
            message = payload.get("errorMessage") or "no errorMessage"
            raise ExportJobFailed(
                f"user-details job {job.job_id} FAILED: {message}", job_id=job.job_id, body=payload
            )
        if state in ("EXPIRED", "CANCELLED"):
            raise ResubmitJob(f"is {state}")
        return replace(job, status=state)

    def wait_for(self, job: ExportJob) -> ExportJob:
        if job.status == DOWNLOADED:
            return job
        started = self._clock()
        delay = self.settings.poll_initial_seconds
        resubmissions = 0
        while True:
            try:
                job = self.status(job)
            except ResubmitJob as gone:
                if resubmissions >= self.settings.max_resubmissions:
                    self._finish(job, "GONE")
                    raise ExportJobFailed(
                        f"{job.kind} job {job.job_id} {gone} after {resubmissions} resubmissions",
                        job_id=job.job_id,
                    ) from gone
                resubmissions += 1
                job = self.resubmit(job, str(gone))
                delay = self.settings.poll_initial_seconds
                continue
            self.registry.update_status(job.key, job.status)
            if job.status in ("Complete", "FULFILLED"):
                return job
            if self._clock() - started + delay > self.settings.job_timeout_seconds:
                raise JobTimeout(f"{job.kind} job {job.job_id} still {job.status} after polling")
            self.metrics.waited_seconds += delay
            self._sleep(delay)
            delay = min(self.settings.poll_cap_seconds, delay * self.settings.poll_factor)

    # --- download -----------------------------------------------------------------------------------------
    def download(self, job: ExportJob, dest_dir: Path) -> list[ExportedFile]:
        dest_dir.mkdir(parents=True, exist_ok=True)
        if job.status == DOWNLOADED:
            known = self.registry.get(job.key)
            names = known.files if known is not None else ()
            reused = [complete_file(dest_dir / name) for name in names]
            if names and all(reused):
                self.budget.release_job_slot(job.key)  # run_export may have taken one for it up front
                return [f for f in reused if f is not None]
            # Downloaded elsewhere or since deleted: run the job again.
            job = self.wait_for(self.resubmit(replace(job, status="GONE"), "has no files in this directory"))
        if job.kind == ADHERENCE:
            files = self._download_adherence(job, dest_dir)
        else:
            for resubmissions in range(self.settings.max_resubmissions + 1):
                try:
                    files = self._download_user_details(job, dest_dir)
                    break
                except NotFoundError:
                    # The results expired (or the job vanished) before we fetched them all: run it again.
                    if resubmissions == self.settings.max_resubmissions:
                        self._finish(job, "GONE")
                        raise
                    job = self.wait_for(self.resubmit(job, "has no results any more"))
            with contextlib.suppress(NotFoundError):  # already gone: the slot is free either way
                self.transport.request("DELETE", wire.USER_DETAILS_JOB_PATH.format(job_id=job.job_id))
        self.budget.release_job_slot(job.key)
        self.registry.record_download(job.key, [f.path.name for f in files])
        return files

    def _completed(self, job: ExportJob) -> ExportJob:
        """The job's current state with fresh download URLs; resubmitted and awaited if it is gone."""
        try:
            current = self.status(replace(job, download_urls=()))
        except ResubmitJob as gone:
            return self.wait_for(self.resubmit(job, str(gone)))
        if current.status not in ("Complete", "FULFILLED"):
            return self.wait_for(current)
        return current

    def _file_name(self, job: ExportJob, part: int) -> str:
        label = "adherence" if job.kind == ADHERENCE else "user_details"
        page = "part" if job.kind == ADHERENCE else "page"
        window = f"{_stamp(job.window_start)}_{_stamp(job.window_end)}"
        return f"{label}_{window}_{job.key[:12]}_{page}{part:04d}.json"

    def _download_adherence(self, job: ExportJob, dest_dir: Path) -> list[ExportedFile]:
        if not job.download_urls:
            job = self._completed(job)
        urls = list(job.download_urls)
        files: list[ExportedFile] = []
        refreshes = 0
        index = 0
        while index < len(urls):
            path = dest_dir / self._file_name(job, index)
            done = complete_file(path)
            if done is not None:
                files.append(done)
                index += 1
                continue
            try:
                # Presigned URL on the download host: no Bearer, not counted against the token's budget.
                response = self.transport.request("GET", urls[index], authenticated=False, budgeted=False)
            except GenesysError as exc:
                if exc.status not in (401, 403, 404):
                    raise
                # Expired presigned URL: ask the job for fresh URLs; if those fail too, run the job again.
                if refreshes == 0:
                    job = self._completed(job)
                elif refreshes <= self.settings.max_resubmissions:
                    job = self.wait_for(self.resubmit(job, "has download URLs that keep expiring"))
                else:
                    self._finish(job, "GONE")
                    raise ExportJobFailed(
                        f"adherence job {job.job_id}: download URLs kept failing ({exc.message})",
                        job_id=job.job_id,
                        status=exc.status,
                    ) from exc
                refreshes += 1
                urls = list(job.download_urls)
                continue
            data = response.content
            records = self._count_records(data, "userResults")
            files.append(write_export_file(path, data, records, {"job_id": job.job_id, "kind": job.kind}))
            self.metrics.bytes += len(data)
            self.metrics.records += records
            index += 1
        return files

    def _download_user_details(self, job: ExportJob, dest_dir: Path) -> list[ExportedFile]:
        files: list[ExportedFile] = []
        cursor: str | None = None
        page = 0
        while True:
            path = dest_dir / self._file_name(job, page)
            done = complete_file(path)
            meta = read_sidecar(path) if done is not None else None
            if done is not None and meta is not None and meta.get("job_id") == job.job_id:
                # Written by an earlier (killed) run of this same job: reuse it and its cursor.
                files.append(done)
                cursor = meta.get("next_cursor")
            else:
                params: dict[str, Any] = {"pageSize": self.settings.user_details_page_size}
                if cursor:
                    params["cursor"] = cursor
                response = self.transport.request(
                    "GET", wire.USER_DETAILS_JOB_RESULTS_PATH.format(job_id=job.job_id), params=params
                )
                data = response.content
                payload = json.loads(data)
                cursor = payload.get("cursor") or None
                records = len(payload.get("userDetails") or [])
                extra = {"job_id": job.job_id, "kind": job.kind, "next_cursor": cursor}
                files.append(write_export_file(path, data, records, extra))
                self.metrics.bytes += len(data)
                self.metrics.records += records
            page += 1
            if not cursor:
                return files

    @staticmethod
    def _count_records(data: bytes, field: str) -> int:
        try:
            payload = json.loads(data)
        except ValueError:
            return 0
        value = payload.get(field) if isinstance(payload, dict) else None
        return len(value) if isinstance(value, list) else 0

    def _finish(self, job: ExportJob, status: str) -> None:
        self.registry.update_status(job.key, status, finished=True)
        self.budget.release_job_slot(job.key)
