"""The pipeline's error tree (outside the API client, which has its own: ``genesys.GenesysError``).

Every error the pipeline raises on purpose derives from ``PipelineError``, so a caller can catch "ours"
in one clause; each subclass's message names what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class PipelineError(Exception):
    """Base of every error the pipeline (settings, raw store, warehouse, loaders, checks) raises."""

    # What the Dagster step failure shows besides the message (e.g. the path of a quarantined file).
    metadata: Mapping[str, str] = MappingProxyType({})
