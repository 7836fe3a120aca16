"""The analyst-ready warehouse against the sandbox: dimensions every fact id resolves to, agents who left
kept with their occupancy, one unit per (user, day), the Exceptions Duration of Genesys's screens, the
membership per day, the views, the occupancy interval, and the retention limit.

Days 2023-02-25 .. 2023-03-01: before any sandbox agent departed (the earliest leaves 60 days after the
history starts on 2023-01-01), so the departed agents still have history on every day.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from wfm_pipeline import warehouse
from wfm_pipeline_tests.pipeline.conftest import DEPARTED_AGENTS, Workspace
from wfm_pipeline_tests.pipeline.test_materialize import OCCUPANCY_FIELDS, succeeded
from wfm_pipeline_tests.pipeline.truth import Truth, expected_occupancy

DAYS = [date(2023, 2, 25) + timedelta(days=offset) for offset in range(5)]
FIRST, LAST = DAYS[0].isoformat(), DAYS[-1].isoformat()
OCCUPANCY_ROWS = (
    f"SELECT user_id, grain, interval_start, {', '.join(OCCUPANCY_FIELDS)} FROM wfm.agent_occupancy"
)


@pytest.fixture(scope="module")
def truth(small_sandbox) -> Truth:  # type: ignore[no-untyped-def]
    return Truth(small_sandbox.base_url)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, small_sandbox, truth: Truth) -> Workspace:  # type: ignore[no-untyped-def]
    # the org's zone for agents in no unit, configured (the sandbox cuts their days in the same one)
    env = {"WFM_DEFAULT_TIME_ZONE": truth.org["defaultTimeZone"]}
    workspace = Workspace(tmp_path_factory.mktemp("dimensions"), small_sandbox.base_url, env)
    succeeded(workspace.materialize(FIRST, LAST))
    return workspace


def query(workspace: Workspace, sql: str) -> list[tuple]:
    with duckdb.connect(str(workspace.database), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_every_id_of_every_fact_resolves_to_a_dimension_row(loaded: Workspace) -> None:
    for dimension in warehouse.DIMENSIONS:
        assert query(loaded, f"SELECT count(*) FROM {dimension.qualified_name}")[0][0] > 0, dimension.name
    checked = 0
    for table in warehouse.SLICED:
        for reference in table.references:
            dimension, key, column = reference.dimension.qualified_name, reference.key, reference.column
            units = warehouse.MANAGEMENT_UNITS.qualified_name
            scope = (
                f" AND d.business_unit_id = (SELECT business_unit_id FROM {units} u"
                " WHERE u.management_unit_id = f.management_unit_id)"
                if reference.within_business_unit
                else ""
            )
            ((rows, orphans),) = query(
                loaded,
                f"SELECT count(f.{column}), count(f.{column}) FILTER (WHERE NOT EXISTS (SELECT 1 FROM "
                f"{dimension} d WHERE d.{key} = f.{column}{scope})) FROM {table.qualified_name} f",
            )
            assert orphans == 0, (table.name, column)
            checked += rows
    assert checked > 0


def test_agents_in_every_state_and_the_departed_ones_kept(loaded: Workspace, truth: Truth) -> None:
    directory = truth.directory()
    expected = {user["id"]: user["state"] for user in directory["users"]}
    assert dict(query(loaded, "SELECT user_id, state FROM wfm.agents")) == expected
    departed = truth.departed()
    assert len(departed) == DEPARTED_AGENTS
    assert {expected[user] for user in departed} == {"deleted"}
    # the departed agents' presence and occupancy are in the tables, with no unit
    users = ", ".join(repr(user) for user in departed)
    for table in ("presence_segments", "routing_status_segments", "agent_occupancy"):
        found = query(
            loaded, f"SELECT DISTINCT user_id, management_unit_id FROM wfm.{table} WHERE user_id IN ({users})"
        )
        assert sorted(found) == sorted((user, None) for user in departed), table


def test_occupancy_of_every_agent_equals_the_independent_computation(loaded: Workspace, truth: Truth) -> None:
    expected = expected_occupancy(truth, DAYS, unassigned_zone=truth.org["defaultTimeZone"])
    assert {user for user, _, _ in expected} >= set(truth.departed())  # they had work on these days
    got = {
        (row[0], row[1], row[2]): dict(zip(OCCUPANCY_FIELDS, row[3:], strict=True))
        for row in query(
            loaded,
            f"SELECT user_id, grain, interval_start, {', '.join(OCCUPANCY_FIELDS)} FROM wfm.agent_occupancy",
        )
    }
    assert set(got) == set(expected)
    for key, values in expected.items():
        assert got[key] == pytest.approx(values, abs=1e-6), key


def test_no_user_day_is_under_two_units(loaded: Workspace) -> None:
    for table in warehouse.SLICED:
        twice = query(
            loaded,
            f"SELECT user_id, local_date FROM {table.qualified_name} GROUP BY ALL "
            "HAVING count(DISTINCT coalesce(management_unit_id, '')) > 1",
        )
        assert twice == [], table.name


def test_exception_duration_as_genesys_screens_show_it(loaded: Workspace, truth: Truth) -> None:
    thresholds = {
        unit["id"]: unit["adherenceExceptionThresholdSeconds"]
        for unit in truth.directory()["managementUnits"]
    }
    assert all(thresholds.values()) and len(set(thresholds.values())) > 1  # non-zero, per unit
    rows = query(
        loaded,
        "SELECT management_unit_id, exception_count, exception_duration_seconds, "
        "exception_duration_ui_seconds FROM wfm.adherence_daily_ui",
    )
    assert len(rows) == len(truth.agents()) * len(DAYS)
    assert any(count for _, count, _, _ in rows)
    for unit, count, seconds, ui_seconds in rows:
        assert ui_seconds == seconds + count * thresholds[unit]


def test_membership_is_recorded_per_day(loaded: Workspace, truth: Truth) -> None:
    expected = sorted((user, unit, day) for user, unit, _ in truth.agents() for day in DAYS)
    found = query(
        loaded, "SELECT user_id, management_unit_id, local_date FROM wfm.agent_management_unit_days"
    )
    assert sorted(found) == expected


def test_views_answer_with_names(loaded: Workspace) -> None:
    weekly = query(
        loaded, "SELECT management_unit_name, adherence_percentage FROM wfm.adherence_by_unit_week"
    )
    assert weekly and all(name for name, _ in weekly)
    percentages = [pct for _, pct in weekly if pct is not None]  # None: a unit-week with nothing scheduled
    assert percentages and all(0 <= pct <= 100 for pct in percentages)
    ((view_seconds, table_seconds),) = query(
        loaded,
        "SELECT (SELECT sum(interacting_seconds) FROM wfm.occupancy_by_unit_interval), "
        "(SELECT sum(interacting_seconds) FROM wfm.agent_occupancy WHERE grain <> 'P1D')",
    )
    assert view_seconds == pytest.approx(table_seconds)
    ((minutes, exceptions_minutes, unnamed),) = query(
        loaded,
        "SELECT (SELECT sum(exception_minutes) FROM wfm.exception_minutes_by_activity_code), "
        "(SELECT sum(duration_seconds) / 60.0 FROM wfm.adherence_exceptions), "
        "(SELECT count(*) FROM wfm.exception_minutes_by_activity_code WHERE activity_code_name IS NULL "
        "OR agent_name IS NULL)",
    )
    assert minutes == pytest.approx(exceptions_minutes) and unnamed == 0


def test_the_dense_occupancy_view_has_every_interval_of_every_agent_day(loaded: Workspace) -> None:
    ((days, stored, dense, per_day, seconds, dense_seconds),) = query(
        loaded,
        "SELECT (SELECT count(*) FROM wfm.agent_occupancy WHERE grain = 'P1D'), "
        "(SELECT count(*) FROM wfm.agent_occupancy WHERE grain <> 'P1D'), "
        "(SELECT count(*) FROM wfm.agent_occupancy_dense), "
        "(SELECT count(DISTINCT n) FROM (SELECT count(*) AS n FROM wfm.agent_occupancy_dense "
        "GROUP BY user_id, local_date)), "
        "(SELECT sum(interacting_seconds) FROM wfm.agent_occupancy WHERE grain <> 'P1D'), "
        "(SELECT sum(interacting_seconds) FROM wfm.agent_occupancy_dense)",
    )
    assert dense == days * 48 > stored  # 24-hour days (no DST change in DAYS) of 30-minute intervals
    assert per_day == 1 and dense_seconds == pytest.approx(seconds)


@pytest.mark.parametrize("minutes", [15, 60])
def test_occupancy_at_another_interval_equals_the_independent_computation(
    minutes: int,
    make_workspace,
    truth: Truth,  # type: ignore[no-untyped-def]
) -> None:
    workspace = make_workspace(f"interval-{minutes}")
    workspace.settings_env = {"WFM_OCCUPANCY_INTERVAL": f"PT{minutes}M"}
    succeeded(workspace.materialize(FIRST, DAYS[1].isoformat()))
    expected = expected_occupancy(truth, DAYS[:2], minutes)  # agents in no unit: UTC days (the default)
    got = {
        (row[0], row[1], row[2]): dict(zip(OCCUPANCY_FIELDS, row[3:], strict=True))
        for row in query(
            workspace,
            f"SELECT user_id, grain, interval_start, {', '.join(OCCUPANCY_FIELDS)} FROM wfm.agent_occupancy",
        )
    }
    assert {grain for _, grain, _ in got} == {"P1D", f"PT{minutes}M"}
    assert set(got) == set(expected)
    for key, values in expected.items():
        assert got[key] == pytest.approx(values, abs=1e-6), key
