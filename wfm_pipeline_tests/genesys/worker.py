"""A client process for multi-process tests: ``python -m wfm_pipeline_tests.genesys.worker '<json>'``.

Modes:
- ``hammer``: for ``seconds``, export one adherence day per loop and read MU user lists in between
  (request-bound), recording every request send and response (time, status, path) and every shared pause
  written (time, until) to ``events``.
- ``jobs``: ``count`` one-day adherence exports in sequence, recording when each submission was sent.
- ``export``: run the adherence export for ``days`` of every MU into ``dest``, writing the job ids to
  ``jobs_file`` once all are submitted (killed with -9 by the test at some point) and again at the end.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from wfm_pipeline.genesys import AdherenceExportRequest, ClientSettings, GenesysClient, ManagementUnit
from wfm_pipeline.genesys._windows import plan_adherence_jobs


def hammer(config: dict[str, Any], settings: ClientSettings) -> None:
    events: list[dict[str, Any]] = []

    def on_request(request: httpx.Request) -> None:
        events.append({"t": time.time(), "event": "send", "path": request.url.path})

    def on_response(response: httpx.Response) -> None:
        events.append({"t": time.time(), "event": "response", "status": response.status_code})

    hooks: dict[str, list[Callable[..., Any]]] = {"request": [on_request], "response": [on_response]}
    with GenesysClient(settings, Path(config["state_dir"]), event_hooks=hooks) as client:
        pause = client.budget.pause

        def recorded_pause(seconds: float) -> float:
            # Stamped after the shared state is written: from here on every process can see the pause.
            until = pause(seconds)
            events.append({"t": time.time(), "event": "pause", "until": until})
            return until

        client.budget.pause = recorded_pause  # type: ignore[method-assign]
        units = client.management_units()
        # Only worker 0 asks for the special unit (once, ``special_after`` s in); nobody else touches it.
        special = config.get("special_mu")
        mine = [u for u in units if u.id != special]
        if not config.get("ask_special", True):
            special = None
        # A common start so that every process is busy when the interesting moment comes.
        time.sleep(max(0.0, config.get("start_at", 0) - time.time()))
        started = time.time()
        deadline = started + config["seconds"]
        day = date.fromisoformat(config["first_day"])
        loops = 0
        while time.time() < deadline:
            if special and time.time() >= started + config.get("special_after", 0):
                client.management_unit_user_ids(special)
                special = None
            if config.get("extract", True):
                client.run_export(
                    AdherenceExportRequest([units[loops % len(units)]], day, day + timedelta(days=1)),
                    Path(config["dest"]),
                )
                day += timedelta(days=1)
            for unit in mine[:3]:
                client.management_unit_user_ids(unit.id)
            loops += 1
        metrics = client.metrics.as_dict()
    Path(config["out"]).write_text(json.dumps({"pid": os.getpid(), "events": events, "metrics": metrics}))


def export(config: dict[str, Any], settings: ClientSettings) -> None:
    units = [ManagementUnit(**unit) for unit in config["units"]]
    first = date.fromisoformat(config["first_day"])
    request = AdherenceExportRequest(units, first, first + timedelta(days=config["days"]))
    expected = len(plan_adherence_jobs(request, datetime.now(UTC))[0])
    jobs_file = Path(config["jobs_file"])
    submitted: list[str] = []

    def on_response(response: httpx.Response) -> None:
        # The job ids as soon as every job is submitted (before any is downloaded), for the killing test.
        request = response.request
        if request.method != "POST" or not request.url.path.endswith("/adherence/historical/bulk"):
            return
        if response.is_success:
            response.read()
            submitted.append(response.json()["job"]["id"])
            if len(submitted) == expected:
                jobs_file.write_text(json.dumps(submitted))

    hooks: dict[str, list[Callable[..., Any]]] = {"response": [on_response]}
    with GenesysClient(settings, Path(config["state_dir"]), event_hooks=hooks) as client:
        result = client.run_export(request, Path(config["dest"]))
        jobs_file.write_text(json.dumps([job.job.job_id for job in result.jobs]))  # resumed ones too
        Path(config["done_file"]).write_text(json.dumps(client.metrics.as_dict()))


def jobs(config: dict[str, Any], settings: ClientSettings) -> None:
    """``count`` one-day adherence exports of one MU in sequence, a week apart (each in its own grid
    window, so each submits a job); records when each submission was sent."""
    submissions: list[float] = []

    def on_request(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path.endswith("/adherence/historical/bulk"):
            submissions.append(time.time())

    with GenesysClient(settings, Path(config["state_dir"]), event_hooks={"request": [on_request]}) as client:
        unit = client.management_units()[config["unit_index"]]
        time.sleep(max(0.0, config.get("start_at", 0) - time.time()))
        day = date.fromisoformat(config["first_day"])
        for offset in range(config["count"]):
            first = day + timedelta(days=7 * offset)
            client.run_export(
                AdherenceExportRequest([unit], first, first + timedelta(days=1)), Path(config["dest"])
            )
        budget = {
            "submissions_per_window": client.budget.submissions_per_window,
            "submission_window_seconds": client.budget.submission_window_seconds,
            "max_jobs_in_flight": client.budget.max_jobs_in_flight,
        }
        metrics = client.metrics.as_dict()
    Path(config["out"]).write_text(
        json.dumps({"submissions": submissions, "metrics": metrics, "budget": budget})
    )


def main() -> None:
    config = json.loads(sys.argv[1])
    settings = ClientSettings.for_sandbox(config["base_url"], **config.get("settings", {}))
    {"hammer": hammer, "export": export, "jobs": jobs}[config["mode"]](config, settings)


if __name__ == "__main__":
    main()
