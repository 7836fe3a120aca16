"""job_resume_max_age: a retry within hours resumes the registered job; a day later submits a fresh one."""

from __future__ import annotations

import sqlite3
import time
from datetime import date
from pathlib import Path

import httpx
import pytest

from wfm_pipeline.genesys import AdherenceExportRequest, ClientSettings, GenesysClient, ManagementUnit
from wfm_pipeline_tests.genesys.fake_genesys import BU_ID, MU_ID, FakeGenesys

REQUEST = AdherenceExportRequest(
    [ManagementUnit(MU_ID, "One", BU_ID, "UTC")], date(2024, 3, 1), date(2024, 3, 2)
)


def backdate_jobs(state_dir: Path, hours: float) -> None:
    with sqlite3.connect(state_dir / "jobs.sqlite") as conn:
        conn.execute("UPDATE jobs SET submitted_at = ?", (time.time() - hours * 3600,))


@pytest.mark.parametrize(("age_hours", "resumed"), [(5, True), (7, False), (24, False)])
def test_registered_jobs_are_resumed_for_six_hours(tmp_path: Path, age_hours: float, resumed: bool) -> None:
    fake = FakeGenesys()
    settings = ClientSettings.for_sandbox("http://genesys.test")  # the default max age
    state = tmp_path / "state"
    with GenesysClient(settings, state, transport=httpx.MockTransport(fake), sleep=lambda _: None) as first:
        # killed while polling: submitted and registered, not downloaded
        fake.script("GET", "/api/v2/workforcemanagement/adherence/historical/bulk/jobs/", KeyboardInterrupt())
        with pytest.raises(KeyboardInterrupt):
            first.run_export(REQUEST, tmp_path / "out")
        (job_id,) = fake.jobs
    backdate_jobs(state, age_hours)
    with GenesysClient(settings, state, transport=httpx.MockTransport(fake), sleep=lambda _: None) as second:
        (again,) = second.run_export(REQUEST, tmp_path / "out").jobs
    assert (again.job.job_id == job_id) is resumed
    assert len(fake.submissions) == (1 if resumed else 2)
