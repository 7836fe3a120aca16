"""SandboxProcess: starts on a free port, stops cleanly, and leaves no orphan when its parent dies."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx

from wfm_pipeline.sandbox.launcher import SandboxProcess

PARENT = """
import sys, time
from wfm_pipeline.sandbox.launcher import SandboxProcess
process = SandboxProcess(profile="fast", agents=5).start()
print(process.base_url, flush=True)
time.sleep(120)
"""


def answers(base_url: str) -> bool:
    try:
        return httpx.get(base_url + "/sandbox/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_context_manager_starts_and_stops_the_server() -> None:
    with SandboxProcess(profile="fast", agents=5) as process:
        assert answers(process.base_url)
        assert httpx.get(process.base_url + "/sandbox/health").json()["agents"] == 5
    assert not answers(process.base_url)


def test_the_sandbox_exits_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        base_url = parent.stdout.readline().strip()
        assert answers(base_url)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        for _ in range(100):  # the watchdog checks twice a second
            if not answers(base_url):
                break
            time.sleep(0.1)
        assert not answers(base_url)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()
