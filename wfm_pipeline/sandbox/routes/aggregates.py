"""``POST /api/v2/analytics/users/aggregates/query``: per-user or summed status statistics up to now."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wfm_pipeline import wire
from wfm_pipeline.sandbox.aggregates import user_aggregates
from wfm_pipeline.sandbox.errors import bad_request, json_response, parse_interval
from wfm_pipeline.sandbox.routes.api import api
from wfm_pipeline.sandbox.routes.filters import select_users, validate_filter
from wfm_pipeline.sandbox.state import Caller, SandboxState
from wfm_pipeline.sandbox.validation import read_json_object, valid_time_zone


def parse_granularity(value: Any) -> timedelta:
    """ISO-8601 period without years/months: PnW, PnDTnHnMnS."""
    match = re.fullmatch(
        r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?",
        value if isinstance(value, str) else "",
    )
    if not match or not any(match.groups()) or (isinstance(value, str) and value.endswith("T")):
        raise bad_request(
            f"granularity: [{value}] is not a supported ISO-8601 period (for example PT30M, PT1H, P1D)",
            wire.ERROR_INVALID_VALUE,
            "granularity",
        )
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    period = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    if period < timedelta(minutes=1):
        raise bad_request("granularity must be at least PT1M", wire.ERROR_INVALID_VALUE, "granularity")
    return period


def merge_groups(per_user: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Sum the stats of every user per interval and (metric, qualifier): the no-groupBy answer."""
    merged: dict[str, dict[tuple[str, str | None], dict[str, float]]] = {}
    for data in per_user:
        for bucket in data:
            metrics = merged.setdefault(bucket["interval"], {})
            for metric in bucket["metrics"]:
                stats = metrics.setdefault(
                    (metric["metric"], metric.get("qualifier")), {"sum": 0, "count": 0}
                )
                stats["sum"] += metric["stats"].get("sum", 0)
                stats["count"] += metric["stats"].get("count", 0)
    return [
        {
            "interval": interval,
            "metrics": [
                {"metric": metric, "qualifier": qualifier, "stats": stats}
                for (metric, qualifier), stats in sorted(
                    metrics.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
                )
            ],
        }
        for interval, metrics in sorted(merged.items())
    ]


@dataclass(frozen=True)
class _AggregateQuery:
    """A validated ``UserAggregationQuery`` body."""

    start: datetime
    end: datetime
    metrics: list[str]
    group_by: list[str]
    time_zone: str
    granularity: timedelta | None
    filters: tuple[dict[str, Any], ...]


def _aggregate_query(body: dict[str, Any]) -> _AggregateQuery:
    """The query, or the 400 Genesys answers to its first invalid field (in the order Genesys checks)."""
    if "interval" not in body:
        raise bad_request("interval is required", field_name="interval")
    start, end = parse_interval(body["interval"])
    metrics = body.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise bad_request("metrics: at least one metric is required", field_name="metrics")
    for metric in metrics:
        if metric not in wire.USER_AGGREGATE_METRICS:
            raise bad_request(
                f"metrics: value [{metric}] is not valid; "
                f"allowable values are: {', '.join(wire.USER_AGGREGATE_METRICS)}",
                wire.ERROR_INVALID_VALUE,
                "metrics",
            )
    group_by = body.get("groupBy", [])
    if not isinstance(group_by, list) or any(g != "userId" for g in group_by):
        raise bad_request(
            "groupBy: grouping is limited to the userId dimension", wire.ERROR_INVALID_VALUE, "groupBy"
        )
    time_zone = valid_time_zone(body["timeZone"]) if "timeZone" in body else "UTC"
    granularity = parse_granularity(body["granularity"]) if body.get("granularity") else None
    if granularity is not None and (end - start) / granularity > 10_000:
        raise bad_request(
            "granularity too fine for the interval (more than 10000 buckets)", field_name="granularity"
        )
    return _AggregateQuery(start, end, metrics, group_by, time_zone, granularity, _user_filters(body))


def _user_filters(body: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    user_filter = body.get("filter")
    if user_filter is None:
        return ()
    count = validate_filter(user_filter, ("userId",), "filter")
    if count > wire.AGGREGATES_MAX_USER_PREDICATES:
        raise bad_request(
            f"A single query may contain no more than {wire.AGGREGATES_MAX_USER_PREDICATES} "
            f"userId predicates "
            f"(got {count}).",
            field_name="filter",
        )
    return (user_filter,)


async def post_user_aggregates(request: Request, sandbox: SandboxState, caller: Caller) -> Response:
    query = _aggregate_query(await read_json_object(request, sandbox))
    user_ids = select_users(sandbox, query.filters)
    # Aggregates are near-real-time in Genesys: data up to now, nothing from the (generated) future.
    data_end = min(query.end, caller.now)

    def compute() -> list[list[dict[str, Any]]]:
        if data_end <= query.start:
            return [[] for _ in user_ids]
        return [
            user_aggregates(
                sandbox.org, user_id, query.start, data_end, query.granularity, query.time_zone, query.metrics
            )
            for user_id in user_ids
        ]

    per_user = await sandbox.compute(compute)
    if query.group_by:
        results = [
            {"group": {"userId": user_id}, "data": data}
            for user_id, data in zip(user_ids, per_user, strict=True)
            if data
        ]
    else:
        merged = merge_groups(per_user)
        results = [{"group": {}, "data": merged}] if merged else []
    mappings: dict[str, list[str]] = {}
    for definition in sandbox.org.presence_definitions:
        mappings.setdefault(definition.analytics_system_presence, []).append(definition.id)
    return json_response({"systemToOrganizationMappings": mappings, "results": results})


def routes() -> list[Route]:
    return [
        Route(
            wire.USER_AGGREGATES_QUERY_PATH,
            api(post_user_aggregates, wire.PERMISSION_USER_AGGREGATE_VIEW),
            methods=["POST"],
        )
    ]
