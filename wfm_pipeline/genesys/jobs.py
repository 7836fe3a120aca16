"""Export jobs: submit (or resume) -> poll -> download -> delete, for bulk adherence and user-details jobs."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from wfm_pipeline import wire
from wfm_pipeline.genesys.errors import (
    ExportJobFailed,
    GenesysError,
    NotFoundError,
    UnexpectedResponseError,
)
from wfm_pipeline.genesys.files import (
    ExportedFile,
    complete_file,
    read_sidecar,
    sidecar_path,
    write_export_file,
)
from wfm_pipeline.genesys.models import ExportJob, ExportKind, LeftOut
from wfm_pipeline.genesys.registry import DOWNLOADED, JobRegistry, job_key
from wfm_pipeline.genesys.responses import ResponseBody, api_path
from wfm_pipeline.genesys.transport import Transport
from wfm_pipeline.genesys.windows import parse_utc

logger = logging.getLogger(__name__)

ADHERENCE = "adherence"
USER_DETAILS = "user_details"


class JobTimeout(GenesysError):
    """A job did not reach a terminal state within ``job_timeout_seconds``."""


class ResubmitJob(Exception):
    """Internal: the job is gone (expired, cancelled, unknown) and must be submitted again."""


class ForeignResults(Exception):
    """Internal: a job id served results of another request (a restarted server reusing ids, a registry
    copied between hosts): nothing of it is kept, and the request is submitted again."""


def _window_of(kind: str, body: dict[str, Any]) -> tuple[datetime, datetime]:
    if kind == ADHERENCE:
        item = body["items"][0]
        return parse_utc(item["startDate"]), parse_utc(item["endDate"])
    start, end = body["interval"].split("/")
    return parse_utc(start), parse_utc(end)


def _adherence_status(reply: ResponseBody) -> str:
    status = reply.text("job", "status", default="Processing")
    if status not in wire.ADHERENCE_JOB_STATUSES:
        raise reply.error(f"job.status {status!r} is none of {list(wire.ADHERENCE_JOB_STATUSES)}")
    return status


def _download_urls(reply: ResponseBody) -> tuple[str, ...]:
    urls = reply.value("downloadUrls", default=[])
    if not isinstance(urls, list) or not all(isinstance(url, str) and "://" in url for url in urls):
        raise reply.error(f"downloadUrls is {urls!r}, expected a list of URLs")
    return tuple(urls)


def _same_instant(served: object, requested: str) -> bool:
    try:
        return parse_utc(str(served)) == parse_utc(requested)
    except ValueError:
        return False


def _verified_adherence_records(document: ResponseBody, job: ExportJob) -> int:
    """userResults in one bulk-adherence file, after checking the file answers one item of the job's
    request (unit and window); ``ForeignResults`` otherwise."""
    unit = document.value("managementUnitId")
    requested = [item for item in job.request["items"] if item["managementUnitId"] == unit]
    if not requested:
        raise ForeignResults(f"a file is for management unit {unit!r}, which the request does not name")
    item = requested[0]
    start, end = document.value("startDate"), document.value("endDate")
    if not (_same_instant(start, item["startDate"]) and _same_instant(end, item["endDate"])):
        raise ForeignResults(
            f"a file of unit {unit} covers {start}/{end}, the request {item['startDate']}/{item['endDate']}"
        )
    return len(document.items("userResults"))


def _verified_user_details_records(page: ResponseBody, job: ExportJob) -> int:
    """userDetails on one results page, after checking every status record meets the job's interval (the
    API returns records intersecting it); ``ForeignResults`` when one lies wholly outside."""
    details = page.items("userDetails")
    low, high = job.window_start, job.window_end
    for detail in details:
        for field in ("primaryPresence", "routingStatus"):
            for record in detail.get(field) or ():
                try:
                    start = parse_utc(record["startTime"])
                    end = parse_utc(record["endTime"]) if record.get("endTime") else None
                except (KeyError, TypeError, ValueError):
                    continue  # shape errors are the loader's to report, with the file's name
                if start >= high or (end is not None and end <= low):
                    raise ForeignResults(
                        f"user {detail.get('userId')} has a {field} record {record.get('startTime')}/"
                        f"{record.get('endTime')} outside the job's interval "
                        f"{low.isoformat()}/{high.isoformat()}"
                    )
    return len(details)


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
        self.transport.apply_org_limits()  # job slots are sized by the discovered limits
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
        reply = ResponseBody.of(response)
        if kind == ADHERENCE:
            job_id, status = reply.identifier("job", "id"), _adherence_status(reply)
            urls = _download_urls(reply)
        else:
            job_id, status, urls = reply.identifier("jobId"), "QUEUED", ()
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
                reply = self.transport.request_json(
                    "GET", api_path(wire.ADHERENCE_BULK_JOB_PATH, job_id=job.job_id)
                )
            except NotFoundError as exc:
                raise ResubmitJob("is unknown to the server (404)") from exc
            status = _adherence_status(reply)
            urls = _download_urls(reply)
            if status == "Error":
                self._finish(job, status)
                raise ExportJobFailed(
                    f"adherence job {job.job_id} ended in Error", job_id=job.job_id, body=reply.data
                )
            return replace(job, status=status, download_urls=urls or job.download_urls)
        try:
            reply = self.transport.request_json(
                "GET", api_path(wire.USER_DETAILS_JOB_PATH, job_id=job.job_id)
            )
        except NotFoundError as exc:
            raise ResubmitJob("is unknown to the server (404)") from exc
        state = reply.text("state", default="QUEUED")
        if state not in wire.ASYNC_QUERY_STATES:
            raise reply.error(f"state {state!r} is none of {list(wire.ASYNC_QUERY_STATES)}")
        if state == "FAILED":
            self._finish(job, state)
            message = reply.value("errorMessage", default="no errorMessage")
            raise ExportJobFailed(
                f"user-details job {job.job_id} FAILED: {message}", job_id=job.job_id, body=reply.data
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
        for resubmissions in range(self.settings.max_resubmissions + 1):
            try:
                job, files = self._download_files(job, dest_dir)
                break
            except ForeignResults as foreign:
                # Keep nothing of it; the registry entry is replaced by the resubmission.
                self._discard_files(job, dest_dir)
                if resubmissions == self.settings.max_resubmissions:
                    self._finish(job, "FOREIGN")
                    raise UnexpectedResponseError(
                        f"{job.kind} job {job.job_id}: {foreign} (after {resubmissions} resubmissions); "
                        "nothing was kept"
                    ) from foreign
                job = self.wait_for(self.resubmit(job, f"served results of another request ({foreign})"))
        if job.kind == USER_DETAILS:
            with contextlib.suppress(NotFoundError):  # already gone: the slot is free either way
                self.transport.request("DELETE", api_path(wire.USER_DETAILS_JOB_PATH, job_id=job.job_id))
        self.budget.release_job_slot(job.key)
        self.registry.record_download(job.key, [f.path.name for f in files])
        return files

    def _download_files(self, job: ExportJob, dest_dir: Path) -> tuple[ExportJob, list[ExportedFile]]:
        """The job whose files were downloaded (a resubmission when the results had expired), and them."""
        if job.kind == ADHERENCE:
            return job, self._download_adherence(job, dest_dir)
        for resubmissions in range(self.settings.max_resubmissions + 1):
            try:
                return job, self._download_user_details(job, dest_dir)
            except NotFoundError:
                # The results expired (or the job vanished) before we fetched them all: run it again.
                if resubmissions == self.settings.max_resubmissions:
                    self._finish(job, "GONE")
                    raise
                job = self.wait_for(self.resubmit(job, "has no results any more"))
        raise AssertionError("unreachable: the loop returns or raises")

    def _discard_files(self, job: ExportJob, dest_dir: Path) -> None:
        """Remove every file (and sidecar) written under this job's names: they may hold foreign rows."""
        part = 0
        while (path := dest_dir / self._file_name(job, part)).exists() or sidecar_path(path).exists():
            for leftover in (sidecar_path(path), path):  # sidecar first: it marks the file complete
                leftover.unlink(missing_ok=True)
            part += 1

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
            records = _verified_adherence_records(ResponseBody.of(response), job)
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
                    "GET", api_path(wire.USER_DETAILS_JOB_RESULTS_PATH, job_id=job.job_id), params=params
                )
                data = response.content
                page_body = ResponseBody.of(response)
                cursor = page_body.value("cursor") or None
                if cursor is not None and not isinstance(cursor, str):
                    raise page_body.error(f"cursor is {cursor!r}, expected a string")
                records = _verified_user_details_records(page_body, job)
                extra = {"job_id": job.job_id, "kind": job.kind, "next_cursor": cursor}
                files.append(write_export_file(path, data, records, extra))
                self.metrics.bytes += len(data)
                self.metrics.records += records
            page += 1
            if not cursor:
                return files

    def _finish(self, job: ExportJob, status: str) -> None:
        self.registry.update_status(job.key, status, finished=True)
        self.budget.release_job_slot(job.key)
