"""Bulk historical adherence: the grid windows of the run's days, and their neighbours at the run's edges."""

from __future__ import annotations

from datetime import date, timedelta

from wfm_pipeline.extractors._common import Extraction, ManifestContext, Organization, record_extraction
from wfm_pipeline.genesys import AdherenceExportRequest, GenesysClient
from wfm_pipeline.raw_store import ADHERENCE, RawStore

# The client fetches adherence in fixed grid windows per time zone (7 local days from a Monday, split where
# a 25-hour day would exceed 7 x 24 h), so a day is always fetched in the same window whatever the run
# grouping, and a regrouped relaunch reuses the jobs already submitted. Genesys reports an exception
# relative to the query window (one crossing the window start is counted again on the first day, one
# crossing the end is cut): the loader stitches exceptions cut at a window's bounds from the neighbour
# window's files, which each window-edge day's manifest lists as ``adjacent_files``. One context day makes
# the client also fetch the window before (after) the run when its first (last) day is a window edge.
ADHERENCE_CONTEXT_DAYS = 1


def extract_adherence(
    client: GenesysClient, store: RawStore, first: date, last: date, run_id: str
) -> Extraction:
    before = client.metrics.snapshot()
    organization = Organization.read(client)
    request = AdherenceExportRequest(
        organization.units, first, last + timedelta(days=1), context_days=ADHERENCE_CONTEXT_DAYS
    )
    result = client.run_export(request, store.files_dir(ADHERENCE))
    context = ManifestContext(ADHERENCE, organization, client.settings.source, run_id)
    return record_extraction(store, context, result, (first, last), client.metrics.since(before))
