"""What the Dagster UI shows after a 14-day range run on a persistent instance: each partition's own row
count, check results tied to partitions, one materialization per table and partition, and every table's
column schema (equal to the DuckDB table's columns)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from wfm_pipeline import warehouse
from wfm_pipeline.defs.assets.tables import column_schema
from wfm_pipeline_tests.pipeline.conftest import Workspace

DAYS = [date(2024, 1, 1) + timedelta(days=offset) for offset in range(14)]
KEYS = [day.isoformat() for day in DAYS]


@pytest.fixture(scope="module")
def fortnight(tmp_path_factory: pytest.TempPathFactory, small_sandbox):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("fortnight")
    workspace = Workspace(root / "workspace", small_sandbox.base_url)
    home = root / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        result = workspace.materialize(KEYS[0], KEYS[-1], instance=instance)
        assert result.success
        yield workspace, instance, result.run_id


def _rows_per_day(workspace: Workspace, table: warehouse.TableSpec) -> dict[str, int]:
    with duckdb.connect(str(workspace.database), read_only=True) as connection:
        found = connection.execute(
            f"SELECT local_date, count(*) FROM {table.qualified_name} GROUP BY 1"
        ).fetchall()
    return {day.isoformat(): rows for day, rows in found}


def _of_run(instance: dg.DagsterInstance, run_id: str, table: warehouse.TableSpec) -> list:  # type: ignore[type-arg]
    records = instance.fetch_materializations(dg.AssetKey(table.name), limit=1000).records
    return [record.asset_materialization for record in records if record.run_id == run_id]


@pytest.mark.parametrize("table", warehouse.SLICED, ids=lambda table: table.name)
def test_each_partition_shows_its_own_rows_and_the_table_its_total(fortnight, table) -> None:  # type: ignore[no-untyped-def]
    workspace, instance, run_id = fortnight
    of_run = _of_run(instance, run_id, table)
    assert Counter(m.partition for m in of_run) == Counter(KEYS)  # one materialization per partition
    per_day = _rows_per_day(workspace, table)
    for materialization in of_run:
        metadata = {key: value.value for key, value in materialization.metadata.items()}
        assert metadata["dagster/partition_row_count"] == per_day[materialization.partition]
        assert metadata["dagster/row_count"] == sum(per_day.values())


def test_the_days_differ_so_a_run_total_copied_to_every_day_would_show(fortnight) -> None:  # type: ignore[no-untyped-def]
    workspace, _, _ = fortnight
    assert len(set(_rows_per_day(workspace, warehouse.AGENT_OCCUPANCY).values())) > 1


@pytest.mark.parametrize("table", warehouse.DIMENSIONS, ids=lambda table: table.name)
def test_a_dimension_is_materialized_for_each_day_of_the_run_with_its_row_count(fortnight, table) -> None:  # type: ignore[no-untyped-def]
    """Partitioned like the facts: the run's one snapshot is materialized for each of its days."""
    workspace, instance, run_id = fortnight
    of_run = _of_run(instance, run_id, table)
    assert Counter(m.partition for m in of_run) == Counter(KEYS)
    rows = len(workspace.table(table))
    assert rows > 0
    assert {m.metadata["dagster/row_count"].value for m in of_run} == {rows}


def test_check_results_are_tied_to_each_partition(fortnight) -> None:  # type: ignore[no-untyped-def]
    _, instance, run_id = fortnight
    evaluations = [
        record.get_dagster_event().event_specific_data
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    by_check: dict[tuple[str, str], list[str | None]] = {}
    for evaluation in evaluations:
        key = (evaluation.asset_key.to_user_string(), evaluation.check_name)
        by_check.setdefault(key, []).append(evaluation.partition)
    declared = {
        (key.asset_key.to_user_string(), key.name)
        for assets_def in fortnight[0].assets()
        for key in assets_def.check_keys
    }
    assert set(by_check) == declared
    for partitions in by_check.values():
        assert sorted(partitions) == KEYS  # type: ignore[type-var]


def test_every_table_has_its_column_schema(fortnight) -> None:  # type: ignore[no-untyped-def]
    workspace, _, _ = fortnight
    specs = {
        key.to_user_string(): spec
        for assets_def in workspace.assets()
        for key, spec in assets_def.specs_by_key.items()
    }
    with duckdb.connect(str(workspace.database), read_only=True) as connection:
        for table in warehouse.TABLES:
            schema = specs[table.name].metadata["dagster/column_schema"]
            assert schema == column_schema(table)
            columns = connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [warehouse.SCHEMA, table.name],
            ).fetchall()
            assert [(column.name, column.type) for column in schema.columns] == columns


def test_the_instance_is_persistent(fortnight) -> None:  # type: ignore[no-untyped-def]
    _, instance, run_id = fortnight
    assert not instance.is_ephemeral and instance.get_run_by_id(run_id) is not None
