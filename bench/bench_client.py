"""Client benchmark (not a test): requests per extracted day, and the share of the per-token budget used.

    .venv/bin/python bench/bench_client.py [--processes 4] [--windows 8] [--allowed 120] [--window 6]

Against a `fast` sandbox whose per-token limit is ``--allowed`` requests per ``--window`` wall seconds. The
clients run on their default settings: their budget comes from the limits the sandbox reports.
1. extraction cost: one process exports adherence (every management unit) and user details for some days;
   reports API requests per extracted day;
2. request-bound: ``--processes`` processes sharing one state dir (one client id, one token) export and read
   MU user lists as fast as the shared budget lets them; reports the share of ``allowed`` per window used
   and the 429s served. Target: >= 90 % with zero 429s.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from wfm_pipeline.genesys import (
    AdherenceExportRequest,
    ClientSettings,
    GenesysClient,
    UserDetailsExportRequest,
)
from wfm_pipeline.sandbox.launcher import SandboxProcess

TIME_SCALE_FOR = 60.0  # sandbox seconds per token window (60) / wall seconds per window


def api_requests(stats: dict[str, Any]) -> int:
    """Requests counted against the token budget: every /api/v2 route (not token, admin or downloads)."""
    total = 0
    for route, counts in stats["requests"].items():
        if " /api/v2/" in route:
            total += sum(counts.values())
    return total


def settings_for(base_url: str) -> ClientSettings:
    """The client's defaults: its budget comes from the limits the sandbox reports (limits discovery)."""
    return ClientSettings.for_sandbox(base_url, poll_initial_seconds=0.1, poll_cap_seconds=1.0)


def describe_budget(base_url: str) -> dict[str, float]:
    """What discovery made of the sandbox's limits (one client, its own state dir)."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        GenesysClient(settings_for(base_url), Path(scratch)) as client,
    ):
        client.management_units()
        budget = client.budget
        return {
            "allowed": budget.allowed,
            "window": budget.window_seconds,
            "limit": budget.limit,
            "submissions": budget.submissions_per_window,
            "submission_window": budget.submission_window_seconds,
            "jobs": budget.max_jobs_in_flight,
        }


def extraction_cost(base_url: str, days: int) -> dict[str, float]:
    import httpx

    httpx.post(base_url + "/sandbox/stats/reset")
    with (
        tempfile.TemporaryDirectory() as scratch,
        GenesysClient(settings_for(base_url), Path(scratch) / "state") as client,
    ):
        units = client.management_units()
        started = time.monotonic()
        first = date(2024, 3, 4)
        adherence = client.run_export(
            AdherenceExportRequest(units, first, first + timedelta(days=days)), Path(scratch) / "out"
        )
        end = client.data_availability_date().replace(hour=0, minute=0, second=0, microsecond=0)
        details = client.run_export(
            UserDetailsExportRequest(end - timedelta(days=days), end), Path(scratch) / "out"
        )
        elapsed = time.monotonic() - started
    stats = httpx.get(base_url + "/sandbox/stats").json()
    return {
        "days": days,
        "units": len(units),
        "adherence_requests": adherence.metrics.requests,
        "details_requests": details.metrics.requests,
        "api_requests": api_requests(stats),
        "seconds": elapsed,
        "records": adherence.records + details.records,
        "throttled": stats["rateLimitedTotal"],
    }


def request_bound_worker(base_url: str, state_dir: str, seconds: float, index: int, spans: Any) -> None:
    with GenesysClient(settings_for(base_url), Path(state_dir)) as client:
        units = client.management_units()
        first_request = time.time()
        deadline = time.monotonic() + seconds
        day = date(2023, 1, 2) + timedelta(days=40 * index)
        with tempfile.TemporaryDirectory() as out:
            calls = 0
            while time.monotonic() < deadline:
                # Mostly small calls, with an export job now and then: the budget, not job latency, bounds it.
                if calls % 20 == 0:
                    request = AdherenceExportRequest(
                        [units[index % len(units)]], day, day + timedelta(days=1)
                    )
                    client.run_export(request, Path(out))
                    day += timedelta(days=1)
                client.management_unit_user_ids(units[calls % len(units)].id)
                calls += 1
        spans.put((first_request, time.time()))


def request_bound(
    base_url: str, allowed: int, window: float, processes: int, windows: int
) -> dict[str, float]:
    """Steady-state share of the budget: requests served over exactly ``windows`` token windows, measured
    after the workers have run for two windows (the sliding log repeats with the window's period, so a
    whole number of windows measures the rate without phase error)."""
    import httpx

    context = multiprocessing.get_context("spawn")
    spans = context.Queue()
    seconds = 60.0 + window * (windows + 4)  # start-up on a busy 2-core machine, then the measurement
    with tempfile.TemporaryDirectory() as state_dir:
        workers = [
            context.Process(target=request_bound_worker, args=(base_url, state_dir, seconds, i, spans))
            for i in range(processes)
        ]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 120
        while api_requests(httpx.get(base_url + "/sandbox/stats").json()) < 5 * processes:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.1)
        time.sleep(2 * window)
        httpx.post(base_url + "/sandbox/stats/reset")
        measured_from = time.monotonic()
        time.sleep(windows * window)
        stats = httpx.get(base_url + "/sandbox/stats").json()
        measured = time.monotonic() - measured_from
        for _ in workers:
            spans.get(timeout=seconds + 300)
        for worker in workers:
            worker.join(timeout=60)
    served = api_requests(stats)
    budget = allowed * measured / window
    return {
        "processes": processes,
        "seconds": measured,
        "served": served,
        "budget": budget,
        "fraction": served / budget,
        "throttled": stats["rateLimitedTotal"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--windows", type=int, default=8, help="token windows measured in steady state")
    parser.add_argument("--allowed", type=int, default=120, help="requests per token window")
    parser.add_argument("--window", type=float, default=6.0, help="token window, wall seconds")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--agents", type=int, default=50)
    args = parser.parse_args()
    time_scale = TIME_SCALE_FOR / args.window
    with SandboxProcess(
        profile="fast",
        time_scale=time_scale,
        agents=args.agents,
        limit=[f"token_rate_per_minute={args.allowed}"],
    ) as sandbox:
        discovered = describe_budget(sandbox.base_url)
        cost = extraction_cost(sandbox.base_url, args.days)
        bound = request_bound(sandbox.base_url, args.allowed, args.window, args.processes, args.windows)
    per_day = cost["api_requests"] / cost["days"]
    print(
        f"## Genesys client ({args.agents} agents, {cost['units']:.0f} MUs, "
        f"limit {args.allowed} req / {args.window:g} s window)\n"
    )
    print("| measure | value |")
    print("| --- | --- |")
    print(
        f"| discovered budget: allowed / window / our limit | {discovered['allowed']:.0f} / "
        f"{discovered['window']:g} s / {discovered['limit']:.0f} |"
    )
    print(
        f"| discovered jobs: submissions / window, in flight | {discovered['submissions']:.0f} / "
        f"{discovered['submission_window']:g} s, {discovered['jobs']:.0f} |"
    )
    print(f"| extraction: days exported (adherence, all MUs + user details) | {cost['days']:.0f} |")
    print(
        f"| extraction: API requests (adherence / user details) | {cost['adherence_requests']:.0f} / "
        f"{cost['details_requests']:.0f} |"
    )
    print(f"| extraction: API requests per extracted day | {per_day:.1f} |")
    print(
        f"| extraction: records, seconds, 429s | {cost['records']:.0f}, {cost['seconds']:.1f}, "
        f"{cost['throttled']:.0f} |"
    )
    print(
        f"| request-bound: processes x steady seconds | {bound['processes']:.0f} x {bound['seconds']:.1f} |"
    )
    print(f"| request-bound: requests served / budget | {bound['served']:.0f} / {bound['budget']:.0f} |")
    print(f"| request-bound: share of per-token budget used | {100 * bound['fraction']:.1f} % |")
    print(f"| request-bound: 429s served | {bound['throttled']:.0f} |")


if __name__ == "__main__":
    main()
