"""The sandbox serves exactly the bytes it served before its generation was made faster.

The digests below were computed with the code of commit 5a04eb9 (before the speed-up) by running this
module's ``served_digests()`` against an untouched checkout of it; any change to what a user-details
page, an adherence download, an aggregates answer or a truth timeline contains changes a digest.
The cases cover DST days in every hemisphere, partial first and last days, desc order, presence and
routing filters, a data-availability cut-off with a fractional second, several pages of odd sizes, a
window before the org's history starts, and a cache too small to hold anything (eviction must not
change answers).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from wfm_pipeline.sandbox.aggregates import user_aggregates
from wfm_pipeline.sandbox.errors import dumps, format_epoch, format_ts
from wfm_pipeline.sandbox.jobs import (
    AdherenceItem,
    AdherenceJob,
    UserDetailsJob,
    presence_record,
    routing_record,
    user_details_document_count,
    user_details_page,
)
from wfm_pipeline.sandbox.jobs import adherence_document as served_adherence_document
from wfm_pipeline.sandbox.localdays import from_epoch
from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg

SEED, AGENTS = 13, 24
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)
UNKNOWN_USER = "00000000-0000-4000-8000-000000000000"
METRICS = ("tAgentRoutingStatus", "tSystemPresence", "tOrganizationPresence")

GOLDEN = {
    "user_details": "a5e62bb87607abbe5aa2c69146a7a75651e81a19ce97ab08adf305ddf1004e73",
    "adherence": "5d49ec82914e3655ea227063cdb71654ea1581c9730a2674bbeddec468dde3f8",
    "aggregates": "175bf1fd5544e81fc9d74fe2f32a63b03ee6107012fea0d1a89d6638456e1f54",
    "truth": "baab2767036dc0298aadecde79ae2afb3a6e10d2a6f4a895e63ba02cd5963a39",
}


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _user_details_job(org: SandboxOrg, interval: tuple[str, str], **fields: Any) -> UserDetailsJob:
    start, end = _utc(interval[0]), _utc(interval[1])
    values: dict[str, Any] = {
        "user_ids": tuple(org.agent_ids()),
        "presence_filters": (),
        "routing_status_filters": (),
        "order": "asc",
        "availability": FAR_FUTURE,
    }
    values.update(fields)
    return UserDetailsJob(
        id="golden",
        client_id="golden",
        start=start,
        end=end,
        submitted_at=start,
        pending_at=start,
        ready_at=start,
        expires_at=FAR_FUTURE,
        **values,
    )


def _user_details_jobs(org: SandboxOrg) -> Iterator[tuple[UserDetailsJob, int]]:
    """(job, page size) pairs."""
    users = org.agent_ids()
    lunch = next(p.id for p in org.presence_definitions if p.name == "Lunch")
    on_queue_or_lunch = {
        "type": "and",
        "predicates": [{"dimension": "userId", "value": users[0]}],  # another record kind's dimension
        "clauses": [
            {
                "type": "or",
                "predicates": [
                    {"dimension": "systemPresence", "value": "ON_QUEUE"},
                    {"dimension": "organizationPresenceId", "value": lunch},
                ],
            }
        ],
    }
    working = {
        "type": "and",
        "clauses": [
            {
                "type": "or",
                "predicates": [
                    {"dimension": "routingStatus", "value": "IDLE"},
                    {"dimension": "routingStatus", "value": "INTERACTING"},
                ],
            },
            {"type": "and", "predicates": [{"dimension": "routingStatus", "operator": "exists"}]},
        ],
    }
    # US spring-forward (Mar 10), an unknown user among the known ones.
    yield _user_details_job(org, ("2024-03-08", "2024-03-12"), user_ids=(*users, UNKNOWN_USER)), 7
    # EU fall-back (Oct 27), partial days, desc, filters, a cut-off a fraction of a second after a
    # status starts (the status is served: it starts before the cut-off).
    yield (
        _user_details_job(
            org,
            ("2024-10-25T06:30:00", "2024-10-29T13:15:00"),
            user_ids=tuple(users[::3]),
            presence_filters=(on_queue_or_lunch,),
            routing_status_filters=(working,),
            order="desc",
            availability=_utc("2024-10-28T17:16:19.250000"),
        ),
        11,
    )
    # EU spring-forward (Mar 31), the availability cut-off (again just after a status starts) inside
    # the job, one big page.
    yield (
        _user_details_job(org, ("2024-03-30", "2024-04-02"), availability=_utc("2024-04-01T08:59:40.5")),
        1000,
    )
    # Sydney fall-back (Apr 7) with a presence filter only, desc.
    yield (
        _user_details_job(
            org,
            ("2024-04-05T12:00:00", "2024-04-08"),
            presence_filters=(
                {"type": "and", "predicates": [{"dimension": "systemPresence", "value": "BREAK"}]},
            ),
            order="desc",
        ),
        25,
    )
    # Before history starts (2023-01-01): OFFLINE from history start, no routing before it.
    yield _user_details_job(org, ("2022-12-30", "2023-01-03"), user_ids=tuple(users[:9])), 5


def _user_details_bytes(org: SandboxOrg) -> Iterator[bytes]:
    for job, page_size in _user_details_jobs(org):
        total = user_details_document_count(job)
        for offset in range(0, total + page_size, page_size):  # the last page is past the end
            yield dumps({"userDetails": user_details_page(org, job, offset, page_size)})


def _adherence_items(org: SandboxOrg) -> Iterator[tuple[str, AdherenceItem]]:
    """(job time zone, item) pairs."""
    for mu in org.management_units:
        zone = ZoneInfo(mu.time_zone)
        members = tuple(org.agent_ids(mu.id))
        week = datetime(2024, 3, 8, tzinfo=zone).astimezone(UTC)
        yield mu.time_zone, AdherenceItem(mu.id, week, week + timedelta(days=7), members, True, True)
        month = _utc("2024-10-10T05:00:00")
        yield "UTC", AdherenceItem(mu.id, month, month + timedelta(days=31), members[:2], False, False)
        yield (
            "Europe/London",
            AdherenceItem(mu.id, _utc("2024-03-31T01:30:00"), _utc("2024-04-02"), members[1:3], True, False),
        )
        yield (
            "Australia/Sydney",
            AdherenceItem(mu.id, _utc("2022-12-29"), _utc("2023-01-03"), members[:1], False, True),
        )


def _adherence_bytes(org: SandboxOrg) -> Iterator[bytes]:
    for time_zone, item in _adherence_items(org):
        job = AdherenceJob("golden", "golden", time_zone, (item,), FAR_FUTURE, FAR_FUTURE, FAR_FUTURE, 60.0)
        yield dumps(served_adherence_document(org, job, item))


def _aggregates_bytes(org: SandboxOrg) -> Iterator[bytes]:
    start, end = _utc("2024-03-08"), _utc("2024-03-12T07:00:00")
    for user_id in org.agent_ids()[::5]:
        for granularity in (timedelta(minutes=30), timedelta(days=1), None):
            for time_zone in ("America/Chicago", "Australia/Sydney"):
                yield dumps(user_aggregates(org, user_id, start, end, granularity, time_zone, METRICS))


def _truth_bytes(org: SandboxOrg) -> Iterator[bytes]:
    start, end = _utc("2024-10-24T03:00:00"), _utc("2024-11-05")  # both fall-backs
    for user_id in org.agent_ids()[::4]:
        schedule = [
            (str(a.start), str(a.end), a.category, a.activity_code_id, a.secondary_presence_id)
            for a in org.schedule(user_id, start, end)
        ]
        yield dumps(schedule)
        yield dumps([presence_record(span) for span in org.presence(user_id, start, end)])
        yield dumps([routing_record(span) for span in org.routing(user_id, start, end)])


def _digest(chunks: Iterator[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(len(chunk).to_bytes(8, "big"))
        digest.update(chunk)
    return digest.hexdigest()


def served_digests(day_cache_size: int | None = None) -> dict[str, str]:
    # The bytes of the generator alone: the real-org behaviours added since (README "Behaviours": here,
    # Genesys's system presence ids; user-details jobs default to closed records) have tests of their own.
    config = OrgConfig(seed=SEED, agents=AGENTS, fixed_system_presence_ids=False)
    if day_cache_size is not None:
        config = OrgConfig(
            seed=SEED, agents=AGENTS, day_cache_size=day_cache_size, fixed_system_presence_ids=False
        )
    org = SandboxOrg(config)
    return {
        "user_details": _digest(_user_details_bytes(org)),
        "adherence": _digest(_adherence_bytes(org)),
        "aggregates": _digest(_aggregates_bytes(org)),
        "truth": _digest(_truth_bytes(org)),
    }


@pytest.mark.parametrize("day_cache_size", [None, 3], ids=["default-cache", "tiny-cache"])
def test_served_bytes_equal_those_before_the_speed_up(day_cache_size: int | None) -> None:
    assert served_digests(day_cache_size) == GOLDEN


def test_format_epoch_is_format_ts_of_the_whole_second() -> None:
    """Around midnights, a leap day, a year end, the epoch itself, and every second of one day."""
    moments = [
        int(_utc(text).timestamp()) + delta
        for text in ("1970-01-01", "2024-02-29", "2024-03-01", "2024-12-31T23:59:59", "2038-01-19T03:14:07")
        for delta in range(-2, 3)
    ]
    moments += range(int(_utc("2024-10-27").timestamp()), int(_utc("2024-10-28").timestamp()))
    assert [format_epoch(m) for m in moments] == [format_ts(from_epoch(m)) for m in moments]


if __name__ == "__main__":
    print(served_digests())
