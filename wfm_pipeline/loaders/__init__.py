"""Loaders of the table steps: raw store + day range -> chunks of typed rows (produced one at a time by
``chunks()``, so a slice never has to fit in memory), check inputs and metadata.

No Dagster and no API: a loader reads only the manifests of its days and the raw files they list (the
manifest carries the organization snapshot). Its errors are ``wfm_pipeline.raw_store.RawDataError``s
(a ``PipelineError``); a file that does not parse is quarantined before the error is raised.
"""

from wfm_pipeline.loaders._adherence import AdherenceLoad, load_adherence
from wfm_pipeline.loaders._directory import DirectoryLoad, load_directory
from wfm_pipeline.loaders._user_details import UserDetailsLoad, load_user_details

__all__ = [
    "AdherenceLoad",
    "DirectoryLoad",
    "UserDetailsLoad",
    "load_adherence",
    "load_directory",
    "load_user_details",
]
