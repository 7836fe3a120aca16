"""The extractors alone, against the sandbox: which files serve which day, and what they report."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import cast

import pytest

from wfm_pipeline.extractors import (
    AggregatesSampling,
    NoManagementUnitsError,
    extract_adherence,
    extract_user_details,
    unassigned_time_zone,
)
from wfm_pipeline.genesys import BusinessUnit, ClientSettings, GenesysClient, JobResult, RequestMetrics
from wfm_pipeline.raw_store import (
    ADHERENCE,
    USER_DETAILS,
    DayManifest,
    RawFileEntry,
    RawStore,
    group_days_by_files,
)
from wfm_pipeline.sandbox.launcher import SandboxProcess
from wfm_pipeline.timestamps import days_between

# Monday 03-04 to Thursday 03-14: grid weeks from Monday 02-26 (the neighbour of the first day, a window's
# first day), 03-04 and 03-11; no zone of the sandbox has a 25-hour day in them, so every window is a week.
FIRST, LAST = date(2024, 3, 4), date(2024, 3, 14)


def _client(sandbox: SandboxProcess, root: Path) -> GenesysClient:
    return GenesysClient(ClientSettings.for_sandbox(sandbox.base_url), root / "state")


def test_each_day_lists_the_jobs_of_its_window_and_edge_days_the_neighbour_windows(
    small_sandbox: SandboxProcess, tmp_path: Path
) -> None:
    store = RawStore(tmp_path / "data")
    with _client(small_sandbox, tmp_path) as client:
        extraction = extract_adherence(client, store, FIRST, LAST, run_id="run-1")
    jobs = extraction.result.jobs
    zones = {unit.time_zone for unit in extraction.organization.units}
    assert len(jobs) == 3 * len(zones)  # one job per grid week and time zone
    assert all(len(job.window_days) == 7 and job.window_days[0].weekday() == 0 for job in jobs)
    assert len(extraction.manifests) == len(days_between(FIRST, LAST))

    def files_of_jobs_holding(day: date) -> set[str]:
        return {path for job in jobs if day in job.window_days for path in _paths_of(job, store)}

    edge_days = []
    for day in days_between(FIRST, LAST):
        manifest = store.read_manifest(ADHERENCE, day)
        assert manifest is not None and manifest.run_id == "run-1" and manifest.source == "sandbox"
        serving = {job.job.job_id for job in jobs if day in job.core_days}
        assert len(serving) == len(zones)
        assert {entry.job_id for entry in manifest.files} == serving
        # Monday: the week before's files; Sunday: the week after's; any other day: none.
        neighbour = {0: day - timedelta(days=1), 6: day + timedelta(days=1)}.get(day.weekday())
        expected = files_of_jobs_holding(neighbour) if neighbour else set()
        assert {entry.path for entry in manifest.adjacent_files} == expected, day
        if expected:
            edge_days.append(day)
    assert edge_days == [date(2024, 3, 4), date(2024, 3, 10), date(2024, 3, 11)]
    assert [entry.path for entry in extraction.entries] == [
        store.relative(file.path) for job in jobs for file in job.files
    ]
    assert extraction.metrics.jobs_submitted == len(jobs)
    # the neighbour week before serves only as context: no day lists it among its files
    assert not any(job.core_days for job in jobs if job.window_days[0] == date(2024, 2, 26))


def _paths_of(job: JobResult, store: RawStore) -> list[str]:
    return [store.relative(file.path) for file in job.files]


def test_user_details_files_serve_every_day_and_samples_are_recorded(
    small_sandbox: SandboxProcess, tmp_path: Path
) -> None:
    store = RawStore(tmp_path / "data")
    with _client(small_sandbox, tmp_path) as client:
        extraction = extract_user_details(
            client, store, FIRST, FIRST + timedelta(days=1), "run-2", AggregatesSampling(1)
        )
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


def _manifest(day: date, files: tuple[str, ...], adjacent: tuple[str, ...]) -> DayManifest:
    def entry(path: str) -> RawFileEntry:
        return RawFileEntry(path=path, bytes=1, sha256="0" * 64, records=1)

    return DayManifest(
        ADHERENCE, day, tuple(map(entry, files)), (), adjacent_files=tuple(map(entry, adjacent))
    )


def test_days_with_the_same_files_but_different_adjacent_files_are_loaded_apart() -> None:
    week = days_between(date(2024, 3, 4), date(2024, 3, 10))
    manifests = {
        day: _manifest(day, ("w.json",), {0: ("before.json",), 6: ("after.json",)}.get(day.weekday(), ()))
        for day in week
    }
    groups = group_days_by_files(manifests)
    assert [days for days, _ in groups] == [week[:1], week[1:6], week[6:]]
    assert [[e.path for e in manifest.adjacent_files] for _, manifest in groups] == [
        ["before.json"],
        [],
        ["after.json"],
    ]


def test_a_manifest_written_before_adjacent_files_existed_loads_with_none(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "data")
    written = store.write_manifest(_manifest(FIRST, ("w.json",), ("before.json",)))
    payload = json.loads(written.read_text())
    assert [entry["path"] for entry in payload["adjacent_files"]] == ["before.json"]
    del payload["adjacent_files"]
    written.write_text(json.dumps(payload))
    old = store.read_manifest(ADHERENCE, FIRST)
    assert old is not None and old.adjacent_files == () and [e.path for e in old.files] == ["w.json"]


class _OrgWithBusinessUnits:
    """Only the business units' zones matter for the zone of agents in no unit."""

    def __init__(self, *zones: str | None) -> None:
        self.zones = zones

    def business_units(self) -> list[BusinessUnit]:
        return [BusinessUnit(f"bu{i}", f"BU {i}", None, zone, None) for i, zone in enumerate(self.zones)]


@pytest.mark.parametrize(
    ("zones", "configured", "expected"),
    [
        (("Europe/Berlin", "Europe/Berlin", None), None, "Europe/Berlin"),  # they agree (one has none)
        (("Europe/Berlin", "America/Chicago"), None, "UTC"),  # no org-wide zone: UTC, never a guess
        (("Europe/Berlin", "America/Chicago"), "Asia/Tokyo", "Asia/Tokyo"),  # WFM_DEFAULT_TIME_ZONE wins
        ((), None, "UTC"),
    ],
)
def test_the_zone_of_agents_in_no_unit(
    zones: tuple[str | None, ...], configured: str | None, expected: str
) -> None:
    client = cast(GenesysClient, _OrgWithBusinessUnits(*zones))
    assert unassigned_time_zone(client, configured) == expected
