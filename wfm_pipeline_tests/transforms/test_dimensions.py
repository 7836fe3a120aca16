"""Directory snapshot objects -> dimension rows, on small hand-made snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from wfm_pipeline.transforms import (
    RawRecordError,
    activity_code_rows,
    agent_rows,
    management_unit_rows,
    presence_definition_rows,
)

SEEN = datetime(2024, 5, 1, 12, tzinfo=UTC)


def user(user_id: str, state: str = "active", **fields: Any) -> dict[str, Any]:
    base = {
        "id": user_id,
        "name": f"Agent {user_id}",
        "email": f"{user_id}@example.com",
        "state": state,
        "division_id": "div-home",
        "department": None,
        "title": None,
        "manager_id": None,
    }
    return {**base, **fields}


def test_agents_keep_every_state_and_name_their_division() -> None:
    users = [user("u1"), user("u2", "inactive", manager_id="u1"), user("u3", "deleted", division_id="div-x")]
    rows = agent_rows(users, [{"id": "div-home", "name": "Home"}], SEEN)
    assert rows.select("user_id", "state", "division_name", "manager_id").rows() == [
        ("u1", "active", "Home", None),
        ("u2", "inactive", "Home", "u1"),
        ("u3", "deleted", None, None),  # a division the snapshot does not list: no name, the id is kept
    ]
    assert rows["first_seen"].to_list() == [SEEN] * 3 == rows["last_seen"].to_list()


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ([user("u1", "suspended")], "state 'suspended' of u1 is not one of active, inactive, deleted"),
        ([user("u1", name=7)], "name = 7"),
        ([{**user("u1"), "state": None}], "state is missing"),
    ],
)
def test_a_malformed_user_is_refused_naming_it(users: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(RawRecordError, match=message):
        agent_rows(users, [], SEEN)


def test_unit_settings_keep_their_types_and_a_bool_is_not_an_int() -> None:
    unit = {
        "id": "mu1",
        "name": "Chicago",
        "business_unit_id": "bu1",
        "division_id": "d",
        "time_zone": "America/Chicago",
        "start_day_of_week": "Sunday",
        "adherence_target_percent": 90,
        "adherence_exception_threshold_seconds": 120,
        "severe_alert_threshold_minutes": 15,
        "non_on_queue_activities_equivalent": False,
        "track_on_queue_activity": True,
    }
    rows = management_unit_rows([unit], SEEN)
    assert rows.select("adherence_exception_threshold_seconds", "track_on_queue_activity").rows() == [
        (120, True)
    ]
    with pytest.raises(RawRecordError, match="adherence_exception_threshold_seconds = True"):
        management_unit_rows([{**unit, "adherence_exception_threshold_seconds": True}], SEEN)


def test_activity_codes_are_per_business_unit_with_their_secondary_presences() -> None:
    code = {
        "business_unit_id": "bu1",
        "id": "0",
        "name": "On Queue Work",
        "category": "OnQueueWork",
        "active": True,
        "default_code": True,
        "length_in_minutes": None,
        "counts_as_paid_time": True,
        "counts_as_work_time": True,
        "secondary_presence_ids": ("p1", "p2"),
    }
    rows = activity_code_rows([code, {**code, "business_unit_id": "bu2"}], SEEN)
    assert rows.select("business_unit_id", "activity_code_id", "secondary_presence_ids").rows() == [
        ("bu1", "0", ["p1", "p2"]),
        ("bu2", "0", ["p1", "p2"]),
    ]
    with pytest.raises(RawRecordError, match="category 'Lunch'"):
        activity_code_rows([{**code, "category": "Lunch"}], SEEN)


def test_deactivated_presences_are_rows_too() -> None:
    presences = [
        {
            "id": "p1",
            "name": "Available",
            "system_presence": "Available",
            "type": "System",
            "deactivated": False,
        },
        {"id": "p2", "name": "Old lunch", "system_presence": "Meal", "type": "User", "deactivated": True},
    ]
    rows = presence_definition_rows(presences, SEEN)
    assert rows.select("organization_presence_id", "deactivated").rows() == [("p1", False), ("p2", True)]
