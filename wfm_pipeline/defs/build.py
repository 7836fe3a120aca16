"""``build_definitions(settings)``: the whole code location from one ``PipelineSettings``.

``wfm_pipeline.definitions`` calls it once with the environment's settings; tests call it with their own.
"""

from __future__ import annotations

import dagster as dg

from wfm_pipeline.defs.assets import build_assets
from wfm_pipeline.defs.automation import build_automation
from wfm_pipeline.defs.executors import STEP_EXECUTORS
from wfm_pipeline.defs.partitions import Partitioning
from wfm_pipeline.defs.resources import resources
from wfm_pipeline.defs.settings import PipelineSettings


def build_definitions(settings: PipelineSettings) -> dg.Definitions:
    partitioning = Partitioning.from_settings(settings)
    assets = build_assets(settings, partitioning)
    automation = build_automation(settings, partitioning, assets.all, assets.table_keys)
    return dg.Definitions(
        assets=assets.all,
        jobs=[automation.job],
        sensors=[automation.sensor],
        resources=resources(settings),
        executor=STEP_EXECUTORS[settings.step_executor],
    )
