"""Pure transforms: raw Genesys records (dicts as served) -> polars DataFrames. No I/O, no Dagster."""

from wfm_pipeline.transforms._adherence import (
    ADHERENCE_DAILY_SCHEMA,
    ADHERENCE_EXCEPTIONS_SCHEMA,
    adherence_daily_rows,
    adherence_document,
    adherence_exception_rows,
)
from wfm_pipeline.transforms._days import (
    ManagementUnitInfo,
    day_frame,
    membership_frame,
)
from wfm_pipeline.transforms._errors import RawRecordError, TransformError, UnknownValueError
from wfm_pipeline.transforms._occupancy import (
    AGENT_OCCUPANCY_SCHEMA,
    DAY_GRAIN,
    INTERVAL_GRAIN,
    agent_occupancy,
)
from wfm_pipeline.transforms._segments import (
    PRESENCE_COLUMNS,
    PRESENCE_SEGMENTS_SCHEMA,
    PRIMARY_PRESENCE,
    ROUTING_STATUS,
    ROUTING_STATUS_COLUMNS,
    ROUTING_STATUS_SEGMENTS_SCHEMA,
    StatusRecordKind,
    record_counts,
    segments,
    status_records_from_json,
)
from wfm_pipeline.transforms._stitch import (
    CUT_PIECES_SCHEMA,
    EXCEPTION_COUNT_CORRECTIONS_SCHEMA,
    FileExceptions,
    StitchedExceptions,
    adherence_exception_parts,
    correct_day_metrics,
    stitch,
)

__all__ = [
    "ADHERENCE_DAILY_SCHEMA",
    "ADHERENCE_EXCEPTIONS_SCHEMA",
    "AGENT_OCCUPANCY_SCHEMA",
    "CUT_PIECES_SCHEMA",
    "DAY_GRAIN",
    "EXCEPTION_COUNT_CORRECTIONS_SCHEMA",
    "INTERVAL_GRAIN",
    "PRESENCE_COLUMNS",
    "PRESENCE_SEGMENTS_SCHEMA",
    "PRIMARY_PRESENCE",
    "ROUTING_STATUS",
    "ROUTING_STATUS_COLUMNS",
    "ROUTING_STATUS_SEGMENTS_SCHEMA",
    "FileExceptions",
    "ManagementUnitInfo",
    "RawRecordError",
    "StatusRecordKind",
    "StitchedExceptions",
    "TransformError",
    "UnknownValueError",
    "adherence_daily_rows",
    "adherence_document",
    "adherence_exception_parts",
    "adherence_exception_rows",
    "agent_occupancy",
    "correct_day_metrics",
    "day_frame",
    "membership_frame",
    "record_counts",
    "segments",
    "status_records_from_json",
    "stitch",
]
