"""``defs``: everything in one code location (so a backfill groups all assets' partitions into few runs).

Loaded by workspace.yaml, ``dagster dev -m wfm_pipeline.definitions`` and ``dg check defs``.
"""

from __future__ import annotations

import warnings

import dagster as dg

# backfill_policy is a beta parameter of @asset in Dagster 1.13; the policy itself is what we want.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from wfm_pipeline.defs.assets import ALL_ASSETS  # noqa: E402
from wfm_pipeline.defs.automation import wfm_data_availability_sensor, wfm_job  # noqa: E402
from wfm_pipeline.defs.resources import resources  # noqa: E402
from wfm_pipeline.defs.settings import PipelineSettings  # noqa: E402

defs = dg.Definitions(
    assets=list(ALL_ASSETS),
    jobs=[wfm_job],
    sensors=[wfm_data_availability_sensor],
    resources=resources(PipelineSettings.from_env()),
)
