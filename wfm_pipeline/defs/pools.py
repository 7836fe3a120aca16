"""Concurrency pools of the pipeline and their limits.

dagster.yaml can only set ``concurrency.pools.default_limit`` (1 here: the safe value for the single DuckDB
writer); per-pool limits live in the instance database. ``apply_pool_limits`` writes ours there -- call it
once per instance (``wfm-pipeline dev`` does), or run ``dagster instance concurrency set genesys_api 2``.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

API_POOL = "genesys_api"
WRITER_POOL = "duckdb_writer"
POOL_LIMITS: Mapping[str, int] = {API_POOL: 2, WRITER_POOL: 1}


def apply_pool_limits(
    instance: dg.DagsterInstance, limits: Mapping[str, int] = POOL_LIMITS
) -> dict[str, int]:
    """Set each pool's slot count on a persistent instance; returns the limits now in force."""
    if not instance.event_log_storage.supports_global_concurrency_limits:
        raise RuntimeError("this Dagster instance cannot enforce pools (use a persistent instance)")
    for pool, limit in limits.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return {pool: instance.event_log_storage.get_concurrency_info(pool).slot_count for pool in limits}
