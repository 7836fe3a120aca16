"""Extractors of the export steps: client + raw store + day range -> raw files, per-day manifests and a
typed ``Extraction`` (jobs, manifest entries, metrics) for the asset's metadata.

No Dagster: the client plans, submits, resumes and downloads; an extractor builds the request for its
kind, snapshots the organization, and records which files serve which day. The mirror of ``loaders``.
"""

from wfm_pipeline.extractors._adherence import extract_adherence
from wfm_pipeline.extractors._common import BeyondRetentionError, Extraction, NoManagementUnitsError
from wfm_pipeline.extractors._directory import DirectorySnapshot, extract_directory
from wfm_pipeline.extractors._user_details import (
    AggregatesSampling,
    extract_user_details,
    unassigned_time_zone,
)

__all__ = [
    "AggregatesSampling",
    "BeyondRetentionError",
    "DirectorySnapshot",
    "Extraction",
    "NoManagementUnitsError",
    "extract_adherence",
    "extract_directory",
    "extract_user_details",
    "unassigned_time_zone",
]
