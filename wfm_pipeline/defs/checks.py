"""The data-quality checks of the table steps as Dagster asset checks: names, descriptions, blocking flags,
and the conversion of the pure evaluations (``wfm_pipeline.quality``) into ``AssetCheckResult``s.

The table steps evaluate them on the rows they just wrote, INSIDE the write transaction: when a blocking
check fails the transaction is rolled back, so bad data never replaces a good slice, and the step fails
naming the check. Non-blocking checks (the comparison with the aggregates API, which can lag) are reported
without stopping the write.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg
from duckdb import DuckDBPyConnection

from wfm_pipeline import quality, warehouse
from wfm_pipeline.errors import PipelineError


@dataclass(frozen=True)
class CheckDef:
    asset: str
    name: str
    blocking: bool
    description: str

    def spec(self, partitions_def: dg.PartitionsDefinition | None = None) -> dg.AssetCheckSpec:
        with warnings.catch_warnings():
            # partitioned checks are "preview" in Dagster 1.13; the definitions snapshot test pins them
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return dg.AssetCheckSpec(
                name=self.name,
                asset=self.asset,
                blocking=self.blocking,
                description=self.description,
                partitions_def=partitions_def,
            )


@dataclass(frozen=True)
class CheckOutcome:
    check: CheckDef
    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity.ERROR if self.check.blocking else dg.AssetCheckSeverity.WARN

    def evaluation(self, partition: str, first: date, last: date) -> dg.AssetCheckEvaluation:
        """The outcome as the evaluation of ``partition``; it was evaluated over the slice [first, last]."""
        return dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(self.check.asset),
            check_name=self.check.name,
            passed=self.passed,
            severity=self.severity,
            blocking=self.check.blocking,
            partition=partition,
            metadata={**self.metadata, "evaluated_over": f"{first.isoformat()}..{last.isoformat()}"},
        )


def outcome(check: CheckDef, evaluation: quality.Evaluation) -> CheckOutcome:
    """``evaluation`` as the outcome of ``check``; lists and mappings (e.g. the missing unit-days) are
    shown as JSON."""
    metadata = {
        key: dg.MetadataValue.json(value) if isinstance(value, list | dict) else value
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
# Not blocking: Genesys may leave out users and days nobody was scheduled (the SDK does not promise a
# row per user and day), so a unit absent on a day is a warning to look at, not lost data. That nothing
# Genesys served was dropped is row_count_matches_raw's job, and that stays blocking.
ADHERENCE_UNITS_PRESENT = CheckDef(
    "adherence_daily",
    "every_management_unit_present",
    False,
    "every management unit with agents has rows on every day of the slice (a warning: Genesys may leave "
    "out unscheduled days)",
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

# The same two checks on every table a step writes.
IDS_RESOLVE = {
    table.name: CheckDef(
        table.name,
        "ids_resolve_to_dimensions",
        True,
        "every id ("
        + ", ".join(f"{r.column} -> {r.dimension.name}" for r in table.references)
        + ") names a dimension row",
    )
    for table in warehouse.SLICED
}
ONE_UNIT_PER_USER_DAY = {
    table.name: CheckDef(
        table.name,
        "one_unit_per_user_day",
        True,
        "no (user, local day) is under two management units, however agents moved between units",
    )
    for table in warehouse.SLICED
}
ADHERENCE_TABLES = (warehouse.ADHERENCE_DAILY, warehouse.ADHERENCE_EXCEPTIONS)
USER_DETAILS_TABLES = (
    warehouse.ROUTING_STATUS_SEGMENTS,
    warehouse.PRESENCE_SEGMENTS,
    warehouse.AGENT_OCCUPANCY,
    warehouse.AGENT_MANAGEMENT_UNIT_DAYS,
)


def _relational(tables: tuple[warehouse.TableSpec, ...]) -> tuple[CheckDef, ...]:
    return tuple(check for t in tables for check in (IDS_RESOLVE[t.name], ONE_UNIT_PER_USER_DAY[t.name]))


ADHERENCE_CHECKS = (
    ADHERENCE_IN_RANGE,
    ADHERENCE_UNITS_PRESENT,
    ADHERENCE_ROW_COUNT,
    EXCEPTIONS_ROW_COUNT,
    *_relational(ADHERENCE_TABLES),
)
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
    *_relational(USER_DETAILS_TABLES),
)


def relational_outcomes(
    connection: DuckDBPyConnection, tables: tuple[warehouse.TableSpec, ...], first: date, last: date
) -> list[CheckOutcome]:
    """``ids_resolve_to_dimensions`` and ``one_unit_per_user_day`` of each of ``tables``' new slices."""
    return [
        outcome(check, evaluate(connection, table, first, last))
        for table in tables
        for check, evaluate in (
            (IDS_RESOLVE[table.name], quality.ids_resolve_to_dimensions),
            (ONE_UNIT_PER_USER_DAY[table.name], quality.one_unit_per_user_day),
        )
    ]


def adherence_outcomes(
    connection: DuckDBPyConnection, inputs: quality.AdherenceCheckInputs, first: date, last: date
) -> list[CheckOutcome]:
    evaluated = quality.evaluate_adherence(connection, inputs, first, last)
    return [
        outcome(ADHERENCE_IN_RANGE, evaluated.adherence_in_range),
        outcome(ADHERENCE_UNITS_PRESENT, evaluated.units_present),
        outcome(ADHERENCE_ROW_COUNT, evaluated.daily_row_count),
        outcome(EXCEPTIONS_ROW_COUNT, evaluated.exceptions_row_count),
        *relational_outcomes(connection, ADHERENCE_TABLES, first, last),
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
        *relational_outcomes(connection, USER_DETAILS_TABLES, first, last),
    ]
