"""Export job kinds behind one protocol: what differs between a bulk-adherence job and a user-details job.

A ``JobKind`` knows its paths, how to read the server's replies into a small closed set of states, how its
results are downloaded and verified, and how its files are named. ``jobs.ExportJobs`` (the state machine)
runs any kind the same way, the way an httpx client runs any transport.

The state machine reacts to ``RerunJob`` signals a kind raises: the job has to be submitted again (it is
gone, its results expired, or it served another request's results). Each signal says what to do when the
resubmissions are used up.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from wfm_pipeline import wire
from wfm_pipeline.genesys._errors import ExportJobFailed, GenesysError, NotFoundError, UnexpectedResponseError
from wfm_pipeline.genesys._files import ExportedFile, complete_file, read_sidecar, write_export_file
from wfm_pipeline.genesys._models import ExportJob, ExportKind
from wfm_pipeline.genesys._registry import FOREIGN, GONE
from wfm_pipeline.genesys._responses import ResponseBody, api_path
from wfm_pipeline.genesys._transport import Transport
from wfm_pipeline.timestamps import parse_utc


class JobState(enum.Enum):
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    GONE = "gone"  # expired, cancelled: only a resubmission gets its results


@dataclass(frozen=True)
class JobStatus:
    """A submission reply or a poll, read: the server's own status word and what it means."""

    state: JobState
    status: str  # as served (wire.ADHERENCE_JOB_* / wire.ASYNC_QUERY_*)
    download_urls: tuple[str, ...] = ()
    failure: str = ""  # FAILED: what the server said
    body: Any = None


# --- signals for the state machine -----------------------------------------------------------------------
class RerunJob(Exception):
    """The job must be submitted again; ``give_up`` is what to raise when resubmissions are used up."""

    final_status: ClassVar[str] = GONE
    discard_files: ClassVar[bool] = False  # remove what was written under the job's file names first
    refresh_first: ClassVar[bool] = False  # try a fresh poll (new download URLs) before resubmitting

    def give_up(self, job: ExportJob, resubmissions: int) -> GenesysError:
        return ExportJobFailed(
            f"{job.kind} job {job.job_id} {self} after {resubmissions} resubmissions", job_id=job.job_id
        )


class ForeignResults(RerunJob):
    """A job id served results of another request (a restarted server reusing ids, a registry copied
    between hosts): nothing of it is kept, and the request is submitted again."""

    final_status = FOREIGN
    discard_files = True

    def give_up(self, job: ExportJob, resubmissions: int) -> GenesysError:
        return UnexpectedResponseError(
            f"{job.kind} job {job.job_id}: {self} (after {resubmissions} resubmissions); nothing was kept"
        )


class ResultsExpired(RerunJob):
    """The job's results are gone (404) before all were fetched."""

    def __init__(self, reason: str, error: GenesysError) -> None:
        super().__init__(reason)
        self.error = error

    def give_up(self, job: ExportJob, resubmissions: int) -> GenesysError:
        return self.error


class DownloadUrlsExpired(RerunJob):
    """A presigned download URL was refused: fresh URLs from the job first, then a resubmission."""

    refresh_first = True

    def __init__(self, error: GenesysError) -> None:
        super().__init__("has download URLs that keep expiring")
        self.error = error

    def give_up(self, job: ExportJob, resubmissions: int) -> GenesysError:
        return ExportJobFailed(
            f"{job.kind} job {job.job_id}: download URLs kept failing ({self.error.message})",
            job_id=job.job_id,
            status=self.error.status,
        )


# --- the protocol ------------------------------------------------------------------------------------------
class JobKind(Protocol):
    name: ExportKind
    submit_path: str
    poll_path: str  # template with {job_id}
    delete_path: str | None  # template with {job_id}: DELETE after download (frees the server's slot)

    def submitted(self, reply: ResponseBody) -> tuple[str, JobStatus]:
        """The job id and status of a submission's reply."""
        ...

    def polled(self, reply: ResponseBody) -> JobStatus: ...

    def state_of(self, status: str) -> JobState:
        """What a status word this kind served means (RUNNING for one it never serves)."""
        ...

    def results_ready(self, job: ExportJob) -> bool:
        """Whether a COMPLETE job can be downloaded as it is (else it is polled once more)."""
        ...

    def file_name(self, job: ExportJob, index: int) -> str: ...

    def download(self, job: ExportJob, dest_dir: Path) -> list[ExportedFile]:
        """Every result file of a complete job, reusing complete ones; raises ``RerunJob`` signals."""
        ...


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _file_name(label: str, job: ExportJob, unit: str, index: int) -> str:
    # Names carry the window and the registry key: a rerun finds its own files, never another request's.
    window = f"{_stamp(job.window_start)}_{_stamp(job.window_end)}"
    return f"{label}_{window}_{job.key[:12]}_{unit}{index:04d}.json"


def _same_instant(served: object, requested: str) -> bool:
    try:
        return parse_utc(str(served)) == parse_utc(requested)
    except ValueError:
        return False


def _checked_status(
    reply: ResponseBody, states: dict[str, JobState], path: tuple[str, ...], default: str
) -> str:
    status = reply.text(*path, default=default)
    if status not in states:
        raise reply.error(f"{'.'.join(path)} {status!r} is none of {list(states)}")
    return status


# --- bulk historical adherence ---------------------------------------------------------------------------
class AdherenceJobKind:
    """Bulk historical adherence: the finished job lists presigned URLs, one file per item (unit)."""

    name: ExportKind = "adherence"
    submit_path: str = wire.ADHERENCE_BULK_PATH
    poll_path: str = wire.ADHERENCE_BULK_JOB_PATH
    delete_path: str | None = None  # bulk jobs expire on their own; there is no DELETE
    _states: ClassVar[dict[str, JobState]] = {
        wire.ADHERENCE_JOB_PROCESSING: JobState.RUNNING,
        wire.ADHERENCE_JOB_COMPLETE: JobState.COMPLETE,
        wire.ADHERENCE_JOB_ERROR: JobState.FAILED,
    }

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def submitted(self, reply: ResponseBody) -> tuple[str, JobStatus]:
        return reply.identifier("job", "id"), self.polled(reply)

    def polled(self, reply: ResponseBody) -> JobStatus:
        status = _checked_status(reply, self._states, ("job", "status"), wire.ADHERENCE_JOB_PROCESSING)
        state = self._states[status]
        failure = f"ended in {status}" if state is JobState.FAILED else ""
        return JobStatus(state, status, _download_urls(reply), failure, reply.data)

    def state_of(self, status: str) -> JobState:
        return self._states.get(status, JobState.RUNNING)

    def results_ready(self, job: ExportJob) -> bool:
        return bool(job.download_urls)  # URLs are not persisted: a resumed job asks for fresh ones

    def file_name(self, job: ExportJob, index: int) -> str:
        return _file_name("adherence", job, "part", index)

    def download(self, job: ExportJob, dest_dir: Path) -> list[ExportedFile]:
        files: list[ExportedFile] = []
        for index, url in enumerate(job.download_urls):
            path = dest_dir / self.file_name(job, index)
            done = complete_file(path)
            meta = read_sidecar(path) if done is not None else None
            if done is not None and meta is not None and meta.get("job_id") == job.job_id:
                # Written by an earlier (killed) run of this same job. A file of an earlier job of the same
                # body (a provisional window submitted again) may hold less data: it is fetched again.
                files.append(done)
                continue
            try:
                # Presigned URL on the download host: no Bearer, not counted against the token's budget.
                response = self._transport.request("GET", url, authenticated=False, budgeted=False)
            except GenesysError as exc:
                if exc.status not in (401, 403, 404):
                    raise
                raise DownloadUrlsExpired(exc) from exc
            records = _verified_adherence_records(ResponseBody.of(response), job)
            files.append(_written(self._transport, path, response.content, records, job, {}))
        return files


def _download_urls(reply: ResponseBody) -> tuple[str, ...]:
    urls = reply.value("downloadUrls", default=[])
    if not isinstance(urls, list) or not all(isinstance(url, str) and "://" in url for url in urls):
        raise reply.error(f"downloadUrls is {urls!r}, expected a list of URLs")
    return tuple(urls)


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


def _written(
    transport: Transport, path: Path, data: bytes, records: int, job: ExportJob, extra: dict[str, Any]
) -> ExportedFile:
    exported = write_export_file(path, data, records, {"job_id": job.job_id, "kind": job.kind, **extra})
    transport.metrics.bytes += len(data)
    transport.metrics.records += records
    transport.metrics.files += 1
    return exported


# --- analytics user details --------------------------------------------------------------------------------
class UserDetailsJobKind:
    """Analytics user-details jobs: results are read in cursor pages, one file per page; DELETE after."""

    name: ExportKind = "user_details"
    submit_path: str = wire.USER_DETAILS_JOBS_PATH
    poll_path: str = wire.USER_DETAILS_JOB_PATH
    delete_path: str | None = wire.USER_DETAILS_JOB_PATH
    _states: ClassVar[dict[str, JobState]] = {
        wire.ASYNC_QUERY_QUEUED: JobState.RUNNING,
        wire.ASYNC_QUERY_PENDING: JobState.RUNNING,
        wire.ASYNC_QUERY_FULFILLED: JobState.COMPLETE,
        wire.ASYNC_QUERY_FAILED: JobState.FAILED,
        wire.ASYNC_QUERY_EXPIRED: JobState.GONE,
        wire.ASYNC_QUERY_CANCELLED: JobState.GONE,
    }

    def __init__(self, transport: Transport, page_size: int) -> None:
        self._transport = transport
        self._page_size = page_size

    def submitted(self, reply: ResponseBody) -> tuple[str, JobStatus]:
        queued = wire.ASYNC_QUERY_QUEUED  # the 202 carries only the id
        return reply.identifier("jobId"), JobStatus(JobState.RUNNING, queued, body=reply.data)

    def polled(self, reply: ResponseBody) -> JobStatus:
        state = _checked_status(reply, self._states, ("state",), wire.ASYNC_QUERY_QUEUED)
        failure = ""
        if self._states[state] is JobState.FAILED:
            failure = f"{state}: {reply.value('errorMessage', default='no errorMessage')}"
        return JobStatus(self._states[state], state, failure=failure, body=reply.data)

    def state_of(self, status: str) -> JobState:
        return self._states.get(status, JobState.RUNNING)

    def results_ready(self, job: ExportJob) -> bool:
        return True

    def file_name(self, job: ExportJob, index: int) -> str:
        return _file_name("user_details", job, "page", index)

    def download(self, job: ExportJob, dest_dir: Path) -> list[ExportedFile]:
        files: list[ExportedFile] = []
        cursor: str | None = None
        while True:
            path = dest_dir / self.file_name(job, len(files))
            done = complete_file(path)
            meta = read_sidecar(path) if done is not None else None
            if done is not None and meta is not None and meta.get("job_id") == job.job_id:
                # Written by an earlier (killed) run of this same job: reuse it and its cursor.
                files.append(done)
                cursor = meta.get("next_cursor")
            else:
                exported, cursor = self._fetch_page(job, path, cursor)
                files.append(exported)
            if not cursor:
                return files

    def _fetch_page(self, job: ExportJob, path: Path, cursor: str | None) -> tuple[ExportedFile, str | None]:
        params: dict[str, Any] = {"pageSize": self._page_size}
        if cursor:
            params["cursor"] = cursor
        try:
            response = self._transport.request(
                "GET", api_path(wire.USER_DETAILS_JOB_RESULTS_PATH, job_id=job.job_id), params=params
            )
        except NotFoundError as exc:
            # The results expired (or the job vanished) before we fetched them all: run it again.
            raise ResultsExpired("has no results any more", exc) from exc
        page = ResponseBody.of(response)
        next_cursor = page.value("cursor") or None
        if next_cursor is not None and not isinstance(next_cursor, str):
            raise page.error(f"cursor is {next_cursor!r}, expected a string")
        records = _verified_user_details_records(page, job)
        exported = _written(
            self._transport, path, response.content, records, job, {"next_cursor": next_cursor}
        )
        return exported, next_cursor


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
