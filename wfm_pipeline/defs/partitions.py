"""Daily partitions (a key is each management unit's LOCAL day) and the backfill policy.

The backfill policy groups up to ``WFM_BACKFILL_MAX_PARTITIONS_PER_RUN`` (default 35) days per run: the
client fetches adherence in weekly grid windows per time zone and user details in 7-day UTC cells (see
``wfm_pipeline/genesys/README.md``), so a 35-day run submits five or six bulk jobs per time zone and five or
six user-details jobs instead of 35 of each, and jobs shared with a neighbouring run are found in the
registry. Few, large runs also spare Dagster's per-run and per-step process start-up; the price is a longer
retry when a run fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg

from wfm_pipeline.defs.settings import PipelineSettings


@dataclass(frozen=True)
class Partitioning:
    """The partitions and backfill policy every asset of the pipeline shares (one code location, so a
    backfill groups all assets' partitions into the same runs)."""

    partitions_def: dg.DailyPartitionsDefinition
    backfill_policy: dg.BackfillPolicy

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> Partitioning:
        return cls(
            partitions_def=dg.DailyPartitionsDefinition(
                start_date=settings.partitions_start.isoformat(), timezone="UTC"
            ),
            backfill_policy=dg.BackfillPolicy.multi_run(
                max_partitions_per_run=settings.max_partitions_per_run
            ),
        )


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """First and last day (inclusive) of the run's partition range (one key or a backfill range)."""
    key_range = context.partition_key_range
    return date.fromisoformat(key_range.start), date.fromisoformat(key_range.end)
