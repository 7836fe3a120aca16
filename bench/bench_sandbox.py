"""Sandbox benchmark (not a test): status polls/s, result pages/s, memory of a 5,000-agent org, and the
sandbox's CPU per agent-day serving a week of user-details pages for the whole org.

    .venv/bin/python bench/bench_sandbox.py [--seconds 5] [--clients 2]

The server runs in its own process (``SandboxProcess``); clients run in other processes, each with one
keep-alive connection. Limits are raised so the benchmark measures the server, not the throttles.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import httpx

from wfm_pipeline import wire
from wfm_pipeline.sandbox.launcher import SandboxProcess

UNTHROTTLED = [
    "token_rate_per_minute=100000000",
    "job_submission_quota=100000",
    "max_concurrent_jobs=10000",
    "token_creation_per_window=100000",
]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bearer(http: httpx.Client) -> dict[str, str]:
    reply = http.post(
        wire.TOKEN_PATH,
        auth=(wire.SANDBOX_CLIENT_ID, wire.SANDBOX_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
    )
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def fulfilled_job(
    http: httpx.Client, headers: dict[str, str], interval: str, users: list[str] | None = None
) -> str:
    body: dict[str, Any] = {"interval": interval}
    if users:
        body["userFilters"] = [
            {"type": "or", "predicates": [{"dimension": "userId", "value": u} for u in users]}
        ]
    job_id = http.post(wire.USER_DETAILS_JOBS_PATH, json=body, headers=headers).json()["jobId"]
    for _ in range(6000):
        if (
            http.get(wire.USER_DETAILS_JOB_PATH.format(job_id=job_id), headers=headers).json()["state"]
            == "FULFILLED"
        ):
            return job_id
        time.sleep(0.05)
    raise RuntimeError("job did not complete")


def hammer(args: tuple[str, str, dict[str, str], float]) -> int:
    """Repeat one GET for ``seconds`` on a keep-alive connection; number of 200s."""
    base_url, path, headers, seconds = args
    done = 0
    with httpx.Client(base_url=base_url, headers=headers) as http:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            if http.get(path).status_code == 200:
                done += 1
    return done


def rate(pool: Any, clients: int, base_url: str, path: str, headers: dict[str, str], seconds: float) -> float:
    counts = pool.map(hammer, [(base_url, path, headers, seconds)] * clients)
    return sum(counts) / seconds


def walk_pages(http: httpx.Client, headers: dict[str, str], job_id: str, page_size: int) -> tuple[int, float]:
    pages, cursor, started = 0, None, time.perf_counter()
    while True:
        params = {"pageSize": page_size, **({"cursor": cursor} if cursor else {})}
        reply = http.get(
            wire.USER_DETAILS_JOB_RESULTS_PATH.format(job_id=job_id), params=params, headers=headers
        )
        pages += 1
        cursor = reply.json().get("cursor")
        if not cursor:
            return pages, time.perf_counter() - started


def download_adherence_week(http: httpx.Client, headers: dict[str, str], start: str, end: str) -> None:
    """One bulk-adherence job (exceptions included) with an item per management unit; every file read."""
    units = http.get(wire.MANAGEMENT_UNITS_PATH, headers=headers).json()["entities"]
    items = [
        {"managementUnitId": mu["id"], "startDate": start, "endDate": end, "includeExceptions": True}
        for mu in units
    ]
    body = {"timeZone": "UTC", "items": items}
    job_id = http.post(wire.ADHERENCE_BULK_PATH, json=body, headers=headers).json()["job"]["id"]
    for _ in range(6000):
        reply = http.get(wire.ADHERENCE_BULK_JOB_PATH.format(job_id=job_id), headers=headers).json()
        if reply["job"]["status"] == "Complete":
            for url in reply["downloadUrls"]:
                http.get(url).raise_for_status()
            return
        time.sleep(0.05)
    raise RuntimeError("adherence job did not complete")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--big-org", type=int, default=5000)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    pool = multiprocessing.get_context("spawn").Pool(args.clients)

    with (
        SandboxProcess(profile="fast", agents=300, limit=UNTHROTTLED) as sandbox,
        httpx.Client(base_url=sandbox.base_url, timeout=120) as http,
    ):
        headers = bearer(http)
        assert sandbox.pid is not None
        rows.append(("RSS of a 300-agent org after start (MiB)", f"{rss_mib(sandbox.pid):.0f}"))
        job_id = fulfilled_job(http, headers, "2024-03-04T00:00:00Z/2024-03-05T00:00:00Z")
        status_path = wire.USER_DETAILS_JOB_PATH.format(job_id=job_id)
        first_page = wire.USER_DETAILS_JOB_RESULTS_PATH.format(job_id=job_id) + "?pageSize=25"
        http.get(first_page, headers=headers)  # generate and cache it
        for clients in sorted({1, args.clients}):
            polls = rate(pool, clients, sandbox.base_url, status_path, headers, args.seconds)
            rows.append(
                (f"status polls/s ({clients} client process{'es' if clients > 1 else ''})", f"{polls:,.0f}")
            )
        pages = rate(pool, args.clients, sandbox.base_url, first_page, headers, args.seconds)
        rows.append(
            (f"result pages/s, cached page of 25 user-days ({args.clients} clients)", f"{pages:,.0f}")
        )
        fresh = fulfilled_job(http, headers, "2024-03-11T00:00:00Z/2024-03-13T00:00:00Z")
        count, seconds = walk_pages(http, headers, fresh, 25)
        rows.append(
            (
                f"result pages/s, first read (generated), {count} pages of 25 user-days",
                f"{count / seconds:,.1f}",
            )
        )

    with (
        SandboxProcess(profile="fast", agents=args.big_org, limit=UNTHROTTLED) as sandbox,
        httpx.Client(base_url=sandbox.base_url, timeout=600) as http,
    ):
        assert sandbox.pid is not None
        headers = bearer(http)
        rows.append((f"RSS of a {args.big_org:,}-agent org after start (MiB)", f"{rss_mib(sandbox.pid):.0f}"))
        all_users = [
            u["id"]
            for page in range(1, args.big_org // 500 + 2)
            for u in http.get(
                wire.USERS_PATH, params={"pageSize": 500, "pageNumber": page}, headers=headers
            ).json()["entities"]
        ]
        for day, queried in enumerate((100, 500, 1000, 2000, 4000), start=1):
            interval = f"2024-05-{day:02d}T00:00:00Z/2024-05-{day + 1:02d}T00:00:00Z"
            job_id = fulfilled_job(http, headers, interval, all_users[:queried])
            walk_pages(http, headers, job_id, 100)
            rows.append((f"RSS after paging 1 day x {queried:,} agents (MiB)", f"{rss_mib(sandbox.pid):.0f}"))
        # Day-major paging of a week, as the pipeline's 7-day grid cells do: each agent's days are
        # read again by its next day's document.
        job_id = fulfilled_job(http, headers, "2024-05-06T00:00:00Z/2024-05-13T00:00:00Z")
        cpu_before = cpu_seconds(sandbox.pid)
        walk_pages(http, headers, job_id, 100)
        cpu_ms = (cpu_seconds(sandbox.pid) - cpu_before) * 1000 / (7 * args.big_org)
        week = f"7 days x {args.big_org:,} agents"
        rows.append((f"sandbox CPU per agent-day paging {week}, pages of 100 (ms)", f"{cpu_ms:.2f}"))
        rows.append((f"RSS after paging {week} (MiB)", f"{rss_mib(sandbox.pid):.0f}"))
        cpu_before = cpu_seconds(sandbox.pid)
        download_adherence_week(http, headers, "2024-06-03T00:00:00Z", "2024-06-10T00:00:00Z")
        cpu_ms = (cpu_seconds(sandbox.pid) - cpu_before) * 1000 / (7 * args.big_org)
        rows.append((f"sandbox CPU per agent-day, adherence files of {week} (ms)", f"{cpu_ms:.2f}"))
    pool.close()

    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
