"""User-details pages -> routing_status_segments / presence_segments, on hand-made pages.

The management unit is in Europe/Berlin (UTC+1 in January), so local day 2024-01-15 is
2024-01-14T23:00Z .. 2024-01-15T23:00Z.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from wfm_pipeline.transforms import (
    PRESENCE_COLUMNS,
    PRESENCE_SEGMENTS_SCHEMA,
    ROUTING_STATUS_COLUMNS,
    ROUTING_STATUS_SEGMENTS_SCHEMA,
    ManagementUnitInfo,
    RawRecordError,
    day_frame,
    membership_frame,
    segments,
    status_records_from_json,
)

BERLIN = ManagementUnitInfo(id="mu-berlin", time_zone="Europe/Berlin", user_ids=("u1",))


def parse_pages(pages: list[dict]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The pages as Genesys serves them (JSON bytes), parsed."""
    return status_records_from_json([json.dumps(page).encode() for page in pages])


def utc(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def routing(start: str, end: str | None, status: str) -> dict:
    record = {"startTime": start, "routingStatus": status}
    if end is not None:
        record["endTime"] = end
    return record


SPANS_MIDNIGHT = routing("2024-01-15T22:30:00.000Z", "2024-01-15T23:30:00.000Z", "INTERACTING")


def pages() -> list[dict]:
    return [
        {
            "userDetails": [
                {
                    "userId": "u1",
                    "routingStatus": [
                        routing("2024-01-15T08:00:00.000Z", "2024-01-15T09:00:00.000Z", "IDLE"),
                        # overlaps the IDLE record by 10 minutes: cut to start at 09:00
                        routing("2024-01-15T08:50:00+00:00", "2024-01-15T09:30:00Z", "INTERACTING"),
                        SPANS_MIDNIGHT,
                    ],
                    "primaryPresence": [
                        {
                            "startTime": "2024-01-15T07:55:00.000Z",
                            "endTime": "2024-01-15T09:30:00.000Z",
                            "systemPresence": "ON_QUEUE",
                            "organizationPresenceId": "p-on-queue",
                        }
                    ],
                },
                {"userId": "not-in-any-unit", "routingStatus": [SPANS_MIDNIGHT]},
            ],
            "cursor": "next",
        },
        # the next page repeats the status spanning midnight, as Genesys stores it once per day
        {"userDetails": [{"userId": "u1", "routingStatus": [SPANS_MIDNIGHT]}]},
    ]


def routing_segments(first: date, last: date, open_until: datetime | None = None, extra: list | None = None):  # type: ignore[no-untyped-def]
    all_pages = pages() + ([{"userDetails": [{"userId": "u1", "routingStatus": extra}]}] if extra else [])
    records, _ = parse_pages(all_pages)
    return segments(
        records,
        membership_frame([BERLIN]),
        day_frame([BERLIN], first, last),
        ROUTING_STATUS_COLUMNS,
        open_until,
    )


def segment(local_day: int, status: str, start: datetime, end: datetime, status_start: datetime) -> dict:
    return {
        "user_id": "u1",
        "management_unit_id": "mu-berlin",
        "local_date": date(2024, 1, local_day),
        "routing_status": status,
        "start_time": start,
        "end_time": end,
        "duration_seconds": (end - start).total_seconds(),
        "status_start_time": status_start,
    }


def test_one_day_dedupes_cuts_overlaps_and_clips_at_local_midnight() -> None:
    expected = pl.DataFrame(
        [
            segment(15, "IDLE", utc(15, 8), utc(15, 9), utc(15, 8)),
            segment(15, "INTERACTING", utc(15, 9), utc(15, 9, 30), utc(15, 8, 50)),
            segment(15, "INTERACTING", utc(15, 22, 30), utc(15, 23), utc(15, 22, 30)),
        ],
        schema=ROUTING_STATUS_SEGMENTS_SCHEMA,
    )
    assert_frame_equal(routing_segments(date(2024, 1, 15), date(2024, 1, 15)), expected)


def test_two_days_split_the_midnight_status_into_one_piece_per_day() -> None:
    result = routing_segments(date(2024, 1, 15), date(2024, 1, 16))
    spanning = result.filter(pl.col("status_start_time") == utc(15, 22, 30))
    assert spanning.select("local_date", "start_time", "end_time", "duration_seconds").rows() == [
        (date(2024, 1, 15), utc(15, 22, 30), utc(15, 23), 1800.0),
        (date(2024, 1, 16), utc(15, 23), utc(15, 23, 30), 1800.0),
    ]


def test_range_run_equals_single_day_runs() -> None:
    both = routing_segments(date(2024, 1, 15), date(2024, 1, 16))
    singles = pl.concat(
        [
            routing_segments(date(2024, 1, 15), date(2024, 1, 15)),
            routing_segments(date(2024, 1, 16), date(2024, 1, 16)),
        ]
    )
    assert_frame_equal(both.sort(both.columns), singles.sort(singles.columns))


def test_open_status_is_closed_at_open_until_or_dropped() -> None:
    open_record = routing("2024-01-16T10:00:00Z", None, "IDLE")
    dropped = routing_segments(date(2024, 1, 16), date(2024, 1, 16), extra=[open_record])
    assert dropped.filter(pl.col("routing_status") == "IDLE").is_empty()
    closed = routing_segments(
        date(2024, 1, 16), date(2024, 1, 16), open_until=utc(16, 10, 45), extra=[open_record]
    )
    idle = closed.filter(pl.col("routing_status") == "IDLE")
    assert idle.select("start_time", "end_time", "duration_seconds").rows() == [
        (utc(16, 10), utc(16, 10, 45), 2700.0)
    ]


def test_a_record_inside_an_earlier_one_disappears_and_same_start_duplicates_keep_latest_end() -> None:
    extra = [
        routing("2024-01-15T08:10:00Z", "2024-01-15T08:20:00Z", "COMMUNICATING"),  # inside IDLE 08:00-09:00
        routing("2024-01-15T08:00:00Z", "2024-01-15T08:30:00Z", "IDLE"),  # same key as IDLE, earlier end
    ]
    result = routing_segments(date(2024, 1, 15), date(2024, 1, 15), extra=extra)
    assert result.select("routing_status", "start_time", "end_time").rows() == [
        ("IDLE", utc(15, 8), utc(15, 9)),
        ("INTERACTING", utc(15, 9), utc(15, 9, 30)),
        ("INTERACTING", utc(15, 22, 30), utc(15, 23)),
    ]


def test_dst_day_is_25_hours_long_in_berlin_autumn() -> None:
    # 2024-10-27 Europe/Berlin: 22:00Z (Oct 26) .. 23:00Z (Oct 27) = 25 h
    unit = ManagementUnitInfo(id="mu-berlin", time_zone="Europe/Berlin", user_ids=("u1",))
    records, _ = parse_pages(
        [
            {
                "userDetails": [
                    {
                        "userId": "u1",
                        "routingStatus": [
                            routing("2024-10-26T12:00:00Z", "2024-10-28T00:00:00Z", "OFF_QUEUE")
                        ],
                    }
                ]
            }
        ]
    )
    result = segments(
        records,
        membership_frame([unit]),
        day_frame([unit], date(2024, 10, 27), date(2024, 10, 27)),
        ROUTING_STATUS_COLUMNS,
    )
    assert result.select("start_time", "end_time", "duration_seconds").rows() == [
        (utc(26, 22, month=10), utc(27, 23, month=10), 25 * 3600.0)
    ]


def test_presence_segments_keep_system_and_organization_presence() -> None:
    _, presence = parse_pages(pages())
    result = segments(
        presence,
        membership_frame([BERLIN]),
        day_frame([BERLIN], date(2024, 1, 15), date(2024, 1, 15)),
        PRESENCE_COLUMNS,
    )
    expected = pl.DataFrame(
        [
            {
                "user_id": "u1",
                "management_unit_id": "mu-berlin",
                "local_date": date(2024, 1, 15),
                "system_presence": "ON_QUEUE",
                "organization_presence_id": "p-on-queue",
                "start_time": utc(15, 7, 55),
                "end_time": utc(15, 9, 30),
                "duration_seconds": 5700.0,
                "status_start_time": utc(15, 7, 55),
            }
        ],
        schema=PRESENCE_SEGMENTS_SCHEMA,
    )
    assert_frame_equal(result, expected)


def test_empty_pages_give_empty_typed_frames() -> None:
    routing_records, presence_records = parse_pages([{"userDetails": []}, {}])
    result = segments(
        routing_records,
        membership_frame([BERLIN]),
        day_frame([BERLIN], date(2024, 1, 15), date(2024, 1, 15)),
        ROUTING_STATUS_COLUMNS,
    )
    assert result.is_empty() and result.schema == pl.Schema(ROUTING_STATUS_SEGMENTS_SCHEMA)
    assert presence_records.is_empty()


@pytest.mark.parametrize(
    "page",
    [
        {"userDetails": [{"routingStatus": []}]},
        {"userDetails": [{"userId": "u1", "routingStatus": [{"startTime": "2024-01-15T08:00:00Z"}]}]},
        {
            "userDetails": [
                {"userId": "u1", "routingStatus": [{"routingStatus": "IDLE", "startTime": "noon"}]}
            ]
        },
        {"userDetails": "nope"},
    ],
)
def test_malformed_pages_raise(page: dict) -> None:
    with pytest.raises(RawRecordError):
        parse_pages([page])


def test_timestamps_with_offsets_take_the_slow_path_and_agree() -> None:
    page = {
        "userDetails": [
            {
                "userId": "u1",
                "routingStatus": [
                    {
                        "startTime": "2024-01-15T09:00:00+01:00",
                        "endTime": "2024-01-15T08:30:00Z",
                        "routingStatus": "IDLE",
                    }
                ],
            }
        ]
    }
    routing, _ = status_records_from_json([json.dumps(page).encode()])
    assert routing["start_time"].to_list() == [utc(15, 8, 0)]
    assert routing["end_time"].to_list() == [utc(15, 8, 30)]


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        b'{"userDetails": [{"routingStatus": []}]}',
        b'{"userDetails": [{"userId": "u1", "routingStatus": [{"startTime": "2024-01-15T08:00:00Z"}]}]}',
        b'{"userDetails": [{"userId": "u1", '
        b'"routingStatus": [{"routingStatus": "IDLE", "startTime": "noon"}]}]}',
    ],
)
def test_malformed_served_bytes_raise(document: bytes) -> None:
    with pytest.raises(RawRecordError):
        status_records_from_json([document])


def test_an_agent_in_no_unit_is_kept_with_a_null_unit_in_the_default_zone() -> None:
    # SPANS_MIDNIGHT (22:30-23:30Z) of the user in no unit, cut at New York's days instead of dropped;
    # u1 keeps Berlin's days. All of New York's 2024-01-15 (05:00Z..05:00Z) holds it.
    records, _ = parse_pages(pages())
    zone = "America/New_York"
    days = day_frame([BERLIN], date(2024, 1, 15), date(2024, 1, 15), unassigned_time_zone=zone)
    kept = segments(
        records, membership_frame([BERLIN]), days, ROUTING_STATUS_COLUMNS, unassigned_time_zone=zone
    )
    unassigned = kept.filter(pl.col("user_id") == "not-in-any-unit")
    assert unassigned.select("management_unit_id", "local_date", "start_time", "end_time").rows() == [
        (None, date(2024, 1, 15), utc(15, 22, 30), utc(15, 23, 30))
    ]
    assert kept.filter(pl.col("user_id") == "u1").equals(
        routing_segments(date(2024, 1, 15), date(2024, 1, 15))
    )
    # without a default zone the agent in no unit has no local day and is dropped, as before
    assert routing_segments(date(2024, 1, 15), date(2024, 1, 15))["user_id"].unique().to_list() == ["u1"]
