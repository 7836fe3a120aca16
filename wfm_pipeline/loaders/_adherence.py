"""Adherence raw files (``WfmHistoricalAdherenceBulkResult``) -> ``adherence_daily`` and
``adherence_exceptions`` rows of the slice's days, streamed one group of days at a time, with the raw-side
counts their checks compare.

Days are loaded in groups whose manifests list the same files and the same adjacent files (the client's
grid: a window's first day, its middle days, its last day). Each group's rows are a function of the files
its manifest lists and nothing else -- exactly what a run of those days alone would read -- so a day's rows
do not depend on how days were grouped into runs: exceptions cut at a window boundary are stitched from
the pieces of the group's own files and its adjacent files (``transforms.stitch``), and the count that the
cut inflated is corrected (``transforms.correct_day_metrics``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial

import polars as pl

from wfm_pipeline import warehouse
from wfm_pipeline.quality import AdherenceCheckInputs, count_day_metrics, count_exceptions
from wfm_pipeline.raw_store import (
    ADHERENCE,
    DayManifest,
    RawFileEntry,
    RawStore,
    group_days_by_files,
    source_of,
)
from wfm_pipeline.timestamps import days_between
from wfm_pipeline.transforms import (
    ADHERENCE_DAILY_SCHEMA,
    CUT_PIECES_SCHEMA,
    DAY_METRIC_COLUMNS,
    FileExceptions,
    ManagementUnitInfo,
    adherence_daily_rows,
    adherence_document,
    adherence_exception_parts,
    correct_day_metrics,
    stitch,
)

TABLES = (warehouse.ADHERENCE_DAILY, warehouse.ADHERENCE_EXCEPTIONS)


@dataclass(frozen=True)
class _ParsedFile:
    """One raw file, every day of its window: whatever any group of its days takes from it."""

    daily: pl.DataFrame  # adherence_daily rows
    exceptions: FileExceptions  # interior exceptions and the pieces cut at the window's start or end
    raw_day_metrics: Counter[date]  # plain-Python recounts per local day (the checks' raw side)
    raw_exceptions: Counter[date]


def _parse_file(data: bytes, *, units: Mapping[str, ManagementUnitInfo]) -> _ParsedFile:
    document = adherence_document(data)
    return _ParsedFile(
        daily=adherence_daily_rows(document, units, date.min, date.max),
        exceptions=adherence_exception_parts(document, units, date.min, date.max),
        raw_day_metrics=count_day_metrics(document, units),
        raw_exceptions=count_exceptions(document, units),
    )


class _ParsedFiles:
    """The parsed files of the group being loaded and of the group before it. Consecutive groups share a
    window's files (and a neighbour's, as adjacent files), so each file is parsed once while at most the
    files of two groups are held, however long the slice."""

    def __init__(self, store: RawStore) -> None:
        self._store = store
        self._current: dict[str, _ParsedFile] = {}
        self._previous: dict[str, _ParsedFile] = {}

    def next_group(self) -> None:
        self._previous, self._current = self._current, {}

    def get(self, entry: RawFileEntry, units: Mapping[str, ManagementUnitInfo]) -> _ParsedFile:
        parsed = self._current.get(entry.path) or self._previous.get(entry.path)
        if parsed is None:
            parsed = self._store.parse(entry, ADHERENCE, partial(_parse_file, units=units))
        self._current[entry.path] = parsed
        return parsed


@dataclass
class _Counts:
    raw_day_metrics: int = 0
    raw_exceptions: int = 0
    joined_continuations: int = 0  # pieces of exceptions cut at a window boundary, joined to the one before
    # day-metric values Genesys left out (NULL in adherence_daily), per column
    missing_day_metrics: Counter[str] = field(default_factory=Counter)


@dataclass
class AdherenceLoad:
    """The adherence tables of [first, last], produced by ``chunks()`` one group of days at a time: a
    group's exceptions are written as soon as its files are parsed; the daily rows (one per agent and day,
    small) are kept and written last. ``checks`` and ``joined_continuations`` are known once the chunks
    were consumed."""

    store: RawStore
    manifests: Mapping[date, DayManifest]
    first: date
    last: date
    source: str
    raw_files: tuple[str, ...]  # the files read (own and adjacent), relative to the data directory, sorted
    tables: tuple[warehouse.TableSpec, ...] = TABLES
    _counts: _Counts | None = field(default=None, init=False)

    def chunks(self) -> Iterator[warehouse.Chunk]:
        counts, files = _Counts(), _ParsedFiles(self.store)
        daily: list[pl.DataFrame] = [pl.DataFrame(schema=ADHERENCE_DAILY_SCHEMA)]
        for days, manifest in group_days_by_files(self.manifests):
            files.next_group()
            group_daily = yield from _group_chunks(files, days, manifest, counts)
            daily.append(group_daily)
        yield warehouse.ADHERENCE_DAILY, pl.concat(daily).sort("management_unit_id", "user_id", "local_date")
        self._counts = counts

    @property
    def checks(self) -> AdherenceCheckInputs:
        counts = self._consumed()
        return AdherenceCheckInputs(
            units=self.manifests[self.last].management_units,
            days=tuple(days_between(self.first, self.last)),
            raw_day_metrics=counts.raw_day_metrics,
            raw_exceptions=counts.raw_exceptions,
        )

    @property
    def joined_continuations(self) -> int:
        return self._consumed().joined_continuations

    @property
    def missing_day_metrics(self) -> dict[str, int]:
        """Per day-metric column, the rows of the slice whose value Genesys left out (NULL)."""
        counted = self._consumed().missing_day_metrics
        return {column: counted[column] for column in DAY_METRIC_COLUMNS}

    def _consumed(self) -> _Counts:
        if self._counts is None:
            raise RuntimeError(
                "the check inputs are counted while the chunks are produced: consume them first"
            )
        return self._counts


def _group_chunks(
    files: _ParsedFiles, days: Sequence[date], manifest: DayManifest, counts: _Counts
) -> Generator[warehouse.Chunk, None, pl.DataFrame]:
    """Yield the exceptions of ``days`` (interior ones per file, then the stitched ones); return their
    daily rows, corrected for the continuations joined; add the group's raw counts to ``counts``."""
    units = {unit.id: unit for unit in manifest.management_units}
    own = [files.get(entry, units) for entry in manifest.files]
    adjacent = [files.get(entry, units) for entry in manifest.adjacent_files]
    in_days = pl.col("local_date").is_in(days)
    for parsed in own:
        interior = parsed.exceptions.interior.filter(in_days)
        yield warehouse.ADHERENCE_EXCEPTIONS, interior.sort("management_unit_id", "user_id", "start_time")
    pieces = [parsed.exceptions.cut_pieces for parsed in (*own, *adjacent)]
    stitched = stitch(pl.concat([pl.DataFrame(schema=CUT_PIECES_SCHEMA), *pieces]))
    yield warehouse.ADHERENCE_EXCEPTIONS, stitched.exceptions.filter(in_days)
    corrections = stitched.corrections.filter(in_days)
    joined = int(corrections["continuation_pieces"].sum())
    counts.raw_day_metrics += sum(parsed.raw_day_metrics[day] for parsed in own for day in days)
    counts.raw_exceptions += sum(parsed.raw_exceptions[day] for parsed in own for day in days) - joined
    counts.joined_continuations += joined
    empty = pl.DataFrame(schema=ADHERENCE_DAILY_SCHEMA)
    daily = pl.concat([empty, *(parsed.daily.filter(in_days) for parsed in own)])
    nulls = daily.select(DAY_METRIC_COLUMNS).null_count().row(0, named=True)
    counts.missing_day_metrics.update({column: n for column, n in nulls.items() if n})
    return correct_day_metrics(daily, corrections)


def load_adherence(store: RawStore, first: date, last: date) -> AdherenceLoad:
    """The local days [first, last] of every unit, from the files their manifests list (read lazily, by
    ``chunks()``; the manifests now, so a missing day fails before anything is written)."""
    manifests = store.read_manifests(ADHERENCE, days_between(first, last))
    files = {
        entry.path for manifest in manifests.values() for entry in (*manifest.files, *manifest.adjacent_files)
    }
    return AdherenceLoad(store, manifests, first, last, source_of(manifests, ADHERENCE), tuple(sorted(files)))
