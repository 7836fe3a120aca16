"""User-details pages (``AnalyticsUserDetailsAsyncQueryResponse`` as served) -> status segments.

Steps, in order (each a pure function so it can be tested alone):
1. ``status_records_from_json``: flatten the served pages into one row per raw status record (UTC
   timestamps), one frame per record kind (``ROUTING_STATUS``, ``PRIMARY_PRESENCE``).
2. ``deduplicate``: Genesys stores a status that spans midnight twice (once per day) and a job over several
   days returns it twice; the key is (userId, startTime, status). Duplicates keep the latest endTime.
   A record without endTime (still open) is closed at ``open_until`` (the data-availability instant) or
   dropped when that is unknown.
3. ``remove_overlaps``: per agent, a record starting before an earlier record has ended is cut to start at
   that end (and dropped if nothing is left), so the table never double-counts time.
4. ``clip_to_local_days``: split at each agent's MU local midnights and keep the pieces inside the
   requested days; ``status_start_time`` keeps the raw record's start so a piece can be traced back.

Steps 2-4 are the only implementation of these rules: the row-count check applies them (``segments``) to
records another engine read from the same files (``wfm_pipeline.quality``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from wfm_pipeline import wire
from wfm_pipeline.transforms._days import UTC_TIMESTAMP, check_known_values, parse_timestamp
from wfm_pipeline.transforms._errors import RawRecordError


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: the kinds are the constants below
class StatusRecordKind:
    """One list of status records of an ``AnalyticsUserDetail``: its wire field, and the wire fields of its
    status (the dedupe key besides user and start) with the column each becomes."""

    list_field: str
    status_fields: Mapping[str, str]  # wire name -> column name; the first is required in every record

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.status_fields.values())

    @property
    def record_schema(self) -> pl.Schema:
        """One row per raw record: user, UTC start and end (null while open), status columns."""
        return pl.Schema(
            {
                "user_id": pl.String(),
                "start_time": UTC_TIMESTAMP,
                "end_time": UTC_TIMESTAMP,
                **{column: pl.String() for column in self.columns},
            }
        )


ROUTING_STATUS = StatusRecordKind("routingStatus", {"routingStatus": "routing_status"})
PRIMARY_PRESENCE = StatusRecordKind(
    "primaryPresence",
    {"systemPresence": "system_presence", "organizationPresenceId": "organization_presence_id"},
)
ROUTING_STATUS_COLUMNS = ROUTING_STATUS.columns
PRESENCE_COLUMNS = PRIMARY_PRESENCE.columns


def _segment_schema(status_columns: Sequence[str]) -> dict[str, pl.DataType]:
    return {
        "user_id": pl.String(),
        "management_unit_id": pl.String(),
        "local_date": pl.Date(),
        **{column: pl.String() for column in status_columns},
        "start_time": UTC_TIMESTAMP,
        "end_time": UTC_TIMESTAMP,
        "duration_seconds": pl.Float64(),
        "status_start_time": UTC_TIMESTAMP,
    }


ROUTING_STATUS_SEGMENTS_SCHEMA = _segment_schema(ROUTING_STATUS_COLUMNS)
PRESENCE_SEGMENTS_SCHEMA = _segment_schema(PRESENCE_COLUMNS)


# The wire shape of AnalyticsUserDetail (its records carry startTime, endTime and their status fields);
# keys not listed here are ignored.
_DETAIL_SCHEMA: dict[str, pl.DataType] = {
    "userId": pl.String(),
    **{
        kind.list_field: pl.List(
            pl.Struct(
                {"startTime": pl.String(), "endTime": pl.String()}
                | dict.fromkeys(kind.status_fields, pl.String())
            )
        )
        for kind in (ROUTING_STATUS, PRIMARY_PRESENCE)
    },
}
# Genesys serves ``2024-03-01T08:00:00.000Z``; anything else (offsets, no fraction) takes the slow path.
_WIRE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"


def _wire_time(column: str) -> pl.Expr:
    return pl.col(column).str.to_datetime(
        format=_WIRE_TIME_FORMAT, time_zone="UTC", time_unit="us", strict=False
    )


def _fallback_timestamps(frame: pl.DataFrame, column: str, where: str) -> pl.Series:
    """``parse_timestamp`` for the values the wire format did not match (offsets, no fraction)."""
    raw, parsed = frame[f"_raw_{column}"], frame[column]
    odd = raw.filter(parsed.is_null() & raw.is_not_null()).unique().to_list()
    fallback = {value: parse_timestamp(value, f"{where}.{column}") for value in odd}
    return parsed.fill_null(raw.replace_strict(fallback, default=None, return_dtype=UTC_TIMESTAMP))


# status field -> the values Genesys documents for it (SDK AnalyticsUserDetail records)
_VOCABULARIES: dict[str, tuple[str, ...]] = {
    "routingStatus": wire.ROUTING_STATUSES,
    "systemPresence": wire.ANALYTICS_SYSTEM_PRESENCES,
}


def _records(frame: pl.DataFrame, kind: StatusRecordKind) -> pl.DataFrame:
    field, renames = kind.list_field, kind.status_fields
    flat = (
        frame.select(pl.col("userId").alias("user_id"), pl.col(field).alias("record"))
        .explode("record")
        .drop_nulls("record")
        .unnest("record")
    )
    status = next(iter(renames))
    missing = flat.filter(pl.col(status).is_null())
    if missing.height:
        raise RawRecordError(f"userId {missing['user_id'][0]}: a {field} record has no {status}")
    if flat["startTime"].null_count():
        raise RawRecordError(f"{field}: a record has no startTime")
    for wire_name in renames:
        if wire_name in _VOCABULARIES:
            check_known_values(flat[wire_name], _VOCABULARIES[wire_name], field, wire_name)
    # One with_columns so polars parses both columns at once (the wire format: the fast, vectorized path).
    parsed = flat.with_columns(
        pl.col("startTime").alias("_raw_startTime"),
        pl.col("endTime").alias("_raw_endTime"),
        _wire_time("startTime"),
        _wire_time("endTime"),
    )
    unparsed = parsed.select(
        (
            pl.col("startTime").is_null()
            | (pl.col("endTime").is_null() & pl.col("_raw_endTime").is_not_null())
        ).any()
    ).item()
    if unparsed:
        parsed = parsed.with_columns(
            _fallback_timestamps(parsed, "startTime", field), _fallback_timestamps(parsed, "endTime", field)
        )
    inverted = parsed.filter(pl.col("endTime") < pl.col("startTime"))
    if inverted.height:
        first = inverted.row(0, named=True)
        raise RawRecordError(
            f"{field}: {inverted.height} record(s) end before they start, e.g. user {first['user_id']} "
            f"{first['_raw_startTime']}/{first['_raw_endTime']}"
        )
    return parsed.select(
        "user_id",
        pl.col("startTime").alias("start_time"),
        pl.col("endTime").alias("end_time"),
        *(pl.col(wire_name).alias(name) for wire_name, name in renames.items()),
    ).cast(kind.record_schema)


def status_records_from_json(documents: Iterable[bytes]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(routing status records, primary presence records), one row per raw record, from the served bytes
    of each page: polars parses the JSON, no Python objects per record (``RawRecordError`` for a page or
    record of another shape, ``UnknownValueError`` for an undocumented status)."""
    frames = []
    for index, document in enumerate(documents):
        try:
            page = pl.read_json(
                io.BytesIO(document), schema={"userDetails": pl.List(pl.Struct(_DETAIL_SCHEMA))}
            )
        except (ValueError, pl.exceptions.PolarsError) as exc:
            raise RawRecordError(
                f"page {index}: not an AnalyticsUserDetailsAsyncQueryResponse: {exc}"
            ) from exc
        details = page.explode("userDetails").drop_nulls("userDetails").unnest("userDetails")
        if details["userId"].null_count():
            raise RawRecordError(f"page {index}: a userDetails entry has no userId")
        frames.append(details)
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=_DETAIL_SCHEMA)
    return _records(frame, ROUTING_STATUS), _records(frame, PRIMARY_PRESENCE)


def record_counts(records: pl.DataFrame, members: pl.DataFrame) -> dict[str, int]:
    """What the segment tables will not show one for one, so the loader can report it: raw records, open
    ones (closed at the availability instant, or dropped when it is unknown), zero-length ones (no time to
    keep), and those of users in no management unit (no local day to put them on)."""
    return {
        "records": records.height,
        "open_records": records["end_time"].null_count(),
        "zero_length_records": records.filter(pl.col("end_time") == pl.col("start_time")).height,
        "records_of_users_in_no_unit": records.join(members, on="user_id", how="anti").height,
    }


def deduplicate(
    records: pl.DataFrame, status_columns: Sequence[str], open_until: datetime | None
) -> pl.DataFrame:
    """One row per (user_id, start_time, status...); open records closed at ``open_until`` or dropped."""
    if open_until is None:
        closed = records.filter(pl.col("end_time").is_not_null())
    else:
        closed = records.with_columns(pl.col("end_time").fill_null(pl.lit(open_until).cast(UTC_TIMESTAMP)))
    keys = ["user_id", "start_time", *status_columns]
    # sorted by end_time, the last of each key is the copy that ends latest
    return (
        closed.filter(pl.col("end_time") > pl.col("start_time"))
        .sort("user_id", "start_time", "end_time", *status_columns)
        .unique(keys, keep="last", maintain_order=True)
    )


def remove_overlaps(records: pl.DataFrame) -> pl.DataFrame:
    """Per agent, cut each record to start where all earlier records have ended (input sorted by start)."""
    leading = ["user_id", "start_time", "end_time"]
    # ties broken on every other column so the result does not depend on input order
    ordered = records.sort([*leading, *(c for c in records.columns if c not in leading)])
    earlier_end = pl.col("end_time").cum_max().shift(1).over("user_id")
    return ordered.with_columns(
        pl.col("start_time").alias("status_start_time"),
        pl.max_horizontal(pl.col("start_time"), earlier_end).alias("start_time"),
    ).filter(pl.col("end_time") > pl.col("start_time"))


def clip_to_local_days(
    records: pl.DataFrame,
    membership: pl.DataFrame,
    days: pl.DataFrame,
    status_columns: Sequence[str],
    unassigned_time_zone: str | None = None,
) -> pl.DataFrame:
    """Pieces of each record inside each requested local day of the agent's management unit.

    ``records`` needs ``status_start_time`` (from ``remove_overlaps``). Agents in no management unit get
    ``management_unit_id`` null and the local days of ``unassigned_time_zone`` (``days`` has them with a
    null unit: ``day_frame``); without it they are dropped (the loader reports how many).
    """
    schema = _segment_schema(status_columns)
    members = membership.select("user_id", "management_unit_id", "time_zone")
    if unassigned_time_zone is None:
        located = records.join(members, on="user_id", how="inner")
    else:
        located = records.join(members, on="user_id", how="left").with_columns(
            pl.col("time_zone").fill_null(unassigned_time_zone)
        )
    # Each record meets only the local days from its start to its end (usually one or two): list those
    # instead of pairing every record with every requested day, which grows with the run's length.
    last_instant = pl.col("end_time") - pl.duration(microseconds=1)
    spans = [
        part.with_columns(
            pl.col("start_time").dt.convert_time_zone(time_zone).dt.date().alias("_first_day"),
            last_instant.dt.convert_time_zone(time_zone).dt.date().alias("_last_day"),
        )
        for (time_zone,), part in located.partition_by("time_zone", as_dict=True).items()
    ]
    candidates = (
        pl.concat(spans)
        .with_columns(pl.date_ranges("_first_day", "_last_day").alias("local_date"))
        .explode("local_date")
        if spans
        else located.with_columns(pl.lit(None, pl.Date()).alias("local_date"))
    )
    pieces = (
        candidates.join(days, on=["management_unit_id", "local_date"], how="inner", nulls_equal=True)
        .filter((pl.col("start_time") < pl.col("day_end")) & (pl.col("end_time") > pl.col("day_start")))
        .with_columns(
            pl.max_horizontal("start_time", "day_start").alias("start_time"),
            pl.min_horizontal("end_time", "day_end").alias("end_time"),
        )
        .with_columns(
            ((pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1_000_000).alias(
                "duration_seconds"
            )
        )
    )
    return (
        pieces.select(list(schema))
        .cast(pl.Schema(schema))
        .sort("management_unit_id", "user_id", "start_time")
    )


def segments(
    records: pl.DataFrame,
    membership: pl.DataFrame,
    days: pl.DataFrame,
    status_columns: Sequence[str],
    open_until: datetime | None = None,
    unassigned_time_zone: str | None = None,
) -> pl.DataFrame:
    """Raw status records -> clean segments (dedupe, de-overlap, clip to local days; agents in no unit
    as ``clip_to_local_days`` keeps them)."""
    clean = remove_overlaps(deduplicate(records, status_columns, open_until))
    return clip_to_local_days(clean, membership, days, status_columns, unassigned_time_zone)
