"""Same seed -> identical bytes; other seed -> different org; results independent of query order,
cache state and query window (every span is a pure function of the data)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from wfm_pipeline.sandbox.adherence import adherence_user_result
from wfm_pipeline.sandbox.aggregates import user_aggregates
from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg

WEEK_START = datetime(2024, 3, 4, tzinfo=UTC)
WEEK_END = WEEK_START + timedelta(days=7)
METRICS = ("tAgentRoutingStatus", "tSystemPresence", "tOrganizationPresence")


def _agents_per_mu(org: SandboxOrg) -> list[str]:
    return [org.agent_ids(mu.id)[i] for mu in org.management_units for i in (0, 3)]


def _dump(org: SandboxOrg) -> bytes:
    """Everything the server serves, as canonical JSON bytes."""
    document: dict = {
        "businessUnits": [dataclasses.asdict(bu) for bu in org.business_units],
        "managementUnits": [dataclasses.asdict(mu) for mu in org.management_units],
        "presenceDefinitions": [dataclasses.asdict(p) for p in org.presence_definitions],
        "divisions": [dataclasses.asdict(d) for d in org.divisions],
        "directory": [dataclasses.asdict(org.user(u)) for u in org.user_ids()],  # type: ignore[arg-type]
        "activityCodes": [
            dataclasses.asdict(c) for bu in org.business_units for c in org.activity_codes(bu.id)
        ],
        "lookup": org.secondary_presence_lookup(),
        "users": {},
    }
    for user_id in _agents_per_mu(org):
        mu = org.management_unit(org.user(user_id).management_unit_id)  # type: ignore[union-attr,arg-type]
        assert mu is not None
        document["users"][user_id] = {
            "schedule": [dataclasses.asdict(a) for a in org.schedule(user_id, WEEK_START, WEEK_END)],
            "presence": [dataclasses.asdict(p) for p in org.presence(user_id, WEEK_START, WEEK_END)],
            "routing": [dataclasses.asdict(r) for r in org.routing(user_id, WEEK_START, WEEK_END)],
            "adherence": adherence_user_result(
                org,
                user_id,
                WEEK_START,
                WEEK_END,
                mu.time_zone,
                include_exceptions=True,
                include_actuals=True,
            ),
            "aggregates": user_aggregates(
                org, user_id, WEEK_START, WEEK_END, timedelta(minutes=30), mu.time_zone, METRICS
            ),
        }
    return json.dumps(document, default=str, sort_keys=True).encode()


def test_same_seed_gives_identical_bytes() -> None:
    first = _dump(SandboxOrg(OrgConfig(seed=11, agents=60)))
    second = _dump(SandboxOrg(OrgConfig(seed=11, agents=60)))
    assert first == second
    assert len(first) > 100_000  # the dump really contains timelines, not just empty lists


def test_other_seed_differs_in_ids_and_timelines() -> None:
    a = SandboxOrg(OrgConfig(seed=11, agents=60))
    b = SandboxOrg(OrgConfig(seed=12, agents=60))
    assert set(a.agent_ids()).isdisjoint(b.agent_ids())
    assert {mu.id for mu in a.management_units}.isdisjoint(mu.id for mu in b.management_units)
    shapes_a = [
        [(p.start, p.end, p.system_presence) for p in a.presence(u, WEEK_START, WEEK_END)]
        for u in a.agent_ids()[:5]
    ]
    shapes_b = [
        [(p.start, p.end, p.system_presence) for p in b.presence(u, WEEK_START, WEEK_END)]
        for u in b.agent_ids()[:5]
    ]
    assert shapes_a != shapes_b


def test_results_do_not_depend_on_query_order_or_cache_size() -> None:
    warm = SandboxOrg(OrgConfig(seed=5, agents=40))
    cold = SandboxOrg(OrgConfig(seed=5, agents=40, day_cache_size=2))
    user_id = warm.agent_ids()[17]
    # The cold org answers days in reverse order with a cache too small to remember anything.
    days = [WEEK_START + timedelta(days=i) for i in range(7)]
    warm_presence = [warm.presence(user_id, d, d + timedelta(days=1)) for d in days]
    cold_presence = [cold.presence(user_id, d, d + timedelta(days=1)) for d in reversed(days)][::-1]
    assert warm_presence == cold_presence
    assert warm.schedule(user_id, WEEK_START, WEEK_END) == cold.schedule(user_id, WEEK_START, WEEK_END)


def test_spans_do_not_depend_on_the_query_window() -> None:
    """Presence and routing over five weeks equal the de-duplicated union of answers for overlapping
    windows cut at odd times; a span seen by two windows is the same span in both."""
    org = SandboxOrg(OrgConfig(seed=3, agents=30))
    start, end = WEEK_START, WEEK_START + timedelta(days=35)
    windows = [
        (start + timedelta(hours=29 * i), min(start + timedelta(hours=29 * i + 31), end)) for i in range(29)
    ]
    assert windows[-1][1] == end
    for user_id in org.agent_ids()[::7]:
        for query in (org.presence, org.routing):
            seen: dict = {}
            for window_start, window_end in windows:
                for span in query(user_id, window_start, window_end):
                    assert seen.setdefault(span.start, span) == span
            assert query(user_id, start, end) == [seen[k] for k in sorted(seen)]


def test_offline_stretches_are_cut_only_at_fixed_epochs() -> None:
    """OFFLINE is explicit; a long OFFLINE stretch is cut only at fixed 28-day epochs counted from
    history_start, never at a query boundary."""
    org = SandboxOrg(OrgConfig(seed=3, agents=30))
    history_start = datetime(2023, 1, 1, tzinfo=UTC)
    cuts = 0
    for user_id in org.agent_ids()[::3]:
        presence = org.presence(user_id, WEEK_START, WEEK_START + timedelta(days=60))
        for previous, current in itertools.pairwise(presence):
            if previous.system_presence == current.system_presence == "OFFLINE":
                assert (current.start - history_start) % timedelta(days=28) == timedelta(0)
                cuts += 1
    assert cuts > 0  # the 60 days contain epoch boundaries (2024-03-24, 2024-04-21)


_DIGEST_SCRIPT = """
import hashlib
from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg
from wfm_pipeline_tests.sandbox.test_org_determinism import _dump
print(hashlib.sha256(_dump(SandboxOrg(OrgConfig(seed=11, agents=60)))).hexdigest())
"""


def test_identical_across_processes_and_hash_seeds() -> None:
    """The server runs in a subprocess: nothing may depend on Python's per-process hash salt."""
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        completed = subprocess.run(
            [sys.executable, "-c", _DIGEST_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        digests.add(completed.stdout.strip())
    assert digests == {hashlib.sha256(_dump(SandboxOrg(OrgConfig(seed=11, agents=60)))).hexdigest()}
