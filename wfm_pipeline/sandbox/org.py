"""The sandbox org: business units, management units, agents, presence definitions, and the
per-agent schedules / timelines / adherence / aggregates the HTTP layer serves.

Deterministic from ``OrgConfig.seed``: ids are UUIDs derived from hashes, timelines are generated
lazily per (agent, local day) (see ``timeline.py``). Building an org costs O(1) in the number of
agents; only ``agent_ids()`` materialises the id list, on demand.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from wfm_pipeline import wire
from wfm_pipeline.sandbox import generator as gen
from wfm_pipeline.sandbox.localdays import ceil_epoch, from_epoch, local_midnight, to_epoch
from wfm_pipeline.sandbox.timeline import AgentTimelines, day_cache_size_for

_WFM_TO_ANALYTICS = dict(zip(wire.WFM_SYSTEM_PRESENCES, wire.ANALYTICS_SYSTEM_PRESENCES, strict=True))
_ANALYTICS_TO_WFM = {v: k for k, v in _WFM_TO_ANALYTICS.items()}


def analytics_presence(wfm_system_presence: str) -> str:
    """WFM spelling ("OnQueue") -> analytics spelling ("ON_QUEUE")."""
    return _WFM_TO_ANALYTICS[wfm_system_presence]


def wfm_presence(analytics_system_presence: str) -> str:
    """Analytics spelling ("ON_QUEUE") -> WFM spelling ("OnQueue")."""
    return _ANALYTICS_TO_WFM[analytics_system_presence]


@dataclass(frozen=True)
class OrgConfig:
    seed: int = 7
    agents: int = 300
    history_start: date = date(2023, 1, 1)  # no data before this (UTC midnight)
    # Generated (agent, day) entries kept in memory; None sizes the cache by the number of agents.
    day_cache_size: int | None = None


@dataclass(frozen=True)
class BusinessUnit:
    id: str
    name: str
    division_id: str


@dataclass(frozen=True)
class ManagementUnit:
    id: str
    name: str
    business_unit_id: str
    time_zone: str
    start_day_of_week: str


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    email: str
    management_unit_id: str


@dataclass(frozen=True)
class PresenceDefinition:
    id: str
    name: str
    system_presence: str  # WFM spelling, e.g. "OnQueue"
    type: str = "System"  # "System" | "User" (OrganizationPresenceDefinition.type)

    @property
    def analytics_system_presence(self) -> str:
        return analytics_presence(self.system_presence)


@dataclass(frozen=True)
class Activity:
    start: datetime
    end: datetime
    category: str
    activity_code_id: str
    secondary_presence_id: str | None


@dataclass(frozen=True)
class PresenceSpan:
    start: datetime
    end: datetime
    system_presence: str  # analytics enum, e.g. "ON_QUEUE"
    organization_presence_id: str


@dataclass(frozen=True)
class RoutingSpan:
    start: datetime
    end: datetime
    routing_status: str


# The epoch-second forms of Activity and PresenceSpan (pages and adherence files skip the datetimes):
# (start, end, category, activity code id, secondary presence id) of a scheduled activity;
ActivityTuple = tuple[int, int, str, str, str | None]
# (start, end, analytics system presence, organization presence id) of a presence span.
PresenceTuple = tuple[int, int, str, str]


# Activity code ids follow Genesys' default activity codes: one per category, id = its position.
ACTIVITY_CODE_IDS = {category: str(i) for i, category in enumerate(wire.ACTIVITY_CATEGORIES)}

# (business unit, [(management unit, IANA zone, start day of week, share of agents)]).
_ORG_LAYOUT: tuple[tuple[str, tuple[tuple[str, str, str, float], ...]], ...] = (
    ("Americas", (
        ("Chicago Inbound Care", "America/Chicago", "Sunday", 0.24),
        ("Denver Sales", "America/Denver", "Monday", 0.1),
    )),
    ("EMEA", (
        ("London Service Desk", "Europe/London", "Monday", 0.18),
        ("Berlin Technical Support", "Europe/Berlin", "Monday", 0.14),
    )),
    ("APAC", (
        ("Bengaluru Customer Care", "Asia/Kolkata", "Monday", 0.2),
        ("Sydney Premium Support", "Australia/Sydney", "Monday", 0.14),
    )),
)  # fmt: skip

# Presence definition catalogue: (name the generator uses, WFM system presence, System|User).
_PRESENCE_CATALOGUE: tuple[tuple[str, str, str], ...] = (
    (gen.P_AVAILABLE, "Available", "System"),
    (gen.P_AWAY, "Away", "System"),
    (gen.P_BUSY, "Busy", "System"),
    (gen.P_OFFLINE, "Offline", "System"),
    ("Idle", "Idle", "System"),
    (gen.P_ON_QUEUE, "OnQueue", "System"),
    (gen.P_MEAL, "Meal", "System"),
    (gen.P_TRAINING, "Training", "System"),
    (gen.P_MEETING, "Meeting", "System"),
    (gen.P_BREAK, "Break", "System"),
    (gen.P_LUNCH, "Meal", "User"),
    (gen.P_COACHING, "Meeting", "User"),
    (gen.P_BACK_OFFICE, "Busy", "User"),
    (gen.P_PERSONAL, "Away", "User"),
)

_FIRST_NAMES = (
    "Ava", "Ben", "Chloe", "Diego", "Elif", "Farah", "Gustav", "Hana", "Ivan", "Jade", "Kofi", "Lena",
    "Mateo", "Nadia", "Oscar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Ximena",
    "Yusuf", "Zoe", "Arjun", "Bianca", "Carlos", "Dana",
)  # fmt: skip
_LAST_NAMES = (
    "Adams", "Bauer", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Iyer", "Jensen", "Kim",
    "Lopez", "Murphy", "Nakamura", "Okafor", "Patel", "Quist", "Rossi", "Schmidt", "Tanaka", "Usman",
    "Varga", "Walsh", "Xu", "Yilmaz", "Zhang", "Novak", "Silva", "Moreau", "Kowalski",
)  # fmt: skip


def stable_uuid(seed: int, *parts: object) -> str:
    digest = hashlib.blake2b("|".join(map(str, (seed, *parts))).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


class SandboxOrg:
    """A deterministic synthetic Genesys Cloud org (see module docstring)."""

    def __init__(self, config: OrgConfig) -> None:
        if config.agents < 1:
            raise ValueError("an org needs at least one agent")
        self.config = config
        seed = config.seed
        self._history_start = local_midnight(config.history_start, "UTC")
        cache_size = config.day_cache_size
        self._timelines = AgentTimelines(
            seed, self._history_start, day_cache_size_for(config.agents) if cache_size is None else cache_size
        )

        business_units: list[BusinessUnit] = []
        management_units: list[ManagementUnit] = []
        shares: list[float] = []
        for bu_name, mus in _ORG_LAYOUT:
            bu = BusinessUnit(
                stable_uuid(seed, "bu", bu_name), bu_name, stable_uuid(seed, "division", "Home")
            )
            business_units.append(bu)
            for mu_name, tz_name, start_day, share in mus:
                mu_id = stable_uuid(seed, "mu", mu_name)
                management_units.append(ManagementUnit(mu_id, mu_name, bu.id, tz_name, start_day))
                shares.append(share)
        self.business_units = tuple(business_units)
        self.management_units = tuple(management_units)
        self._mu_by_id = {mu.id: i for i, mu in enumerate(self.management_units)}
        # Agents are assigned to MUs in contiguous index ranges proportional to the shares.
        total = sum(shares)
        cumulative = 0.0
        self._mu_first_index: list[int] = []
        for share in shares:
            self._mu_first_index.append(round(cumulative / total * config.agents))
            cumulative += share
        self._mu_first_index.append(config.agents)

        self.presence_definitions = tuple(
            PresenceDefinition(stable_uuid(seed, "presence", name), name, system, kind)
            for name, system, kind in _PRESENCE_CATALOGUE
        )
        self._presence_fields = {
            p.name: (p.analytics_system_presence, p.id) for p in self.presence_definitions
        }
        self._lookup_by_presence_id = {p.id: str(i) for i, p in enumerate(self.presence_definitions)}
        # Agent ids embed their index (xor a seed-derived mask) so that id -> agent is O(1) without a table.
        self._index_mask = int.from_bytes(
            hashlib.blake2b(f"{seed}|agent-mask".encode(), digest_size=4).digest()
        )
        self._located: dict[str, tuple[int, str]] = {}

    # --- directory ---------------------------------------------------------------------------------
    def management_unit(self, mu_id: str) -> ManagementUnit | None:
        index = self._mu_by_id.get(mu_id)
        return None if index is None else self.management_units[index]

    def agent_ids(self, mu_id: str | None = None) -> list[str]:
        if mu_id is None:
            return [self._agent_id(i) for i in range(self.config.agents)]
        index = self._mu_by_id.get(mu_id)
        if index is None:
            return []
        return [
            self._agent_id(i) for i in range(self._mu_first_index[index], self._mu_first_index[index + 1])
        ]

    def agent(self, user_id: str) -> Agent | None:
        index = self._agent_index(user_id)
        if index is None:
            return None
        first = _FIRST_NAMES[gen.derive_seed(self.config.seed, "first", index) % len(_FIRST_NAMES)]
        last = _LAST_NAMES[gen.derive_seed(self.config.seed, "last", index) % len(_LAST_NAMES)]
        return Agent(
            id=user_id,
            name=f"{first} {last}",
            email=f"{first.lower()}.{last.lower()}.{index}@sandbox.example.com",
            management_unit_id=self.management_units[self._mu_index_of(index)].id,
        )

    def presence_definition(self, presence_id: str) -> PresenceDefinition | None:
        return next((p for p in self.presence_definitions if p.id == presence_id), None)

    def secondary_presence_lookup(self) -> dict[str, str]:
        """lookupId ("0", "1", ...) -> organization presence id, for every presence definition."""
        return {lookup: presence_id for presence_id, lookup in self._lookup_by_presence_id.items()}

    def lookup_id(self, presence_id: str) -> str:
        return self._lookup_by_presence_id[presence_id]

    # --- truth timelines ---------------------------------------------------------------------------
    def schedule(self, user_id: str, start: datetime, end: datetime) -> list[Activity]:
        return [
            Activity(from_epoch(s), from_epoch(e), category, code_id, presence_id)
            for s, e, category, code_id, presence_id in self.schedule_epochs(
                user_id, to_epoch(start), ceil_epoch(end)
            )
        ]

    def presence(self, user_id: str, start: datetime, end: datetime) -> list[PresenceSpan]:
        return [
            PresenceSpan(from_epoch(s), from_epoch(e), system, presence_id)
            for s, e, system, presence_id in self.presence_epochs(user_id, to_epoch(start), ceil_epoch(end))
        ]

    def routing(self, user_id: str, start: datetime, end: datetime) -> list[RoutingSpan]:
        return [
            RoutingSpan(from_epoch(s), from_epoch(e), status)
            for s, e, status in self.routing_epochs(user_id, to_epoch(start), ceil_epoch(end))
        ]

    def schedule_epochs(self, user_id: str, start: int, end: int) -> list[ActivityTuple]:
        """``schedule`` over [start, end) in epoch seconds."""
        located = self._locate(user_id)
        if located is None:
            return []
        index, tz_name = located
        fields = self._presence_fields
        return [
            (
                a.start,
                a.end,
                a.category,
                ACTIVITY_CODE_IDS[a.category],
                None if a.secondary_presence is None else fields[a.secondary_presence][1],
            )
            for a in self._timelines.activities(index, tz_name, start, end)
        ]

    def presence_epochs(self, user_id: str, start: int, end: int) -> list[PresenceTuple]:
        """``presence`` over [start, end) in epoch seconds."""
        located = self._locate(user_id)
        if located is None:
            return []
        index, tz_name = located
        fields = self._presence_fields
        return [(s, e, *fields[name]) for s, e, name in self._timelines.presence(index, tz_name, start, end)]

    def routing_epochs(self, user_id: str, start: int, end: int) -> list[gen.Span]:
        """``routing`` over [start, end) in epoch seconds."""
        located = self._locate(user_id)
        if located is None:
            return []
        index, tz_name = located
        return self._timelines.routing(index, tz_name, start, end)

    # --- internals ---------------------------------------------------------------------------------
    @property
    def timelines(self) -> AgentTimelines:
        """The lazy generator (exposed for tests and benchmarks: cache statistics)."""
        return self._timelines

    def _agent_id(self, index: int) -> str:
        head = hashlib.blake2b(f"{self.config.seed}|agent|{index}".encode(), digest_size=12).digest()
        tail = (index ^ self._index_mask).to_bytes(4, "big")
        return str(uuid.UUID(bytes=head + tail, version=4))

    def _agent_index(self, user_id: str) -> int | None:
        try:
            parsed = uuid.UUID(user_id)
        except (ValueError, AttributeError, TypeError):
            return None
        index = int.from_bytes(parsed.bytes[12:], "big") ^ self._index_mask
        if index >= self.config.agents or self._agent_id(index) != str(parsed):
            return None
        return index

    def _mu_index_of(self, agent_index: int) -> int:
        for mu_index in range(len(self.management_units)):
            if agent_index < self._mu_first_index[mu_index + 1]:
                return mu_index
        raise AssertionError("agent index out of range")

    def _locate(self, user_id: str) -> tuple[int, str] | None:
        """(agent index, time zone) of a user id. Remembered for ids in their canonical spelling (at most
        one per agent), because a page locates every user twice and parsing plus verifying an id costs
        a hash."""
        located = self._located.get(user_id)
        if located is not None:
            return located
        index = self._agent_index(user_id)
        if index is None:
            return None
        located = index, self.management_units[self._mu_index_of(index)].time_zone
        if user_id == self._agent_id(index):
            self._located[user_id] = located
        return located
