"""``defs``: everything in one code location (so a backfill groups all assets' partitions into few runs).

Loaded by workspace.yaml, ``dagster dev -m wfm_pipeline.definitions`` and ``dg check defs``. The ONE place
the environment is read (``PipelineSettings.from_env``); everything below receives the settings.
"""

from __future__ import annotations

from wfm_pipeline.defs.build import build_definitions
from wfm_pipeline.defs.settings import PipelineSettings

defs = build_definitions(PipelineSettings.from_env())
