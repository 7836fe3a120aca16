"""``build_definitions(settings)``: the whole code location from one ``PipelineSettings``.

``wfm_pipeline.definitions`` calls it once with the environment's settings; tests call it with their own.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg

from wfm_pipeline.defs.assets import build_assets
from wfm_pipeline.defs.automation import build_automation
from wfm_pipeline.defs.executors import STEP_EXECUTORS
from wfm_pipeline.defs.partitions import Partitioning
from wfm_pipeline.defs.resources import resources
from wfm_pipeline.defs.settings import PipelineSettings


def _freshness_checks(
    table_keys: Sequence[dg.AssetKey], deadline_cron: str
) -> tuple[Sequence[dg.AssetChecksDefinition], dg.SensorDefinition]:
    """Per daily table, a check that warns when the previous day's PARTITION is not materialized by the
    deadline, and the sensor that evaluates them. Dagster 1.13 prefers ``FreshnessPolicy``, which looks at
    when an asset last materialized, not at which partition: a refresh of an old day would pass it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        checks = dg.build_time_partition_freshness_checks(
            assets=list(table_keys), deadline_cron=deadline_cron, timezone="UTC"
        )
        sensor = dg.build_sensor_for_freshness_checks(
            freshness_checks=checks, default_status=dg.DefaultSensorStatus.RUNNING
        )
    return checks, sensor


def build_definitions(settings: PipelineSettings) -> dg.Definitions:
    partitioning = Partitioning.from_settings(settings)
    assets = build_assets(settings, partitioning)
    automation = build_automation(settings, partitioning, assets.all, assets.table_keys)
    freshness, freshness_sensor = _freshness_checks(assets.table_keys, settings.freshness_deadline_cron)
    return dg.Definitions(
        assets=assets.all,
        asset_checks=freshness,
        jobs=[automation.job],
        sensors=[automation.sensor, freshness_sensor],
        resources=resources(settings),
        executor=STEP_EXECUTORS[settings.step_executor],
    )
