"""The data-quality checks of the table steps as Dagster asset checks: names, descriptions, blocking flags,
and the conversion of the pure evaluations (``wfm_pipeline.quality``) into ``AssetCheckResult``s.

The table steps evaluate them on the rows they just wrote, INSIDE the write transaction: when a blocking
check fails the transaction is rolled back, so bad data never replaces a good slice, and the step fails
naming the check. Non-blocking checks (the comparison with the aggregates API, which can lag) are reported
without stopping the write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg
from duckdb import DuckDBPyConnection

from wfm_pipeline import quality
from wfm_pipeline.errors import PipelineError


@dataclass(frozen=True)
class CheckDef:
    asset: str
    name: str
    blocking: bool
    description: str

    def spec(self) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            name=self.name, asset=self.asset, blocking=self.blocking, description=self.description
        )


@dataclass(frozen=True)
class CheckOutcome:
    check: CheckDef
    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)

    def result(self) -> dg.AssetCheckResult:
        severity = dg.AssetCheckSeverity.ERROR if self.check.blocking else dg.AssetCheckSeverity.WARN
        return dg.AssetCheckResult(
            asset_key=self.check.asset,
            check_name=self.check.name,
            passed=self.passed,
            severity=severity,
            metadata=self.metadata,
        )


def outcome(check: CheckDef, evaluation: quality.Evaluation) -> CheckOutcome:
    """``evaluation`` as the outcome of ``check``; lists (e.g. the missing unit-days) are shown as JSON."""
    metadata = {
        key: dg.MetadataValue.json(value) if isinstance(value, list) else value
        for key, value in evaluation.metadata.items()
    }
    return CheckOutcome(check, evaluation.passed, metadata)


class BlockingCheckFailed(PipelineError):
    """A blocking check failed on the rows just written; the slice was left as it was."""


def raise_on_blocking_failures(outcomes: list[CheckOutcome], first: date, last: date) -> None:
    failed = [o for o in outcomes if o.check.blocking and not o.passed]
    if failed:
        details = "; ".join(f"{o.check.asset}.{o.check.name} failed: {o.metadata}" for o in failed)
        raise BlockingCheckFailed(f"blocking check failed, slice {first}..{last} left as it was: {details}")


ADHERENCE_IN_RANGE = CheckDef(
    "adherence_daily", "adherence_between_0_and_100", True, "adherence_percentage is in [0, 100]"
)
ADHERENCE_UNITS_PRESENT = CheckDef(
    "adherence_daily",
    "every_management_unit_present",
    True,
    "every management unit with agents has rows on every day of the slice",
)
ADHERENCE_ROW_COUNT = CheckDef(
    "adherence_daily", "row_count_matches_raw", True, "rows == dayMetrics records of the raw files in range"
)
EXCEPTIONS_ROW_COUNT = CheckDef(
    "adherence_exceptions",
    "row_count_matches_raw",
    True,
    "rows == exceptionInfo records of the raw files starting in range",
)
ROUTING_NO_OVERLAP = CheckDef(
    "routing_status_segments", "no_overlapping_segments", True, "no two segments of an agent overlap"
)
ROUTING_DAY_TOTAL = CheckDef(
    "routing_status_segments",
    "day_total_within_day_length",
    True,
    "per agent and local day, segment seconds <= the day's length (24 h; 23/25 h on DST days)",
)
ROUTING_ROW_COUNT = CheckDef(
    "routing_status_segments",
    "row_count_matches_raw",
    True,
    "distinct source records == deduplicated raw records intersecting the slice",
)
PRESENCE_NO_OVERLAP = CheckDef(
    "presence_segments", "no_overlapping_segments", True, "no two segments of an agent overlap"
)
PRESENCE_DAY_TOTAL = CheckDef(
    "presence_segments",
    "day_total_within_day_length",
    True,
    "per agent and local day, segment seconds <= the day's length (24 h; 23/25 h on DST days)",
)
PRESENCE_ROW_COUNT = CheckDef(
    "presence_segments",
    "row_count_matches_raw",
    True,
    "distinct source records == deduplicated raw records intersecting the slice",
)
USER_DETAILS_DAYS_COVERED = CheckDef(
    "routing_status_segments",
    "every_unit_day_covered_by_export_windows",
    True,
    "the export jobs' windows listed by the manifests cover every (unit with agents, local day) up to "
    "dataAvailabilityDate",
)
OCCUPANCY_IN_RANGE = CheckDef(
    "agent_occupancy", "occupancy_between_0_and_1", True, "occupancy is null or in [0, 1]"
)
OCCUPANCY_MATCHES_AGGREGATES = CheckDef(
    "agent_occupancy",
    "occupancy_matches_aggregates_api",
    False,
    "30-minute seconds per status equal the aggregates API (PT30M) for a sample of agents, within 1 s",
)

ADHERENCE_CHECKS = (ADHERENCE_IN_RANGE, ADHERENCE_UNITS_PRESENT, ADHERENCE_ROW_COUNT, EXCEPTIONS_ROW_COUNT)
USER_DETAILS_CHECKS = (
    USER_DETAILS_DAYS_COVERED,
    ROUTING_NO_OVERLAP,
    ROUTING_DAY_TOTAL,
    ROUTING_ROW_COUNT,
    PRESENCE_NO_OVERLAP,
    PRESENCE_DAY_TOTAL,
    PRESENCE_ROW_COUNT,
    OCCUPANCY_IN_RANGE,
    OCCUPANCY_MATCHES_AGGREGATES,
)


def adherence_outcomes(
    connection: DuckDBPyConnection, inputs: quality.AdherenceCheckInputs, first: date, last: date
) -> list[CheckOutcome]:
    evaluated = quality.evaluate_adherence(connection, inputs, first, last)
    return [
        outcome(ADHERENCE_IN_RANGE, evaluated.adherence_in_range),
        outcome(ADHERENCE_UNITS_PRESENT, evaluated.units_present),
        outcome(ADHERENCE_ROW_COUNT, evaluated.daily_row_count),
        outcome(EXCEPTIONS_ROW_COUNT, evaluated.exceptions_row_count),
    ]


def user_details_outcomes(
    connection: DuckDBPyConnection, inputs: quality.UserDetailsCheckInputs, first: date, last: date
) -> list[CheckOutcome]:
    evaluated = quality.evaluate_user_details(connection, inputs, first, last)
    return [
        outcome(USER_DETAILS_DAYS_COVERED, evaluated.days_covered),
        outcome(ROUTING_NO_OVERLAP, evaluated.routing_no_overlap),
        outcome(ROUTING_DAY_TOTAL, evaluated.routing_day_total),
        outcome(ROUTING_ROW_COUNT, evaluated.routing_row_count),
        outcome(PRESENCE_NO_OVERLAP, evaluated.presence_no_overlap),
        outcome(PRESENCE_DAY_TOTAL, evaluated.presence_day_total),
        outcome(PRESENCE_ROW_COUNT, evaluated.presence_row_count),
        outcome(OCCUPANCY_IN_RANGE, evaluated.occupancy_in_range),
        outcome(OCCUPANCY_MATCHES_AGGREGATES, evaluated.occupancy_matches_aggregates),
    ]
