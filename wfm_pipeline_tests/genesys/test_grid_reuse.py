"""Reuse on the grid: a regrouped relaunch submits nothing the server already accepted (sandbox over
loopback); a provisional window is never reused for a day that was not complete at its submission (the
client's injectable wall clock); registries from before ``complete_until`` keep working."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from wfm_pipeline import wire
from wfm_pipeline.genesys import (
    AdherenceExportRequest,
    ClientSettings,
    GenesysClient,
    ManagementUnit,
    UserDetailsExportRequest,
)
from wfm_pipeline.genesys._files import complete_file, read_sidecar
from wfm_pipeline.genesys._registry import JobRegistry
from wfm_pipeline.timestamps import utc_span_of_days
from wfm_pipeline_tests.genesys.fake_genesys import BU_ID, MU_ID, FakeGenesys
from wfm_pipeline_tests.genesys.sandbox_helpers import SandboxAdmin

# Monday 2024-05-06 to Sunday 2024-05-19: both ends are window edges, so the one call also fetches the
# weeks before and after; the split runs and the single day then need only weeks it already has.
FIRST, LAST = date(2024, 5, 6), date(2024, 5, 19)
REGROUPINGS = [
    [(FIRST, LAST)],
    [(FIRST, date(2024, 5, 12)), (date(2024, 5, 13), LAST)],
    [(date(2024, 5, 12), date(2024, 5, 12))],
    [(date(2024, 5, 9), date(2024, 5, 15))],
]


def _submitted(admin: SandboxAdmin) -> int:
    return sum(admin.stats()["jobsCreated"].values())


def test_a_regrouped_relaunch_submits_no_job_the_sandbox_already_accepted(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    with GenesysClient(sandbox_admin.settings(), tmp_path / "state") as client:
        units = client.management_units()
        zones = {unit.time_zone for unit in units}

        def adherence(first: date, last: date) -> tuple[int, int]:
            request = AdherenceExportRequest(units, first, last + timedelta(days=1), context_days=1)
            metrics = client.run_export(request, tmp_path / "adherence").metrics
            return metrics.jobs_submitted, metrics.jobs_resumed

        def user_details(first: date, last: date) -> tuple[int, int]:
            request = UserDetailsExportRequest(*utc_span_of_days(zones, first, last))
            metrics = client.run_export(request, tmp_path / "user_details").metrics
            return metrics.jobs_submitted, metrics.jobs_resumed

        for export in (adherence, user_details):
            (whole,) = REGROUPINGS[0]
            before = _submitted(sandbox_admin)
            submitted, _ = export(*whole)
            assert submitted == _submitted(sandbox_admin) - before > 0
            for runs in REGROUPINGS:
                for run in runs:
                    again, resumed = export(*run)
                    assert (again, resumed > 0) == (0, True), (export.__name__, run)
            assert _submitted(sandbox_admin) - before == submitted  # seen from the server's side


UTC_UNIT = ManagementUnit(MU_ID, "One", BU_ID, "UTC")
WEDNESDAY = date(2024, 3, 6)  # in the grid week Monday 03-04 .. Sunday 03-10


class WallClock:
    def __init__(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment.timestamp()


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _fake_client(tmp_path: Path, fake: FakeGenesys, clock: WallClock) -> GenesysClient:
    """A client of ``fake`` (no network, no waiting) whose wall clock is ``clock``."""
    settings = ClientSettings.for_sandbox("http://genesys.test", poll_initial_seconds=0.01)
    return GenesysClient(
        settings,
        tmp_path / "state",
        transport=httpx.MockTransport(fake),
        sleep=lambda _: None,
        wall_clock=clock,
    )


def test_a_window_submitted_before_its_day_ended_is_submitted_again_for_that_day(tmp_path: Path) -> None:
    fake = FakeGenesys()
    clock = WallClock(_at(WEDNESDAY, 12))  # Wednesday is still running: its window is provisional
    out = tmp_path / "out"
    request = AdherenceExportRequest([UTC_UNIT], WEDNESDAY, WEDNESDAY + timedelta(days=1))
    with _fake_client(tmp_path, fake, clock) as client:
        first = client.run_export(request, out)
        clock.set(_at(WEDNESDAY, 13))  # an hour later, Wednesday still incomplete in what was fetched
        second = client.run_export(request, out)
        clock.set(_at(WEDNESDAY + timedelta(days=1), 1))  # Wednesday is over, but not at that submission
        third = client.run_export(request, out)
        clock.set(_at(WEDNESDAY + timedelta(days=1), 2))  # submitted after Wednesday ended: reused
        fourth = client.run_export(request, out)
        tuesday = AdherenceExportRequest([UTC_UNIT], WEDNESDAY - timedelta(days=1), WEDNESDAY)
        earlier_day = client.run_export(tuesday, out)  # complete at the first submission already
    assert [result.metrics.jobs_submitted for result in (first, second, third, fourth)] == [1, 1, 1, 0]
    assert fourth.metrics.jobs_resumed == 1 and earlier_day.metrics.jobs_resumed == 1
    assert len({json.dumps(body, sort_keys=True) for body in fake.submissions}) == 1  # the same body
    job_ids = [result.jobs[0].job.job_id for result in (first, second, third, fourth)]
    assert len(set(job_ids[:3])) == 3 and job_ids[3] == job_ids[2]
    for file in fourth.files:  # the files are the latest job's, never the provisional ones kept
        meta = read_sidecar(file.path)
        assert meta is not None and meta["job_id"] == job_ids[2]


def test_windows_starting_at_or_after_now_are_not_submitted(tmp_path: Path) -> None:
    fake = FakeGenesys()
    request = AdherenceExportRequest([UTC_UNIT], WEDNESDAY, WEDNESDAY + timedelta(days=14))
    with _fake_client(tmp_path, fake, WallClock(_at(WEDNESDAY, 12))) as client:
        result = client.run_export(request, tmp_path / "out")
    assert [job.window_days[0] for job in result.jobs] == [date(2024, 3, 4)]
    assert [(gap.start, gap.end) for gap in result.left_out] == [
        (_at(date(2024, 3, 11), 0), _at(date(2024, 3, 18), 0)),
        (_at(date(2024, 3, 18), 0), _at(date(2024, 3, 25), 0)),
    ]
    assert len(fake.submissions) == 1


def test_a_registry_from_before_complete_until_is_migrated_and_its_rows_count_as_of_submission(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with sqlite3.connect(state / "jobs.sqlite") as conn:  # the schema before complete_until
        conn.execute(
            """CREATE TABLE jobs (
                key TEXT PRIMARY KEY, kind TEXT NOT NULL, job_id TEXT NOT NULL, body TEXT NOT NULL,
                submitted_at REAL NOT NULL, status TEXT NOT NULL, finished INTEGER NOT NULL DEFAULT 0,
                updated_at REAL NOT NULL, files TEXT NOT NULL DEFAULT '[]')"""
        )
        conn.execute(
            "INSERT INTO jobs VALUES ('old', 'adherence', 'j1', '{}', 1000.0, 'Downloaded', 1, 1000.0, '[]')"
        )
    registry = JobRegistry(state, clock=lambda: 5000.0)
    old = registry.get("old")
    assert old is not None and old.job_id == "j1" and old.complete_until == 1000.0
    registry.record_submission("new", "user_details", "j2", {}, "QUEUED", complete_until=4000.0)
    registry.record_submission("now", "adherence", "j3", {}, "Processing")
    assert [registry.get(key).complete_until for key in ("new", "now")] == [4000.0, 5000.0]  # type: ignore[union-attr]
    registry.close()
    again = JobRegistry(state)  # a second open (another process) finds the column in place
    assert again.get("new") is not None
    again.close()


class FirstPollAfter(httpx.BaseTransport):
    """Loopback HTTP that runs ``before_first_poll`` just before forwarding the first poll of a user-details
    job: another process, sharing the state dir, finishing the same job in between."""

    def __init__(self, before_first_poll: Callable[[], None]) -> None:
        self._inner = httpx.HTTPTransport()
        self._before_first_poll: Callable[[], None] | None = before_first_poll

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        is_poll = (
            path.startswith(wire.USER_DETAILS_JOBS_PATH + "/")
            and path != wire.USER_DETAILS_AVAILABILITY_PATH
            and not path.endswith("/results")
        )
        if request.method == "GET" and is_poll and self._before_first_poll is not None:
            run, self._before_first_poll = self._before_first_poll, None
            run()
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def test_a_job_another_process_downloaded_and_deleted_meanwhile_is_used_not_submitted_again(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    # Seen in CI: concurrent runs of days in one grid cell. The leader downloads the job and deletes it on
    # the server; the follower, which resumed the job before that, polls it (404). Submitting it again
    # rewrote the leader's pages (a new job id in their cursors) under a manifest written for the old bytes.
    settings = sandbox_admin.settings(user_details_page_size=5)  # several pages: cursors carry the job id
    state, out = tmp_path / "state", tmp_path / "user_details"
    zones = {unit["timeZone"] for unit in sandbox_admin.org()["managementUnits"]}
    request = UserDetailsExportRequest(*utc_span_of_days(zones, FIRST, FIRST))
    leader_results = []

    def leader_finishes_the_job() -> None:
        with GenesysClient(settings, state) as leader:
            leader_results.append(leader.run_export(request, out))

    with GenesysClient(settings, state, transport=FirstPollAfter(leader_finishes_the_job)) as follower:
        followed = follower.run_export(request, out)
    (leader,) = leader_results
    jobs = len(followed.jobs)  # the grid cells the day's UTC span meets
    assert (leader.metrics.jobs_submitted, leader.metrics.jobs_resumed) == (0, jobs)
    assert followed.metrics.jobs_submitted == jobs  # its own first submissions, none a second time
    assert _submitted(sandbox_admin) == jobs
    assert len(followed.files) > 1
    assert [(f.path, f.sha256) for f in followed.files] == [(f.path, f.sha256) for f in leader.files]
    for file in followed.files:
        assert complete_file(file.path) == file  # the leader's bytes, still what its sidecar says
