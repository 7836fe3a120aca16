"""The sandbox org: divisions, business units, management units, users (agents, departed agents,
supervisors), presence definitions, activity codes, and the per-agent schedules / timelines / adherence /
aggregates the HTTP layer serves.

Deterministic from ``OrgConfig.seed``: ids are UUIDs derived from hashes, timelines are generated
lazily per (agent, local day) (see ``timeline.py``). Building an org costs O(1) in the number of
agents; only ``agent_ids()`` / ``user_ids()`` materialise id lists, on demand.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from wfm_pipeline import wire
from wfm_pipeline.sandbox import generator as gen
from wfm_pipeline.sandbox.localdays import ceil_epoch, from_epoch, local_midnight, to_epoch, zone
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
    agents: int = 300  # agents in management units; departed agents come on top
    history_start: date = date(2023, 1, 1)  # no data before this (UTC midnight)
    # Generated (agent, day) entries kept in memory; None sizes the cache by the number of agents.
    day_cache_size: int | None = None
    # Agents who left the org (state deleted, in no unit, history until their departure); None: 2 % of
    # ``agents``, at least one from 20 agents on (see ``default_departed_agents``).
    departed_agents: int | None = None
    # The zone of the local days of users in no management unit (departed agents); None: the first
    # business unit's time zone.
    default_time_zone: str | None = None
    retention_days: int = 1825  # AnalyticsDataRetentionResponse.retentionDays
    # The System presence definitions carry Genesys's ids (the same in every org); False: seed-derived ones.
    fixed_system_presence_ids: bool = True


def default_departed_agents(agents: int) -> int:
    """Departed agents of an org of ``agents`` when the config names none: a small share, at least one
    from 20 agents on (so every org a test of the directory uses has one)."""
    return max(1, round(agents * 0.02)) if agents >= 20 else 0


@dataclass(frozen=True)
class Division:
    id: str
    name: str
    description: str
    home_division: bool


@dataclass(frozen=True)
class BusinessUnit:
    id: str
    name: str
    division_id: str
    time_zone: str  # BusinessUnitSettingsResponse: its first management unit's
    start_day_of_week: str


@dataclass(frozen=True)
class AdherenceSettings:
    """``ManagementUnitSettingsResponse.adherence``. The served historical adherence is not filtered by
    these (every exception is reported); a consumer applies them."""

    exception_threshold_seconds: int
    severe_alert_threshold_minutes: int
    target_percent: int
    non_on_queue_activities_equivalent: bool
    track_on_queue_activity: bool
    ignored_activity_categories: tuple[str, ...]


@dataclass(frozen=True)
class ManagementUnit:
    id: str
    name: str
    business_unit_id: str
    time_zone: str
    start_day_of_week: str
    adherence: AdherenceSettings
    supervisor_id: str  # the unit's supervisor: every member's manager


@dataclass(frozen=True)
class User:
    """A user of the directory: an agent in a unit (active or inactive), a departed agent (deleted, in no
    unit), or staff without timelines (a supervisor per unit, the head of operations)."""

    id: str
    name: str
    email: str
    state: str  # one of wire.USER_STATES
    division_id: str
    department: str
    title: str
    manager_id: str | None
    management_unit_id: str | None  # None: in no management unit
    time_zone: str | None  # the zone of its schedule and timelines; None: it has none (staff)
    departed_at: datetime | None  # departed agents: their history ends here (local midnight)


@dataclass(frozen=True)
class PresenceDefinition:
    id: str
    name: str
    system_presence: str  # WFM spelling, e.g. "OnQueue"
    type: str = "System"  # "System" | "User" (OrganizationPresenceDefinition.type)
    deactivated: bool = False

    @property
    def analytics_system_presence(self) -> str:
        return analytics_presence(self.system_presence)


@dataclass(frozen=True)
class ActivityCode:
    """``BusinessUnitActivityCode``; ``secondary_presence_ids`` are presence definition ids."""

    id: str
    name: str
    category: str
    active: bool
    default_code: bool
    length_in_minutes: int
    counts_as_paid_time: bool
    counts_as_work_time: bool
    secondary_presence_ids: tuple[str, ...]


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

# Presence definition catalogue: (name the generator uses, WFM system presence, System|User, deactivated).
# "Personal Time" was deactivated after agents had used it (and still do: the generator picks it), so its
# id is in the history while a listing of active definitions leaves it out.
_PRESENCE_CATALOGUE: tuple[tuple[str, str, str, bool], ...] = (
    (gen.P_AVAILABLE, "Available", "System", False),
    (gen.P_AWAY, "Away", "System", False),
    (gen.P_BUSY, "Busy", "System", False),
    (gen.P_OFFLINE, "Offline", "System", False),
    ("Idle", "Idle", "System", False),
    (gen.P_ON_QUEUE, "OnQueue", "System", False),
    (gen.P_MEAL, "Meal", "System", False),
    (gen.P_TRAINING, "Training", "System", False),
    (gen.P_MEETING, "Meeting", "System", False),
    (gen.P_BREAK, "Break", "System", False),
    (gen.P_LUNCH, "Meal", "User", False),
    (gen.P_COACHING, "Meeting", "User", False),
    (gen.P_BACK_OFFICE, "Busy", "User", False),
    (gen.P_PERSONAL, "Away", "User", True),
)

# Genesys's primary (type System) presence definitions have the same id in every org, by WFM system
# presence: from a /api/v2/presencedefinitions listing captured from an org (the test fixture of the
# Genesys Terraform provider's organization_presence_definition package); Available, Away, Busy, Meal,
# Break, On Queue and Offline are also the ids other public integrations hard-code.
GENESYS_SYSTEM_PRESENCE_IDS: Mapping[str, str] = {
    "Available": "6a3af858-942f-489d-9700-5f9bcdcdae9b",
    "Away": "5e5c5c66-ea97-4e7f-ac41-6424784829f2",
    "Busy": "31fe3bac-dea6-44b7-bed7-47f91660a1a0",
    "Offline": "ccf3c10a-aa2c-4845-8e8d-f59fa48c58e5",
    "Idle": "7ffa01cd-7866-4ad7-8faa-31e11b42f51f",
    "OnQueue": "e08eaf1b-ee47-4fa9-a231-1200e284798f",
    "Meal": "3fd96123-badb-4f69-bc03-1b1ccc6d8014",
    "Training": "d2390a99-8546-bad9-8f0a-219548e8aeb0",
    "Meeting": "bbdff279-7ae1-48ea-bade-7831d7234c64",
    "Break": "227b37e2-f1d0-4dd0-8f50-badd7cf6d158",
}

# Genesys' default activity codes (id = ACTIVITY_CODE_IDS[category]) of every business unit: (category,
# name, length in minutes, counts as paid time, counts as work time, the presences the generator schedules
# the category with). "Unscheduled" is an adherence category, no activity code category (the SDK's
# BusinessUnitActivityCode.category does not know it), so it has no code.
_DEFAULT_ACTIVITY_CODES: tuple[tuple[str, str, int, bool, bool, tuple[str, ...]], ...] = (
    ("OnQueueWork", "On Queue Work", 0, True, True, (gen.P_ON_QUEUE,)),
    ("Break", "Break", 15, True, False, (gen.P_BREAK,)),
    ("Meal", "Meal", 30, False, False, (gen.P_LUNCH, gen.P_MEAL)),
    ("Meeting", "Meeting", 30, True, True, (gen.P_MEETING, gen.P_COACHING)),
    ("OffQueueWork", "Off Queue Work", 0, True, True, (gen.P_BACK_OFFICE,)),
    ("TimeOff", "Time Off", 480, True, False, ()),
    ("Training", "Training", 60, True, True, (gen.P_TRAINING,)),
    ("Unavailable", "Unavailable", 0, False, False, ()),
)
# Codes each business unit added (schedules do not use them): (name, category, active, length, presence).
_CUSTOM_ACTIVITY_CODES: tuple[tuple[str, str, bool, int, str], ...] = (
    ("Team Huddle", "Meeting", True, 15, gen.P_COACHING),
    ("Legacy Project", "OffQueueWork", False, 60, gen.P_BACK_OFFICE),
)

HOME_DIVISION_NAME = "Home"
AGENT_TITLE = "Customer Service Agent"
SUPERVISOR_TITLE = "Team Supervisor"
HEAD_TITLE = "Head of Customer Operations"
OPERATIONS_DEPARTMENT = "Customer Operations"  # the head's, and departed agents' (they left their unit)
# Every INACTIVE_EVERY-th agent (by index, offset by the seed) is inactive: ~3 %, still in its unit,
# its timelines unchanged.
INACTIVE_EVERY = 32
# A departed agent leaves at local midnight (default time zone) of history start + this many days, plus
# a seed-derived share of DEPARTURE_SPREAD_DAYS.
DEPARTURE_AFTER_DAYS = 60
DEPARTURE_SPREAD_DAYS = 306

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

# (agent index, time zone of its days, epoch second its history ends at: None unless departed).
_Located = tuple[int, str, int | None]


def stable_uuid(seed: int, *parts: object) -> str:
    digest = hashlib.blake2b("|".join(map(str, (seed, *parts))).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _adherence_settings(unit_index: int, seed: int) -> AdherenceSettings:
    """Thresholds differ per unit: 60-300 s in steps of 30 (5 is invertible mod 9, so six consecutive
    units get six different thresholds)."""
    return AdherenceSettings(
        exception_threshold_seconds=60 + 30 * ((5 * unit_index + seed) % 9),
        severe_alert_threshold_minutes=(10, 15, 20)[unit_index % 3],
        target_percent=(85, 90, 95)[unit_index % 3],
        non_on_queue_activities_equivalent=unit_index % 2 == 1,
        track_on_queue_activity=True,
        ignored_activity_categories=("Unavailable",) if unit_index % 2 else (),
    )


def _layout(
    seed: int,
) -> tuple[tuple[Division, ...], tuple[BusinessUnit, ...], tuple[ManagementUnit, ...], list[float]]:
    """Divisions (the home division first, then one per business unit), business units, management units
    and each unit's share of the agents, from ``_ORG_LAYOUT``."""
    divisions = [
        Division(
            stable_uuid(seed, "division", HOME_DIVISION_NAME), HOME_DIVISION_NAME, "The home division", True
        )
    ]
    business_units: list[BusinessUnit] = []
    management_units: list[ManagementUnit] = []
    shares: list[float] = []
    for bu_name, mus in _ORG_LAYOUT:
        division = Division(
            stable_uuid(seed, "division", bu_name), bu_name, f"{bu_name} contact centers", False
        )
        divisions.append(division)
        _, first_zone, first_start_day, _ = mus[0]
        bu = BusinessUnit(stable_uuid(seed, "bu", bu_name), bu_name, division.id, first_zone, first_start_day)
        business_units.append(bu)
        for mu_name, tz_name, start_day, share in mus:
            management_units.append(
                ManagementUnit(
                    stable_uuid(seed, "mu", mu_name),
                    mu_name,
                    bu.id,
                    tz_name,
                    start_day,
                    _adherence_settings(len(management_units), seed),
                    stable_uuid(seed, "supervisor", mu_name),
                )
            )
            shares.append(share)
    return tuple(divisions), tuple(business_units), tuple(management_units), shares


class SandboxOrg:
    """A deterministic synthetic Genesys Cloud org (see module docstring).

    Agent indices: ``[0, agents)`` are the agents in management units (ranges per unit), ``[agents,
    agents + departed)`` the departed ones, so adding departed agents changes nothing of the others.
    """

    def __init__(self, config: OrgConfig) -> None:
        if config.agents < 1:
            raise ValueError("an org needs at least one agent")
        departed = (
            default_departed_agents(config.agents)
            if config.departed_agents is None
            else config.departed_agents
        )
        if departed < 0 or config.retention_days < 1:
            raise ValueError("departed agents must be >= 0 and retention days >= 1")
        self.config = config
        self.departed_agents = departed
        seed = config.seed
        self._history_start = local_midnight(config.history_start, "UTC")
        cache_size = config.day_cache_size
        self._timelines = AgentTimelines(
            seed, self._history_start, day_cache_size_for(config.agents) if cache_size is None else cache_size
        )

        def presence_id(name: str, system: str, kind: str) -> str:
            if kind == "System" and config.fixed_system_presence_ids:
                return GENESYS_SYSTEM_PRESENCE_IDS[system]
            return stable_uuid(seed, "presence", name)

        self.presence_definitions = tuple(
            PresenceDefinition(presence_id(name, system, kind), name, system, kind, deactivated)
            for name, system, kind, deactivated in _PRESENCE_CATALOGUE
        )
        self._presence_fields = {
            p.name: (p.analytics_system_presence, p.id) for p in self.presence_definitions
        }
        self._lookup_by_presence_id = {p.id: str(i) for i, p in enumerate(self.presence_definitions)}

        self.divisions, self.business_units, self.management_units, shares = _layout(seed)
        self._mu_by_id = {mu.id: i for i, mu in enumerate(self.management_units)}
        self._bu_by_id = {bu.id: bu for bu in self.business_units}
        self.default_time_zone = config.default_time_zone or self.business_units[0].time_zone
        zone(self.default_time_zone)  # an unknown zone fails here, not at the first departed agent's query
        self._activity_codes = {bu.id: self._business_unit_activity_codes(bu) for bu in self.business_units}
        staff = self._staff_users(self.divisions[0].id)
        self._head_id = staff[-1].id
        self._staff = {user.id: user for user in staff}
        # Agents are assigned to MUs in contiguous index ranges proportional to the shares.
        total = sum(shares)
        cumulative = 0.0
        self._mu_first_index: list[int] = []
        for share in shares:
            self._mu_first_index.append(round(cumulative / total * config.agents))
            cumulative += share
        self._mu_first_index.append(config.agents)

        # Agent ids embed their index (xor a seed-derived mask) so that id -> agent is O(1) without a table.
        self._index_mask = int.from_bytes(
            hashlib.blake2b(f"{seed}|agent-mask".encode(), digest_size=4).digest()
        )
        self._located: dict[str, _Located] = {}

    # --- directory ---------------------------------------------------------------------------------
    def management_unit(self, mu_id: str) -> ManagementUnit | None:
        index = self._mu_by_id.get(mu_id)
        return None if index is None else self.management_units[index]

    def business_unit(self, bu_id: str) -> BusinessUnit | None:
        return self._bu_by_id.get(bu_id)

    def activity_codes(self, bu_id: str) -> tuple[ActivityCode, ...]:
        """The activity codes of a business unit (none for an unknown one)."""
        return self._activity_codes.get(bu_id, ())

    def agent_ids(self, mu_id: str | None = None) -> list[str]:
        """The agents in management units (active and inactive): all of them, or one unit's members."""
        if mu_id is None:
            return [self._agent_id(i) for i in range(self.config.agents)]
        index = self._mu_by_id.get(mu_id)
        if index is None:
            return []
        return [
            self._agent_id(i) for i in range(self._mu_first_index[index], self._mu_first_index[index + 1])
        ]

    def departed_agent_ids(self) -> list[str]:
        """Agents who left: deleted, in no unit, with history until they departed."""
        first = self.config.agents
        return [self._agent_id(i) for i in range(first, first + self.departed_agents)]

    def user_ids(self, states: Collection[str] = wire.USER_STATES) -> list[str]:
        """Every user in one of ``states``, in directory order: agents by index (departed ones last), then
        the staff (a supervisor per unit, the head of operations)."""
        agents = range(self.config.agents + self.departed_agents)
        ids = [self._agent_id(i) for i in agents if self._agent_state(i) in states]
        return ids + [user.id for user in self._staff.values() if user.state in states]

    def user(self, user_id: str) -> User | None:
        staff = self._staff.get(user_id)
        if staff is not None:
            return staff
        index = self._agent_index(user_id)
        return None if index is None else self._agent_user(index, user_id)

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

    # A departed agent's spans are those of [start, min(end, departure)), their ends cut at the departure
    # (a shift running past it too): nothing starts or lasts after it.
    def schedule_epochs(self, user_id: str, start: int, end: int) -> list[ActivityTuple]:
        """``schedule`` over [start, end) in epoch seconds."""
        located = self._locate(user_id)
        if located is None:
            return []
        index, tz_name, history_end = located
        end = end if history_end is None else min(end, history_end)
        fields = self._presence_fields
        return [
            (
                a.start,
                a.end if history_end is None else min(a.end, history_end),
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
        index, tz_name, history_end = located
        fields = self._presence_fields
        if history_end is None:
            return [
                (s, e, *fields[name]) for s, e, name in self._timelines.presence(index, tz_name, start, end)
            ]
        return [
            (s, min(e, history_end), *fields[name])
            for s, e, name in self._timelines.presence(index, tz_name, start, min(end, history_end))
        ]

    def routing_epochs(self, user_id: str, start: int, end: int) -> list[gen.Span]:
        """``routing`` over [start, end) in epoch seconds."""
        located = self._locate(user_id)
        if located is None:
            return []
        index, tz_name, history_end = located
        if history_end is None:
            return self._timelines.routing(index, tz_name, start, end)
        return [
            (s, min(e, history_end), status)
            for s, e, status in self._timelines.routing(index, tz_name, start, min(end, history_end))
        ]

    # --- internals ---------------------------------------------------------------------------------
    @property
    def timelines(self) -> AgentTimelines:
        """The lazy generator (exposed for tests and benchmarks: cache statistics)."""
        return self._timelines

    def _business_unit_activity_codes(self, bu: BusinessUnit) -> tuple[ActivityCode, ...]:
        fields = self._presence_fields
        defaults = [
            ActivityCode(
                id=ACTIVITY_CODE_IDS[category],
                name=name,
                category=category,
                active=True,
                default_code=True,
                length_in_minutes=minutes,
                counts_as_paid_time=paid,
                counts_as_work_time=work,
                secondary_presence_ids=tuple(fields[p][1] for p in presences),
            )
            for category, name, minutes, paid, work, presences in _DEFAULT_ACTIVITY_CODES
        ]
        custom = [
            ActivityCode(
                id=stable_uuid(self.config.seed, "activity-code", bu.name, name),
                name=name,
                category=category,
                active=active,
                default_code=False,
                length_in_minutes=minutes,
                counts_as_paid_time=True,
                counts_as_work_time=True,
                secondary_presence_ids=(fields[presence][1],),
            )
            for name, category, active, minutes, presence in _CUSTOM_ACTIVITY_CODES
        ]
        return (*defaults, *custom)

    def _person_name(self, *key: object) -> tuple[str, str]:
        seed = self.config.seed
        first = _FIRST_NAMES[gen.derive_seed(seed, "first", *key) % len(_FIRST_NAMES)]
        last = _LAST_NAMES[gen.derive_seed(seed, "last", *key) % len(_LAST_NAMES)]
        return first, last

    def _staff_users(self, home_division_id: str) -> list[User]:
        """A supervisor per unit (its members' manager) and the head of operations (the supervisors')."""
        first, last = self._person_name("head")
        head = User(
            id=stable_uuid(self.config.seed, "user", "head"),
            name=f"{first} {last}",
            email=f"{first.lower()}.{last.lower()}.head@sandbox.example.com",
            state="active",
            division_id=home_division_id,
            department=OPERATIONS_DEPARTMENT,
            title=HEAD_TITLE,
            manager_id=None,
            management_unit_id=None,
            time_zone=None,
            departed_at=None,
        )
        supervisors = []
        for mu_index, mu in enumerate(self.management_units):
            first, last = self._person_name("supervisor", mu_index)
            supervisors.append(
                User(
                    id=mu.supervisor_id,
                    name=f"{first} {last}",
                    email=f"{first.lower()}.{last.lower()}.supervisor{mu_index}@sandbox.example.com",
                    state="active",
                    division_id=self._bu_by_id[mu.business_unit_id].division_id,
                    department=mu.name,
                    title=SUPERVISOR_TITLE,
                    manager_id=head.id,
                    management_unit_id=None,  # WFM units list agents; the supervisor manages them
                    time_zone=None,
                    departed_at=None,
                )
            )
        return [*supervisors, head]

    def _agent_state(self, index: int) -> str:
        if index >= self.config.agents:
            return "deleted"
        return "inactive" if index % INACTIVE_EVERY == self.config.seed % INACTIVE_EVERY else "active"

    def _agent_user(self, index: int, user_id: str) -> User:
        first, last = self._person_name(index)
        mu = None if index >= self.config.agents else self.management_units[self._mu_index_of(index)]
        return User(
            id=user_id,
            name=f"{first} {last}",
            email=f"{first.lower()}.{last.lower()}.{index}@sandbox.example.com",
            state=self._agent_state(index),
            division_id=self.divisions[0].id
            if mu is None
            else self._bu_by_id[mu.business_unit_id].division_id,
            department=OPERATIONS_DEPARTMENT if mu is None else mu.name,
            title=AGENT_TITLE,
            manager_id=self._head_id if mu is None else mu.supervisor_id,
            management_unit_id=None if mu is None else mu.id,
            time_zone=self.default_time_zone if mu is None else mu.time_zone,
            departed_at=None if mu is not None else from_epoch(self._departed_at(index)),
        )

    def _departed_at(self, index: int) -> int:
        days = (
            DEPARTURE_AFTER_DAYS
            + gen.derive_seed(self.config.seed, "departure", index) % DEPARTURE_SPREAD_DAYS
        )
        return local_midnight(self.config.history_start + timedelta(days=days), self.default_time_zone)

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
        if index >= self.config.agents + self.departed_agents or self._agent_id(index) != str(parsed):
            return None
        return index

    def _mu_index_of(self, agent_index: int) -> int:
        for mu_index in range(len(self.management_units)):
            if agent_index < self._mu_first_index[mu_index + 1]:
                return mu_index
        raise AssertionError("agent index out of range")

    def _locate(self, user_id: str) -> _Located | None:
        """(agent index, time zone, history end) of a user id. Remembered for ids in their canonical
        spelling (at most one per agent), because a page locates every user twice and parsing plus
        verifying an id costs a hash."""
        located = self._located.get(user_id)
        if located is not None:
            return located
        index = self._agent_index(user_id)
        if index is None:
            return None
        if index >= self.config.agents:
            located = index, self.default_time_zone, self._departed_at(index)
        else:
            located = index, self.management_units[self._mu_index_of(index)].time_zone, None
        if user_id == self._agent_id(index):
            self._located[user_id] = located
        return located
