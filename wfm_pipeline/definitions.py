"""``defs``: everything in one code location (so a backfill groups all assets' partitions into few runs).

Loaded by workspace.yaml, ``dagster dev -m wfm_pipeline.definitions`` and ``dg check defs``. The ONE place
the environment is read (``PipelineSettings.from_env``); everything below receives the settings.
"""

from __future__ import annotations

import warnings

import dagster as dg

# backfill_policy is a beta parameter of @asset in Dagster 1.13; the policy itself is what we want.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from wfm_pipeline.defs.build import build_definitions  # noqa: E402
from wfm_pipeline.defs.settings import PipelineSettings  # noqa: E402

defs = build_definitions(PipelineSettings.from_env())
