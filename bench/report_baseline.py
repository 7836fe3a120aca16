"""The report's approach, as the baseline: one request per second, plain exponential backoff on 429
(Retry-After ignored), one job per day and kind, in sequence. Runs against its own `realistic` sandbox at
the same time scale, for a bounded wall time; progress is extrapolated to the whole range, and says so."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from wfm_pipeline import wire
from wfm_pipeline.sandbox.launcher import SandboxProcess

FIRST_DAY = date(2024, 1, 1)
BACKOFF_CAP = 64.0  # compressed seconds


class GaveUp(Exception):
    pass


@dataclass
class PacedClient:
    http: httpx.Client
    token: str
    second: float  # one compressed second, in wall seconds
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    jobs: int = 0
    deadline: float = field(default=float("inf"))

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Retries a 429 until the time budget runs out, as the report's pipeline did."""
        backoff, attempt = 1.0, 0
        while True:
            if time.monotonic() > self.deadline:
                raise TimeoutError
            time.sleep(self.second)  # "one request per second"
            reply = self.http.request(
                method, path, headers={"Authorization": f"Bearer {self.token}"}, **kwargs
            )
            self.requests += 1
            if attempt:
                self.retries += 1
            if reply.status_code != 429:
                return reply
            self.throttled += 1
            time.sleep(backoff * self.second)
            backoff = min(backoff * 2, BACKOFF_CAP)
            attempt += 1

    def wait(self, path: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            body = self.call("GET", path).json()
            if done(body):
                return body


def extract_day(client: PacedClient, day: date, units: list[dict[str, Any]]) -> None:
    for zone in sorted({unit["timeZone"] for unit in units}):
        tz = ZoneInfo(zone)
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        end = start + timedelta(days=1)
        items = [
            {
                "managementUnitId": u["id"],
                "startDate": start.isoformat(),
                "endDate": end.isoformat(),
                "includeExceptions": True,
            }
            for u in units
            if u["timeZone"] == zone
        ]
        reply = client.call("POST", wire.ADHERENCE_BULK_PATH, json={"timeZone": zone, "items": items})
        if reply.status_code != 202:
            raise GaveUp(f"adherence job refused: {reply.status_code}")
        client.jobs += 1
        job_path = wire.ADHERENCE_BULK_JOB_PATH.format(job_id=reply.json()["job"]["id"])
        job = client.wait(job_path, lambda b: b["job"]["status"] != "Processing")
        for url in job.get("downloadUrls", []):
            client.requests += 1
            client.http.get(url)
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo("UTC"))
    interval = f"{start.isoformat()}/{(start + timedelta(days=1)).isoformat()}"
    reply = client.call("POST", wire.USER_DETAILS_JOBS_PATH, json={"interval": interval})
    if reply.status_code != 202:
        raise GaveUp(f"user details job refused: {reply.status_code}")
    client.jobs += 1
    job_id = reply.json()["jobId"]
    client.wait(
        wire.USER_DETAILS_JOB_PATH.format(job_id=job_id),
        lambda b: b["state"] in wire.ASYNC_QUERY_TERMINAL_STATES,
    )
    cursor = None
    while True:
        params = {"pageSize": 100, **({"cursor": cursor} if cursor else {})}
        cursor = (
            client.call("GET", wire.USER_DETAILS_JOB_RESULTS_PATH.format(job_id=job_id), params=params)
            .json()
            .get("cursor")
        )
        if not cursor:
            break
    client.call("DELETE", wire.USER_DETAILS_JOB_PATH.format(job_id=job_id))


def run(days: int, time_scale: float, budget_seconds: float) -> dict[str, Any]:
    with (
        SandboxProcess(profile="realistic", time_scale=time_scale) as sandbox,
        httpx.Client(base_url=sandbox.base_url, timeout=60) as http,
    ):
        token = http.post(
            wire.TOKEN_PATH,
            auth=(wire.SANDBOX_CLIENT_ID, wire.SANDBOX_CLIENT_SECRET),
            data={"grant_type": "client_credentials"},
        ).json()["access_token"]
        units = http.get("/sandbox/truth/org").json()["managementUnits"]
        client = PacedClient(http, token, second=1.0 / time_scale)
        started = time.monotonic()
        client.deadline = started + budget_seconds
        completed, outcome = 0, "all days extracted"
        try:
            for index in range(days):
                extract_day(client, FIRST_DAY + timedelta(days=index), units)
                completed += 1
        except TimeoutError:
            outcome = "stopped at the time budget"
        except GaveUp as exc:
            outcome = f"gave up ({exc})"
        wall = time.monotonic() - started
        stats = http.get("/sandbox/stats").json()

    projected = wall * days / completed if completed else float("inf")
    finished = completed == days
    return {
        "summary": f"{completed}/{days} days in {wall:.0f} s; {outcome}",
        "wall_text": f"{wall:.0f} s" if finished else f"~{projected:.0f} s projected from {completed} days",
        "projected_seconds": projected,
        "finished": finished,
        "requests_per_day": client.requests / completed if completed else float("nan"),
        "jobs": client.jobs,
        "retries": client.retries,
        "throttled": stats["rateLimitedTotal"],
    }
