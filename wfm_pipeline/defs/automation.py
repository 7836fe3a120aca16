"""Automation: a sensor (running by default) that materializes days once the data is available.

Every ``WFM_SENSOR_INTERVAL_SECONDS`` it reads ``dataAvailabilityDate`` and requests ONE run over the range
of days that need work: days that (a) lie within the last ``WFM_SENSOR_LOOKBACK_DAYS`` partitions, (b) have
ended for every management unit (latest local end <= dataAvailabilityDate) and (c) are not materialized
yet; and, once per availability date, the last ``WFM_REFRESH_DAYS`` available days again, to pick up late
changes. While a run of the job is queued or in progress it requests nothing (its days are not
materialized yet, and a second run over them would only compete for the same jobs, slots and writer).
One range run instead of one run per day: the run and step processes start once, and the export jobs of
the range (weekly grid windows) are submitted once. Older history is a backfill's job.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import dagster as dg

# Not exported by dagster's top level, but it is what define_asset_job returns.
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from wfm_pipeline.defs.executors import STEP_EXECUTORS
from wfm_pipeline.defs.partitions import Partitioning
from wfm_pipeline.defs.resources import GenesysApiResource
from wfm_pipeline.defs.settings import PipelineSettings
from wfm_pipeline.extractors import unassigned_time_zone
from wfm_pipeline.timestamps import utc_span_of_days

JOB_NAME = "wfm_daily"
SENSOR_NAME = "wfm_data_availability_sensor"
# Markdown, as the UI renders it.
SENSOR_DESCRIPTION = (
    "Every `WFM_SENSOR_INTERVAL_SECONDS` reads `dataAvailabilityDate` and requests **one** run over the days "
    "that need work: days of the last `WFM_SENSOR_LOOKBACK_DAYS` partitions that have ended for every "
    "management unit and are not materialized yet, plus, once per availability date, the last "
    "`WFM_REFRESH_DAYS` days again (late changes). Nothing while a run of the job is queued or in progress. "
    "Older history: launch a backfill."
)


@dataclass(frozen=True)
class PlannedRun:
    first_key: str
    last_key: str
    run_key: str
    reason: str

    @property
    def tags(self) -> dict[str, str]:
        return {
            "dagster/asset_partition_range_start": self.first_key,
            "dagster/asset_partition_range_end": self.last_key,
            # one tag the runs list shows whole: which local days the run loads
            "wfm/days": self.first_key
            if self.first_key == self.last_key
            else f"{self.first_key}..{self.last_key}",
            "wfm/reason": self.reason,
        }


@dataclass(frozen=True)
class Automation:
    job: UnresolvedAssetJobDefinition
    sensor: dg.SensorDefinition


def _latest_local_end(time_zones: Sequence[str], key: str) -> datetime:
    day = date.fromisoformat(key)
    return utc_span_of_days(time_zones, day, day)[1]


def plan_run(
    partition_keys: Sequence[str],
    time_zones: Sequence[str],
    available_until: datetime,
    materialized: set[str],
    last_refresh_on: str | None,
    lookback_days: int,
    refresh_days: int,
) -> tuple[PlannedRun | None, str | None]:
    """Pure planning step of the sensor: the one run over every day that needs work (None when no day
    does), and the new ``last_refresh_on`` cursor value."""
    recent = list(partition_keys)[-lookback_days:]
    available = [key for key in recent if _latest_local_end(time_zones, key) <= available_until]
    missing = [key for key in available if key not in materialized]
    stamp = available_until.date().isoformat()
    refresh = available[-refresh_days:] if refresh_days and available and last_refresh_on != stamp else []
    needed = sorted({*missing, *refresh})
    if not needed:
        return None, last_refresh_on
    reasons = [
        *([f"available, not materialized: {', '.join(missing)}"] if missing else []),
        *([f"daily refresh of {', '.join(refresh)}"] if refresh else []),
    ]
    kinds = "+".join(kind for kind, days in (("initial", missing), ("refresh", refresh)) if days)
    run = PlannedRun(needed[0], needed[-1], f"{kinds}:{needed[0]}..{needed[-1]}:{stamp}", "; ".join(reasons))
    return run, stamp if refresh else last_refresh_on


def _materialized(instance: dg.DagsterInstance, table_keys: Sequence[dg.AssetKey]) -> set[str]:
    """Days whose every table asset is materialized."""
    sets = [set(instance.get_materialized_partitions(key)) for key in table_keys]
    return set.intersection(*sets) if sets else set()


_IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _job_busy(instance: dg.DagsterInstance) -> bool:
    return instance.get_runs_count(dg.RunsFilter(job_name=JOB_NAME, statuses=_IN_PROGRESS)) > 0


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
        executor_def=STEP_EXECUTORS[settings.sensor_step_executor],
    )

    @dg.sensor(
        name=SENSOR_NAME,
        job=job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=settings.sensor_interval_seconds,
        description=SENSOR_DESCRIPTION,
    )
    def sensor(
        context: dg.SensorEvaluationContext, genesys: GenesysApiResource
    ) -> dg.SensorResult | dg.SkipReason:
        if _job_busy(context.instance):
            return dg.SkipReason(f"a {JOB_NAME} run is still queued or in progress")
        cursor = json.loads(context.cursor) if context.cursor else {}
        with genesys.client() as client:
            available_until = client.data_availability_date()
            zones = sorted({unit.time_zone for unit in client.management_units()})
            if not zones:
                return dg.SkipReason("the organization has no management units")
            # agents in no unit have their days in this zone: a day is done when theirs has ended too
            zones.append(unassigned_time_zone(client, settings.default_time_zone))
        run, last_refresh_on = plan_run(
            partitioning.partitions_def.get_partition_keys(dynamic_partitions_store=context.instance),
            zones,
            available_until,
            _materialized(context.instance, table_keys),
            cursor.get("last_refresh_on"),
            settings.sensor_lookback_days,
            settings.refresh_days,
        )
        new_cursor = {"last_refresh_on": last_refresh_on, "available_until": available_until.isoformat()}
        requests = [dg.RunRequest(run_key=run.run_key, tags=run.tags)] if run else []
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(new_cursor))

    return Automation(job=job, sensor=sensor)
