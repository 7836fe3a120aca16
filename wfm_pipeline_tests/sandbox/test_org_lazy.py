"""Lazy generation: a 5,000-agent org costs no more than a small one when a query touches one agent,
and the per-(agent, day) cache is bounded."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta

from wfm_pipeline.sandbox.adherence import adherence_user_result
from wfm_pipeline.sandbox.aggregates import user_aggregates
from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg

START = datetime(2025, 1, 6, tzinfo=UTC)
END = START + timedelta(days=7)


def _peak_bytes_building_and_querying_one_agent(agents: int) -> tuple[int, SandboxOrg]:
    tracemalloc.start()
    try:
        org = SandboxOrg(OrgConfig(seed=9, agents=agents))
        user_id = org.agent_ids(org.management_units[-1].id)[0]
        adherence_user_result(org, user_id, START, END, "UTC", include_exceptions=True, include_actuals=True)
        user_aggregates(org, user_id, START, END, timedelta(minutes=30), "UTC", ["tAgentRoutingStatus"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, org


def test_one_agent_query_on_a_5000_agent_org_generates_only_that_agent() -> None:
    _peak_bytes_building_and_querying_one_agent(50)  # warm-up: imports and zoneinfo caches
    peak_small, small = _peak_bytes_building_and_querying_one_agent(50)
    peak_large, large = _peak_bytes_building_and_querying_one_agent(5_000)
    # Only the queried agent's days were generated: a week plus the neighbouring days.
    assert large.timelines.cache_info().currsize == small.timelines.cache_info().currsize <= 12  # type: ignore[attr-defined]
    # Memory is flat in the org size; the id list of one MU (~700 ids) is the only thing that grows.
    # Materialising a week for 5,000 agents would take hundreds of MB (~10 kB per agent-day).
    assert peak_large < peak_small + 1_000_000, (peak_small, peak_large)
    assert peak_large < 10_000_000


def test_day_cache_is_bounded_and_eviction_does_not_change_answers() -> None:
    bounded = SandboxOrg(OrgConfig(seed=9, agents=5_000, day_cache_size=16))
    unbounded = SandboxOrg(OrgConfig(seed=9, agents=5_000, day_cache_size=100_000))
    users = [bounded.agent_ids(mu.id)[0] for mu in bounded.management_units]
    for user_id in users:
        assert bounded.presence(user_id, START, END + timedelta(days=60)) == unbounded.presence(
            user_id, START, END + timedelta(days=60)
        )
    assert bounded.timelines.cache_info().currsize == 16  # type: ignore[attr-defined]
    assert unbounded.timelines.cache_info().currsize > 6 * 60  # type: ignore[attr-defined]
