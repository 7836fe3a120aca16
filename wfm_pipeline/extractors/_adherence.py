"""Bulk historical adherence: one request for the run's days, with one context day on each side."""

from __future__ import annotations

from datetime import date, timedelta

from wfm_pipeline.extractors._common import Extraction, ManifestContext, Organization, record_extraction
from wfm_pipeline.genesys import AdherenceExportRequest, GenesysClient
from wfm_pipeline.raw_store import ADHERENCE, RawStore

# Genesys reports an adherence exception relative to the query window: one crossing the window start is
# counted again on the first day, and one crossing the window end is cut. Every adherence window therefore
# carries one context day on each side of its core days, and only core days are loaded from it, so a day's
# numbers do not depend on how days were grouped into runs (range run == single-day runs). The client plans
# the windows and says which core days each job is for (``JobResult.core_days``).
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
