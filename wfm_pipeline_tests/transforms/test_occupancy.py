"""Segments -> agent_occupancy (30-minute and day grain), with occupancy derived by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
from polars.testing import assert_frame_equal

from wfm_pipeline.transforms import (
    AGENT_OCCUPANCY_SCHEMA,
    PRESENCE_SEGMENTS_SCHEMA,
    ROUTING_STATUS_SEGMENTS_SCHEMA,
    ManagementUnitInfo,
    OccupancyInterval,
    agent_occupancy,
    day_frame,
)

UTC_UNIT = ManagementUnitInfo(id="mu-utc", time_zone="UTC", user_ids=("u1",))
NY = ManagementUnitInfo(id="mu-ny", time_zone="America/New_York", user_ids=("u1",))
DAY = date(2024, 1, 15)


def at(hour: int, minute: int = 0, day: int = 15, month: int = 1) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def routing_frame(
    rows: list[tuple[str, datetime, datetime]], mu: str | None = "mu-utc", local: date = DAY
) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "user_id": "u1",
                "management_unit_id": mu,
                "local_date": local,
                "routing_status": status,
                "start_time": start,
                "end_time": end,
                "duration_seconds": (end - start).total_seconds(),
                "status_start_time": start,
            }
            for status, start, end in rows
        ],
        schema=ROUTING_STATUS_SEGMENTS_SCHEMA,
    )


def presence_frame(
    rows: list[tuple[str, datetime, datetime]], mu: str | None = "mu-utc", local: date = DAY
) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "user_id": "u1",
                "management_unit_id": mu,
                "local_date": local,
                "system_presence": status,
                "organization_presence_id": None,
                "start_time": start,
                "end_time": end,
                "duration_seconds": (end - start).total_seconds(),
                "status_start_time": start,
            }
            for status, start, end in rows
        ],
        schema=PRESENCE_SEGMENTS_SCHEMA,
    )


def row(grain: str, start: datetime, end: datetime, occupancy: float | None, **seconds: float) -> dict:
    columns = ["idle", "interacting", "communicating", "not_responding", "off_queue", "on_queue"]
    return {
        "user_id": "u1",
        "management_unit_id": "mu-utc",
        "local_date": DAY,
        "grain": grain,
        "interval_start": start,
        "interval_end": end,
        **{f"{name}_seconds": float(seconds.get(name, 0.0)) for name in columns},
        "occupancy": occupancy,
    }


def test_intervals_and_day_from_hand_counted_seconds() -> None:
    routing = routing_frame(
        [
            ("IDLE", at(8), at(8, 20)),
            ("INTERACTING", at(8, 20), at(8, 50)),
            ("COMMUNICATING", at(8, 50), at(9)),
            ("OFF_QUEUE", at(9), at(10)),
            ("NOT_RESPONDING", at(10), at(10, 5)),
        ]
    )
    presence = presence_frame(
        [("ON_QUEUE", at(8), at(9)), ("AVAILABLE", at(9), at(10)), ("ON_QUEUE", at(10), at(10, 5))]
    )
    result = agent_occupancy(routing, presence, day_frame([UTC_UNIT], DAY, DAY))
    expected = pl.DataFrame(
        [
            # 09:00-10:00 is off queue only: no interval rows, but the day keeps its off-queue seconds
            row("P1D", at(0), at(0, day=16), 1800 / 3600, idle=1200, interacting=1800, communicating=600,
                not_responding=300, off_queue=3600, on_queue=3900),
            row("PT30M", at(8), at(8, 30), 600 / 1800, idle=1200, interacting=600, on_queue=1800),
            row("PT30M", at(8, 30), at(9), 1200 / 1800, interacting=1200, communicating=600, on_queue=1800),
            row("PT30M", at(10), at(10, 30), None, not_responding=300, on_queue=300),
        ],
        schema=AGENT_OCCUPANCY_SCHEMA,
    )  # fmt: skip
    assert_frame_equal(result, expected)


def test_occupancy_is_null_when_only_not_responding_and_one_when_only_interacting() -> None:
    routing = routing_frame([("INTERACTING", at(8), at(8, 10))])
    result = agent_occupancy(routing, presence_frame([]), day_frame([UTC_UNIT], DAY, DAY))
    assert result.select("grain", "interacting_seconds", "on_queue_seconds", "occupancy").rows() == [
        ("P1D", 600.0, 0.0, 1.0),
        ("PT30M", 600.0, 0.0, 1.0),
    ]


def test_intervals_count_from_local_midnight_on_a_23_hour_day() -> None:
    # 2024-03-10 in New York starts 05:00Z (EST) and ends 04:00Z next day (EDT): 23 h, 46 half hours
    day = date(2024, 3, 10)
    routing = routing_frame(
        [("IDLE", at(3, 45, day=11, month=3), at(4, 0, day=11, month=3))], mu="mu-ny", local=day
    )
    result = agent_occupancy(routing, presence_frame([], mu="mu-ny"), day_frame([NY], day, day))
    assert result.select("grain", "interval_start", "interval_end", "idle_seconds").rows() == [
        ("P1D", at(5, day=10, month=3), at(4, day=11, month=3), 900.0),
        ("PT30M", at(3, 30, day=11, month=3), at(4, day=11, month=3), 900.0),
    ]


def test_no_segments_no_rows() -> None:
    result = agent_occupancy(routing_frame([]), presence_frame([]), day_frame([UTC_UNIT], DAY, DAY))
    assert result.is_empty() and result.schema == pl.Schema(AGENT_OCCUPANCY_SCHEMA)


def test_fifteen_and_sixty_minute_intervals_from_hand_counted_seconds() -> None:
    routing = routing_frame([("IDLE", at(8, 10), at(8, 20)), ("INTERACTING", at(8, 20), at(9, 5))])
    days = day_frame([UTC_UNIT], DAY, DAY)
    quarter = agent_occupancy(routing, presence_frame([]), days, OccupancyInterval.PT15M)
    assert quarter.filter(pl.col("grain") == "PT15M").select(
        "interval_start", "idle_seconds", "interacting_seconds"
    ).rows() == [
        (at(8), 300.0, 0.0),
        (at(8, 15), 300.0, 600.0),
        (at(8, 30), 0.0, 900.0),
        (at(8, 45), 0.0, 900.0),
        (at(9), 0.0, 300.0),
    ]
    hour = agent_occupancy(routing, presence_frame([]), days, OccupancyInterval.PT60M)
    assert hour.select(
        "grain", "interval_start", "interval_end", "idle_seconds", "interacting_seconds"
    ).rows() == [
        ("P1D", at(0), at(0, day=16), 600.0, 2700.0),
        ("PT60M", at(8), at(9), 600.0, 2400.0),
        ("PT60M", at(9), at(10), 0.0, 300.0),
    ]
    # whatever the interval, the day row is the same
    assert quarter.filter(pl.col("grain") == "P1D").equals(hour.filter(pl.col("grain") == "P1D"))


def test_agents_in_no_unit_get_a_null_unit_and_the_default_zone_days() -> None:
    # u1 is in no unit; the org's default zone is New York: its 2024-01-15 is 05:00Z .. 05:00Z next day
    routing = routing_frame([("IDLE", at(5), at(6))], mu=None, local=DAY)
    days = day_frame([], DAY, DAY, unassigned_time_zone="America/New_York")
    rows = agent_occupancy(routing, presence_frame([], mu=None), days)
    assert rows.select("management_unit_id", "grain", "interval_start", "idle_seconds").rows() == [
        (None, "P1D", at(5), 3600.0),
        (None, "PT30M", at(5), 1800.0),  # half hours count from New York's midnight
        (None, "PT30M", at(5, 30), 1800.0),
    ]
