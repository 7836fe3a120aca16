"""Daily partitions (a key is each management unit's LOCAL day) and the backfill policy.

The backfill policy groups up to ``WFM_BACKFILL_MAX_PARTITIONS_PER_RUN`` (default 5) days per run: the
adherence API allows 7-day windows with exceptions and every request carries one context day on each side
(see ``assets/exports.py``), so a 5-day run submits one bulk job per time zone and one user-details job
instead of 5 of each. Larger values work (requests are cut into 5-day cores) but make runs longer and a
retry more expensive.
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
