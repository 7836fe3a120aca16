"""Adherence exceptions that a window boundary cut, stitched back into whole exceptions, and the one day
metric the cut changes, corrected.

Why: adherence is exported in fixed grid windows (7 local days per time zone, boundaries at the unit's local
midnights), and Genesys computes each window on its own. The sandbox emulates that rule
(``wfm_pipeline/sandbox/adherence.py``): "Exceptions are cut at the query range but not at local midnights".
So an exception in progress at the boundary between windows A and B is served as a piece of A ending at A's
``endDate`` and a piece of B starting at B's ``startDate``. Within one query a segment extends the current
exception when "``exception_key == (scheduled, actual) and exception_end == segment.start``", else
"``day.exception_count += 1``" and a new exception starts; DESIGN.md: "exceptionCount counts exceptions
starting in the day; exceptionDurationSeconds = exception seconds inside the day; impactSeconds = Negative
exception seconds". (Genesys's documentation says nothing about cuts: the sandbox's rule is the reference
we have.)

What that means, and what is corrected:
- ``adherence_exceptions``: the pieces of one exception are joined again when A's piece ends at A's end,
  B's piece starts at B's start (the same instant: windows are consecutive) and they have the same unit,
  user and (scheduled category, actual category), the key the emulator merges on; chains may cross several
  windows. The whole exception keeps its first piece's attributes (codes, presence, routing status,
  secondary presence, impact: all taken "at its first second") and local day (the day it starts in), and
  ends where its last piece ends. A piece whose partner is not among the pieces given stays as it is.
- ``adherence_daily.exception_count``: B's first day counted each continuation piece as an exception
  starting that day; one contiguous query does not. It drops by the number of continuation pieces.
- Not corrected, because a cut at a local midnight does not change them: ``exception_duration_seconds``
  and ``impact_seconds`` are seconds *inside* the day (a boundary at midnight moves no second to another
  day), and every other day metric is a per-day sum of seconds or a ratio of those sums (issue #10 expected
  the duration to change too; it does not under this rule); the recomputation test
  (``wfm_pipeline_tests/transforms/test_stitch_recompute.py``) proves both columns equal one contiguous
  query's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from wfm_pipeline.transforms._adherence import (
    ADHERENCE_EXCEPTIONS_SCHEMA,
    _file_header,
    adherence_exception_rows,
)
from wfm_pipeline.transforms._days import UTC_TIMESTAMP, ManagementUnitInfo
from wfm_pipeline.transforms._errors import RawRecordError

# An exception touching its file's window start or end, with that window's bounds (UTC).
CUT_PIECES_SCHEMA: dict[str, pl.DataType] = {
    **ADHERENCE_EXCEPTIONS_SCHEMA,
    "window_start": UTC_TIMESTAMP,
    "window_end": UTC_TIMESTAMP,
}

# Per (unit, user, local day): how many exceptions that day's exception_count counted only because a window
# started there while they were in progress.
EXCEPTION_COUNT_CORRECTIONS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "management_unit_id": pl.String(),
    "local_date": pl.Date(),
    "continuation_pieces": pl.Int64(),
}

_DAY_KEY = ("management_unit_id", "user_id", "local_date")
# What the emulator merges adjacent exception segments on, within one unit and user.
_CHAIN_KEY = ("management_unit_id", "user_id", "scheduled_activity_category", "actual_activity_category")
_CUT_AT_START = pl.col("start_time") == pl.col("window_start")
_CUT_AT_END = pl.col("end_time") == pl.col("window_end")


@dataclass(frozen=True)
class FileExceptions:
    """One adherence file's exceptions: the interior ones (in the requested days, ready to load) and the
    cut pieces (any day: stitching needs a piece even when its whole exception starts on another day)."""

    interior: pl.DataFrame  # ADHERENCE_EXCEPTIONS_SCHEMA
    cut_pieces: pl.DataFrame  # CUT_PIECES_SCHEMA


@dataclass(frozen=True)
class StitchedExceptions:
    """What ``stitch`` makes of the cut pieces of many files."""

    # ADHERENCE_EXCEPTIONS_SCHEMA, any day: the whole exceptions, and the unmatched pieces as they are
    exceptions: pl.DataFrame
    corrections: pl.DataFrame  # EXCEPTION_COUNT_CORRECTIONS_SCHEMA, only days with a correction
    unmatched_pieces: int  # pieces with a cut side that no other piece continues


def adherence_exception_parts(
    document: Mapping[str, Any], units: Mapping[str, ManagementUnitInfo], first: date, last: date
) -> FileExceptions:
    """Split one file's exceptions (``adherence_exception_rows`` of every day) into the interior ones starting
    on a local day in [first, last] and the pieces touching the window's start or end."""
    _, _, window_start, window_seconds = _file_header(document, units)
    if window_seconds is None:
        raise RawRecordError(
            "adherence file: missing endDate, needed to tell exceptions cut at the window end"
        )
    everything = adherence_exception_rows(document, units, date.min, date.max).with_columns(
        window_start=pl.lit(window_start, UTC_TIMESTAMP),
        window_end=pl.lit(window_start, UTC_TIMESTAMP) + pl.duration(seconds=window_seconds),
    )
    cut = _CUT_AT_START | _CUT_AT_END
    interior = everything.filter(~cut & pl.col("local_date").is_between(first, last))
    return FileExceptions(
        interior=interior.select(list(ADHERENCE_EXCEPTIONS_SCHEMA)), cut_pieces=everything.filter(cut)
    )


def _links(pieces: pl.DataFrame) -> pl.DataFrame:
    """(piece, next_piece): a piece cut at its window's end and the piece of the next window continuing it."""
    ends = pieces.filter(_CUT_AT_END).select(*_CHAIN_KEY, "window_end", "piece")
    starts = pieces.filter(_CUT_AT_START).select(*_CHAIN_KEY, "window_start", next_piece="piece")
    # 1:1 fails loudly when two files of the same unit and window were given (a piece with two partners).
    return ends.join(
        starts,
        left_on=[*_CHAIN_KEY, "window_end"],
        right_on=[*_CHAIN_KEY, "window_start"],
        nulls_equal=True,  # no actual category (offline) is a category to merge on
        validate="1:1",
    ).select("piece", "next_piece")


def _chains(pieces: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """(head, last): each chain's first and last piece, a piece with no predecessor being its own chain."""
    chains = pieces.join(links, left_on="piece", right_on="next_piece", how="anti").select(
        head="piece", last="piece"
    )
    # One join per window a chain crosses: chains are a few windows long.
    while True:
        step = chains.join(links, left_on="last", right_on="piece", how="left")
        if step["next_piece"].null_count() == step.height:
            return chains
        chains = step.select("head", last=pl.coalesce("next_piece", "last"))


def stitch(pieces: pl.DataFrame) -> StitchedExceptions:
    """Whole exceptions from the cut pieces (``CUT_PIECES_SCHEMA``) of any files, in any order: at most one
    file per (unit, window), else ``polars.exceptions.ComputeError`` (a piece would have two partners)."""
    pieces = pieces.select(list(CUT_PIECES_SCHEMA)).with_row_index("piece")
    links = _links(pieces)
    chains = _chains(pieces, links)
    ends = pieces.select("piece", last_end="end_time")
    exceptions = (
        chains.join(pieces, left_on="head", right_on="piece")
        .join(ends, left_on="last", right_on="piece")
        .with_columns(
            end_time=pl.col("last_end"),
            duration_seconds=(pl.col("last_end") - pl.col("start_time")).dt.total_seconds(),
        )
        .select(list(ADHERENCE_EXCEPTIONS_SCHEMA))
        .sort("management_unit_id", "user_id", "start_time")
    )
    continuations = pieces.join(links, left_on="piece", right_on="next_piece", how="semi")
    corrections = (
        continuations.group_by(_DAY_KEY)
        .agg(continuation_pieces=pl.len().cast(pl.Int64()))
        .select(list(EXCEPTION_COUNT_CORRECTIONS_SCHEMA))
        .sort(_DAY_KEY)
    )
    unmatched_start = _CUT_AT_START & ~pl.col("piece").is_in(links["next_piece"].implode())
    unmatched_end = _CUT_AT_END & ~pl.col("piece").is_in(links["piece"].implode())
    return StitchedExceptions(
        exceptions=exceptions,
        corrections=corrections,
        unmatched_pieces=pieces.filter(unmatched_start | unmatched_end).height,
    )


def correct_day_metrics(daily: pl.DataFrame, corrections: pl.DataFrame) -> pl.DataFrame:
    """``adherence_daily`` rows with ``exception_count`` less the continuation pieces counted on that day
    (the only day metric a cut at a window boundary changes, see the module docstring)."""
    return (
        daily.join(
            corrections.select(list(EXCEPTION_COUNT_CORRECTIONS_SCHEMA)),
            on=_DAY_KEY,
            how="left",
            maintain_order="left",
        )
        .with_columns(exception_count=pl.col("exception_count") - pl.col("continuation_pieces").fill_null(0))
        .select(daily.columns)
    )
