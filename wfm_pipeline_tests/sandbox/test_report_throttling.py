"""Reproduces the report: a polite client gets 429s although the per-token budget has room.

The client paces one request per (compressed) second, backs off exponentially on 429 (ignoring
Retry-After, as the report's client did) and extracts one day per user-details job, in sequence.
Under the `realistic` profile the per-token budget (300/min) is never near exhausted; the secondary
job-submission throttle is what fires, and /sandbox/stats names it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import httpx

from wfm_pipeline import wire

TIME_SCALE = 60  # one compressed second = 1/60 s of wall time
COMPRESSED_SECOND = 1 / TIME_SCALE


@dataclass
class PoliteClient:
    http: httpx.Client
    token: str
    sent: int = 0
    throttled: list[httpx.Response] = field(default_factory=list)
    successes_before_first_429: int = 0

    def call(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """One request per compressed second; on 429 plain exponential backoff (1, 2, 4 ... s), 6 tries."""
        backoff = 1.0
        for _ in range(6):
            time.sleep(COMPRESSED_SECOND)
            reply = self.http.request(
                method, path, headers={"Authorization": f"Bearer {self.token}"}, **kwargs
            )
            self.sent += 1
            if reply.status_code != 429:
                if not self.throttled:
                    self.successes_before_first_429 += 1
                return reply
            self.throttled.append(reply)
            time.sleep(backoff * COMPRESSED_SECOND)
            backoff *= 2
        return reply


def extract_day(client: PoliteClient, day: date) -> bool:
    """Submit a one-day user-details job, poll it, read its pages, delete it. False when refused."""
    start, end = day.isoformat() + "T00:00:00Z", (day + timedelta(days=1)).isoformat() + "T00:00:00Z"
    submitted = client.call("POST", wire.USER_DETAILS_JOBS_PATH, json={"interval": f"{start}/{end}"})
    if submitted.status_code != 202:
        return False
    job_id = submitted.json()["jobId"]
    for _ in range(10_000):
        state = client.call("GET", wire.USER_DETAILS_JOB_PATH.format(job_id=job_id)).json()["state"]
        if state == "FULFILLED":
            break
    cursor = None
    for _ in range(100):
        params = {"pageSize": 500, **({"cursor": cursor} if cursor else {})}
        cursor = (
            client.call("GET", wire.USER_DETAILS_JOB_RESULTS_PATH.format(job_id=job_id), params=params)
            .json()
            .get("cursor")
        )
        if not cursor:
            break
    client.call("DELETE", wire.USER_DETAILS_JOB_PATH.format(job_id=job_id))
    return True


def test_polite_client_is_throttled_by_the_job_submission_limit_not_the_token_budget(start_sandbox) -> None:
    sandbox = start_sandbox(profile="realistic", time_scale=TIME_SCALE, agents=60)
    with httpx.Client(base_url=sandbox.base_url, timeout=30) as http:
        token = http.post(
            wire.TOKEN_PATH,
            auth=(wire.SANDBOX_CLIENT_ID, wire.SANDBOX_CLIENT_SECRET),
            data={"grant_type": "client_credentials"},
        ).json()["access_token"]
        limits = http.get("/sandbox/limits").json()["limits"]
        client = PoliteClient(http, token)
        day, extracted = date(2024, 2, 1), 0
        for _ in range(limits["job_submission_quota"] + 5):
            if not extract_day(client, day):
                break
            extracted += 1
            day += timedelta(days=1)
        stats = http.get("/sandbox/stats").json()

    # The client ran a quota's worth of jobs, then every retry of the next submission was refused.
    assert extracted == limits["job_submission_quota"]
    assert client.throttled and all(r.status_code == 429 for r in client.throttled)
    # Each job took at least four paced requests (submit, poll, page, delete): the 429s came after minutes
    # of (compressed) time, not after a burst.
    assert client.successes_before_first_429 >= 4 * limits["job_submission_quota"]
    for reply in client.throttled:
        body = reply.json()
        assert body["code"] == wire.ERROR_TOO_MANY_REQUESTS_RETRY_AFTER
        assert body["contextId"] == reply.headers[wire.HEADER_CORRELATION_ID]
        assert int(reply.headers[wire.HEADER_RETRY_AFTER]) >= 1
        # The per-token headers show budget left: this is not the documented 300/min limit.
        allowed = int(reply.headers[wire.HEADER_RATELIMIT_ALLOWED])
        assert allowed == limits["token_rate_per_minute"]
        assert int(reply.headers[wire.HEADER_RATELIMIT_COUNT]) < allowed
    assert stats["rateLimited"] == {"jobs.submission.rate": len(client.throttled)}
    assert stats["jobsCreated"] == {"user_details": limits["job_submission_quota"]}
