"""Automation: a sensor (running by default) that materializes days once the data is available.

Every ``WFM_SENSOR_INTERVAL_SECONDS`` it reads ``dataAvailabilityDate`` and requests one run per day that
(a) lies within the last ``WFM_SENSOR_LOOKBACK_DAYS`` partitions, (b) has ended for every management unit
(latest local end <= dataAvailabilityDate) and (c) is not materialized yet. Once per availability date it
also re-runs the last ``WFM_REFRESH_DAYS`` available days to pick up late changes. Run keys make it
idempotent: a day is requested once per reason (``initial:<day>``, ``refresh:<day>:<availability date>``),
and the cursor remembers the last refresh date. Older history is a backfill's job.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import dagster as dg

# Not exported by dagster's top level, but it is what define_asset_job returns.
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from wfm_pipeline.defs.partitions import Partitioning
from wfm_pipeline.defs.resources import GenesysApiResource
from wfm_pipeline.defs.settings import PipelineSettings
from wfm_pipeline.timestamps import utc_span_of_days

JOB_NAME = "wfm_daily"
SENSOR_NAME = "wfm_data_availability_sensor"


@dataclass(frozen=True)
class PlannedRun:
    partition_key: str
    run_key: str
    reason: str


@dataclass(frozen=True)
class Automation:
    job: UnresolvedAssetJobDefinition
    sensor: dg.SensorDefinition


def _latest_local_end(time_zones: Sequence[str], key: str) -> datetime:
    day = date.fromisoformat(key)
    return utc_span_of_days(time_zones, day, day)[1]


def plan_runs(
    partition_keys: Sequence[str],
    time_zones: Sequence[str],
    available_until: datetime,
    materialized: set[str],
    last_refresh_on: str | None,
    lookback_days: int,
    refresh_days: int,
) -> tuple[list[PlannedRun], str | None]:
    """Pure planning step of the sensor; returns the runs and the new ``last_refresh_on`` cursor value."""
    recent = list(partition_keys)[-lookback_days:]
    available = [key for key in recent if _latest_local_end(time_zones, key) <= available_until]
    runs = [
        PlannedRun(key, f"initial:{key}", "available, not materialized")
        for key in available
        if key not in materialized
    ]
    stamp = available_until.date().isoformat()
    if refresh_days and available and last_refresh_on != stamp:
        missing = {run.partition_key for run in runs}
        runs += [
            PlannedRun(key, f"refresh:{key}:{stamp}", "daily refresh of recent days")
            for key in available[-refresh_days:]
            if key not in missing
        ]
        return runs, stamp
    return runs, last_refresh_on


def _materialized(instance: dg.DagsterInstance, table_keys: Sequence[dg.AssetKey]) -> set[str]:
    """Days whose every table asset is materialized."""
    sets = [set(instance.get_materialized_partitions(key)) for key in table_keys]
    return set.intersection(*sets) if sets else set()


def _run_requests(runs: Sequence[PlannedRun]) -> list[dg.RunRequest]:
    return [
        dg.RunRequest(run_key=run.run_key, partition_key=run.partition_key, tags={"wfm/reason": run.reason})
        for run in runs
    ]


def build_automation(
    settings: PipelineSettings,
    partitioning: Partitioning,
    assets: Sequence[dg.AssetsDefinition],
    table_keys: Sequence[dg.AssetKey],
) -> Automation:
    """The job over all ``assets`` and the sensor that runs it for days once they are available (whether a
    day is done is judged by the ``table_keys`` materializations)."""
    job = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.assets(*assets),
        description="Export jobs -> raw files -> clean tables for the selected days.",
    )

    @dg.sensor(
        name=SENSOR_NAME,
        job=job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    def sensor(
        context: dg.SensorEvaluationContext, genesys: GenesysApiResource
    ) -> dg.SensorResult | dg.SkipReason:
        cursor = json.loads(context.cursor) if context.cursor else {}
        with genesys.client() as client:
            available_until = client.data_availability_date()
            zones = sorted({unit.time_zone for unit in client.management_units()})
        if not zones:
            return dg.SkipReason("the organization has no management units")
        runs, last_refresh_on = plan_runs(
            partitioning.partitions_def.get_partition_keys(dynamic_partitions_store=context.instance),
            zones,
            available_until,
            _materialized(context.instance, table_keys),
            cursor.get("last_refresh_on"),
            settings.sensor_lookback_days,
            settings.refresh_days,
        )
        new_cursor = {"last_refresh_on": last_refresh_on, "available_until": available_until.isoformat()}
        return dg.SensorResult(run_requests=_run_requests(runs), cursor=json.dumps(new_cursor))

    return Automation(job=job, sensor=sensor)
