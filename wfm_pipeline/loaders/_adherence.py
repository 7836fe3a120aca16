"""Adherence raw files (``WfmHistoricalAdherenceBulkResult``) -> ``adherence_daily`` and
``adherence_exceptions`` rows of the slice's days, with the raw-side counts their checks compare."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial

import polars as pl

from wfm_pipeline import warehouse
from wfm_pipeline.quality import AdherenceCheckInputs, count_day_metrics, count_exceptions
from wfm_pipeline.raw_store import ADHERENCE, RawStore, group_days_by_files, source_of
from wfm_pipeline.timestamps import days_between
from wfm_pipeline.transforms import (
    ADHERENCE_DAILY_SCHEMA,
    ADHERENCE_EXCEPTIONS_SCHEMA,
    ManagementUnitInfo,
    adherence_daily_rows,
    adherence_document,
    adherence_exception_rows,
)


@dataclass(frozen=True)
class AdherenceLoad:
    daily: pl.DataFrame
    exceptions: pl.DataFrame
    checks: AdherenceCheckInputs
    raw_files: tuple[str, ...]  # the files loaded, relative to the data directory, sorted
    source: str  # the API the files came from ("sandbox" or the org's API host)

    @property
    def frames(self) -> tuple[tuple[warehouse.TableSpec, pl.DataFrame], ...]:
        return ((warehouse.ADHERENCE_DAILY, self.daily), (warehouse.ADHERENCE_EXCEPTIONS, self.exceptions))


@dataclass(frozen=True)
class _FileRows:
    daily: pl.DataFrame
    exceptions: pl.DataFrame
    raw_day_metrics: int
    raw_exceptions: int


def _file_rows(data: bytes, *, units: Mapping[str, ManagementUnitInfo], days: Sequence[date]) -> _FileRows:
    """One raw file's rows on ``days`` (a file also holds its request's context days: not loaded)."""
    document = adherence_document(data)
    low, high = min(days), max(days)
    in_days = pl.col("local_date").is_in(days)
    return _FileRows(
        daily=adherence_daily_rows(document, units, low, high).filter(in_days),
        exceptions=adherence_exception_rows(document, units, low, high).filter(in_days),
        raw_day_metrics=count_day_metrics(document, units, set(days)),
        raw_exceptions=count_exceptions(document, units, set(days)),
    )


def load_adherence(store: RawStore, first: date, last: date) -> AdherenceLoad:
    """The local days [first, last] of every unit, from the files their manifests list."""
    manifests = store.read_manifests(ADHERENCE, days_between(first, last))
    source = source_of(manifests, ADHERENCE)
    parts: list[_FileRows] = []
    files: set[str] = set()
    for days, manifest in group_days_by_files(manifests):
        parse = partial(_file_rows, units={unit.id: unit for unit in manifest.management_units}, days=days)
        for entry in manifest.files:
            parts.append(store.parse(entry, ADHERENCE, parse))
            files.add(entry.path)
    daily = pl.concat([pl.DataFrame(schema=ADHERENCE_DAILY_SCHEMA), *(part.daily for part in parts)])
    exceptions = pl.concat(
        [pl.DataFrame(schema=ADHERENCE_EXCEPTIONS_SCHEMA), *(part.exceptions for part in parts)]
    )
    return AdherenceLoad(
        daily=daily.sort("management_unit_id", "user_id", "local_date"),
        exceptions=exceptions.sort("management_unit_id", "user_id", "start_time"),
        checks=AdherenceCheckInputs(
            units=manifests[last].management_units,
            days=tuple(days_between(first, last)),
            raw_day_metrics=sum(part.raw_day_metrics for part in parts),
            raw_exceptions=sum(part.raw_exceptions for part in parts),
        ),
        raw_files=tuple(sorted(files)),
        source=source,
    )
