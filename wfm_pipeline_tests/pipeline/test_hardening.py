"""The pipeline end of the hardening: where rows come from is recorded, permanent errors are not retried,
and a failed write never leaves the warehouse locked."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import dagster as dg
import duckdb
import httpx
import pytest

from wfm_pipeline import warehouse
from wfm_pipeline.defs.resources import WarehouseResource
from wfm_pipeline.raw_store import ADHERENCE, USER_DETAILS

DAY = date(2024, 1, 9)


def step_failures(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(str(event.event_specific_data) for event in result.all_events if event.is_step_failure)


def test_the_source_is_recorded_in_every_manifest_and_in_the_warehouse(make_workspace) -> None:  # type: ignore[no-untyped-def]
    workspace = make_workspace("source")
    result = workspace.materialize(DAY.isoformat())
    assert result.success, step_failures(result)
    for kind in (ADHERENCE, USER_DETAILS):
        manifest = workspace.store.read_manifest(kind, DAY)
        assert manifest is not None and manifest.source == "sandbox"
    with duckdb.connect(str(workspace.database), read_only=True) as connection:
        rows = connection.execute(f"SELECT source FROM wfm.{warehouse.SOURCE_TABLE}").fetchall()
    assert rows == [("sandbox",)]
    shown = {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata["source"]
        for event in result.all_events
        if event.is_step_materialization and event.asset_key is not None
    }
    assert set(shown.values()) == {dg.TextMetadataValue("sandbox")}
    every_asset = {key.to_user_string() for assets_def in workspace.assets() for key in assets_def.keys}
    assert set(shown) == every_asset and len(every_asset) == 16


def test_a_rejected_token_fails_the_step_at_once_without_step_retries(make_workspace) -> None:  # type: ignore[no-untyped-def]
    """Every request's token is revoked: a 401 even after minting a new one. Retrying the step cannot cure
    that, so the export step fails on its first attempt (the retry policy would otherwise run it 3 times)."""
    workspace = make_workspace("revoked")
    faults = f"{workspace.sandbox_url}/sandbox/faults"
    httpx.put(faults, json=[{"kind": "revoke_token", "route": "/api/v2/*"}]).raise_for_status()
    try:
        result = workspace.materialize(DAY.isoformat())
    finally:
        httpx.delete(faults).raise_for_status()
    assert not result.success
    retried = [
        event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert retried == []
    messages = step_failures(result)
    assert "AuthenticationError" in messages and "the sandbox default credentials" in messages


def test_a_failed_step_leaves_the_warehouse_closed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The step's exception (kept alive by Dagster with its traceback) must not keep the file locked."""
    path = tmp_path / "warehouse.duckdb"
    resource = WarehouseResource(database=str(path))
    with pytest.raises(RuntimeError) as caught, resource.get_connection() as connection:
        connection.execute("CREATE TABLE t (a INTEGER)")
        raise RuntimeError("a check failed")
    assert caught.value.__traceback__ is not None  # the frames, and whatever they reference, are alive
    opened = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}).execute('SELECT 1')"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert opened.returncode == 0, opened.stderr[-500:]


def test_a_partition_older_than_the_org_keeps_is_refused_and_nothing_is_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Genesys returns nothing for days past its analytics retention; loading such a day would record a
    day without work. The export step fails on its first attempt, naming the oldest day kept."""
    from harness.workspace import Workspace
    from wfm_pipeline.sandbox.launcher import SandboxProcess

    retention = (date.today() - DAY).days - 10  # DAY is ten days too old
    with SandboxProcess(profile="fast", agents=4, retention_days=retention) as sandbox:
        workspace = Workspace(tmp_path / "retention", sandbox.base_url)
        result = workspace.materialize(DAY.isoformat())
    assert not result.success
    messages = step_failures(result)
    assert f"older than the org's analytics data retention ({retention} days" in messages
    retried = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert [e.step_key for e in retried] == []
    assert workspace.store.read_manifest(USER_DETAILS, DAY) is None
