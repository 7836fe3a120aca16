"""Directory snapshot (``extractors.extract_directory``'s JSON) -> the rows of the dimension tables.

Pure: one function per table, each taking the snapshot's lists of objects and returning a frame with the
table's schema, with ``first_seen`` = ``last_seen`` = the snapshot's instant (the warehouse merges them
with what earlier snapshots saw). A value of the wrong type is a ``RawRecordError`` naming the object and
field; nothing is coerced or dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import polars as pl
from polars.datatypes import DataTypeClass

from wfm_pipeline import wire
from wfm_pipeline.transforms._days import UTC_TIMESTAMP
from wfm_pipeline.transforms._errors import RawRecordError

_SEEN: dict[str, pl.DataType] = {"first_seen": UTC_TIMESTAMP, "last_seen": UTC_TIMESTAMP}

AGENTS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "name": pl.String(),
    "email": pl.String(),
    "state": pl.String(),
    "division_id": pl.String(),
    "division_name": pl.String(),
    "department": pl.String(),
    "title": pl.String(),
    "manager_id": pl.String(),
    **_SEEN,
}
BUSINESS_UNITS_SCHEMA: dict[str, pl.DataType] = {
    "business_unit_id": pl.String(),
    "name": pl.String(),
    "division_id": pl.String(),
    "time_zone": pl.String(),
    "start_day_of_week": pl.String(),
    **_SEEN,
}
MANAGEMENT_UNITS_SCHEMA: dict[str, pl.DataType] = {
    "management_unit_id": pl.String(),
    "name": pl.String(),
    "business_unit_id": pl.String(),
    "division_id": pl.String(),
    "time_zone": pl.String(),
    "start_day_of_week": pl.String(),
    "adherence_target_percent": pl.Int64(),
    "adherence_exception_threshold_seconds": pl.Int64(),
    "severe_alert_threshold_minutes": pl.Int64(),
    "non_on_queue_activities_equivalent": pl.Boolean(),
    "track_on_queue_activity": pl.Boolean(),
    **_SEEN,
}
ACTIVITY_CODES_SCHEMA: dict[str, pl.DataType] = {
    "business_unit_id": pl.String(),
    "activity_code_id": pl.String(),
    "name": pl.String(),
    "category": pl.String(),
    "active": pl.Boolean(),
    "default_code": pl.Boolean(),
    "length_in_minutes": pl.Int64(),
    "counts_as_paid_time": pl.Boolean(),
    "counts_as_work_time": pl.Boolean(),
    "secondary_presence_ids": pl.List(pl.String()),
    **_SEEN,
}
PRESENCE_DEFINITIONS_SCHEMA: dict[str, pl.DataType] = {
    "organization_presence_id": pl.String(),
    "system_presence": pl.String(),
    "name": pl.String(),
    "type": pl.String(),
    "deactivated": pl.Boolean(),
    **_SEEN,
}


def _fits(value: Any, dtype: pl.DataType | DataTypeClass) -> bool:
    """``value`` (from JSON) is a ``dtype`` value or null; ``bool`` is not taken for an int or back."""
    if value is None:
        return True
    if isinstance(dtype, pl.List):
        return isinstance(value, list | tuple) and all(_fits(item, dtype.inner) for item in value)
    if isinstance(dtype, pl.Boolean):
        return isinstance(value, bool)
    if isinstance(dtype, pl.Int64):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def _frame(
    kind: str,
    items: Sequence[Mapping[str, Any]],
    schema: Mapping[str, pl.DataType],
    fields: Mapping[str, str],
    observed_at: datetime,
    required: Sequence[str] = (),
) -> pl.DataFrame:
    """Rows of ``schema`` from ``items``: column <- item field per ``fields`` (the rest are the seen
    columns); a missing field is null unless the column is ``required``."""
    rows = []
    for item in items:
        if not isinstance(item, Mapping):
            raise RawRecordError(f"directory {kind}: expected objects, got {item!r}")
        row: dict[str, Any] = {}
        for column, name in fields.items():
            value = item.get(name)
            if not _fits(value, schema[column]):
                raise RawRecordError(
                    f"directory {kind} {item.get('id')!r}: {name} = {value!r} is not {schema[column]}"
                )
            if value is None and column in required:
                raise RawRecordError(f"directory {kind} {item.get('id')!r}: {name} is missing")
            row[column] = value
        rows.append({**row, "first_seen": observed_at, "last_seen": observed_at})
    return pl.DataFrame(rows, schema=pl.Schema(schema))


def agent_rows(
    users: Sequence[Mapping[str, Any]], divisions: Sequence[Mapping[str, Any]], observed_at: datetime
) -> pl.DataFrame:
    """Every user of the org, whatever their state, with their division's name."""
    names = {division.get("id"): division.get("name") for division in divisions}
    fields = {
        "user_id": "id",
        "name": "name",
        "email": "email",
        "state": "state",
        "division_id": "division_id",
        "department": "department",
        "title": "title",
        "manager_id": "manager_id",
    }
    frame = _frame("users", users, AGENTS_SCHEMA, fields, observed_at, ("user_id", "state"))
    unknown = frame.filter(~pl.col("state").is_in(wire.USER_STATES))
    if unknown.height:
        raise RawRecordError(
            f"directory users: state {unknown['state'][0]!r} of user {unknown['user_id'][0]} is not one of "
            f"{', '.join(wire.USER_STATES)}"
        )
    division_names = pl.Series([names.get(division) for division in frame["division_id"]], dtype=pl.String)
    return frame.with_columns(division_names.alias("division_name")).select(list(AGENTS_SCHEMA))


def business_unit_rows(units: Sequence[Mapping[str, Any]], observed_at: datetime) -> pl.DataFrame:
    fields = {
        "business_unit_id": "id",
        "name": "name",
        "division_id": "division_id",
        "time_zone": "time_zone",
        "start_day_of_week": "start_day_of_week",
    }
    return _frame("business_units", units, BUSINESS_UNITS_SCHEMA, fields, observed_at, ("business_unit_id",))


def management_unit_rows(units: Sequence[Mapping[str, Any]], observed_at: datetime) -> pl.DataFrame:
    fields = {
        "management_unit_id": "id",
        "name": "name",
        "business_unit_id": "business_unit_id",
        "division_id": "division_id",
        "time_zone": "time_zone",
        "start_day_of_week": "start_day_of_week",
        "adherence_target_percent": "adherence_target_percent",
        "adherence_exception_threshold_seconds": "adherence_exception_threshold_seconds",
        "severe_alert_threshold_minutes": "severe_alert_threshold_minutes",
        "non_on_queue_activities_equivalent": "non_on_queue_activities_equivalent",
        "track_on_queue_activity": "track_on_queue_activity",
    }
    required = ("management_unit_id", "time_zone")
    return _frame("management_units", units, MANAGEMENT_UNITS_SCHEMA, fields, observed_at, required)


def activity_code_rows(codes: Sequence[Mapping[str, Any]], observed_at: datetime) -> pl.DataFrame:
    fields = {
        "business_unit_id": "business_unit_id",
        "activity_code_id": "id",
        "name": "name",
        "category": "category",
        "active": "active",
        "default_code": "default_code",
        "length_in_minutes": "length_in_minutes",
        "counts_as_paid_time": "counts_as_paid_time",
        "counts_as_work_time": "counts_as_work_time",
        "secondary_presence_ids": "secondary_presence_ids",
    }
    required = ("business_unit_id", "activity_code_id", "category")
    frame = _frame("activity_codes", codes, ACTIVITY_CODES_SCHEMA, fields, observed_at, required)
    unknown = frame.filter(~pl.col("category").is_in(wire.ACTIVITY_CATEGORIES))
    if unknown.height:
        raise RawRecordError(
            f"directory activity_codes: category {unknown['category'][0]!r} of code "
            f"{unknown['activity_code_id'][0]} is not one of {', '.join(wire.ACTIVITY_CATEGORIES)}"
        )
    return frame


def presence_definition_rows(presences: Sequence[Mapping[str, Any]], observed_at: datetime) -> pl.DataFrame:
    """Active and deactivated presences: facts of old days still carry the ids of deactivated ones."""
    fields = {
        "organization_presence_id": "id",
        "system_presence": "system_presence",
        "name": "name",
        "type": "type",
        "deactivated": "deactivated",
    }
    required = ("organization_presence_id", "system_presence", "deactivated")
    return _frame(
        "presence_definitions", presences, PRESENCE_DEFINITIONS_SCHEMA, fields, observed_at, required
    )
