"""`wfm-pipeline dev` supervision at the unit level: a crashed child is restarted after a growing delay, a
crash loop gives up, and children die with the supervisor whatever signal ends it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from wfm_pipeline import devserver
from wfm_pipeline.devserver import Supervised
from wfm_pipeline.processes import is_alive

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def exits_at_once() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])


def test_a_crashed_child_is_restarted_after_growing_delays_and_a_crash_loop_gives_up() -> None:
    launches: list[subprocess.Popen[bytes]] = []

    def launch() -> subprocess.Popen[bytes]:
        launches.append(exits_at_once())
        launches[-1].wait()
        return launches[-1]

    child = Supervised("flaky", launch)
    child.start()
    now = 1000.0
    delays = []
    for _ in range(devserver.MAX_CRASHES):
        assert child.check(now)  # notices the exit and schedules the restart
        assert child.restart_at is not None
        delays.append(child.restart_at - now)
        assert child.check(child.restart_at - 0.01) and len(launches) == len(delays)  # not yet
        now = child.restart_at
        assert child.check(now)  # restarted
        assert len(launches) == len(delays) + 1 and child.restart_at is None
    assert delays == list(devserver.RESTART_DELAYS_SECONDS[: devserver.MAX_CRASHES])
    assert not child.check(now)  # one crash too many within the window: give up


def test_crashes_long_ago_do_not_count_towards_a_crash_loop() -> None:
    def launch() -> subprocess.Popen[bytes]:
        process = exits_at_once()
        process.wait()
        return process

    child = Supervised("rarely", launch)
    child.start()
    now = 0.0
    for _ in range(devserver.MAX_CRASHES * 2):
        assert child.check(now)
        now += devserver.CRASH_WINDOW_SECONDS  # each crash an hour-ish after the last
        assert child.check(now)


def test_when_a_child_exits_its_singletons_are_stopped_and_the_rest_of_its_group_is_left(
    tmp_path: Path,
) -> None:
    """`dagster dev` killed with -9 leaves its group behind: the webserver and daemon (singletons: its
    restart starts new ones) are stopped, a run worker is left to finish its run."""
    pids = tmp_path / "pids"
    parent = textwrap.dedent(
        f"""
        import subprocess, sys, time
        sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
        daemon = subprocess.Popen([*sleeper, "-m", "dagster._daemon", "run"])
        worker = subprocess.Popen([*sleeper, "-m", "dagster", "api", "execute_run"])
        open({str(pids)!r}, "w").write(f"{{daemon.pid}} {{worker.pid}}")
        time.sleep(600)
        """
    )
    child = Supervised(
        "dagster dev",
        lambda: subprocess.Popen([sys.executable, "-c", parent], start_new_session=True),
        singletons=devserver.DAGSTER_DEV_SINGLETONS,
    )
    child.start()
    assert child.process is not None
    deadline = time.monotonic() + 30
    while not (pids.exists() and len(pids.read_text().split()) == 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    daemon, worker = map(int, pids.read_text().split())
    try:
        child.process.kill()
        child.process.wait()
        assert is_alive(daemon) and is_alive(worker)  # the kernel did not end them
        assert child.check(time.monotonic())
        assert not is_alive(daemon), "the old daemon outlived its dagster dev"
        assert is_alive(worker), "a run worker was stopped with its dagster dev"
        assert child.restart_at is not None
    finally:
        for pid in (daemon, worker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_children_die_with_the_supervisor_killed_by_sigkill(tmp_path: Path) -> None:
    """A supervisor starts two children the way `wfm-pipeline dev` does (own process group, parent-death
    signal), then is killed with -9, which it cannot handle: the kernel ends both children."""
    pids = tmp_path / "pids"
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from wfm_pipeline.devserver import _popen
        children = [_popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(2)]
        Path({str(pids)!r}).write_text(" ".join(str(c.pid) for c in children))
        time.sleep(600)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    supervisor = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 60
        while not pids.exists() or len(pids.read_text().split()) < 2:
            assert time.monotonic() < deadline, "the children never started"
            time.sleep(0.1)
        children = [int(pid) for pid in pids.read_text().split()]
        assert all(is_alive(pid) for pid in children)
        assert all(os.getpgid(pid) == pid for pid in children)  # each leads its own group
        os.kill(supervisor.pid, signal.SIGKILL)
        supervisor.wait()
        deadline = time.monotonic() + 30
        while any(is_alive(pid) for pid in children):
            assert time.monotonic() < deadline, f"children outlived their supervisor: {children}"
            time.sleep(0.1)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()


class FakeGraphql:
    """The two GraphQL calls of the backfill resumer, recorded (the network is beside the point here)."""

    def __init__(self, backfills: list[dict[str, object]]) -> None:
        self.backfills = backfills
        self.resumed: list[str] = []

    def post(self, url: str, json: dict[str, object], timeout: float) -> httpx.Response:
        if "resumePartitionBackfill" in str(json["query"]):
            self.resumed.append(str(json["variables"]["id"]))  # type: ignore[index]
            return httpx.Response(200, json={"data": {"resumePartitionBackfill": {"__typename": "x"}}})
        results = {"partitionBackfillsOrError": {"results": self.backfills}}
        return httpx.Response(200, json={"data": results})


def test_only_backfills_failed_by_unloadable_code_are_resumed_and_not_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unloadable = "dagster._core.errors.DagsterAssetBackfillDataLoadError: Asset ... code location failing"
    fake = FakeGraphql(
        [
            {"id": "a", "status": "FAILED", "error": {"message": unloadable}},
            {"id": "b", "status": "FAILED", "error": {"message": "Failure: blocking check failed"}},
            {"id": "c", "status": "COMPLETED_SUCCESS", "error": None},
            {"id": "d", "status": "FAILING", "error": {"message": "DagsterUserCodeUnreachableError: ..."}},
        ]
    )
    monkeypatch.setattr(devserver.httpx, "post", fake.post)
    resumed: dict[str, int] = {}
    assert devserver.resume_backfills_failed_by_unloadable_code("http://ui/graphql", resumed) == ["a", "d"]
    for _ in range(devserver.MAX_BACKFILL_RESUMES + 3):
        devserver.resume_backfills_failed_by_unloadable_code("http://ui/graphql", resumed)
    assert fake.resumed.count("a") == devserver.MAX_BACKFILL_RESUMES and "b" not in fake.resumed


def test_a_bad_pipeline_variable_is_named_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [name for name in os.environ if name.startswith(("GENESYSCLOUD_", "WFM_", "DAGSTER_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WFM_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("WFM_PARTITIONS_START", "2023-13-01")
    assert devserver.run([]) == 2
    assert "WFM_PARTITIONS_START" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # no lock, no pid file, no child
