"""Sensor planning (pure), settings validation, and loading the definitions as Dagster's CLI does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import httpx
import pytest

from wfm_pipeline.defs.automation import SENSOR_NAME, PlannedRun, plan_runs
from wfm_pipeline.defs.build import build_definitions
from wfm_pipeline.defs.resources import GenesysApiResource
from wfm_pipeline.defs.settings import PipelineConfigError, PipelineSettings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEYS = [f"2025-06-{day:02d}" for day in range(1, 11)]  # partitions 06-01 .. 06-10
ZONES = ["America/Chicago", "Europe/Berlin"]  # latest local end of day D: D+1 05:00Z (CDT)


def test_only_days_ended_everywhere_and_not_materialized_are_requested() -> None:
    # 06-08 ends for Chicago at 06-09T05:00Z; availability 06-09T06:00Z -> 06-08 is the last complete day
    runs, cursor = plan_runs(
        KEYS,
        ZONES,
        datetime(2025, 6, 9, 6, tzinfo=UTC),
        {"2025-06-07"},
        "2025-06-09",
        lookback_days=4,
        refresh_days=3,
    )
    assert runs == [PlannedRun("2025-06-08", "initial:2025-06-08", "available, not materialized")]
    assert cursor == "2025-06-09"  # refresh already done for this availability date


def test_daily_refresh_of_recent_days_once_per_availability_date() -> None:
    availability = datetime(2025, 6, 9, 6, tzinfo=UTC)
    materialized = set(KEYS)
    runs, cursor = plan_runs(
        KEYS, ZONES, availability, materialized, "2025-06-08", lookback_days=7, refresh_days=3
    )
    assert [run.run_key for run in runs] == [
        "refresh:2025-06-06:2025-06-09",
        "refresh:2025-06-07:2025-06-09",
        "refresh:2025-06-08:2025-06-09",
    ]
    assert cursor == "2025-06-09"
    again, _ = plan_runs(KEYS, ZONES, availability, materialized, cursor, lookback_days=7, refresh_days=3)
    assert again == []


def test_a_day_ended_in_berlin_but_not_in_chicago_waits() -> None:
    # at 06-09T04:00Z, 06-08 has ended in Berlin (06-08T22:00Z) but not in Chicago (06-09T05:00Z)
    runs, _ = plan_runs(
        KEYS, ZONES, datetime(2025, 6, 9, 4, tzinfo=UTC), set(), None, lookback_days=4, refresh_days=0
    )
    assert [run.partition_key for run in runs] == ["2025-06-07"]


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
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [
        (k, f"initial:{k}") for k in expected
    ]
    assert cursor["last_refresh_on"] == available_until.date().isoformat()
