"""Independent expectations from the sandbox truth routes (schedules + timelines), per DESIGN.md rules.

Written from the rules, not from the pipeline or sandbox code: a boundary sweep over schedule and presence
spans for adherence, and plain interval arithmetic for occupancy.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from wfm_pipeline import wire

DAY_COUNTERS = (
    "adherent",
    "adherence_schedule_seconds",
    "conformance_schedule_seconds",
    "conformance_actual_seconds",
    "exception_count",
    "exception_duration_seconds",
    "impact_seconds",
    "schedule_length_seconds",
    "actual_length_seconds",
)
ROUTING_COLUMNS = {
    "IDLE": "idle_seconds",
    "INTERACTING": "interacting_seconds",
    "COMMUNICATING": "communicating_seconds",
    "NOT_RESPONDING": "not_responding_seconds",
    "OFF_QUEUE": "off_queue_seconds",
}


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
    return start, end


class Truth:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60.0)
        self.org = self.http.get("/sandbox/truth/org").json()

    def agents(self) -> list[tuple[str, str, str]]:
        """(user id, management unit id, time zone) of the agents in a unit."""
        return [(u, mu["id"], mu["timeZone"]) for mu in self.org["managementUnits"] for u in mu["userIds"]]

    def departed(self) -> list[str]:
        """The agents who left: in no unit, their history still served."""
        return [user["id"] for user in self.org.get("departedAgents", [])]

    def directory(self) -> dict[str, Any]:
        response = self.http.get("/sandbox/truth/directory")
        response.raise_for_status()
        return response.json()

    def _get(self, route: str, user_id: str, start: datetime, end: datetime) -> Any:
        params = {"userId": user_id, "start": start.isoformat(), "end": end.isoformat()}
        response = self.http.get(route, params=params)
        response.raise_for_status()
        return response.json()

    def schedule(self, user_id: str, start: datetime, end: datetime) -> list[dict]:
        return self._get("/sandbox/truth/schedule", user_id, start, end)["activities"]

    def timeline(self, user_id: str, start: datetime, end: datetime) -> dict:
        return self._get("/sandbox/truth/timeline", user_id, start, end)


def _covering(spans: list[tuple[datetime, datetime, Any]], a: datetime) -> Any:
    for start, end, value in spans:
        if start <= a < end:
            return value
    return None


def expected_adherence(truth: Truth, days: list[date]) -> dict[tuple[str, date], dict[str, Any]]:
    """(user, local date) -> dayMetrics-equivalent values, with a day of context on both sides."""
    out: dict[tuple[str, date], dict[str, Any]] = {}
    for user_id, _, zone in truth.agents():
        lo = day_bounds(days[0] - timedelta(days=1), zone)[0]
        hi = day_bounds(days[-1] + timedelta(days=1), zone)[1]
        schedule = [
            (ts(a["startTime"]), ts(a["endTime"]), a["category"]) for a in truth.schedule(user_id, lo, hi)
        ]
        presence = [
            (ts(p["startTime"]), ts(p["endTime"]), p["systemPresence"])
            for p in truth.timeline(user_id, lo, hi)["primaryPresence"]
        ]
        cuts = {lo, hi} | {d for day in days for d in day_bounds(day, zone)}
        for start, end, _ in schedule + presence:
            cuts |= {min(max(start, lo), hi), min(max(end, lo), hi)}
        points = sorted(cuts)
        previous_exception: tuple[str, str | None] | None = None
        for a, b in itertools.pairwise(points):
            seconds = (b - a).total_seconds()
            scheduled = _covering(schedule, a)
            presence_now = _covering(presence, a)
            actual = wire.ACTIVITY_CATEGORY_OF_PRESENCE.get(presence_now) if presence_now else None
            non_adherent = scheduled is not None and scheduled != "TimeOff" and actual != scheduled
            state = (scheduled, actual) if non_adherent else None
            local = a.astimezone(ZoneInfo(zone)).date()
            if local in days:
                m = out.setdefault((user_id, local), dict.fromkeys(DAY_COUNTERS, 0))
                if scheduled is not None:
                    m["schedule_length_seconds"] += seconds
                if scheduled is not None and scheduled != "TimeOff":
                    m["adherence_schedule_seconds"] += seconds
                    m["adherent"] += seconds if actual == scheduled else 0
                if scheduled == "OnQueueWork":
                    m["conformance_schedule_seconds"] += seconds
                if presence_now == "ON_QUEUE":
                    m["conformance_actual_seconds"] += seconds
                if presence_now is not None and presence_now != "OFFLINE":
                    m["actual_length_seconds"] += seconds
                if non_adherent:
                    m["exception_duration_seconds"] += seconds
                    m["exception_count"] += state != previous_exception
                    if scheduled == "OnQueueWork" and actual != "OnQueueWork":
                        m["impact_seconds"] += seconds
            previous_exception = state
    for metrics in out.values():
        adherent = metrics.pop("adherent")
        schedule_seconds = metrics["adherence_schedule_seconds"]
        conformance = metrics["conformance_schedule_seconds"]
        metrics["adherence_percentage"] = (
            100.0 if not schedule_seconds else round(100 * adherent / schedule_seconds, 2)
        )
        metrics["conformance_percentage"] = (
            100.0 if not conformance else round(100 * metrics["conformance_actual_seconds"] / conformance, 2)
        )
    return out


def _overlap(start: datetime, end: datetime, low: datetime, high: datetime) -> float:
    return max(0.0, (min(end, high) - max(start, low)).total_seconds())


# What the pipeline does with agents in no unit when WFM_DEFAULT_TIME_ZONE is not set (README): the zone of
# the business units when they agree, else UTC. The sandbox's business units are in several zones.
UNASSIGNED_ZONE = "UTC"


def expected_occupancy(
    truth: Truth, days: list[date], minutes: int = 30, unassigned_zone: str = UNASSIGNED_ZONE
) -> dict[tuple[str, str, datetime], dict[str, float | None]]:
    """(user, grain, interval start) -> seconds per status and occupancy, for ``minutes`` intervals from
    local midnight and whole local days; only intervals with some on-queue / non-OFF_QUEUE time. Agents in
    no unit (departed) count in the local days of ``unassigned_zone``."""
    out: dict[tuple[str, str, datetime], dict[str, float | None]] = {}
    located = [(user_id, zone) for user_id, _, zone in truth.agents()]
    located += [(user_id, unassigned_zone) for user_id in truth.departed()]
    for user_id, zone in located:
        lo, hi = day_bounds(days[0], zone)[0], day_bounds(days[-1], zone)[1]
        timeline = truth.timeline(user_id, lo - timedelta(days=1), hi + timedelta(days=1))
        routing = [
            (ts(r["startTime"]), ts(r["endTime"]), r["routingStatus"]) for r in timeline["routingStatus"]
        ]
        on_queue = [
            (ts(p["startTime"]), ts(p["endTime"]))
            for p in timeline["primaryPresence"]
            if p["systemPresence"] == "ON_QUEUE"
        ]
        for day in days:
            day_start, day_end = day_bounds(day, zone)
            windows = [("P1D", day_start, day_end)]
            cursor = day_start
            while cursor < day_end:
                windows.append((f"PT{minutes}M", cursor, min(cursor + timedelta(minutes=minutes), day_end)))
                cursor += timedelta(minutes=minutes)
            for grain, low, high in windows:
                row: dict[str, float | None] = dict.fromkeys(ROUTING_COLUMNS.values(), 0.0)
                for start, end, status in routing:
                    row[ROUTING_COLUMNS[status]] += _overlap(start, end, low, high)  # type: ignore[operator]
                row["on_queue_seconds"] = sum(_overlap(s, e, low, high) for s, e in on_queue)
                worked = sum(v for k, v in row.items() if k != "off_queue_seconds")  # type: ignore[misc]
                if not worked:
                    continue
                denominator = row["interacting_seconds"] + row["communicating_seconds"] + row["idle_seconds"]  # type: ignore[operator]
                row["occupancy"] = row["interacting_seconds"] / denominator if denominator else None  # type: ignore[operator]
                out[(user_id, grain, low)] = row
    return out
