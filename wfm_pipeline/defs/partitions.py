"""Daily partitions (a key is each management unit's LOCAL day) and the backfill policy.

The backfill policy groups up to ``WFM_BACKFILL_MAX_PARTITIONS_PER_RUN`` (default 35) days per run: the
adherence API allows 7-day windows with exceptions and every request carries one context day on each side
(see ``assets/exports.py``), so a 35-day run submits seven bulk jobs per time zone and two user-details
jobs instead of 35 of each. Few, large runs also spare Dagster's per-run and per-step process start-up; the
price is a longer retry when a run fails.
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from wfm_pipeline.defs.settings import PipelineSettings

SETTINGS = PipelineSettings.from_env()

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=SETTINGS.partitions_start.isoformat(), timezone="UTC"
)
backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=SETTINGS.max_partitions_per_run)


def partition_days(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """First and last day (inclusive) of the run's partition range (one key or a backfill range)."""
    key_range = context.partition_key_range
    return date.fromisoformat(key_range.start), date.fromisoformat(key_range.end)
