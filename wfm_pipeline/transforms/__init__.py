"""Pure transforms: raw Genesys records (dicts as served) -> polars DataFrames. No I/O, no Dagster."""

from wfm_pipeline.transforms.adherence import (
    ADHERENCE_DAILY_SCHEMA,
    ADHERENCE_EXCEPTIONS_SCHEMA,
    adherence_daily_rows,
    adherence_exception_rows,
    adherence_frames,
)
from wfm_pipeline.transforms.days import (
    ManagementUnitInfo,
    RawRecordError,
    day_frame,
    days_between,
    local_day_bounds,
    membership_frame,
    parse_utc,
    utc_span_of_days,
)
from wfm_pipeline.transforms.occupancy import (
    AGENT_OCCUPANCY_SCHEMA,
    DAY_GRAIN,
    INTERVAL_GRAIN,
    agent_occupancy,
)
from wfm_pipeline.transforms.segments import (
    PRESENCE_COLUMNS,
    PRESENCE_SEGMENTS_SCHEMA,
    ROUTING_STATUS_COLUMNS,
    ROUTING_STATUS_SEGMENTS_SCHEMA,
    deduplicate,
    remove_overlaps,
    segments,
    status_records,
    status_records_from_json,
)

__all__ = [
    "ADHERENCE_DAILY_SCHEMA",
    "ADHERENCE_EXCEPTIONS_SCHEMA",
    "AGENT_OCCUPANCY_SCHEMA",
    "DAY_GRAIN",
    "INTERVAL_GRAIN",
    "PRESENCE_COLUMNS",
    "PRESENCE_SEGMENTS_SCHEMA",
    "ROUTING_STATUS_COLUMNS",
    "ROUTING_STATUS_SEGMENTS_SCHEMA",
    "ManagementUnitInfo",
    "RawRecordError",
    "adherence_daily_rows",
    "adherence_exception_rows",
    "adherence_frames",
    "agent_occupancy",
    "day_frame",
    "days_between",
    "deduplicate",
    "local_day_bounds",
    "membership_frame",
    "parse_utc",
    "remove_overlaps",
    "segments",
    "status_records",
    "status_records_from_json",
    "utc_span_of_days",
]
