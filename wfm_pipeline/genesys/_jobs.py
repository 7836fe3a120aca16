"""The export job state machine: submit (or resume) -> poll -> download -> delete, for any ``JobKind``.

``ExportJobs.run`` takes planned jobs and returns one ``JobResult`` each. Every job holds a job slot (shared
by all processes, ``SharedBudget``) from before its submission until its files are on disk; slots are taken
in one place (``_take_slot``) and given back on every path out. Lock order: job slot, then the job's file
lock (``_lock``), never the other way round.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from wfm_pipeline.fileio import remove_stale_temporaries
from wfm_pipeline.genesys._errors import ExportJobFailed, JobTimeout, NotFoundError
from wfm_pipeline.genesys._files import ExportedFile, complete_file, sidecar_path
from wfm_pipeline.genesys._job_kinds import (
    AdherenceJobKind,
    JobKind,
    JobState,
    RerunJob,
    UserDetailsJobKind,
)
from wfm_pipeline.genesys._models import ExportJob, JobResult
from wfm_pipeline.genesys._registry import DOWNLOADED, JobRegistry, RegisteredJob, job_key
from wfm_pipeline.genesys._responses import ResponseBody, api_path
from wfm_pipeline.genesys._transport import Transport
from wfm_pipeline.genesys._windows import PlannedJob

logger = logging.getLogger(__name__)


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
        kinds: tuple[JobKind, ...] = (
            AdherenceJobKind(transport),
            UserDetailsJobKind(transport, self.settings.user_details_page_size),
        )
        self._kinds = {kind.name: kind for kind in kinds}
        self._locks = Path(state_dir) / "locks"
        self._locks.mkdir(parents=True, exist_ok=True)
        self._sleep = sleep
        self._clock = clock

    # --- many jobs ----------------------------------------------------------------------------------------
    def run(self, plans: Sequence[PlannedJob], dest_dir: Path) -> list[JobResult]:
        """Start (or resume), wait for and download every planned job into ``dest_dir``, at most
        ``max_jobs_in_flight`` at a time, in plan order."""
        dest_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(dest_dir)  # left by killed writers; only old ones (a live one may write)
        started: deque[tuple[PlannedJob, ExportJob]] = deque()  # slot held, not yet downloaded
        held: set[str] = set()  # the job slots this call holds
        results: list[JobResult] = []
        try:
            for plan in plans:
                key = job_key(plan.kind, plan.body, self.settings.client_id, self.settings.api_host)
                while not self._take_slot(key, holding=bool(started)):
                    results.append(self._finish_oldest(started, held, dest_dir))
                held.add(key)
                started.append((plan, self._start(plan, key)))
            while started:
                results.append(self._finish_oldest(started, held, dest_dir))
        finally:
            # Give the slots back now rather than after slot_ttl_seconds (6 h): other processes wait for
            # them. Unfinished jobs stay registered, so a retry resumes them (taking a slot again).
            for key in held:
                self.budget.release_job_slot(key)
        return results

    def _take_slot(self, key: str, *, holding: bool) -> bool:
        """The one place job slots are taken. Never wait for a slot while holding one: processes that each
        hold some slots and wait for more can all wait forever (the full table only empties by downloads),
        so while we hold any, only try (False: finish one of ours first); block only when we hold none."""
        if holding:
            return self.budget.try_acquire_job_slot(key)
        self.metrics.waited_seconds += self.budget.acquire_job_slot(key)
        return True

    def _finish_oldest(
        self, started: deque[tuple[PlannedJob, ExportJob]], held: set[str], dest_dir: Path
    ) -> JobResult:
        plan, job = started.popleft()
        try:
            job, files = self._complete(job, plan, dest_dir)
            self.metrics.jobs_done += 1
        finally:
            held.discard(job.key)
            self.budget.release_job_slot(job.key)
        return JobResult(
            job=job,
            files=tuple(files),
            core_days=plan.core_days,
            window_days=plan.window_days,
            time_zone=plan.time_zone,
        )

    # --- submit or resume ---------------------------------------------------------------------------------
    def _lock(self, key: str) -> FileLock:
        # Serializes submit/resume of one request body across processes (taken after its job slot).
        return FileLock(str(self._locks / f"{key}.lock"), timeout=self.settings.job_timeout_seconds)

    def _start(self, plan: PlannedJob, key: str) -> ExportJob:
        """The registered job of this body if it can serve the plan (``_resumable``), else a new one."""
        pending = ExportJob(plan.kind, "", plan.window_start, plan.window_end, plan.body, key=key)
        with self._lock(key):
            known = self.registry.get(key)
            if known is None or not self._resumable(known, plan):
                return self._submit(pending, plan.complete_until)
            self.metrics.jobs_resumed += 1
            logger.info("resuming %s job %s (%s)", plan.kind, known.job_id, known.status)
            submitted_at = datetime.fromtimestamp(known.submitted_at, UTC)
            return replace(pending, job_id=known.job_id, submitted_at=submitted_at, status=known.status)

    def _resumable(self, known: RegisteredJob, plan: PlannedJob) -> bool:
        """Recent, downloaded or still running, and not provisional for this plan: its data was complete
        at submission up to the end of every day the plan loads from it (else the same body is submitted
        again, replacing the row)."""
        age = self.registry.clock() - known.submitted_at
        recent = age < self.settings.job_resume_max_age.total_seconds()
        complete = known.complete_until >= plan.needed_until.timestamp()
        if recent and not complete:
            logger.info("%s job %s was submitted before its days were complete", plan.kind, known.job_id)
        return recent and complete and (known.status == DOWNLOADED or not known.finished)

    def _submit(self, job: ExportJob, complete_until: datetime | None) -> ExportJob:
        kind = self._kinds[job.kind]
        response = self.transport.request("POST", kind.submit_path, json=job.request, submission=True)
        job_id, status = kind.submitted(ResponseBody.of(response))
        submitted = self.registry.record_submission(
            job.key,
            job.kind,
            job_id,
            job.request,
            status.status,
            complete_until.timestamp() if complete_until is not None else None,
        )
        self.metrics.jobs_submitted += 1
        logger.info("submitted %s job %s", job.kind, job_id)
        return replace(
            job,
            job_id=job_id,
            status=status.status,
            submitted_at=datetime.fromtimestamp(submitted, UTC),
            download_urls=status.download_urls,
        )

    def _resubmit(self, job: ExportJob, plan: PlannedJob, dest_dir: Path, reason: str) -> ExportJob:
        with self._lock(job.key):  # our slot for this key is still held (see run)
            known = self.registry.get(job.key)
            if known is not None and self._taken_over(known, job, plan, dest_dir):
                logger.info(
                    "%s job %s %s; another process moved it on: using job %s",
                    job.kind,
                    job.job_id,
                    reason,
                    known.job_id,
                )
                return replace(job, job_id=known.job_id, status=known.status, download_urls=())
            logger.warning("%s job %s %s; submitting it again", job.kind, job.job_id, reason)
            return self._submit(job, plan.complete_until)

    def _taken_over(self, known: RegisteredJob, job: ExportJob, plan: PlannedJob, dest_dir: Path) -> bool:
        """Whether another process moved this request on while we waited, so that following it beats a new
        submission: it downloaded a job of it into ``dest_dir`` (it deletes the job after, so our next poll
        sees 404), or it resubmitted it and that job still runs; either way one that can serve ``plan``."""
        if not self._resumable(known, plan):
            return False
        if known.status == DOWNLOADED:
            return bool(known.files) and all(complete_file(dest_dir / name) for name in known.files)
        return known.job_id != job.job_id

    # --- one job to its files -----------------------------------------------------------------------------
    def _complete(
        self, job: ExportJob, plan: PlannedJob, dest_dir: Path
    ) -> tuple[ExportJob, list[ExportedFile]]:
        """Wait for ``job`` and download its files. A flat loop: whenever the job must run again (gone,
        results expired, another request's results) it is resubmitted (registered with the plan's
        ``complete_until``), at most ``max_resubmissions`` times in all; expired download URLs are first
        refreshed once by polling."""
        kind = self._kinds[job.kind]
        resubmissions, refreshed = 0, False
        while True:
            try:
                if job.status != DOWNLOADED:
                    job = self._wait(kind, job)
                return job, self._files(kind, job, dest_dir)
            except RerunJob as rerun:
                if rerun.discard_files:
                    self._discard_files(kind, job, dest_dir)
                if rerun.refresh_first and not refreshed:
                    refreshed = True
                    job = replace(job, download_urls=())  # the next wait polls for fresh ones
                    continue
                if resubmissions >= self.settings.max_resubmissions:
                    self._finish(job, rerun.final_status)
                    raise rerun.give_up(job, resubmissions) from rerun
                resubmissions += 1
                job = self._resubmit(job, plan, dest_dir, str(rerun))

    def _wait(self, kind: JobKind, job: ExportJob) -> ExportJob:
        """Poll until the job is complete, backing off. A job already complete with all its download needs
        (a resumed user-details job, say) is not polled."""
        if kind.state_of(job.status) is JobState.COMPLETE and kind.results_ready(job):
            return job
        started, delay = self._clock(), self.settings.poll_initial_seconds
        while True:
            job = self._poll(kind, job)
            if kind.state_of(job.status) is JobState.COMPLETE:
                return job
            if self._clock() - started + delay > self.settings.job_timeout_seconds:
                raise JobTimeout(f"{job.kind} job {job.job_id} still {job.status} after polling")
            self.metrics.waited_seconds += delay
            self._sleep(delay)
            delay = min(self.settings.poll_cap_seconds, delay * self.settings.poll_factor)

    def _poll(self, kind: JobKind, job: ExportJob) -> ExportJob:
        """One poll. Raises ``RerunJob`` when the job is gone, ``ExportJobFailed`` when it failed."""
        try:
            reply = self.transport.request_json("GET", api_path(kind.poll_path, job_id=job.job_id))
        except NotFoundError as exc:
            raise RerunJob("is unknown to the server (404)") from exc
        polled = kind.polled(reply)
        if polled.state is JobState.GONE:
            raise RerunJob(f"is {polled.status}")
        if polled.state is JobState.FAILED:
            self._finish(job, polled.status)
            message = f"{job.kind} job {job.job_id} {polled.failure}"
            raise ExportJobFailed(message, job_id=job.job_id, body=polled.body)
        self.registry.update_status(job.key, polled.status)
        return replace(job, status=polled.status, download_urls=polled.download_urls or job.download_urls)

    def _files(self, kind: JobKind, job: ExportJob, dest_dir: Path) -> list[ExportedFile]:
        if job.status == DOWNLOADED:
            return self._reused(job, dest_dir)
        files = kind.download(job, dest_dir)
        # Recorded before the DELETE: a process following the same job that then polls it (404) finds the
        # download in the registry and uses these files instead of submitting the request again.
        self.registry.record_download(job.key, [f.path.name for f in files])
        if kind.delete_path is not None:
            with contextlib.suppress(NotFoundError):  # already gone: the server's slot is free either way
                self.transport.request("DELETE", api_path(kind.delete_path, job_id=job.job_id))
        return files

    def _reused(self, job: ExportJob, dest_dir: Path) -> list[ExportedFile]:
        """The files a downloaded job left in ``dest_dir``; ``RerunJob`` when any is missing."""
        known = self.registry.get(job.key)
        names = known.files if known is not None else ()
        reused = [complete_file(dest_dir / name) for name in names]
        if not names or not all(reused):
            raise RerunJob("has no files in this directory")  # downloaded elsewhere or since deleted
        return [file for file in reused if file is not None]

    def _discard_files(self, kind: JobKind, job: ExportJob, dest_dir: Path) -> None:
        """Remove every file (and sidecar) written under this job's names: they may hold foreign rows."""
        for path in self._written_paths(kind, job, dest_dir):
            for leftover in (sidecar_path(path), path):  # sidecar first: it marks the file complete
                leftover.unlink(missing_ok=True)

    @staticmethod
    def _written_paths(kind: JobKind, job: ExportJob, dest_dir: Path) -> Iterator[Path]:
        index = 0
        while (path := dest_dir / kind.file_name(job, index)).exists() or sidecar_path(path).exists():
            yield path
            index += 1

    def _finish(self, job: ExportJob, status: str) -> None:
        self.registry.update_status(job.key, status, finished=True)
