"""Several client processes against one sandbox: the shared budget, the shared pause, kill -9 and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wfm_pipeline import wire
from wfm_pipeline.genesys._files import SIDECAR_SUFFIX, complete_file
from wfm_pipeline_tests.genesys.sandbox_helpers import SandboxAdmin

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN_RATE = "token.rate.per.minute"


_spawned: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _kill_leftover_workers() -> Iterator[None]:
    """A failing assertion must not leave a worker running: kill whatever this test started and left."""
    yield
    while _spawned:
        process = _spawned.pop()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def spawn(config: dict[str, Any]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "wfm_pipeline_tests.genesys.worker", json.dumps(config)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    _spawned.append(process)
    return process


def finish(process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()  # never leave a worker behind
        process.communicate(timeout=30)
        raise
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def hammer_config(
    admin: SandboxAdmin, tmp_path: Path, index: int, seconds: float, **extra: Any
) -> dict[str, Any]:
    return {
        "mode": "hammer",
        "base_url": admin.base_url,
        "settings": admin.settings_options(),
        "state_dir": str(tmp_path / "state"),  # one state dir: the processes of one host
        "dest": str(tmp_path / f"out-{index}"),
        "out": str(tmp_path / f"events-{index}.json"),
        "seconds": seconds,
        "first_day": f"2024-0{1 + index}-01",
        **extra,
    }


def test_processes_share_the_token_budget_and_adapt_when_it_is_lowered(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    # 1 s wall-clock windows at time scale 60; 40 requests per window for the whole token.
    sandbox_admin.set_limits(token_rate_per_minute=40)
    window = float(sandbox_admin.limits()["effectiveWallClock"]["token_rate_window_seconds"])
    workers = [spawn(hammer_config(sandbox_admin, tmp_path, i, seconds=12.0)) for i in range(4)]
    wait_until(lambda: sandbox_admin.stats()["requests"].get("POST /oauth/token"), 60, "the first token")
    time.sleep(4.0)
    steady = sandbox_admin.stats()
    assert steady["rateLimited"].get(TOKEN_RATE, 0) == 0, steady["rateLimited"]
    lowered_at = float(sandbox_admin.set_limits(token_rate_per_minute=15)["changedAt"])
    for worker in workers:
        finish(worker)
    # The server's own clock for both moments, so the claim does not depend on how fast responses travel:
    # any 429 falls inside the fixed window that was running when the limit dropped (usually there is none:
    # the next response's headers already carry the lower limit and the budget pauses everyone).
    throttled = sandbox_admin.stats()["rateLimitedAt"].get(TOKEN_RATE, [])
    assert all(lowered_at <= t <= lowered_at + window for t in throttled), (lowered_at, window, throttled)
    events = []
    for index in range(4):
        record = json.loads((tmp_path / f"events-{index}.json").read_text())
        events += record["events"]
    # API requests only (presigned downloads and token grants are not counted against the token's budget).
    served = sorted(e["t"] for e in events if e["event"] == "send" and e["path"].startswith("/api/v2/"))
    # The lower limit was binding: before, the four processes used well over 15 per window; after the first
    # two windows they kept working at no more than 15 per window on average.
    before = [t for t in served if lowered_at - 3 * window <= t < lowered_at]
    assert len(before) / 3 >= 25, len(before)
    after = [t for t in served if t >= lowered_at + 2 * window]
    span = served[-1] - (lowered_at + 2 * window)
    assert span >= 3 * window, f"too little time under the lower limit to judge ({span:.1f} s)"
    assert 10 < len(after) <= 15 * (span / window + 1), (len(after), span)
    assert sandbox_admin.stats()["tokensIssued"] == 1  # one token shared by all processes


def test_retry_after_received_by_one_process_delays_every_process(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    units = [unit["id"] for unit in sandbox_admin.org()["managementUnits"]]
    special, retry_after = units[0], 2
    route = f"/api/v2/workforcemanagement/managementunits/{special}/users"
    # Worker 0 asks for the special unit's users once, 1.5 s in, and gets a 429 with Retry-After.
    sandbox_admin.set_faults(
        [{"kind": "rate_limit_429", "route": route, "count": 1, "retryAfter": retry_after}]
    )
    start_at = time.time() + 8.0  # after every worker has imported and listed the units
    workers = [
        spawn(
            hammer_config(
                sandbox_admin,
                tmp_path,
                i,
                seconds=5.0,
                extract=False,
                special_mu=special,
                ask_special=i == 0,
                special_after=1.5,
                start_at=start_at,
            )
        )
        for i in range(4)
    ]
    for worker in workers:
        finish(worker)
    records = [json.loads((tmp_path / f"events-{i}.json").read_text()) for i in range(4)]
    (throttled,) = [
        (r, e["t"]) for r in records for e in r["events"] if e["event"] == "response" and e["status"] == 429
    ]
    receiver, throttled_at = throttled
    paused_at, paused_until = next(
        (e["t"], e["until"]) for e in receiver["events"] if e["event"] == "pause" and e["t"] >= throttled_at
    )
    assert paused_until >= throttled_at + retry_after
    for record in records:
        sends = [e["t"] for e in record["events"] if e["event"] == "send"]
        # Each worker sends one request at a time. A request whose budget check ran before the pause was
        # written may still leave after it (how late depends on the scheduler, not on the budget), but then
        # the worker's next check sees the pause: at most one request per process leaves during it. Without
        # the shared pause each worker sends many requests in a Retry-After period (asserted below), so this
        # cannot pass by luck.
        during = [t for t in sends if paused_at < t < paused_until]
        assert len(during) <= 1, (record["pid"], paused_at, during)
        assert any(t < throttled_at for t in sends) and any(t >= paused_until for t in sends)
        before = [t for t in sends if throttled_at - retry_after <= t < throttled_at]
        assert len(before) >= 3, (record["pid"], "too few requests to tell a pause from idling", before)


def test_a_one_year_reset_served_by_the_sandbox_holds_no_process_longer_than_the_cap(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    """Four processes share one budget; one response carries ``inin-ratelimit-reset: 31536000`` with the
    count at the allowance. Every process pauses (the header is obeyed) and resumes within the cap."""
    cap, one_year = 2.0, 365 * 24 * 3600
    units = [unit["id"] for unit in sandbox_admin.org()["managementUnits"]]
    special = units[0]
    route = f"/api/v2/workforcemanagement/managementunits/{special}/users"
    headers = {
        wire.HEADER_RATELIMIT_ALLOWED: "300",
        wire.HEADER_RATELIMIT_COUNT: "300",
        wire.HEADER_RATELIMIT_RESET: str(one_year),
    }
    sandbox_admin.set_faults([{"kind": "ratelimit_headers", "route": route, "count": 1, "headers": headers}])
    start_at = time.time() + 8.0  # after every worker has imported and listed the units
    workers = [
        spawn(
            {
                **hammer_config(
                    sandbox_admin,
                    tmp_path,
                    i,
                    seconds=6.0,
                    extract=False,
                    special_mu=special,
                    ask_special=i == 0,
                    special_after=1.5,
                    start_at=start_at,
                ),
                "settings": sandbox_admin.settings_options(max_pause_seconds=cap),
            }
        )
        for i in range(4)
    ]
    for worker in workers:
        finish(worker, timeout=120)  # a year-long pause would hold them far past this
    assert [rule["served"] for rule in sandbox_admin.faults()] == [1]
    records = [json.loads((tmp_path / f"events-{i}.json").read_text()) for i in range(4)]
    pauses = [(e["t"], e["until"]) for r in records for e in r["events"] if e["event"] == "pause"]
    assert pauses, "the header never paused anyone"
    paused_at, paused_until = pauses[0]
    assert cap - 0.5 <= paused_until - paused_at <= cap + 0.01
    for record in records:
        sends = [e["t"] for e in record["events"] if e["event"] == "send"]
        assert len([t for t in sends if paused_at < t < paused_until]) <= 1, record["pid"]
        assert any(t >= paused_until for t in sends), f"process {record['pid']} never resumed"


def export_config(
    admin: SandboxAdmin, tmp_path: Path, units: list[dict[str, Any]], run: str
) -> dict[str, Any]:
    return {
        "mode": "export",
        "base_url": admin.base_url,
        "settings": admin.settings_options(),
        "state_dir": str(tmp_path / "state"),
        "dest": str(tmp_path / "out"),
        "units": units,
        "first_day": "2024-05-06",
        "days": 1,
        "jobs_file": str(tmp_path / f"jobs-{run}.json"),
        "done_file": str(tmp_path / f"done-{run}.json"),
    }


def unit_records(admin: SandboxAdmin, count: int) -> list[dict[str, Any]]:
    units = admin.org()["managementUnits"]
    return [
        {
            "id": u["id"],
            "name": u["name"],
            "business_unit_id": u["businessUnitId"],
            "time_zone": u["timeZone"],
        }
        for u in units[:count]
    ]


def test_kill_9_while_polling_then_restart_resumes_the_same_job(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    sandbox_admin.set_limits(adherence_latency_base_seconds=240)  # 4 s wall: the worker is still polling
    units = unit_records(sandbox_admin, 1)
    first = spawn(export_config(sandbox_admin, tmp_path, units, "first"))
    wait_until(lambda: (tmp_path / "jobs-first.json").exists(), 60, "the job id")
    wait_until(
        lambda: (
            sandbox_admin.requests_to(
                "GET /api/v2/workforcemanagement/adherence/historical/bulk/jobs/{job_id}"
            )
            >= 2
        ),
        30,
        "polling",
    )
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert not (tmp_path / "done-first.json").exists()
    second = spawn(export_config(sandbox_admin, tmp_path, units, "second"))
    finish(second)
    assert json.loads((tmp_path / "jobs-second.json").read_text()) == json.loads(
        (tmp_path / "jobs-first.json").read_text()
    )
    assert sandbox_admin.stats()["jobsCreated"] == {"adherence": 1}
    done = json.loads((tmp_path / "done-second.json").read_text())
    assert (done["jobs_submitted"], done["jobs_resumed"]) == (0, 1)
    files = sorted((tmp_path / "out").glob("*.json"))
    data_files = [f for f in files if not f.name.endswith(SIDECAR_SUFFIX)]
    assert len(data_files) == 1 and complete_file(data_files[0]) is not None


def test_kill_9_while_downloading_leaves_no_partial_file_and_rerun_completes(
    sandbox_admin: SandboxAdmin, tmp_path: Path
) -> None:
    sandbox_admin.set_limits(adherence_latency_base_seconds=120)  # 2 s wall: time to set the fault below
    units = unit_records(sandbox_admin, 2)  # two time zones -> two jobs, downloaded one after the other
    assert units[0]["time_zone"] != units[1]["time_zone"]
    first = spawn(export_config(sandbox_admin, tmp_path, units, "first"))
    wait_until(lambda: (tmp_path / "jobs-first.json").exists(), 60, "the job ids")
    first_job, second_job = json.loads((tmp_path / "jobs-first.json").read_text())
    # The second job's download hangs for 10 s wall-clock; the test kills the worker inside it.
    sandbox_admin.set_faults(
        [{"kind": "slow", "route": f"/sandbox/downloads/{second_job}.*", "delaySeconds": 600}]
    )
    out = tmp_path / "out"
    wait_until(lambda: len(list(out.glob(f"*{SIDECAR_SUFFIX}"))) == 1, 60, "the first file")
    wait_until(lambda: sandbox_admin.stats()["faults"].get("slow", 0) >= 1, 30, "the slow download to start")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    visible = [p for p in out.iterdir() if not p.name.startswith(".")]
    data_files = [p for p in visible if not p.name.endswith(SIDECAR_SUFFIX)]
    assert len(data_files) == 1 and complete_file(data_files[0]) is not None  # complete, or not there at all
    sandbox_admin.clear_faults()
    sandbox_admin.reset_stats()
    second = spawn(export_config(sandbox_admin, tmp_path, units, "second"))
    finish(second)
    assert json.loads((tmp_path / "jobs-second.json").read_text()) == [first_job, second_job]
    stats = sandbox_admin.stats()
    assert stats["jobsCreated"] == {}  # nothing submitted again
    assert (
        sum(stats["requests"].get("GET /sandbox/downloads/{token}", {}).values()) == 1
    )  # only the missing file
    data_files = [
        p for p in out.iterdir() if not p.name.startswith(".") and not p.name.endswith(SIDECAR_SUFFIX)
    ]
    assert len(data_files) == 2 and all(complete_file(p) is not None for p in data_files)
    managed = {json.loads(p.read_bytes())["managementUnitId"] for p in data_files}
    assert managed == {u["id"] for u in units}


def test_jobs_in_flight_cap_is_shared_by_processes(sandbox_admin: SandboxAdmin, tmp_path: Path) -> None:
    sandbox_admin.set_limits(adherence_latency_base_seconds=60)  # 1 s wall per job: the jobs overlap
    configs = [hammer_config(sandbox_admin, tmp_path, i, seconds=4.0) for i in range(4)]
    for config in configs:
        config["settings"]["max_jobs_in_flight"] = 2
    workers = [spawn(config) for config in configs]
    for worker in workers:
        finish(worker)
    stats = sandbox_admin.stats()
    assert stats["jobsCreated"]["adherence"] >= 4  # every process exported something ...
    assert stats["peakConcurrentJobs"] <= 2  # ... yet never more than two jobs ran at once, across processes
    assert stats["rateLimitedTotal"] == 0
