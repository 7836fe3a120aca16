"""User aggregates (time in status) for one user, consistent with the presence / routing timelines.

Buckets: with no granularity, one bucket = the query interval. Whole-day granularities (P1D, P7D)
step in local calendar days of ``time_zone`` (so DST days are 23 h / 25 h); sub-day granularities
(PT15M, PT30M, PT1H...) step in elapsed time from each local midnight, restarting at the next one, so
the grid stays on local wall-clock boundaries across DST (a granularity longer than a day that is not
a whole number of days, e.g. P1DT12H, therefore degrades to local days). Buckets are clipped to the
query interval and buckets without data are omitted (whether Genesys omits them is UNCERTAIN).

Per bucket and metric, one entry per qualifier (status value): ``stats.sum`` = milliseconds spent in
it inside the bucket, ``stats.count`` = number of spans overlapping the bucket (UNCERTAIN semantics).
OFFLINE presence counts in tSystemPresence / tOrganizationPresence like any other presence.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from wfm_pipeline import wire
from wfm_pipeline.sandbox.errors import format_epoch
from wfm_pipeline.sandbox.localdays import ONE_DAY, ceil_epoch, local_date, local_midnight, to_epoch

if TYPE_CHECKING:
    from wfm_pipeline.sandbox.org import SandboxOrg


def bucket_bounds(start: int, end: int, granularity: timedelta | None, time_zone: str) -> list[int]:
    """Sorted cut points [start, ..., end] of the buckets covering [start, end)."""
    if end <= start:
        return [start]
    if granularity is None:
        return [start, end]
    step = int(granularity.total_seconds())
    if step <= 0:
        raise ValueError("granularity must be positive")
    cuts = {start, end}
    day = local_date(start, time_zone)
    midnight = local_midnight(day, time_zone)
    if step % 86400 == 0:
        days = step // 86400
        while midnight < end:
            if midnight > start:
                cuts.add(midnight)
            day += ONE_DAY * days
            midnight = local_midnight(day, time_zone)
    else:
        while midnight < end:
            next_midnight = local_midnight(day + ONE_DAY, time_zone)
            cut = midnight
            while cut < min(next_midnight, end):
                if cut > start:
                    cuts.add(cut)
                cut += step
            day += ONE_DAY
            midnight = next_midnight
    return sorted(cuts)


def user_aggregates(
    org: SandboxOrg,
    user_id: str,
    start: datetime,
    end: datetime,
    granularity: timedelta | None,
    time_zone: str,
    metrics: Sequence[str],
) -> list[dict[str, Any]]:
    s0, s1 = to_epoch(start), to_epoch(end)
    query_end = ceil_epoch(end)  # the spans of org.presence / routing(user_id, start, end)
    series: dict[str, list[tuple[int, int, str]]] = {}
    if "tSystemPresence" in metrics or "tOrganizationPresence" in metrics:
        presence = org.presence_epochs(user_id, s0, query_end)
        series["tSystemPresence"] = [(s, e, system) for s, e, system, _ in presence]
        series["tOrganizationPresence"] = [(s, e, presence_id) for s, e, _, presence_id in presence]
    if "tAgentRoutingStatus" in metrics:
        series["tAgentRoutingStatus"] = org.routing_epochs(user_id, s0, query_end)
    qualifier_order = {
        "tSystemPresence": {v: i for i, v in enumerate(wire.ANALYTICS_SYSTEM_PRESENCES)},
        "tAgentRoutingStatus": {v: i for i, v in enumerate(wire.ROUTING_STATUSES)},
        "tOrganizationPresence": {p.id: i for i, p in enumerate(org.presence_definitions)},
    }
    # Spans of one series never overlap, so their ends are sorted too: bisect to the first span
    # reaching into each bucket instead of scanning the whole series per bucket.
    ends = {metric: [span[1] for span in spans] for metric, spans in series.items()}
    bounds = bucket_bounds(s0, s1, granularity, time_zone)
    data: list[dict[str, Any]] = []
    for a, b in itertools.pairwise(bounds):
        entries: list[dict[str, Any]] = []
        for metric in dict.fromkeys(metrics):  # requested order, duplicates ignored
            totals: dict[str, list[int]] = {}
            spans = series.get(metric, [])
            for i in range(bisect_right(ends.get(metric, []), a), len(spans)):
                s, e, qualifier = spans[i]
                if s >= b:
                    break
                overlap = min(e, b) - max(s, a)
                if overlap > 0:
                    total = totals.setdefault(qualifier, [0, 0])
                    total[0] += overlap * 1000
                    total[1] += 1
            order = qualifier_order.get(metric, {})
            for qualifier in sorted(totals, key=lambda q: order.get(q, len(order))):
                milliseconds, count = totals[qualifier]
                entries.append(
                    {"metric": metric, "qualifier": qualifier, "stats": {"sum": milliseconds, "count": count}}
                )
        if entries:
            data.append({"interval": f"{format_epoch(a)}/{format_epoch(b)}", "metrics": entries})
    return data
