"""Analytics filter validation (user details and aggregates) and the users a filter selects."""

from __future__ import annotations

from typing import Any

from wfm_pipeline import wire
from wfm_pipeline.sandbox.errors import bad_request
from wfm_pipeline.sandbox.jobs import filter_matches
from wfm_pipeline.sandbox.state import SandboxState

FILTER_DIMENSIONS = {
    "userFilters": ("userId",),
    "presenceFilters": ("systemPresence", "organizationPresenceId"),
    "routingStatusFilters": ("routingStatus",),
}
DIMENSION_VALUES = {
    "systemPresence": wire.ANALYTICS_SYSTEM_PRESENCES,
    "routingStatus": wire.ROUTING_STATUSES,
}


def validate_filter(spec: Any, dimensions: tuple[str, ...], where: str, depth: int = 0) -> int:
    """Check an analytics filter's shape; returns how many predicates it has (all levels)."""
    if not isinstance(spec, dict):
        raise bad_request(f"{where} must be an object", field_name=where)
    if spec.get("type") not in ("and", "or"):
        raise bad_request(f"{where}.type must be 'and' or 'or'", wire.ERROR_INVALID_VALUE, "type")
    predicates, clauses = spec.get("predicates") or [], spec.get("clauses") or []
    if not isinstance(predicates, list) or not isinstance(clauses, list) or depth > 3:
        raise bad_request(f"{where}: predicates and clauses must be lists", field_name=where)
    count = 0
    for position, predicate in enumerate(predicates):
        here = f"{where}.predicates[{position}]"
        if not isinstance(predicate, dict):
            raise bad_request(f"{here} must be an object", field_name=where)
        if predicate.get("type", "dimension") != "dimension":
            raise bad_request(f"{here}.type must be 'dimension'", wire.ERROR_INVALID_VALUE, "type")
        dimension = predicate.get("dimension")
        if dimension not in dimensions:
            raise bad_request(
                f"{here}.dimension: value [{dimension}] is not valid; "
                f"allowable values are: {', '.join(dimensions)}",
                wire.ERROR_INVALID_VALUE,
                "dimension",
            )
        operator = predicate.get("operator", "matches")
        if operator not in ("matches", "exists", "notExists"):
            raise bad_request(
                f"{here}.operator must be matches, exists or notExists", wire.ERROR_INVALID_VALUE, "operator"
            )
        value = predicate.get("value")
        if operator == "matches":
            if not isinstance(value, str):
                raise bad_request(f"{here}.value is required for operator 'matches'", field_name="value")
            allowed = DIMENSION_VALUES.get(dimension)
            if allowed and value not in allowed:
                raise bad_request(
                    f"{here}.value: [{value}] is not valid for {dimension}; "
                    f"allowable values are: {', '.join(allowed)}",
                    wire.ERROR_INVALID_VALUE,
                    "value",
                )
        count += 1
    for position, clause in enumerate(clauses):
        count += validate_filter(clause, dimensions, f"{where}.clauses[{position}]", depth + 1)
    return count


def filter_list(body: dict[str, Any], key: str) -> tuple[dict[str, Any], ...]:
    filters = body.get(key)
    if filters is None:
        return ()
    if not isinstance(filters, list):
        raise bad_request(f"{key} must be a list of filters", field_name=key)
    for position, spec in enumerate(filters):
        validate_filter(spec, FILTER_DIMENSIONS[key], f"{key}[{position}]")
    return tuple(filters)


def select_users(sandbox: SandboxState, filters: tuple[dict[str, Any], ...]) -> tuple[str, ...]:
    """The users an analytics query covers: every agent with history, departed ones too (Genesys keeps a
    deleted user's records); the staff has none."""
    users = [*sandbox.org.agent_ids(), *sandbox.org.departed_agent_ids()]
    if filters:
        users = [u for u in users if all(filter_matches(f, {"userId": u}) for f in filters)]
    return tuple(sorted(users))
