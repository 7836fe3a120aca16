"""``build_definitions(settings)``: the whole code location from one ``PipelineSettings``.

``wfm_pipeline.definitions`` calls it once with the environment's settings; tests call it with their own.
"""

from __future__ import annotations

import dagster as dg

from wfm_pipeline.defs.assets import ALL_ASSETS
from wfm_pipeline.defs.automation import wfm_data_availability_sensor, wfm_job
from wfm_pipeline.defs.resources import resources
from wfm_pipeline.defs.settings import PipelineSettings


def build_definitions(settings: PipelineSettings) -> dg.Definitions:
    return dg.Definitions(
        assets=list(ALL_ASSETS),
        jobs=[wfm_job],
        sensors=[wfm_data_availability_sensor],
        resources=resources(settings),
    )
