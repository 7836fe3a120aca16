"""Views of schema ``wfm`` for what WFM analysts ask first, joining the facts to the dimensions' names.

Created (``CREATE OR REPLACE VIEW``) with the tables by ``warehouse.prepare``; each is plain SQL over the
tables, so it is always as current as they are. The README documents each column against the Genesys
screen that shows the same number.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class View:
    name: str
    description: str
    select: str  # the SELECT, with ``{wfm}`` standing for the schema's qualified name


VIEWS: tuple[View, ...] = (
    View(
        "adherence_daily_ui",
        "adherence_daily with names and the Exceptions Duration Genesys's screens show: the API's "
        "exception_duration_seconds plus exception_count times the unit's adherence exception threshold",
        """
        SELECT d.*,
               a.name AS agent_name,
               m.name AS management_unit_name,
               m.adherence_exception_threshold_seconds,
               d.exception_duration_seconds
                 + d.exception_count * coalesce(m.adherence_exception_threshold_seconds, 0)
                 AS exception_duration_ui_seconds
        FROM {wfm}.adherence_daily d
        LEFT JOIN {wfm}.agents a USING (user_id)
        LEFT JOIN {wfm}.management_units m USING (management_unit_id)
        """,
    ),
    View(
        "adherence_by_unit_week",
        "adherence and conformance per management unit per week (starting on the unit's start day of "
        "week), weighted by scheduled seconds as Genesys aggregates them",
        """
        WITH days AS (
            SELECT d.*, m.name AS management_unit_name,
                   d.local_date - CAST((isodow(d.local_date) - coalesce(
                       list_position(['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday',
                                      'Sunday'], m.start_day_of_week), 1) + 7) % 7 AS INTEGER) AS week_start
            FROM {wfm}.adherence_daily d LEFT JOIN {wfm}.management_units m USING (management_unit_id))
        SELECT management_unit_id, management_unit_name, week_start,
               count(DISTINCT user_id) AS agents,
               sum(adherence_schedule_seconds) AS adherence_schedule_seconds,
               sum(adherence_percentage * adherence_schedule_seconds)
                 / nullif(sum(adherence_schedule_seconds), 0) AS adherence_percentage,
               sum(conformance_percentage * conformance_schedule_seconds)
                 / nullif(sum(conformance_schedule_seconds), 0) AS conformance_percentage,
               sum(exception_count) AS exception_count,
               sum(exception_duration_seconds) AS exception_duration_seconds
        FROM days
        GROUP BY management_unit_id, management_unit_name, week_start
        """,
    ),
    View(
        "occupancy_by_unit_interval",
        "occupancy per management unit per interval (the grain of agent_occupancy: interval rows only); "
        "agents in no unit are the rows with a NULL unit",
        """
        SELECT o.management_unit_id, m.name AS management_unit_name, o.local_date, o.grain,
               o.interval_start, o.interval_end,
               count(DISTINCT o.user_id) AS agents,
               sum(o.interacting_seconds) AS interacting_seconds,
               sum(o.communicating_seconds) AS communicating_seconds,
               sum(o.idle_seconds) AS idle_seconds,
               sum(o.on_queue_seconds) AS on_queue_seconds,
               sum(o.interacting_seconds)
                 / nullif(sum(o.interacting_seconds + o.communicating_seconds + o.idle_seconds), 0)
                 AS occupancy
        FROM {wfm}.agent_occupancy o LEFT JOIN {wfm}.management_units m USING (management_unit_id)
        WHERE o.grain <> 'P1D'
        GROUP BY ALL
        """,
    ),
    View(
        "agent_occupancy_dense",
        "agent_occupancy's interval rows on a full grid: every interval of every agent-day that has a day "
        "row; the intervals agent_occupancy does not store (no on-queue or non-OFF_QUEUE time) with 0 "
        "seconds, NULL occupancy and NULL off_queue_seconds (not stored, so not known)",
        """
        WITH days AS (
            SELECT d.user_id, d.management_unit_id, d.local_date, d.interval_start AS day_start,
                   d.interval_end AS day_end, i.grain,
                   to_minutes(CAST(regexp_extract(i.grain, 'PT([0-9]+)M', 1) AS INTEGER)) AS step
            FROM {wfm}.agent_occupancy d
            JOIN (SELECT DISTINCT user_id, local_date, grain
                  FROM {wfm}.agent_occupancy WHERE grain <> 'P1D') i USING (user_id, local_date)
            WHERE d.grain = 'P1D'),
        grid AS (
            SELECT user_id, management_unit_id, local_date, grain, step, day_end,
                   unnest(generate_series(day_start, day_end - INTERVAL 1 MICROSECOND, step))
                     AS interval_start
            FROM days)
        SELECT g.user_id, g.management_unit_id, g.local_date, g.grain, g.interval_start,
               least(g.interval_start + g.step, g.day_end) AS interval_end,
               coalesce(o.idle_seconds, 0) AS idle_seconds,
               coalesce(o.interacting_seconds, 0) AS interacting_seconds,
               coalesce(o.communicating_seconds, 0) AS communicating_seconds,
               coalesce(o.not_responding_seconds, 0) AS not_responding_seconds,
               o.off_queue_seconds,
               coalesce(o.on_queue_seconds, 0) AS on_queue_seconds,
               o.occupancy,
               o.user_id IS NOT NULL AS stored
        FROM grid g LEFT JOIN {wfm}.agent_occupancy o
          ON o.user_id = g.user_id AND o.local_date = g.local_date AND o.grain = g.grain
          AND o.interval_start = g.interval_start
        """,
    ),
    View(
        "exception_minutes_by_activity_code",
        "minutes out of adherence per agent per local day per scheduled activity code (codes are per "
        "business unit: resolved through the agent's management unit)",
        """
        SELECT e.user_id, a.name AS agent_name, e.management_unit_id, e.local_date,
               e.scheduled_activity_code_id, c.name AS activity_code_name, e.scheduled_activity_category,
               count(*) AS exceptions,
               sum(e.duration_seconds) / 60.0 AS exception_minutes
        FROM {wfm}.adherence_exceptions e
        LEFT JOIN {wfm}.agents a USING (user_id)
        LEFT JOIN {wfm}.management_units m USING (management_unit_id)
        LEFT JOIN {wfm}.activity_codes c
          ON c.business_unit_id = m.business_unit_id AND c.activity_code_id = e.scheduled_activity_code_id
        GROUP BY ALL
        """,
    ),
)
