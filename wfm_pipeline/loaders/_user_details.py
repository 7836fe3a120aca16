"""User-details pages (``AnalyticsUserDetailsAsyncQueryResponse``) -> ``routing_status_segments``,
``presence_segments`` and ``agent_occupancy`` rows of the slice's days, with their check inputs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from wfm_pipeline import warehouse
from wfm_pipeline.quality import AggregatesSample, UserDetailsCheckInputs, raw_segment_sources
from wfm_pipeline.raw_store import USER_DETAILS, DayManifest, RawStore, group_days_by_files, source_of
from wfm_pipeline.timestamps import days_between, parse_utc
from wfm_pipeline.transforms import (
    PRIMARY_PRESENCE,
    ROUTING_STATUS,
    StatusRecordKind,
    agent_occupancy,
    day_frame,
    membership_frame,
    record_counts,
    segments,
    status_records_from_json,
)

# metadata key of each record kind's counts (``raw_records``)
_COUNTS_KEY = {ROUTING_STATUS: "routing_status", PRIMARY_PRESENCE: "presence"}


@dataclass(frozen=True)
class UserDetailsLoad:
    routing_status: pl.DataFrame
    presence: pl.DataFrame
    occupancy: pl.DataFrame
    checks: UserDetailsCheckInputs
    raw_files: tuple[str, ...]  # the files loaded, relative to the data directory, sorted
    # per record kind: raw, open, zero-length records and those of users in no unit (``record_counts``)
    raw_records: dict[str, dict[str, int]]
    source: str  # the API the files came from ("sandbox" or the org's API host)

    @property
    def frames(self) -> tuple[tuple[warehouse.TableSpec, pl.DataFrame], ...]:
        return (
            (warehouse.ROUTING_STATUS_SEGMENTS, self.routing_status),
            (warehouse.PRESENCE_SEGMENTS, self.presence),
            (warehouse.AGENT_OCCUPANCY, self.occupancy),
        )


@dataclass(frozen=True)
class _GroupLoad:
    """Days whose manifests list the same files, loaded together."""

    segments: dict[StatusRecordKind, pl.DataFrame]
    occupancy: pl.DataFrame
    days: pl.DataFrame
    record_counts: dict[StatusRecordKind, dict[str, int]]
    raw_sources: dict[StatusRecordKind, int]
    windows: tuple[tuple[datetime, datetime], ...]
    open_until: datetime | None
    aggregates: tuple[AggregatesSample, ...]
    files: tuple[str, ...]


def _page_records(data: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    return status_records_from_json([data])


def _aggregates(store: RawStore, manifest: DayManifest) -> Iterator[AggregatesSample]:
    for sample in manifest.aggregates:
        response = store.load_aggregates(sample.path)
        if response is not None:  # a sample that is gone skips the comparison, it does not fail it
            yield AggregatesSample(sample.user_ids, response, sample.management_unit_id)


def _load_group(store: RawStore, days: Sequence[date], manifest: DayManifest) -> _GroupLoad:
    units = manifest.management_units
    days_frame = day_frame(units, min(days), max(days)).filter(pl.col("local_date").is_in(days))
    membership = membership_frame(units)
    open_until = parse_utc(manifest.data_availability_date) if manifest.data_availability_date else None
    pages = [store.parse(entry, USER_DETAILS, _page_records) for entry in manifest.files]
    paths = [store.absolute(entry.path) for entry in manifest.files]
    records = {  # each page parses to (routing status records, primary presence records)
        kind: pl.concat([pl.DataFrame(schema=kind.record_schema), *(page[index] for page in pages)])
        for index, kind in enumerate((ROUTING_STATUS, PRIMARY_PRESENCE))
    }
    clean = {
        kind: segments(frame, membership, days_frame, kind.columns, open_until)
        for kind, frame in records.items()
    }
    return _GroupLoad(
        segments=clean,
        occupancy=agent_occupancy(clean[ROUTING_STATUS], clean[PRIMARY_PRESENCE], days_frame),
        days=days_frame,
        record_counts={kind: record_counts(frame, membership) for kind, frame in records.items()},
        raw_sources=raw_segment_sources(paths, membership, days_frame, open_until),
        windows=tuple(
            (parse_utc(entry.window_start), parse_utc(entry.window_end))
            for entry in manifest.files
            if entry.window_start and entry.window_end
        ),
        open_until=open_until,
        aggregates=tuple(_aggregates(store, manifest)),
        files=tuple(entry.path for entry in manifest.files),
    )


def _summed(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for count in counts:
        total.update(count)
    return dict(total)


def load_user_details(store: RawStore, first: date, last: date) -> UserDetailsLoad:
    """The local days [first, last] of every unit, from the pages their manifests list."""
    manifests = store.read_manifests(USER_DETAILS, days_between(first, last))
    source = source_of(manifests, USER_DETAILS)
    groups = [_load_group(store, days, manifest) for days, manifest in group_days_by_files(manifests)]
    days = pl.concat([group.days for group in groups])
    until = [group.open_until for group in groups if group.open_until is not None]
    return UserDetailsLoad(
        routing_status=pl.concat([group.segments[ROUTING_STATUS] for group in groups]),
        presence=pl.concat([group.segments[PRIMARY_PRESENCE] for group in groups]),
        occupancy=pl.concat([group.occupancy for group in groups]),
        checks=UserDetailsCheckInputs(
            units=manifests[last].management_units,
            days=days,
            windows=tuple(window for group in groups for window in group.windows),
            available_until=min(until) if until else None,
            raw_routing_sources=sum(group.raw_sources[ROUTING_STATUS] for group in groups),
            raw_presence_sources=sum(group.raw_sources[PRIMARY_PRESENCE] for group in groups),
            aggregates=tuple(sample for group in groups for sample in group.aggregates),
        ),
        raw_files=tuple(sorted({path for group in groups for path in group.files})),
        raw_records={
            key: _summed(group.record_counts[kind] for group in groups) for kind, key in _COUNTS_KEY.items()
        },
        source=source,
    )
