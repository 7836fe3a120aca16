"""User-details pages (``AnalyticsUserDetailsAsyncQueryResponse``) -> ``routing_status_segments``,
``presence_segments`` and ``agent_occupancy`` rows of the slice's days, with their check inputs.

Bounded memory whatever the paging: the records of one agent may be spread over every page of a job (the
API iterates user-day documents), and the segment rules (dedupe, de-overlap, clip) and occupancy need all
of an agent's records together. So the parsed records of a group of days are staged in a scratch DuckDB
database (spilling to disk past its memory limit), then the pure transforms run on one bucket of agents at
a time (agents hashed into as many buckets as keep each under ``Scratch.rows_per_bucket`` records).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import polars as pl

from wfm_pipeline import warehouse
from wfm_pipeline.quality import AggregatesSample, UserDetailsCheckInputs, raw_segment_sources
from wfm_pipeline.raw_store import USER_DETAILS, DayManifest, RawStore, group_days_by_files, source_of
from wfm_pipeline.timestamps import days_between, parse_utc
from wfm_pipeline.transforms import (
    PRIMARY_PRESENCE,
    ROUTING_STATUS,
    OccupancyInterval,
    StatusRecordKind,
    agent_occupancy,
    day_frame,
    membership_days,
    membership_frame,
    record_counts,
    segments,
    status_records_from_json,
)

TABLES = (
    warehouse.ROUTING_STATUS_SEGMENTS,
    warehouse.PRESENCE_SEGMENTS,
    warehouse.AGENT_OCCUPANCY,
    warehouse.AGENT_MANAGEMENT_UNIT_DAYS,
)
_KINDS = (ROUTING_STATUS, PRIMARY_PRESENCE)  # the order status_records_from_json returns them in
_SEGMENT_TABLE = {
    ROUTING_STATUS: warehouse.ROUTING_STATUS_SEGMENTS,
    PRIMARY_PRESENCE: warehouse.PRESENCE_SEGMENTS,
}
# metadata key of each record kind's counts (``raw_records``)
_COUNTS_KEY = {ROUTING_STATUS: "routing_status", PRIMARY_PRESENCE: "presence"}


@dataclass(frozen=True)
class _Group:
    """Days whose manifests list the same files, loaded together."""

    manifest: DayManifest
    days: pl.DataFrame  # day_frame rows of the group's (unit, local day)s, agents in no unit included
    membership: pl.DataFrame
    open_until: datetime | None

    @classmethod
    def of(cls, days: Sequence[date], manifest: DayManifest) -> _Group:
        units, unassigned = manifest.management_units, manifest.unassigned_time_zone
        return cls(
            manifest,
            day_frame(units, min(days), max(days), unassigned).filter(pl.col("local_date").is_in(days)),
            membership_frame(units),
            parse_utc(manifest.data_availability_date) if manifest.data_availability_date else None,
        )

    def windows(self) -> Iterator[tuple[datetime, datetime]]:
        for entry in self.manifest.files:
            if entry.window_start and entry.window_end:
                yield parse_utc(entry.window_start), parse_utc(entry.window_end)


def _page_records(data: bytes) -> tuple[pl.DataFrame, pl.DataFrame]:
    return status_records_from_json([data])


def _staged_table(kind: StatusRecordKind) -> str:
    return f"records_{kind.list_field}"


def _aggregates(store: RawStore, manifest: DayManifest) -> Iterator[AggregatesSample]:
    for sample in manifest.aggregates:
        response = store.load_aggregates(sample.path)
        if response is not None:  # a sample that is gone skips the comparison, it does not fail it
            yield AggregatesSample(
                sample.user_ids,
                response,
                sample.management_unit_id,
                OccupancyInterval(sample.granularity),
            )


@dataclass
class UserDetailsLoad:
    """The user-details tables of [first, last], produced by ``chunks()`` one bucket of agents at a time
    per group of days; ``checks`` and ``raw_records`` are known once the chunks were consumed."""

    store: RawStore
    manifests: Mapping[date, DayManifest]
    first: date
    last: date
    source: str
    raw_files: tuple[str, ...]  # the files loaded, relative to the data directory, sorted
    scratch: warehouse.Scratch
    interval: OccupancyInterval = OccupancyInterval.PT30M
    tables: tuple[warehouse.TableSpec, ...] = TABLES
    # per record kind: raw, open, zero-length records and those of users in no unit (``record_counts``)
    _record_counts: dict[StatusRecordKind, Counter[str]] = field(
        default_factory=lambda: {
            kind: Counter(record_counts(pl.DataFrame(schema=kind.record_schema), membership_frame(())))
            for kind in _KINDS
        },
        init=False,
    )
    _checks: UserDetailsCheckInputs | None = field(default=None, init=False)

    def chunks(self) -> Iterator[warehouse.Chunk]:
        groups = [_Group.of(days, manifest) for days, manifest in group_days_by_files(self.manifests)]
        raw_sources = dict.fromkeys(_KINDS, 0)
        for group in groups:
            yield from self._group_chunks(group)
            paths = [self.store.absolute(entry.path) for entry in group.manifest.files]
            found = raw_segment_sources(
                paths,
                group.membership,
                group.days,
                group.open_until,
                self.scratch,
                group.manifest.unassigned_time_zone,
            )
            for kind, count in found.items():
                raw_sources[kind] += count
        until = [group.open_until for group in groups if group.open_until is not None]
        self._checks = UserDetailsCheckInputs(
            units=self.manifests[self.last].management_units,
            days=pl.concat([group.days for group in groups]),
            windows=tuple(window for group in groups for window in group.windows()),
            available_until=min(until) if until else None,
            raw_routing_sources=raw_sources[ROUTING_STATUS],
            raw_presence_sources=raw_sources[PRIMARY_PRESENCE],
            aggregates=tuple(
                sample for group in groups for sample in _aggregates(self.store, group.manifest)
            ),
        )

    def _group_chunks(self, group: _Group) -> Iterator[warehouse.Chunk]:
        with self.scratch.database() as staging:
            buckets = self.scratch.buckets(self._stage(staging, group))
            for kind in _KINDS:
                warehouse.bucket_by_user(staging, _staged_table(kind), buckets)
            for bucket in range(buckets):
                clean = {
                    kind: segments(
                        warehouse.user_bucket(staging, _staged_table(kind), kind.record_schema, bucket),
                        group.membership,
                        group.days,
                        kind.columns,
                        group.open_until,
                        group.manifest.unassigned_time_zone,
                    )
                    for kind in _KINDS
                }
                for kind, frame in clean.items():
                    yield _SEGMENT_TABLE[kind], frame
                occupancy = agent_occupancy(
                    clean[ROUTING_STATUS], clean[PRIMARY_PRESENCE], group.days, self.interval
                )
                yield warehouse.AGENT_OCCUPANCY, occupancy
        manifest = group.manifest
        observed_at = parse_utc(manifest.written_at) if manifest.written_at else None  # older manifests
        for day in sorted(set(group.days["local_date"].to_list())):
            yield (
                warehouse.AGENT_MANAGEMENT_UNIT_DAYS,
                membership_days(manifest.management_units, day, observed_at),
            )

    def _stage(self, staging: duckdb.DuckDBPyConnection, group: _Group) -> int:
        """Parse every page of the group into the staging tables, one page in memory at a time; counts
        the records (``record_counts``). Returns the records staged."""
        for kind in _KINDS:
            with warehouse.registered(staging, "_page", pl.DataFrame(schema=kind.record_schema)):
                staging.execute(f"CREATE TABLE {_staged_table(kind)} AS SELECT * FROM _page")
        staged = 0
        for entry in group.manifest.files:
            for kind, records in zip(
                _KINDS, self.store.parse(entry, USER_DETAILS, _page_records), strict=True
            ):
                self._record_counts[kind].update(record_counts(records, group.membership))
                with warehouse.registered(staging, "_page", records):
                    staging.execute(f"INSERT INTO {_staged_table(kind)} SELECT * FROM _page")
                staged += records.height
        return staged

    @property
    def checks(self) -> UserDetailsCheckInputs:
        if self._checks is None:
            raise RuntimeError(
                "the check inputs are counted while the chunks are produced: consume them first"
            )
        return self._checks

    @property
    def raw_records(self) -> dict[str, dict[str, int]]:
        """Per record kind (metadata key): raw, open, zero-length records and those of users in no unit."""
        return {key: dict(self._record_counts[kind]) for kind, key in _COUNTS_KEY.items()}


def load_user_details(
    store: RawStore,
    first: date,
    last: date,
    scratch: warehouse.Scratch | None = None,
    interval: OccupancyInterval = OccupancyInterval.PT30M,
) -> UserDetailsLoad:
    """The local days [first, last] of every unit (and of agents in no unit), from the pages their
    manifests list (read lazily, by ``chunks()``; the manifests now, so a missing day fails before
    anything is written), with occupancy per ``interval``. ``scratch`` defaults to ``<data dir>/scratch``
    with the default limits."""
    manifests = store.read_manifests(USER_DETAILS, days_between(first, last))
    files = {entry.path for manifest in manifests.values() for entry in manifest.files}
    return UserDetailsLoad(
        store,
        manifests,
        first,
        last,
        source_of(manifests, USER_DETAILS),
        tuple(sorted(files)),
        scratch or warehouse.Scratch(store.data_dir / "scratch"),
        interval,
    )
