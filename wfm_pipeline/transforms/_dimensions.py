"""Directory snapshot (``extractors.extract_directory``'s JSON) -> the rows of the dimension tables.

Pure: one function per table, each taking the snapshot's lists of objects and returning a frame with the
table's schema, with ``first_seen`` = ``last_seen`` = the snapshot's instant (the warehouse merges them
with what earlier snapshots saw). A value of the wrong type is a ``RawRecordError`` naming the object and
field; nothing is coerced or dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
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
    observed_at: datetime,
    required: Sequence[str],
    renamed: Mapping[str, str] = MappingProxyType({}),
) -> pl.DataFrame:
    """Rows of ``schema`` from ``items`` (the client's models as the snapshot holds them): each column
    from the item field of the same name, or of its ``renamed`` name; a missing field is null unless the
    column is ``required``; columns no field names (the seen columns, derived ones) come out null."""
    fields = {column: renamed.get(column, column) for column in schema if column not in _SEEN}
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


def _unknown(frame: pl.DataFrame, kind: str, column: str, key: str, known: tuple[str, ...]) -> None:
    unknown = frame.filter(~pl.col(column).is_in(known))
    if unknown.height:
        raise RawRecordError(
            f"directory {kind}: {column} {unknown[column][0]!r} of {unknown[key][0]} is not one of "
            f"{', '.join(known)}"
        )


def agent_rows(
    users: Sequence[Mapping[str, Any]], divisions: Sequence[Mapping[str, Any]], observed_at: datetime
) -> pl.DataFrame:
    """Every user of the org, whatever their state, with their division's name."""
    frame = _frame("users", users, AGENTS_SCHEMA, observed_at, ("user_id", "state"), {"user_id": "id"})
    _unknown(frame, "users", "state", "user_id", wire.USER_STATES)
    names = {division.get("id"): division.get("name") for division in divisions}
    division_names = pl.Series([names.get(division) for division in frame["division_id"]], dtype=pl.String)
    return frame.with_columns(division_names.alias("division_name"))


def business_unit_rows(units: Sequence[Mapping[str, Any]], observed_at: datetime) -> pl.DataFrame:
    key = {"business_unit_id": "id"}
    return _frame("business_units", units, BUSINESS_UNITS_SCHEMA, observed_at, tuple(key), key)


def management_unit_rows(units: Sequence[Mapping[str, Any]], observed_at: datetime) -> pl.DataFrame:
    required = ("management_unit_id", "time_zone")
    renamed = {"management_unit_id": "id"}
    return _frame("management_units", units, MANAGEMENT_UNITS_SCHEMA, observed_at, required, renamed)


def activity_code_rows(codes: Sequence[Mapping[str, Any]], observed_at: datetime) -> pl.DataFrame:
    required = ("business_unit_id", "activity_code_id", "category")
    frame = _frame(
        "activity_codes", codes, ACTIVITY_CODES_SCHEMA, observed_at, required, {"activity_code_id": "id"}
    )
    _unknown(frame, "activity_codes", "category", "activity_code_id", wire.ACTIVITY_CATEGORIES)
    return frame


def presence_definition_rows(presences: Sequence[Mapping[str, Any]], observed_at: datetime) -> pl.DataFrame:
    """Active and deactivated presences: facts of old days still carry the ids of deactivated ones."""
    required = ("organization_presence_id", "system_presence", "deactivated")
    renamed = {"organization_presence_id": "id"}
    return _frame(
        "presence_definitions", presences, PRESENCE_DEFINITIONS_SCHEMA, observed_at, required, renamed
    )
