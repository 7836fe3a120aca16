"""Bulk historical adherence files (``WfmHistoricalAdherenceBulkResult`` as served) -> clean frames.

Offsets in a file are seconds from the file's ``startDate``; days are cut on the query's time zone, which
is the management unit's (the client submits one bulk job per window and time zone). A day metric's local
date is the local date of ``startDate + dayStartOffsetSeconds``; an exception belongs to the local day it
starts in (that is how ``exceptionCount`` counts it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from wfm_pipeline import wire
from wfm_pipeline.transforms._days import (
    UTC_TIMESTAMP,
    ManagementUnitInfo,
    check_known_values,
    local_date_of,
    parse_timestamp,
)
from wfm_pipeline.transforms._errors import RawRecordError

ADHERENCE_DAILY_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "management_unit_id": pl.String(),
    "local_date": pl.Date(),
    "day_start": UTC_TIMESTAMP,
    "adherence_percentage": pl.Float64(),
    "conformance_percentage": pl.Float64(),
    "adherence_schedule_seconds": pl.Int64(),
    "conformance_schedule_seconds": pl.Int64(),
    "conformance_actual_seconds": pl.Int64(),
    "exception_count": pl.Int64(),
    "exception_duration_seconds": pl.Int64(),
    "impact_seconds": pl.Int64(),
    "schedule_length_seconds": pl.Int64(),
    "actual_length_seconds": pl.Int64(),
}

ADHERENCE_EXCEPTIONS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "management_unit_id": pl.String(),
    "local_date": pl.Date(),
    "start_time": UTC_TIMESTAMP,
    "end_time": UTC_TIMESTAMP,
    "duration_seconds": pl.Int64(),
    "scheduled_activity_category": pl.String(),
    "scheduled_activity_code_id": pl.String(),
    "actual_activity_category": pl.String(),
    "actual_activity_code_id": pl.String(),
    "system_presence": pl.String(),
    "routing_status": pl.String(),
    "impact": pl.String(),
    "secondary_presence_id": pl.String(),
}

# wire field -> column, for the integer day metrics (percentages handled separately)
_DAY_SECONDS_FIELDS = {
    "adherenceScheduleSeconds": "adherence_schedule_seconds",
    "conformanceScheduleSeconds": "conformance_schedule_seconds",
    "conformanceActualSeconds": "conformance_actual_seconds",
    "exceptionCount": "exception_count",
    "exceptionDurationSeconds": "exception_duration_seconds",
    "impactSeconds": "impact_seconds",
    "scheduleLengthSeconds": "schedule_length_seconds",
    "actualLengthSeconds": "actual_length_seconds",
}
# the columns Genesys may leave out of a day's metrics (NULL then)
DAY_METRIC_COLUMNS = ("adherence_percentage", "conformance_percentage", *_DAY_SECONDS_FIELDS.values())

# exceptionInfo fields with a documented vocabulary (SDK HistoricalAdherenceExceptionInfo) -> column
_EXCEPTION_VOCABULARIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "scheduledActivityCategory": ("scheduled_activity_category", wire.ACTIVITY_CATEGORIES),
    "actualActivityCategory": ("actual_activity_category", wire.ACTIVITY_CATEGORIES),
    "systemPresence": ("system_presence", wire.WFM_SYSTEM_PRESENCES),
    "routingStatus": ("routing_status", wire.ROUTING_STATUSES),
    "impact": ("impact", wire.ADHERENCE_IMPACTS),
}


def adherence_document(data: bytes) -> Mapping[str, Any]:
    """One bulk-adherence file's bytes as served -> its JSON object (``RawRecordError`` if it is not one,
    including nesting too deep to parse)."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise RawRecordError(f"adherence file: not valid JSON ({type(exc).__name__}: {exc})") from exc
    if not isinstance(document, Mapping):
        raise RawRecordError("adherence file: expected a JSON object")
    return document


def _require(record: Mapping[str, Any], field: str, where: str) -> Any:
    if not isinstance(record, Mapping) or field not in record or record[field] is None:
        raise RawRecordError(f"{where}: missing required field {field!r}")
    return record[field]


def _checked_int(value: Any, field: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise RawRecordError(f"{where}: {field} must be an integer, got {value!r}")
    return int(value)


def _checked_float(value: Any, field: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RawRecordError(f"{where}: {field} must be a number, got {value!r}")
    return float(value)


def _int(record: Mapping[str, Any], field: str, where: str) -> int:
    return _checked_int(_require(record, field, where), field, where)


def _optional_int(record: Mapping[str, Any], field: str, where: str) -> int | None:
    value = record.get(field)
    return None if value is None else _checked_int(value, field, where)


def _optional_float(record: Mapping[str, Any], field: str, where: str) -> float | None:
    value = record.get(field)
    return None if value is None else _checked_float(value, field, where)


def _file_header(
    document: Mapping[str, Any], units: Mapping[str, ManagementUnitInfo]
) -> tuple[str, str, datetime, float | None]:
    """(unit id, its time zone, window start, window length in seconds or None when endDate is absent)."""
    if not isinstance(document, Mapping):
        raise RawRecordError("adherence file: expected a JSON object")
    mu_id = str(_require(document, "managementUnitId", "adherence file"))
    if mu_id not in units:
        raise RawRecordError(f"adherence file: management unit {mu_id!r} is not in the organization snapshot")
    start = parse_timestamp(_require(document, "startDate", "adherence file"), "startDate")
    end_date = document.get("endDate")
    length = None if end_date is None else (parse_timestamp(end_date, "endDate") - start).total_seconds()
    if length is not None and length <= 0:
        raise RawRecordError(f"adherence file: endDate {end_date} is not after startDate")
    user_results = _require(document, "userResults", "adherence file")
    if not isinstance(user_results, list):
        raise RawRecordError("adherence file: userResults must be a list")
    return mu_id, units[mu_id].time_zone, start, length


def _offset(record: Mapping[str, Any], field: str, where: str, window_seconds: float | None) -> int:
    """An offset from the file's startDate; one outside the query window is a shape error (Genesys only
    reports what the query covers), not a row to drop quietly."""
    value = _int(record, field, where)
    if value < 0 or (window_seconds is not None and value > window_seconds):
        raise RawRecordError(
            f"{where}: {field} {value} lies outside the query window [0, {window_seconds or 'endDate'}] s"
        )
    return value


def _user_entries(document: Mapping[str, Any], list_field: str) -> Iterator[tuple[str, str, Any]]:
    """(user id, where, entry) for each entry of ``userResults[].<list_field>``, ``where`` naming it."""
    for index, user in enumerate(document["userResults"]):
        where = f"userResults[{index}]"
        user_id = str(_require(user, "userId", where))
        for entry_index, entry in enumerate(user.get(list_field) or []):
            yield user_id, f"{where}.{list_field}[{entry_index}]", entry


def adherence_daily_rows(
    document: Mapping[str, Any], units: Mapping[str, ManagementUnitInfo], first: date, last: date
) -> pl.DataFrame:
    """One row per user per local day in [first, last] (``dayMetrics`` outside the range are dropped).

    Only ``dayStartOffsetSeconds`` is required (it places the row on its day): SDK 269 marks every field of
    ``WfmHistoricalAdherenceBulkUserDayMetrics`` optional, so a metric Genesys leaves out is NULL (the
    loader counts them), while a value of the wrong type is still malformed."""
    mu_id, time_zone, start, window_seconds = _file_header(document, units)
    rows = []
    for user_id, day_where, metrics in _user_entries(document, "dayMetrics"):
        offset = _offset(metrics, "dayStartOffsetSeconds", day_where, window_seconds)
        day_start = start + timedelta(seconds=offset)
        local_date = local_date_of(day_start, time_zone)
        if not first <= local_date <= last:
            continue
        row: dict[str, Any] = {
            "user_id": user_id,
            "management_unit_id": mu_id,
            "local_date": local_date,
            "day_start": day_start,
            "adherence_percentage": _optional_float(metrics, "adherencePercentage", day_where),
            "conformance_percentage": _optional_float(metrics, "conformancePercentage", day_where),
        }
        for field, column in _DAY_SECONDS_FIELDS.items():
            row[column] = _optional_int(metrics, field, day_where)
        rows.append(row)
    return pl.DataFrame(rows, schema=ADHERENCE_DAILY_SCHEMA)


def adherence_exception_rows(
    document: Mapping[str, Any], units: Mapping[str, ManagementUnitInfo], first: date, last: date
) -> pl.DataFrame:
    """One row per exception interval starting on a local day in [first, last]."""
    mu_id, time_zone, start, window_seconds = _file_header(document, units)
    lookup = document.get("lookupIdToSecondaryPresenceId") or {}
    if not isinstance(lookup, Mapping):
        raise RawRecordError("adherence file: lookupIdToSecondaryPresenceId must be an object")
    rows = []
    for user_id, exc_where, info in _user_entries(document, "exceptionInfo"):
        begin = _offset(info, "startOffsetSeconds", exc_where, window_seconds)
        end = _offset(info, "endOffsetSeconds", exc_where, window_seconds)
        if end < begin:
            raise RawRecordError(f"{exc_where}: endOffsetSeconds {end} < startOffsetSeconds {begin}")
        start_time = start + timedelta(seconds=begin)
        local_date = local_date_of(start_time, time_zone)
        if not first <= local_date <= last:
            continue
        lookup_id = info.get("secondaryPresenceLookupId")
        rows.append(
            {
                "user_id": user_id,
                "management_unit_id": mu_id,
                "local_date": local_date,
                "start_time": start_time,
                "end_time": start + timedelta(seconds=end),
                "duration_seconds": end - begin,
                "scheduled_activity_category": info.get("scheduledActivityCategory"),
                "scheduled_activity_code_id": info.get("scheduledActivityCodeId"),
                "actual_activity_category": info.get("actualActivityCategory"),
                "actual_activity_code_id": info.get("actualActivityCodeId"),
                "system_presence": info.get("systemPresence"),
                "routing_status": info.get("routingStatus"),
                "impact": info.get("impact"),
                "secondary_presence_id": lookup.get(lookup_id) if lookup_id is not None else None,
            }
        )
    try:
        frame = pl.DataFrame(rows, schema=ADHERENCE_EXCEPTIONS_SCHEMA)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise RawRecordError(f"adherence file: exceptionInfo fields of the wrong type ({exc})") from exc
    for field, (column, known) in _EXCEPTION_VOCABULARIES.items():
        check_known_values(frame[column], known, "adherence file exceptionInfo", field)
    return frame
