"""``SandboxProcess``: run the sandbox as a subprocess on a free loopback port (tests, benchmarks).

    with SandboxProcess(profile="fast", time_scale=60) as sandbox:
        httpx.get(sandbox.base_url + "/sandbox/stats")

Options map to CLI flags (``time_scale=60`` -> ``--time-scale 60``; lists repeat the flag, e.g.
``limit=["job_submission_quota=5"]``). The child gets ``--exit-with-parent`` so it never outlives us.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import IO, Any

import httpx

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def cli_args(options: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        for item in value if isinstance(value, list | tuple) else [value]:
            args += [flag, str(item)]
    return args


class SandboxProcess:
    """Context manager around ``python -m wfm_pipeline.sandbox``; ``base_url`` once started."""

    def __init__(self, startup_timeout: float = 60.0, **options: Any) -> None:
        self.options = options
        self.startup_timeout = startup_timeout
        self.port = free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None  # the child's output, for error messages

    def start(self) -> SandboxProcess:
        command = [
            sys.executable,
            "-m",
            "wfm_pipeline.sandbox",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--exit-with-parent",
            str(os.getpid()),
            *cli_args(self.options),
        ]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                message = f"sandbox exited with {self._process.returncode}:\n{self.output()}"
                self.stop()
                raise RuntimeError(message)
            try:
                if httpx.get(self.base_url + "/sandbox/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        message = f"sandbox did not answer within {self.startup_timeout} s:\n{self.output()}"
        self.stop()
        raise RuntimeError(message)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def output(self) -> str:
        """The child's stdout/stderr so far (empty once stopped)."""
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        """Terminate the child (kill after 10 s) and release its log file; idempotent."""
        process, self._process = self._process, None
        if self._log is not None:
            self._log.close()
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
