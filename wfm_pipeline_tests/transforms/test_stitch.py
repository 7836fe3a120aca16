"""Exceptions cut at adherence window boundaries, stitched back, on hand-made grid windows.

Windows are local days of the unit's zone, as the grid cuts them: America/Chicago ends DST on Sunday
2024-11-03 (25 h) and Europe/Berlin on Sunday 2024-10-27, so those weeks are split before their Sunday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from wfm_pipeline.transforms import (
    ADHERENCE_DAILY_SCHEMA,
    ADHERENCE_EXCEPTIONS_SCHEMA,
    CUT_PIECES_SCHEMA,
    EXCEPTION_COUNT_CORRECTIONS_SCHEMA,
    ManagementUnitInfo,
    RawRecordError,
    adherence_exception_parts,
    adherence_exception_rows,
    correct_day_metrics,
    stitch,
)

CHICAGO = ManagementUnitInfo(id="mu-chi", time_zone="America/Chicago", user_ids=("u1", "u2"))
CHICAGO_2 = ManagementUnitInfo(id="mu-chi-2", time_zone="America/Chicago", user_ids=("u1",))
BERLIN = ManagementUnitInfo(id="mu-ber", time_zone="Europe/Berlin", user_ids=("u1",))
UNITS = {unit.id: unit for unit in (CHICAGO, CHICAGO_2, BERLIN)}
HOUR = 3600
LOOKUP = {"0": "presence-on-queue", "1": "presence-break", "2": "presence-away"}


def midnight(day: date, unit: ManagementUnitInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(unit.time_zone)).astimezone(UTC)


def wire_ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def exception(
    start: int,
    end: int,
    actual: str | None = "Break",
    *,
    presence: str = "Break",
    routing: str = "OFF_QUEUE",
    lookup: str = "1",
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "startOffsetSeconds": start,
        "endOffsetSeconds": end,
        "scheduledActivityCodeId": "0",
        "scheduledActivityCategory": "OnQueueWork",
        "scheduledSecondaryPresenceLookupIds": ["0"],
        "systemPresence": presence,
        "routingStatus": routing,
        "impact": "Negative",
        "secondaryPresenceLookupId": lookup,
    }
    if actual is not None:
        info |= {"actualActivityCodeId": "2", "actualActivityCategory": actual}
    return info


def window_file(
    unit: ManagementUnitInfo, first: date, end: date, exceptions: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """The bulk file of one grid window [first, end) of local days, with the given exceptions per user."""
    return {
        "startDate": wire_ts(midnight(first, unit)),
        "endDate": wire_ts(midnight(end, unit)),
        "managementUnitId": unit.id,
        "lookupIdToSecondaryPresenceId": LOOKUP,
        "userResults": [
            {"userId": user, "adherencePercentage": 90.0, "exceptionInfo": infos, "dayMetrics": []}
            for user, infos in exceptions.items()
        ],
    }


def window_seconds(unit: ManagementUnitInfo, first: date, end: date) -> int:
    return int((midnight(end, unit) - midnight(first, unit)).total_seconds())


def cut_pieces(*documents: dict[str, Any]) -> pl.DataFrame:
    return pl.concat(
        [adherence_exception_parts(doc, UNITS, date.min, date.max).cut_pieces for doc in documents]
    )


def corrections(*rows: tuple[str, str, date, int]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"management_unit_id": mu, "user_id": user, "local_date": day, "continuation_pieces": n}
            for mu, user, day, n in rows
        ],
        schema=EXCEPTION_COUNT_CORRECTIONS_SCHEMA,
    )


# Chicago: ISO weeks 2024-05-06 and 2024-05-13, 7 x 24 h each (CDT all along)
MAY_6, MAY_13, MAY_20 = date(2024, 5, 6), date(2024, 5, 13), date(2024, 5, 20)
WEEK = 7 * 24 * HOUR


def two_windows() -> tuple[dict[str, Any], dict[str, Any]]:
    """u1's exception from 22:00 on Sunday 05-12 to 01:00 on Monday 05-13, cut at the week boundary; it
    changes presence and routing status after midnight, which the whole exception must not take over."""
    first = window_file(
        CHICAGO, MAY_6, MAY_13, {"u1": [exception(HOUR, 2 * HOUR), exception(WEEK - 2 * HOUR, WEEK)]}
    )
    second = window_file(
        CHICAGO,
        MAY_13,
        MAY_20,
        {
            "u1": [
                exception(0, HOUR, presence="Away", routing="IDLE", lookup="2"),
                exception(5 * HOUR, 6 * HOUR),
            ]
        },
    )
    return first, second


def test_a_file_splits_into_interior_exceptions_of_the_days_and_cut_pieces_of_any_day() -> None:
    first, second = two_windows()
    parts = adherence_exception_parts(first, UNITS, date(2024, 5, 7), date(2024, 5, 12))
    assert parts.interior.schema == ADHERENCE_EXCEPTIONS_SCHEMA
    assert parts.interior.height == 0  # the 01:00 exception is on 05-06, outside the days asked for
    assert parts.cut_pieces.schema == CUT_PIECES_SCHEMA
    assert parts.cut_pieces["start_time"].to_list() == [datetime(2024, 5, 13, 3, tzinfo=UTC)]
    assert parts.cut_pieces["window_start"].to_list() == [midnight(MAY_6, CHICAGO)]
    assert parts.cut_pieces["window_end"].to_list() == [midnight(MAY_13, CHICAGO)]

    parts = adherence_exception_parts(second, UNITS, MAY_13, date(2024, 5, 19))
    everything = adherence_exception_rows(second, UNITS, MAY_13, date(2024, 5, 19))
    assert_frame_equal(parts.interior, everything[1:])
    assert_frame_equal(parts.cut_pieces.select(list(ADHERENCE_EXCEPTIONS_SCHEMA)), everything[:1])


def test_two_windows_chain_into_one_exception_with_its_first_piece_attributes() -> None:
    first, second = two_windows()
    stitched = stitch(cut_pieces(second, first))  # any order
    whole = stitched.exceptions.row(0, named=True)
    assert stitched.exceptions.height == 1
    assert stitched.exceptions.schema == ADHERENCE_EXCEPTIONS_SCHEMA
    assert whole["start_time"] == datetime(2024, 5, 13, 3, tzinfo=UTC)  # 22:00 CDT on 05-12
    assert whole["end_time"] == datetime(2024, 5, 13, 6, tzinfo=UTC)
    assert whole["duration_seconds"] == 3 * HOUR
    assert whole["local_date"] == date(2024, 5, 12)
    assert (whole["system_presence"], whole["routing_status"], whole["secondary_presence_id"]) == (
        "Break",
        "OFF_QUEUE",
        "presence-break",
    )
    assert_frame_equal(stitched.corrections, corrections(("mu-chi", "u1", MAY_13, 1)))
    assert stitched.unmatched_pieces == 0


def test_the_count_correction_lowers_only_exception_count_of_the_continued_day() -> None:
    first, second = two_windows()
    metrics = {
        "adherence_percentage": 90.0,
        "conformance_percentage": 95.0,
        "adherence_schedule_seconds": 8 * HOUR,
        "conformance_schedule_seconds": 7 * HOUR,
        "conformance_actual_seconds": 6 * HOUR,
        "exception_duration_seconds": 2 * HOUR,
        "impact_seconds": 2 * HOUR,
        "schedule_length_seconds": 8 * HOUR,
        "actual_length_seconds": 8 * HOUR,
    }
    daily = pl.DataFrame(
        [
            {
                "user_id": user,
                "management_unit_id": "mu-chi",
                "local_date": day,
                "day_start": midnight(day, CHICAGO),
            }
            | metrics
            | {"exception_count": 2}
            for user in ("u2", "u1")
            for day in (date(2024, 5, 12), MAY_13, date(2024, 5, 14))
        ],
        schema=ADHERENCE_DAILY_SCHEMA,
    )
    corrected = correct_day_metrics(daily, stitch(cut_pieces(first, second)).corrections)
    expected = daily.with_columns(
        exception_count=pl.when((pl.col("user_id") == "u1") & (pl.col("local_date") == MAY_13))
        .then(1)
        .otherwise(2)
        .cast(pl.Int64())
    )
    assert_frame_equal(corrected, expected)


def test_a_chain_crosses_three_windows_around_a_dst_split() -> None:
    # Chicago's week of 2024-10-28 is split: [10-28, 11-03) and the 25-hour Sunday 11-03 on its own.
    monday, sunday, next_monday = date(2024, 10, 28), date(2024, 11, 3), date(2024, 11, 4)
    head = window_file(CHICAGO, monday, sunday, {"u1": [exception(6 * 24 * HOUR - HOUR, 6 * 24 * HOUR)]})
    middle = window_file(CHICAGO, sunday, next_monday, {"u1": [exception(0, 25 * HOUR, lookup="2")]})
    tail = window_file(
        CHICAGO, next_monday, date(2024, 11, 11), {"u1": [exception(0, 2 * HOUR, routing="IDLE")]}
    )
    assert window_seconds(CHICAGO, sunday, next_monday) == 25 * HOUR
    stitched = stitch(cut_pieces(tail, head, middle))
    whole = stitched.exceptions.row(0, named=True)
    assert stitched.exceptions.height == 1
    assert (whole["start_time"], whole["end_time"]) == (
        datetime(2024, 11, 3, 4, tzinfo=UTC),  # 23:00 CDT on Saturday 11-02
        datetime(2024, 11, 4, 8, tzinfo=UTC),  # 02:00 CST on Monday
    )
    assert whole["duration_seconds"] == 28 * HOUR
    assert (whole["local_date"], whole["secondary_presence_id"], whole["routing_status"]) == (
        date(2024, 11, 2),
        "presence-break",
        "OFF_QUEUE",
    )
    assert_frame_equal(
        stitched.corrections, corrections(("mu-chi", "u1", sunday, 1), ("mu-chi", "u1", next_monday, 1))
    )
    assert stitched.unmatched_pieces == 0


def test_the_continued_day_is_the_local_day_of_a_dst_split_boundary() -> None:
    # Berlin: [10-21, 10-27) then the 25-hour 10-27; the boundary is 22:00Z on 10-26, a local midnight.
    before = window_file(
        BERLIN,
        date(2024, 10, 21),
        date(2024, 10, 27),
        {"u1": [exception(6 * 24 * HOUR - 600, 6 * 24 * HOUR)]},
    )
    dst_day = window_file(BERLIN, date(2024, 10, 27), date(2024, 10, 28), {"u1": [exception(0, 600)]})
    stitched = stitch(cut_pieces(before, dst_day))
    assert stitched.exceptions["start_time"].to_list() == [datetime(2024, 10, 26, 21, 50, tzinfo=UTC)]
    assert stitched.exceptions["local_date"].to_list() == [date(2024, 10, 26)]
    assert_frame_equal(stitched.corrections, corrections(("mu-ber", "u1", date(2024, 10, 27), 1)))


def test_pieces_without_partner_stay_as_they_are() -> None:
    first, second = two_windows()
    alone = pl.concat([cut_pieces(first), cut_pieces(window_file(CHICAGO, MAY_20, date(2024, 5, 27), {}))])
    stitched = stitch(alone)
    assert_frame_equal(stitched.exceptions, alone.select(list(ADHERENCE_EXCEPTIONS_SCHEMA)))
    assert stitched.corrections.height == 0
    assert stitched.unmatched_pieces == 1
    # a piece at a window start whose previous window is not given, one at an end whose next is not
    assert stitch(cut_pieces(second)).unmatched_pieces == 1
    nothing = stitch(pl.DataFrame(schema=CUT_PIECES_SCHEMA))
    assert nothing.exceptions.schema == ADHERENCE_EXCEPTIONS_SCHEMA and nothing.exceptions.height == 0
    assert nothing.corrections.schema == EXCEPTION_COUNT_CORRECTIONS_SCHEMA and nothing.unmatched_pieces == 0


def test_different_category_pairs_meeting_at_a_boundary_are_two_exceptions() -> None:
    first = window_file(CHICAGO, MAY_6, MAY_13, {"u1": [exception(WEEK - HOUR, WEEK, "Break")]})
    second = window_file(
        CHICAGO, MAY_13, MAY_20, {"u1": [exception(0, HOUR, "OffQueueWork", presence="Away")]}
    )
    pieces = cut_pieces(first, second)
    stitched = stitch(pieces)
    assert_frame_equal(stitched.exceptions, pieces.select(list(ADHERENCE_EXCEPTIONS_SCHEMA)))
    assert stitched.corrections.height == 0
    assert stitched.unmatched_pieces == 2


def test_offline_pieces_without_an_actual_category_chain() -> None:
    offline = {"presence": "Offline", "lookup": "2"}
    first = window_file(CHICAGO, MAY_6, MAY_13, {"u1": [exception(WEEK - HOUR, WEEK, None, **offline)]})
    second = window_file(CHICAGO, MAY_13, MAY_20, {"u1": [exception(0, HOUR, None, **offline)]})
    stitched = stitch(cut_pieces(first, second))
    assert stitched.exceptions["duration_seconds"].to_list() == [2 * HOUR]
    assert stitched.exceptions["actual_activity_category"].to_list() == [None]


def test_a_user_in_two_units_chains_within_each_unit_only() -> None:
    # u1 is in two Chicago units (same boundaries); u2 has a piece at the same instant in the first unit.
    first, second = two_windows()
    other_first = window_file(CHICAGO_2, MAY_6, MAY_13, {"u1": [exception(WEEK - 3 * HOUR, WEEK)]})
    other_second = window_file(CHICAGO_2, MAY_13, MAY_20, {"u1": [exception(0, 4 * HOUR)]})
    u2_second = window_file(CHICAGO, MAY_13, MAY_20, {"u2": [exception(0, 5 * HOUR)]})
    stitched = stitch(cut_pieces(first, other_second, other_first, second, u2_second))
    assert stitched.exceptions.select("management_unit_id", "user_id", "duration_seconds").rows() == [
        ("mu-chi", "u1", 3 * HOUR),
        ("mu-chi", "u2", 5 * HOUR),
        ("mu-chi-2", "u1", 7 * HOUR),
    ]
    assert_frame_equal(
        stitched.corrections, corrections(("mu-chi", "u1", MAY_13, 1), ("mu-chi-2", "u1", MAY_13, 1))
    )
    assert stitched.unmatched_pieces == 1  # u2's


def test_two_files_of_the_same_unit_and_window_are_refused() -> None:
    first, second = two_windows()
    with pytest.raises(pl.exceptions.ComputeError):
        stitch(cut_pieces(first, second, second))


def test_a_file_without_end_date_cannot_tell_its_cut_pieces() -> None:
    first, _ = two_windows()
    del first["endDate"]
    with pytest.raises(RawRecordError, match="endDate"):
        adherence_exception_parts(first, UNITS, MAY_6, date(2024, 5, 12))
