"""What each column of schema ``wfm`` means, once per column name (a name means the same in every table).

Shown in the Dagster UI (``dagster/column_schema``); a test requires every column of every table here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

COLUMN_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        # keys and days
        "user_id": "Genesys user id (wfm.agents)",
        "management_unit_id": "WFM management unit (wfm.management_units); NULL: the agent was in no unit",
        "business_unit_id": "WFM business unit (wfm.business_units)",
        "local_date": "the management unit's local day (the partition key); for agents in no unit, the "
        "day in WFM_DEFAULT_TIME_ZONE",
        "day_start": "start of the local day, UTC",
        "observed_at": "when the extraction that listed this membership ran, UTC",
        "first_seen": "first directory snapshot that listed the row, UTC",
        "last_seen": "last directory snapshot that listed the row, UTC (older: Genesys no longer lists it)",
        # adherence
        "adherence_percentage": "Genesys adherencePercentage: share of scheduled time in adherence",
        "conformance_percentage": "Genesys conformancePercentage: on-queue time against scheduled on-queue "
        "time; can exceed 100",
        "adherence_schedule_seconds": "scheduled seconds adherence is measured against",
        "conformance_schedule_seconds": "scheduled on-queue seconds",
        "conformance_actual_seconds": "actual on-queue seconds",
        "exception_count": "adherence exceptions (out-of-adherence intervals) on the day",
        "exception_duration_seconds": "seconds out of adherence as the API reports them (the screens add "
        "the unit's threshold per exception: adherence_daily_ui)",
        "impact_seconds": "seconds out of adherence with a negative impact",
        "schedule_length_seconds": "seconds scheduled",
        "actual_length_seconds": "seconds the agent was in any presence but offline",
        "start_time": "start, UTC",
        "end_time": "end, UTC",
        "duration_seconds": "end_time - start_time in seconds",
        "scheduled_activity_category": "category of the scheduled activity (Genesys ActivityCategory)",
        "scheduled_activity_code_id": "scheduled activity code (wfm.activity_codes, of the unit's "
        "business unit)",
        "actual_activity_category": "category of what the agent did, from their presence",
        "actual_activity_code_id": "activity code of what the agent did",
        "impact": "Positive, Negative, Neutral or Unknown",
        "secondary_presence_id": "organization presence the agent was in (wfm.presence_definitions)",
        # status segments
        "routing_status": "ACD routing status (OFF_QUEUE, IDLE, INTERACTING, NOT_RESPONDING, COMMUNICATING)",
        "system_presence": "system presence (e.g. ON_QUEUE, AVAILABLE, BREAK; in presence_definitions, "
        "the definitions' own spelling)",
        "organization_presence_id": "organization presence (wfm.presence_definitions)",
        "status_start_time": "start of the status before it was clipped to the day, UTC",
        # occupancy
        "grain": "WFM_OCCUPANCY_INTERVAL (PT15M, PT30M or PT60M) for interval rows, P1D for the whole day",
        "interval_start": "start of the interval (from local midnight) or of the day, UTC",
        "interval_end": "end of the interval or of the day, UTC",
        "idle_seconds": "seconds in routing status IDLE",
        "interacting_seconds": "seconds in routing status INTERACTING",
        "communicating_seconds": "seconds in routing status COMMUNICATING",
        "not_responding_seconds": "seconds in routing status NOT_RESPONDING",
        "off_queue_seconds": "seconds in routing status OFF_QUEUE",
        "on_queue_seconds": "seconds in system presence ON_QUEUE",
        "occupancy": "interacting / (interacting + communicating + idle); NULL when that is 0",
        # dimensions
        "name": "name (a presence's en_US label)",
        "email": "e-mail address",
        "state": "active, inactive or deleted",
        "division_id": "Genesys division",
        "division_name": "the division's name",
        "department": "department",
        "title": "job title",
        "manager_id": "the user's manager (wfm.agents)",
        "time_zone": "IANA time zone",
        "start_day_of_week": "first day of the unit's week",
        "adherence_target_percent": "the unit's adherence target",
        "adherence_exception_threshold_seconds": "the unit's adherence exception threshold: exceptions "
        "shorter than this are not shown on Genesys's screens",
        "severe_alert_threshold_minutes": "minutes out of adherence before a severe alert",
        "non_on_queue_activities_equivalent": "whether non-on-queue activities count as equivalent",
        "track_on_queue_activity": "whether on-queue activity is tracked",
        "activity_code_id": "activity code id, unique within its business unit",
        "category": "activity category (Genesys ActivityCategory)",
        "active": "whether the code is active",
        "default_code": "whether it is one of Genesys's default codes",
        "length_in_minutes": "default length of the activity",
        "counts_as_paid_time": "whether the activity counts as paid time",
        "counts_as_work_time": "whether the activity counts as work time",
        "secondary_presence_ids": "organization presences that count as this activity",
        "type": "System or User",
        "deactivated": "deactivated (old facts may still name it)",
    }
)
