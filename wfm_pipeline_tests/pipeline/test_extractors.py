"""The extractors alone, against the sandbox: which files serve which day, and what they report."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import cast

import pytest

from wfm_pipeline.extractors import NoManagementUnitsError, extract_adherence, extract_user_details
from wfm_pipeline.genesys import ClientSettings, GenesysClient, RequestMetrics
from wfm_pipeline.raw_store import ADHERENCE, USER_DETAILS, RawStore
from wfm_pipeline.sandbox.launcher import SandboxProcess
from wfm_pipeline.timestamps import days_between

FIRST, LAST = date(2024, 3, 4), date(2024, 3, 14)  # 11 days: three adherence windows of core days


def _client(sandbox: SandboxProcess, root: Path) -> GenesysClient:
    return GenesysClient(ClientSettings.for_sandbox(sandbox.base_url), root / "state")


def test_each_day_lists_exactly_the_adherence_jobs_whose_core_days_hold_it(
    small_sandbox: SandboxProcess, tmp_path: Path
) -> None:
    store = RawStore(tmp_path / "data")
    with _client(small_sandbox, tmp_path) as client:
        extraction = extract_adherence(client, store, FIRST, LAST, run_id="run-1")
    jobs = extraction.result.jobs
    zones = {unit.time_zone for unit in extraction.organization.units}
    assert len(jobs) == 3 * len(zones)  # 5 + 5 + 1 core days, one job per window and time zone
    assert len(extraction.manifests) == len(days_between(FIRST, LAST))
    for day in days_between(FIRST, LAST):
        manifest = store.read_manifest(ADHERENCE, day)
        assert manifest is not None and manifest.run_id == "run-1" and manifest.source == "sandbox"
        serving = {job.job.job_id for job in jobs if day in job.core_days}
        assert len(serving) == len(zones)
        assert {entry.job_id for entry in manifest.files} == serving
    assert [entry.path for entry in extraction.entries] == [
        store.relative(file.path) for job in jobs for file in job.files
    ]
    assert extraction.metrics.jobs_submitted == len(jobs)


def test_user_details_files_serve_every_day_and_samples_are_recorded(
    small_sandbox: SandboxProcess, tmp_path: Path
) -> None:
    store = RawStore(tmp_path / "data")
    with _client(small_sandbox, tmp_path) as client:
        extraction = extract_user_details(client, store, FIRST, FIRST + timedelta(days=1), "run-2", 1)
    every_file = {entry.path for entry in extraction.entries}
    assert every_file
    for day in (FIRST, FIRST + timedelta(days=1)):
        manifest = store.read_manifest(USER_DETAILS, day)
        assert manifest is not None and manifest.data_availability_date is not None
        assert {entry.path for entry in manifest.files} == every_file
    staffed = [unit for unit in extraction.organization.snapshot if unit.user_ids]
    assert len(extraction.aggregates) == len(staffed)
    assert all(len(sample.user_ids) == 1 for sample in extraction.aggregates)


class _OrgWithoutUnits:
    """The network is beside the point here: only the answer "no management units" matters."""

    metrics = RequestMetrics()

    def management_units(self) -> list[object]:
        return []


def test_an_organization_without_units_is_a_pipeline_error(tmp_path: Path) -> None:
    client = cast(GenesysClient, _OrgWithoutUnits())
    with pytest.raises(NoManagementUnitsError, match="no WFM management units"):
        extract_adherence(client, RawStore(tmp_path / "data"), FIRST, FIRST, "run-3")
    assert not (tmp_path / "data").exists()  # nothing written
