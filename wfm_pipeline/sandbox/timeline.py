"""Assemble an agent's schedule and timelines over any UTC window from lazily generated days.

Days are generated on demand through a bounded LRU cache sized by the org's agents. A user-details
job reads its (UTC day, user) documents day-major -- every user of day 1, then every user of day 2 --
and each document reads three local days of its agent (the day before, for night shifts) plus the
neighbouring log-ins: an agent's days are reused by its next document only if the cache holds ~5 days
for every agent of the job (measured), ~10 while two such jobs are paged at once. A smaller cache
evicts each day before its reuse and generates every day three to four times over.

OFFLINE representation: presence is contiguous from ``history_start`` on; the time between two
logged-in blocks is an explicit OFFLINE span. To keep every span a pure function of the data (and
not of the query window), an OFFLINE stretch is cut at fixed "epoch" boundaries every
``OFFLINE_EPOCH_SECONDS`` after ``history_start``; that also bounds how far a query has to look
back / ahead for the neighbouring log-in (an agent on a long vacation shows several OFFLINE spans).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from functools import lru_cache

from wfm_pipeline.sandbox.generator import P_OFFLINE, ActivityRecord, AgentDay, Block, Span, generate_day
from wfm_pipeline.sandbox.localdays import local_date, local_midnight

OFFLINE_EPOCH_SECONDS = 28 * 86400
DAYS_CACHED_PER_AGENT = 10  # ~3.3 kB per agent-day: 165 MB for 5,000 agents
MIN_DAY_CACHE_SIZE = 2048


def day_cache_size_for(agents: int) -> int:
    """The default day-cache size of an org of ``agents``: enough for day-major reads of all of them."""
    return max(MIN_DAY_CACHE_SIZE, DAYS_CACHED_PER_AGENT * agents)


class AgentTimelines:
    """Schedules and actual timelines of all agents of an org, generated per (agent, local day)."""

    def __init__(self, seed: int, history_start: int, cache_size: int) -> None:
        self.seed = seed
        self.history_start = history_start

        def generate(agent_index: int, tz_name: str, ordinal: int) -> AgentDay:
            return generate_day(seed, agent_index, tz_name, date.fromordinal(ordinal), history_start)

        self._day: Callable[[int, str, int], AgentDay] = lru_cache(maxsize=cache_size)(generate)

    def cache_info(self) -> object:
        return self._day.cache_info()  # type: ignore[attr-defined]

    def day(self, agent_index: int, tz_name: str, day: date) -> AgentDay:
        return self._day(agent_index, tz_name, day.toordinal())

    # --- queries -----------------------------------------------------------------------------------
    def activities(self, agent_index: int, tz_name: str, start: int, end: int) -> list[ActivityRecord]:
        """Scheduled activities overlapping [start, end), unclipped, sorted."""
        found: list[ActivityRecord] = []
        for day in self._days(tz_name, start, end):
            found.extend(
                a for a in self.day(agent_index, tz_name, day).activities if a.end > start and a.start < end
            )
        return found

    def blocks(self, agent_index: int, tz_name: str, start: int, end: int) -> list[Block]:
        """Logged-in blocks overlapping [start, end), sorted."""
        found: list[Block] = []
        for day in self._days(tz_name, start, end):
            found.extend(
                b for b in self.day(agent_index, tz_name, day).blocks if b.end > start and b.start < end
            )
        return found

    def routing(self, agent_index: int, tz_name: str, start: int, end: int) -> list[Span]:
        return [
            span
            for block in self.blocks(agent_index, tz_name, start, end)
            for span in block.routing(start, end)
        ]

    def presence(self, agent_index: int, tz_name: str, start: int, end: int) -> list[Span]:
        """Presence spans overlapping [start, end), unclipped, contiguous, OFFLINE explicit."""
        start = max(start, self.history_start)
        if end <= start:
            return []
        blocks = self.blocks(agent_index, tz_name, start, end)
        cursor = (
            self._previous_logout(agent_index, tz_name, start)
            if not blocks or blocks[0].start > start
            else None
        )
        spans: list[Span] = []
        for block in blocks:
            if cursor is not None and block.start > cursor:
                spans.extend(self._offline(cursor, block.start))
            spans.extend(s for s in block.presence if s[1] > start and s[0] < end)
            cursor = block.end
        assert cursor is not None
        if cursor < end:
            spans.extend(self._offline(cursor, self._next_login(agent_index, tz_name, end)))
        return [s for s in spans if s[1] > start and s[0] < end]

    # --- helpers -----------------------------------------------------------------------------------
    def _days(self, tz_name: str, start: int, end: int) -> Iterator[date]:
        """Local days whose shifts can overlap [start, end): a shift may run past midnight, so the
        day before the first local day is included."""
        day = local_date(start, tz_name) - timedelta(days=1)
        last = local_date(end - 1, tz_name)
        while day <= last:
            yield day
            day += timedelta(days=1)

    def _epoch_floor(self, moment: int) -> int:
        return (
            self.history_start
            + (moment - self.history_start) // OFFLINE_EPOCH_SECONDS * OFFLINE_EPOCH_SECONDS
        )

    def _previous_logout(self, agent_index: int, tz_name: str, moment: int) -> int:
        """End of the last logged-in block ending at or before ``moment``, or the epoch boundary."""
        floor = self._epoch_floor(moment)
        day = local_date(moment, tz_name)
        while local_midnight(day + timedelta(days=2), tz_name) > floor:
            ends = [b.end for b in self.day(agent_index, tz_name, day).blocks if b.end <= moment]
            if ends:
                return max(max(ends), floor)
            day -= timedelta(days=1)
        return floor

    def _next_login(self, agent_index: int, tz_name: str, moment: int) -> int:
        """Start of the first logged-in block starting at or after ``moment``, or the epoch boundary."""
        ceiling = self._epoch_floor(moment - 1) + OFFLINE_EPOCH_SECONDS
        day = local_date(moment, tz_name) - timedelta(days=1)
        while local_midnight(day, tz_name) < ceiling:
            starts = [b.start for b in self.day(agent_index, tz_name, day).blocks if b.start >= moment]
            if starts:
                return min(min(starts), ceiling)
            day += timedelta(days=1)
        return ceiling

    def _offline(self, start: int, end: int) -> list[Span]:
        """OFFLINE from ``start`` to ``end`` cut at epoch boundaries."""
        spans: list[Span] = []
        while start < end:
            cut = min(self._epoch_floor(start) + OFFLINE_EPOCH_SECONDS, end)
            spans.append((start, cut, P_OFFLINE))
            start = cut
        return spans
