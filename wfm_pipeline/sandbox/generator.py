"""Per (agent, local day) generation of schedules and actual presence / routing timelines.

Everything here is a pure function of (seed, agent index, management-unit time zone, local date):
each day draws from its own ``random.Random`` seeded by a hash, so days can be generated in any order,
lazily, and reproduce bit for bit. Times are integer UTC epoch seconds.

Ownership rule: a shift (its activities, its logged-in blocks, every span inside them) belongs to the
local day it starts in, even when it runs past local midnight (night shifts). Shifts are built so that
consecutive days never overlap (see ``_SHIFT_STARTS``), so a timeline is the concatenation of days.

OFFLINE is explicit: between two logged-in blocks the agent has an OFFLINE presence span (assembled by
``timeline.py``), and there is no routing-status span while OFFLINE.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from operator import itemgetter
from typing import TypeVar

from wfm_pipeline import wire
from wfm_pipeline.sandbox.localdays import local_midnight, local_time

# Category names exactly as wire.ACTIVITY_CATEGORIES spells them.
ON_QUEUE_WORK = "OnQueueWork"
BREAK = "Break"
MEAL = "Meal"
MEETING = "Meeting"
OFF_QUEUE_WORK = "OffQueueWork"
TIME_OFF = "TimeOff"
TRAINING = "Training"

# Presence definition names (the org's catalogue, see org.py) the generator chooses from.
P_AVAILABLE = "Available"
P_AWAY = "Away"
P_BUSY = "Busy"
P_OFFLINE = "Offline"
P_ON_QUEUE = "On Queue"
P_MEAL = "Meal"
P_TRAINING = "Training"
P_MEETING = "Meeting"
P_BREAK = "Break"
P_LUNCH = "Lunch"
P_COACHING = "Coaching"
P_BACK_OFFICE = "Back Office"
P_PERSONAL = "Personal Time"

MINUTE = 60
HOUR = 3600
SHIFT_MINUTES = 510  # 8 h paid + 30 min meal

# (name, earliest base start after local midnight in seconds, share of agents). An agent's base start
# adds 0-60 min, and it varies by +-1 h per week, so starts stay within [05:00, 23:00] local: a shift
# (at most ~9.5 h logged in with overtime) never overlaps the agent's next one, never starts in the
# 02:00-03:00 DST gap, and always starts inside the local day that owns it.
_SHIFT_STARTS: tuple[tuple[str, int, float], ...] = (
    ("early", 6 * HOUR, 0.25),
    ("day", 8 * HOUR, 0.35),
    ("late", 11 * HOUR, 0.2),
    ("evening", 14 * HOUR, 0.12),
    ("night", 21 * HOUR, 0.08),
)

# Consecutive weekday pairs (Monday=0) an agent has off; weighted towards weekends.
_DAYS_OFF_PATTERNS: tuple[tuple[frozenset[int], float], ...] = (
    (frozenset({5, 6}), 0.55),
    (frozenset({6, 0}), 0.15),
    (frozenset({4, 5}), 0.1),
    (frozenset({0, 1}), 0.1),
    (frozenset({2, 3}), 0.1),
)

Span = tuple[int, int, str]  # (start, end, name): presence definition name or routing status
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ActivityRecord:
    start: int
    end: int
    category: str
    secondary_presence: str | None  # presence definition name


@dataclass(frozen=True, slots=True)
class Block:
    """One logged-in stretch: contiguous non-OFFLINE presence spans and routing spans covering it.

    The routing spans are contiguous too, so they are kept packed: their n + 1 boundaries in an
    array and their n statuses as indices into ``wire.ROUTING_STATUSES``. A day cache holding a few
    days of thousands of agents holds ~100 routing spans per agent-day; as tuples of Python ints they
    were three quarters of its memory, packed they are a tenth of that.
    """

    start: int
    end: int
    presence: tuple[Span, ...]  # name = presence definition name
    routing_cuts: array[int]
    routing_codes: bytes

    @classmethod
    def packed(cls, presence: tuple[Span, ...], routing: list[Span]) -> Block:
        cuts = array("q", (routing[0][0],))
        cuts.extend(map(itemgetter(1), routing))
        codes = bytes(map(_ROUTING_CODES.__getitem__, map(itemgetter(2), routing)))
        return cls(presence[0][0], presence[-1][1], presence, cuts, codes)

    def routing(self, start: int, end: int) -> list[Span]:
        """Routing spans overlapping [start, end), unclipped."""
        cuts, codes = self.routing_cuts, self.routing_codes
        first = max(bisect_right(cuts, start) - 1, 0)  # the first span ending after ``start``
        last = min(bisect_left(cuts, end), len(codes))  # past the last span starting before ``end``
        return [(cuts[i], cuts[i + 1], wire.ROUTING_STATUSES[codes[i]]) for i in range(first, last)]


_ROUTING_CODES = {status: code for code, status in enumerate(wire.ROUTING_STATUSES)}


@dataclass(frozen=True, slots=True)
class AgentDay:
    activities: tuple[ActivityRecord, ...]
    blocks: tuple[Block, ...]


EMPTY_DAY = AgentDay((), ())


@dataclass(frozen=True, slots=True)
class AgentProfile:
    shift_name: str
    shift_start: int  # seconds after local midnight, before weekly variation
    days_off: frozenset[int]
    reliability: float  # 0..1, scales how often this agent deviates
    handle_factor: float  # this agent's handle time relative to the median agent


def derive_seed(*parts: object) -> int:
    """A 64-bit integer from a stable hash of ``parts`` (never Python's salted ``hash``)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _weighted(rng: random.Random, options: tuple[tuple[T, float], ...]) -> T:
    roll = rng.random() * sum(weight for _, weight in options)
    for value, weight in options:
        roll -= weight
        if roll < 0:
            return value
    return options[-1][0]


@lru_cache(maxsize=16384)  # every generated day needs its agent's profile; ~200 bytes each
def agent_profile(seed: int, agent_index: int) -> AgentProfile:
    rng = random.Random(derive_seed(seed, "profile", agent_index))
    name, start, _ = _weighted(rng, tuple((option, option[2]) for option in _SHIFT_STARTS))
    days_off = _weighted(rng, _DAYS_OFF_PATTERNS)
    start += rng.choice((0, 15, 30, 45, 60)) * MINUTE
    reliability, handle_factor = rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.35)
    return AgentProfile(name, start, days_off, reliability, handle_factor)


def _week_key(day: date) -> int:
    return day.toordinal() // 7


def generate_day(seed: int, agent_index: int, tz_name: str, day: date, history_start: int) -> AgentDay:
    """Schedule and actual timelines of one agent for one local day of its management unit."""
    if local_midnight(day, tz_name) < history_start:
        return EMPTY_DAY
    profile = agent_profile(seed, agent_index)
    rng = random.Random(derive_seed(seed, "day", agent_index, day.toordinal()))
    week_rng = random.Random(derive_seed(seed, "week", agent_index, _week_key(day)))
    week_shift = week_rng.choice((-60, -30, 0, 0, 0, 30, 60)) * MINUTE
    on_vacation = week_rng.random() < 0.03
    shift_start = local_time(day, profile.shift_start + week_shift, tz_name)
    load = _Load(local_midnight(day, tz_name), profile.handle_factor)

    if day.weekday() in profile.days_off:
        if rng.random() < 0.015:  # picks up unscheduled overtime on a day off
            length = rng.randint(2, 4) * HOUR
            return AgentDay(
                (), _blocks_from_presence(rng, _login_prefix(rng, shift_start, shift_start + length), load)
            )
        return EMPTY_DAY

    if on_vacation or rng.random() < 0.03:
        activities: tuple[ActivityRecord, ...] = (
            ActivityRecord(shift_start, shift_start + 8 * HOUR, TIME_OFF, None),
        )
        if rng.random() < 0.05:  # logs in on a day off anyway, to catch up on e-mail
            end = shift_start + rng.randint(30, 120) * MINUTE
            segments = _login_prefix(rng, shift_start, end, first=P_BACK_OFFICE)
            return AgentDay(activities, _blocks_from_presence(rng, segments, load))
        return AgentDay(activities, ())

    activities = _schedule(rng, shift_start)
    if rng.random() < 0.025 * (2 - profile.reliability):  # no-show: OFFLINE while scheduled
        return AgentDay(activities, ())
    segments = _actual_presence(rng, activities, profile.reliability)
    return AgentDay(activities, _blocks_from_presence(rng, segments, load))


def _schedule(rng: random.Random, shift_start: int) -> tuple[ActivityRecord, ...]:
    """A realistic shift on a 15-minute grid: on-queue work with two breaks, a meal, sometimes
    meetings / training / off-queue work in fixed windows so that nothing overlaps."""
    inserts: list[tuple[int, int, str, str | None]] = [
        (120 + rng.choice((-15, 0, 15)), 15, BREAK, P_BREAK),
        (240 + rng.choice((0, 15, 30)), 30, MEAL, P_LUNCH if rng.random() < 0.7 else P_MEAL),
        (390 + rng.choice((-15, 0, 15)), 15, BREAK, P_BREAK),
    ]
    for window_start in (45, 315):  # [45, 105) before break 1, [315, 375) between meal and break 2
        roll = rng.random()
        if roll < 0.12:
            inserts.append((window_start, rng.choice((30, 60)), MEETING, rng.choice((P_MEETING, P_COACHING))))
        elif roll < 0.18:
            inserts.append((window_start, 60, TRAINING, P_TRAINING))
        elif roll < 0.3:
            inserts.append((window_start + 15, 30, OFF_QUEUE_WORK, P_BACK_OFFICE))
    inserts.sort()
    records: list[ActivityRecord] = []
    cursor = 0
    for offset, minutes, category, presence in inserts:
        if offset > cursor:
            records.append(_activity(shift_start, cursor, offset, ON_QUEUE_WORK, P_ON_QUEUE))
        records.append(_activity(shift_start, offset, offset + minutes, category, presence))
        cursor = offset + minutes
    records.append(_activity(shift_start, cursor, SHIFT_MINUTES, ON_QUEUE_WORK, P_ON_QUEUE))
    return tuple(records)


def _activity(base: int, start_min: int, end_min: int, category: str, presence: str | None) -> ActivityRecord:
    return ActivityRecord(base + start_min * MINUTE, base + end_min * MINUTE, category, presence)


def _actual_presence(
    rng: random.Random, activities: tuple[ActivityRecord, ...], reliability: float
) -> list[Span]:
    """What the agent actually did: the schedule with human jitter, late log-in, long breaks,
    AWAY slips, a disconnect now and then, early log-out or overtime. OFFLINE marks gaps."""
    sloppiness = 2 - reliability  # 1.0 .. 1.4
    if rng.random() < 0.25 * sloppiness:
        login = activities[0].start + rng.randint(60, 20 * MINUTE)
    else:
        login = activities[0].start - rng.randint(0, 8 * MINUTE)
    # Transition times between consecutive activities, jittered and kept increasing.
    times = [login]
    for previous, current in itertools.pairwise(activities):
        jitter = rng.randint(-90, 150)
        if previous.category in (BREAK, MEAL) and rng.random() < 0.15 * sloppiness:
            jitter += rng.randint(3 * MINUTE, 15 * MINUTE)  # long break
        times.append(max(current.start + jitter, times[-1] + MINUTE))
    end = activities[-1].end + rng.randint(-60, 300)
    roll = rng.random()
    if roll < 0.07 * sloppiness:
        end = activities[-1].end - rng.randint(10 * MINUTE, 60 * MINUTE)  # leaves early
    elif roll < 0.17:
        end = activities[-1].end + rng.randint(10 * MINUTE, 40 * MINUTE)  # unscheduled on-queue overtime
    end = max(end, times[-1] + MINUTE)
    times.append(end)  # leaving early only shortens the last activity (on-queue work, >= 75 min)
    segments: list[Span] = []
    for activity, start, stop in zip(activities, times, times[1:], strict=False):
        if stop > start:
            segments.append((start, stop, activity.secondary_presence or P_AVAILABLE))
    segments = _login_prefix_over(rng, segments)

    for start, stop, name in list(segments):
        if name == P_ON_QUEUE and stop - start > 30 * MINUTE and rng.random() < 0.12 * sloppiness:
            slip_start = rng.randint(start + 5 * MINUTE, stop - 15 * MINUTE)
            slip_name = rng.choice((P_AWAY, P_PERSONAL, P_BUSY, P_AVAILABLE))
            segments = overlay(
                segments, slip_start, slip_start + rng.randint(2 * MINUTE, 8 * MINUTE), slip_name
            )
    if rng.random() < 0.04 * sloppiness:  # dropped connection / PC crash mid-shift
        shift_start, shift_end = segments[0][0], segments[-1][1]
        if shift_end - shift_start > 2 * HOUR:
            cut = rng.randint(shift_start + HOUR, shift_end - HOUR)
            back = cut + rng.randint(3 * MINUTE, 20 * MINUTE)
            segments = overlay(segments, cut, back, P_OFFLINE)
            segments = overlay(segments, back, back + rng.randint(20, 90), P_AVAILABLE)
    return segments


def _login_prefix(rng: random.Random, start: int, end: int, first: str = P_ON_QUEUE) -> list[Span]:
    return _login_prefix_over(rng, [(start, end, first)])


def _login_prefix_over(rng: random.Random, segments: list[Span]) -> list[Span]:
    """After log-in people sit in AVAILABLE for a moment before going on queue."""
    start, end = segments[0][0], segments[-1][1]
    prefix_end = min(start + rng.randint(20, 150), end - 1)
    if prefix_end <= start or segments[0][2] == P_AVAILABLE:
        return segments
    return overlay(segments, start, prefix_end, P_AVAILABLE)


def overlay(segments: list[Span], start: int, end: int, name: str) -> list[Span]:
    """Replace [start, end) of a sorted, non-overlapping span list by ``name`` and merge equal
    neighbours. The overlay never extends the covered range."""
    lo, hi = segments[0][0], segments[-1][1]
    start, end = max(start, lo), min(end, hi)
    if end <= start:
        return segments
    result: list[Span] = []
    for s, e, n in segments:
        if e <= start or s >= end:
            result.append((s, e, n))
            continue
        if s < start:
            result.append((s, start, n))
        if not result or result[-1][1] <= start:
            result.append((start, end, name))
        if e > end:
            result.append((end, e, n))
    result.sort()
    return merge_equal(result)


def merge_equal(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for span in spans:
        if merged and merged[-1][2] == span[2] and merged[-1][1] == span[0]:
            merged[-1] = (merged[-1][0], span[1], span[2])
        else:
            merged.append(span)
    return merged


def _blocks_from_presence(rng: random.Random, segments: list[Span], load: _Load) -> tuple[Block, ...]:
    """Split a day's presence at OFFLINE spans into logged-in blocks and give each its routing."""
    blocks: list[Block] = []
    current: list[Span] = []
    for span in [*segments, (0, 0, P_OFFLINE)]:
        if span[2] == P_OFFLINE:
            if current:
                blocks.append(Block.packed(tuple(current), _routing_for(rng, current, load)))
            current = []
        else:
            current.append(span)
    return tuple(blocks)


# Contact volume by local hour: the factor stretches the IDLE wait between interactions, so
# occupancy peaks late morning and early afternoon and is low at night.
_IDLE_FACTOR_BY_HOUR = (
    4.0, 4.0, 4.0, 4.0, 4.0, 3.0, 2.2, 1.5, 1.0, 0.7, 0.6, 0.6,
    0.9, 0.7, 0.6, 0.7, 0.9, 1.2, 1.6, 2.0, 2.5, 3.0, 3.5, 4.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Load:
    """What shapes an agent's interaction rhythm on one day."""

    local_midnight: int  # epoch seconds; hours are counted from it (DST shifts them by 1 h at most)
    handle_factor: float


def _routing_for(rng: random.Random, presence: list[Span], load: _Load) -> list[Span]:
    """Routing status covering a logged-in block: cycles while ON_QUEUE, OFF_QUEUE otherwise.

    The hot loop of the generator (~60 interactions per agent-day), hence raw ``rng.random()``
    arithmetic instead of ``randint`` / ``lognormvariate``, ``a if a < b else b`` instead of ``min``
    and locals for everything the loop looks up.
    """
    draw, gauss, exp = rng.random, rng.gauss, math.exp
    idle_factors, midnight = _IDLE_FACTOR_BY_HOUR, load.local_midnight
    handle_mu = 5.6 + math.log(load.handle_factor)  # median handle time ~4.5 min x the agent's factor
    spans: list[Span] = []
    append = spans.append
    for start, end, name in presence:
        if name != P_ON_QUEUE:
            append((start, end, "OFF_QUEUE"))
            continue
        t = start
        while t < end:
            # Waiting for the next interaction, longer when the contact volume of the hour is low.
            idle = t + 5 + int(draw() * 146 * idle_factors[(t - midnight) // 3600 % 24])
            idle = idle if idle < end else end
            append((t, idle, "IDLE"))
            t = idle
            if t < end and draw() < 0.06:  # alert not answered
                ring = t + 15 + int(draw() * 31)
                ring = ring if ring < end else end
                append((t, ring, "NOT_RESPONDING"))
                t = ring
                continue
            if t < end:
                handle = int(exp(handle_mu + 0.6 * gauss()))  # log-normal: long tail
                talk = t + (handle if handle > 1 else 1)
                talk = talk if talk < end else end
                append((t, talk, "INTERACTING"))
                t = talk
            if t < end and draw() < 0.08:  # a non-ACD call on top of the queue work
                chat = t + 60 + int(draw() * 341)
                chat = chat if chat < end else end
                append((t, chat, "COMMUNICATING"))
                t = chat
    return merge_equal(spans)
