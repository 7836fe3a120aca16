"""Sensor planning (pure), settings validation, and loading the definitions as Dagster's CLI does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import dagster as dg
import httpx
import pytest

from wfm_pipeline.defs import executors
from wfm_pipeline.defs.automation import JOB_NAME, SENSOR_NAME, PlannedRun, plan_run
from wfm_pipeline.defs.build import build_definitions
from wfm_pipeline.defs.resources import GenesysApiResource
from wfm_pipeline.defs.settings import PipelineConfigError, PipelineSettings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEYS = [f"2025-06-{day:02d}" for day in range(1, 11)]  # partitions 06-01 .. 06-10
ZONES = ["America/Chicago", "Europe/Berlin"]  # latest local end of day D: D+1 05:00Z (CDT)


def test_only_days_ended_everywhere_and_not_materialized_are_requested() -> None:
    # 06-08 ends for Chicago at 06-09T05:00Z; availability 06-09T06:00Z -> 06-08 is the last complete day
    run, cursor = plan_run(
        KEYS,
        ZONES,
        datetime(2025, 6, 9, 6, tzinfo=UTC),
        {"2025-06-07"},
        "2025-06-09",
        lookback_days=4,
        refresh_days=3,
    )
    assert run == PlannedRun(
        "2025-06-08",
        "2025-06-08",
        "initial:2025-06-08..2025-06-08:2025-06-09",
        "available, not materialized: 2025-06-08",
    )
    assert cursor == "2025-06-09"  # refresh already done for this availability date


def test_missing_days_and_the_refresh_are_one_range_run() -> None:
    availability = datetime(2025, 6, 9, 6, tzinfo=UTC)
    materialized = set(KEYS) - {"2025-06-03", "2025-06-04"}
    run, cursor = plan_run(
        KEYS, ZONES, availability, materialized, "2025-06-08", lookback_days=8, refresh_days=3
    )
    assert run is not None
    # one run from the first missing day to the last refreshed one (06-05 in between is re-loaded too)
    assert (run.first_key, run.last_key) == ("2025-06-03", "2025-06-08")
    assert run.run_key == "initial+refresh:2025-06-03..2025-06-08:2025-06-09"
    assert run.reason == (
        "available, not materialized: 2025-06-03, 2025-06-04; daily refresh of 2025-06-06, 2025-06-07, "
        "2025-06-08"
    )
    assert cursor == "2025-06-09"


def test_daily_refresh_of_recent_days_once_per_availability_date() -> None:
    availability = datetime(2025, 6, 9, 6, tzinfo=UTC)
    materialized = set(KEYS)
    run, cursor = plan_run(
        KEYS, ZONES, availability, materialized, "2025-06-08", lookback_days=7, refresh_days=3
    )
    assert run is not None
    assert (run.first_key, run.last_key, run.run_key) == (
        "2025-06-06",
        "2025-06-08",
        "refresh:2025-06-06..2025-06-08:2025-06-09",
    )
    assert cursor == "2025-06-09"
    again, _ = plan_run(KEYS, ZONES, availability, materialized, cursor, lookback_days=7, refresh_days=3)
    assert again is None


def test_a_day_ended_in_berlin_but_not_in_chicago_waits() -> None:
    # at 06-09T04:00Z, 06-08 has ended in Berlin (06-08T22:00Z) but not in Chicago (06-09T05:00Z)
    run, _ = plan_run(
        KEYS, ZONES, datetime(2025, 6, 9, 4, tzinfo=UTC), set(), None, lookback_days=4, refresh_days=0
    )
    assert run is not None
    assert (run.first_key, run.last_key) == ("2025-06-07", "2025-06-07")


def test_settings_defaults_and_errors_name_the_variable(tmp_path: Path) -> None:
    settings = PipelineSettings.from_env({"WFM_DATA_DIR": str(tmp_path)})
    assert settings.duckdb_path == tmp_path / "warehouse.duckdb"
    assert settings.state_dir == tmp_path / "state"
    assert settings.max_partitions_per_run == 35
    with pytest.raises(PipelineConfigError, match="WFM_PARTITIONS_START"):
        PipelineSettings.from_env({"WFM_PARTITIONS_START": "last year"})
    with pytest.raises(PipelineConfigError, match="WFM_BACKFILL_MAX_PARTITIONS_PER_RUN"):
        PipelineSettings.from_env({"WFM_BACKFILL_MAX_PARTITIONS_PER_RUN": "0"})
    with pytest.raises(PipelineConfigError, match="WFM_DUCKDB_PATH"):
        PipelineSettings.from_env({"WFM_DUCKDB_PATH": str(tmp_path / "wfm.duckdb")})


def test_sensor_runs_in_process_while_backfills_keep_their_step_processes(tmp_path: Path) -> None:
    def executors(**env: str) -> tuple[str, str]:
        defs = build_definitions(PipelineSettings.from_env({"WFM_DATA_DIR": str(tmp_path), **env}))
        sensor_job = defs.resolve_job_def(JOB_NAME)
        ui_job = defs.resolve_implicit_global_asset_job_def()
        return sensor_job.executor_def.name, ui_job.executor_def.name

    assert executors() == ("in_process", "multiprocess")
    assert executors(WFM_SENSOR_STEP_EXECUTOR="multiprocess", WFM_STEP_EXECUTOR="in_process") == (
        "multiprocess",
        "in_process",
    )
    with pytest.raises(PipelineConfigError, match="WFM_SENSOR_STEP_EXECUTOR"):
        PipelineSettings.from_env({"WFM_SENSOR_STEP_EXECUTOR": "threads"})


def test_a_step_is_bound_to_its_run_worker_only_in_a_process_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An in-process step IS the run worker, a multiprocessing child of the code server: binding it
    would kill the run with the code server."""
    bound: list[str] = []
    monkeypatch.setattr(executors, "bind_step_to_run_worker", lambda: bound.append("bound"))
    defs = build_definitions(PipelineSettings.from_env({"WFM_DATA_DIR": str(tmp_path)}))
    executors.bind_to_run_worker(SimpleNamespace(job_def=defs.resolve_job_def(JOB_NAME)))  # type: ignore[arg-type]
    assert bound == []
    ui_job = defs.resolve_implicit_global_asset_job_def()
    executors.bind_to_run_worker(SimpleNamespace(job_def=ui_job))  # type: ignore[arg-type]
    assert bound == ["bound"]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYSCLOUD_", "DAGSTER_", "WFM_"))}
    return {**env, **extra}


def test_dagster_definitions_validate_passes_without_credentials(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "wfm_pipeline.definitions"],
        cwd=PROJECT_ROOT,
        env=_clean_env(WFM_DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Validation successful" in done.stdout + done.stderr


def test_bad_configuration_fails_at_load_naming_the_variable(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "wfm_pipeline.definitions"],
        cwd=PROJECT_ROOT,
        env=_clean_env(WFM_DATA_DIR=str(tmp_path), WFM_PARTITIONS_START="2023-13-01"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "WFM_PARTITIONS_START" in done.stdout + done.stderr


def test_sensor_requests_the_recent_available_days_from_the_sandbox(small_sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    org = httpx.get(small_sandbox.base_url + "/sandbox/truth/org").json()
    zones = {unit["timeZone"] for unit in org["managementUnits"]}
    settings = PipelineSettings.from_env({"WFM_DATA_DIR": str(tmp_path)})
    sensor = build_definitions(settings).resolve_sensor_def(SENSOR_NAME)
    resources = {"genesys": GenesysApiResource(sandbox_url=small_sandbox.base_url, state_dir=str(tmp_path))}
    context = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), resources=resources)
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    cursor = json.loads(result.cursor or "{}")
    available_until = datetime.fromisoformat(cursor["available_until"])

    def ended_everywhere(key: str) -> bool:
        day = date.fromisoformat(key)
        ends = [datetime.combine(day + timedelta(days=1), time.min, tzinfo=ZoneInfo(z)) for z in zones]
        return max(ends) <= available_until

    partitions = dg.DailyPartitionsDefinition(start_date=settings.partitions_start.isoformat())
    recent = partitions.get_partition_keys()[-settings.sensor_lookback_days :]
    expected = [key for key in recent if ended_everywhere(key)]
    assert expected, "the sandbox should have complete recent days"
    (request,) = result.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == expected[0]
    assert request.tags["dagster/asset_partition_range_end"] == expected[-1]
    assert request.run_key == f"initial+refresh:{expected[0]}..{expected[-1]}:{available_until.date()}"
    assert cursor["last_refresh_on"] == available_until.date().isoformat()


def test_sensor_requests_nothing_while_a_run_of_its_job_is_in_progress(small_sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = PipelineSettings.from_env({"WFM_DATA_DIR": str(tmp_path)})
    definitions = build_definitions(settings)
    sensor = definitions.resolve_sensor_def(SENSOR_NAME)
    instance = dg.DagsterInstance.ephemeral()
    job = definitions.resolve_job_def(JOB_NAME)
    instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
    resources = {"genesys": GenesysApiResource(sandbox_url=small_sandbox.base_url, state_dir=str(tmp_path))}
    result = sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert isinstance(result, dg.SkipReason)
    assert JOB_NAME in (result.skip_message or "")
