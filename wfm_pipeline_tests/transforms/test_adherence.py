"""Bulk adherence files -> adherence_daily / adherence_exceptions, on hand-made files.

The management unit is in America/New_York; 2024-03-10 is the US spring-forward day (23 h), so the
third day starts 23 h after the second.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from wfm_pipeline.transforms import (
    ADHERENCE_DAILY_SCHEMA,
    ADHERENCE_EXCEPTIONS_SCHEMA,
    ManagementUnitInfo,
    RawRecordError,
    adherence_daily_rows,
    adherence_exception_rows,
)

NY = ManagementUnitInfo(id="mu-ny", time_zone="America/New_York", user_ids=("u1",))
UNITS = {NY.id: NY}


def day_metrics(offset: int, adherence: float, exceptions: int = 0) -> dict:
    return {
        "dayStartOffsetSeconds": offset,
        "adherenceScheduleSeconds": 28800,
        "conformanceScheduleSeconds": 25200,
        "conformanceActualSeconds": 25620,
        "exceptionCount": exceptions,
        "exceptionDurationSeconds": 900 * exceptions,
        "impactSeconds": 600 * exceptions,
        "scheduleLengthSeconds": 30600,
        "actualLengthSeconds": 29100.0,  # integral floats are accepted
        "adherencePercentage": adherence,
        "conformancePercentage": 101.67,
    }


def exception(start: int, end: int, impact: str = "Negative", lookup: str | None = "1") -> dict:
    return {
        "startOffsetSeconds": start,
        "endOffsetSeconds": end,
        "scheduledActivityCodeId": "0",
        "scheduledActivityCategory": "OnQueueWork",
        "scheduledSecondaryPresenceLookupIds": ["0"],
        "actualActivityCodeId": "2",
        "actualActivityCategory": "Break",
        "systemPresence": "Break",
        "routingStatus": "OFF_QUEUE",
        "impact": impact,
        "secondaryPresenceLookupId": lookup,
    }


def bulk_file() -> dict:
    # local midnight 2024-03-09 EST = 05:00Z; 03-10 starts 86400 s later; 03-11 only 82800 s after that
    return {
        "startDate": "2024-03-09T05:00:00.000Z",
        "endDate": "2024-03-12T04:00:00.000Z",
        "managementUnitId": "mu-ny",
        "lookupIdToSecondaryPresenceId": {"0": "presence-on-queue", "1": "presence-break"},
        "userResults": [
            {
                "userId": "u1",
                "adherencePercentage": 90.0,
                "conformancePercentage": 100.0,
                "impact": "Negative",
                "exceptionInfo": [
                    exception(3600, 4500),
                    # 23:50 local on 03-09 to 00:10 on 03-10: belongs to the day it starts in
                    exception(85800, 87000, impact="Neutral", lookup=None),
                    exception(169200 + 60, 169200 + 120),  # on 03-11, outside the range
                ],
                "dayMetrics": [
                    day_metrics(0, 96.9, exceptions=2),
                    day_metrics(86400, 100.0),
                    day_metrics(169200, 50.5, exceptions=1),
                ],
            },
            {"userId": "u2", "adherencePercentage": 100.0, "dayMetrics": []},
        ],
    }


def test_daily_rows_cover_only_the_requested_local_days_with_dst_offsets() -> None:
    daily = adherence_daily_rows(bulk_file(), UNITS, date(2024, 3, 9), date(2024, 3, 11))
    common = {
        "user_id": "u1",
        "management_unit_id": "mu-ny",
        "conformance_percentage": 101.67,
        "adherence_schedule_seconds": 28800,
        "conformance_schedule_seconds": 25200,
        "conformance_actual_seconds": 25620,
        "schedule_length_seconds": 30600,
        "actual_length_seconds": 29100,
    }
    expected = pl.DataFrame(
        [
            {
                **common,
                "local_date": date(2024, 3, 9),
                "day_start": datetime(2024, 3, 9, 5, tzinfo=UTC),
                "adherence_percentage": 96.9,
                "exception_count": 2,
                "exception_duration_seconds": 1800,
                "impact_seconds": 1200,
            },
            {
                **common,
                "local_date": date(2024, 3, 10),
                "day_start": datetime(2024, 3, 10, 5, tzinfo=UTC),
                "adherence_percentage": 100.0,
                "exception_count": 0,
                "exception_duration_seconds": 0,
                "impact_seconds": 0,
            },
            {
                **common,
                "local_date": date(2024, 3, 11),
                "day_start": datetime(2024, 3, 11, 4, tzinfo=UTC),  # EDT from here on
                "adherence_percentage": 50.5,
                "exception_count": 1,
                "exception_duration_seconds": 900,
                "impact_seconds": 600,
            },
        ],
        schema=ADHERENCE_DAILY_SCHEMA,
    )
    assert_frame_equal(daily, expected)

    only_middle = adherence_daily_rows(bulk_file(), UNITS, date(2024, 3, 10), date(2024, 3, 10))
    assert only_middle["local_date"].to_list() == [date(2024, 3, 10)]


def test_exceptions_belong_to_the_day_they_start_and_resolve_secondary_presence() -> None:
    exceptions = adherence_exception_rows(bulk_file(), UNITS, date(2024, 3, 9), date(2024, 3, 10))
    base = {
        "user_id": "u1",
        "management_unit_id": "mu-ny",
        "local_date": date(2024, 3, 9),
        "scheduled_activity_category": "OnQueueWork",
        "scheduled_activity_code_id": "0",
        "actual_activity_category": "Break",
        "actual_activity_code_id": "2",
        "system_presence": "Break",
        "routing_status": "OFF_QUEUE",
    }
    expected = pl.DataFrame(
        [
            {
                **base,
                "start_time": datetime(2024, 3, 9, 6, 0, tzinfo=UTC),
                "end_time": datetime(2024, 3, 9, 6, 15, tzinfo=UTC),
                "duration_seconds": 900,
                "impact": "Negative",
                "secondary_presence_id": "presence-break",
            },
            {
                **base,
                "start_time": datetime(2024, 3, 10, 4, 50, tzinfo=UTC),
                "end_time": datetime(2024, 3, 10, 5, 10, tzinfo=UTC),
                "duration_seconds": 1200,
                "impact": "Neutral",
                "secondary_presence_id": None,
            },
        ],
        schema=ADHERENCE_EXCEPTIONS_SCHEMA,
    )
    assert_frame_equal(exceptions, expected)


def test_empty_file_gives_empty_typed_frames() -> None:
    empty = {"startDate": "2024-03-09T05:00:00Z", "managementUnitId": "mu-ny", "userResults": []}
    daily = adherence_daily_rows(empty, UNITS, date(2024, 3, 9), date(2024, 3, 9))
    exceptions = adherence_exception_rows(empty, UNITS, date(2024, 3, 9), date(2024, 3, 9))
    assert daily.is_empty() and exceptions.is_empty()
    assert daily.schema == pl.Schema(ADHERENCE_DAILY_SCHEMA)


def test_day_metrics_the_sdk_marks_optional_are_null_when_left_out() -> None:
    document = bulk_file()
    first_day = document["userResults"][0]["dayMetrics"][0]
    for field in ("adherencePercentage", "exceptionCount", "impactSeconds"):
        del first_day[field]
    first_day["conformancePercentage"] = None
    daily = adherence_daily_rows(document, UNITS, date(2024, 3, 9), date(2024, 3, 11)).sort("local_date")
    emptied, kept = daily.row(0, named=True), daily.row(1, named=True)
    assert [emptied[c] for c in ("adherence_percentage", "conformance_percentage", "exception_count")] == [
        None,
        None,
        None,
    ]
    assert emptied["impact_seconds"] is None and emptied["schedule_length_seconds"] == 30600
    assert None not in kept.values()
    assert daily.schema == pl.Schema(ADHERENCE_DAILY_SCHEMA)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda doc: doc.pop("startDate"), "startDate"),
        (lambda doc: doc.update(managementUnitId="mu-unknown"), "mu-unknown"),
        (
            lambda doc: doc["userResults"][0]["dayMetrics"][0].pop("dayStartOffsetSeconds"),
            "dayStartOffsetSeconds",
        ),
        (
            lambda doc: doc["userResults"][0]["dayMetrics"][0].update(adherencePercentage="high"),
            "adherencePercentage",
        ),
        (lambda doc: doc["userResults"][0]["dayMetrics"][0].update(exceptionCount=1.5), "exceptionCount"),
        (lambda doc: doc["userResults"][0]["dayMetrics"][0].update(exceptionCount=True), "exceptionCount"),
        (lambda doc: doc.update(startDate="yesterday"), "startDate"),
        (lambda doc: doc.update(userResults={"u1": {}}), "userResults"),
    ],
)
def test_malformed_files_raise_naming_the_field(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    document = bulk_file()
    mutate(document)
    with pytest.raises(RawRecordError, match=message):
        adherence_daily_rows(document, UNITS, date(2024, 3, 9), date(2024, 3, 11))
        adherence_exception_rows(document, UNITS, date(2024, 3, 9), date(2024, 3, 11))
