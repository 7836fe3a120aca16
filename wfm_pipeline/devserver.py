"""`wfm-pipeline dev`: the sandbox (unless real credentials are set) plus `dagster dev`, as one unit.

What `make run` starts. It keeps run history in a persistent DAGSTER_HOME, refuses to start twice, and on
Ctrl-C (or SIGTERM) stops every process it started -- each child runs in its own process group, so nothing
is orphaned even when a child ignores the signal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from filelock import FileLock, Timeout

from wfm_pipeline import wire
from wfm_pipeline.genesys import ClientSettings, ConfigurationError
from wfm_pipeline.genesys.settings import uses_sandbox

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHUTDOWN_GRACE_SECONDS = 30.0
STARTUP_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class DevPaths:
    dagster_home: Path
    data_dir: Path
    run_dir: Path

    @classmethod
    def from_env(cls, root: Path) -> DevPaths:
        return cls(
            dagster_home=Path(os.environ.get("DAGSTER_HOME", root / ".dagster_home")).resolve(),
            data_dir=Path(os.environ.get("WFM_DATA_DIR", root / "data")).resolve(),
            run_dir=Path(os.environ.get("WFM_RUN_DIR", root / ".run")).resolve(),
        )


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with code {process.returncode} before it was ready")
        if _port_in_use(host, port):
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not listen on {host}:{port} within {STARTUP_TIMEOUT_SECONDS:.0f} s")


def _install_instance_config(dagster_home: Path) -> None:
    """DAGSTER_HOME must hold the project's dagster.yaml (run queue, pools, run monitoring)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    target = dagster_home / "dagster.yaml"
    source = PROJECT_ROOT / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)


def _apply_pool_limits(dagster_home: Path) -> dict[str, int]:
    """Per-pool limits live in the instance database, not in dagster.yaml: write ours before starting."""
    from dagster import DagsterInstance

    from wfm_pipeline.defs.pools import apply_pool_limits

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        return apply_pool_limits(instance)


def _stop(process: subprocess.Popen[bytes], name: str) -> None:
    """SIGINT the child's process group, then SIGTERM, then SIGKILL: no orphan survives."""
    if process.poll() is None:
        for sig, grace in ((signal.SIGINT, SHUTDOWN_GRACE_SECONDS), (signal.SIGTERM, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
    # Grandchildren (webserver, daemon, code server) share the group even after their parent exits.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=10)
    print(f"stopped {name}", flush=True)


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wfm-pipeline dev", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000, help="Dagster UI port")
    parser.add_argument("--sandbox-port", type=int, default=wire.SANDBOX_DEFAULT_PORT)
    parser.add_argument(
        "--sandbox-args",
        default=os.environ.get("WFM_SANDBOX_ARGS", "--profile realistic --time-scale 60"),
        help="extra arguments for `wfm-pipeline sandbox` (env WFM_SANDBOX_ARGS)",
    )
    args = parser.parse_args(argv)
    try:
        # The pipeline's own rule (sandbox only when no GENESYSCLOUD_* is set), checked before anything
        # starts: blank credentials are an error here, not a sandbox writing into the org's warehouse.
        ClientSettings.from_env()
    except ConfigurationError as exc:
        print(f"wfm-pipeline dev: {exc}", file=sys.stderr)
        return 2

    paths = DevPaths.from_env(PROJECT_ROOT)
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(paths.run_dir / "dev.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        pid_file = paths.run_dir / "dev.pid"
        pid = pid_file.read_text().strip() if pid_file.exists() else "?"
        print(
            f"wfm-pipeline is already running (pid {pid}): open http://{args.host}:{args.port}, "
            "or stop it with Ctrl-C in its terminal first.",
            file=sys.stderr,
        )
        return 1
    (paths.run_dir / "dev.pid").write_text(str(os.getpid()))

    with_sandbox = uses_sandbox()
    busy = [
        p for p in ([args.port] + ([args.sandbox_port] if with_sandbox else [])) if _port_in_use(args.host, p)
    ]
    if busy:
        print(
            f"port(s) {busy} on {args.host} are already in use by another program; free them first.",
            file=sys.stderr,
        )
        lock.release()
        return 1

    _install_instance_config(paths.dagster_home)
    pools = _apply_pool_limits(paths.dagster_home)
    print("pool limits: " + ", ".join(f"{pool}={limit}" for pool, limit in pools.items()), flush=True)
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DAGSTER_HOME=str(paths.dagster_home), WFM_DATA_DIR=str(paths.data_dir))

    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if with_sandbox:
            sandbox_url = f"http://{args.host}:{args.sandbox_port}"
            env["WFM_SANDBOX_URL"] = sandbox_url
            sandbox = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "wfm_pipeline.sandbox",
                    "--host",
                    args.host,
                    "--port",
                    str(args.sandbox_port),
                    *args.sandbox_args.split(),
                ],
                env=env,
                start_new_session=True,
            )
            children.append(("sandbox", sandbox))
            _wait_for_port(args.host, args.sandbox_port, sandbox, "the sandbox")
            print(f"Genesys Cloud sandbox on {sandbox_url} (no GENESYSCLOUD_* variable set)", flush=True)
        else:
            print("GENESYSCLOUD_* variables set: using the real Genesys Cloud org", flush=True)
        dagster = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster")),
                "dev",
                "-h",
                args.host,
                "-p",
                str(args.port),
                "-w",
                str(PROJECT_ROOT / "workspace.yaml"),
            ],
            env=env,
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
        children.append(("dagster dev", dagster))
        print(f"Dagster UI: http://{args.host}:{args.port}  (Ctrl-C stops everything)", flush=True)
        while not stopping:
            exited = [name for name, proc in children if proc.poll() is not None]
            if exited:
                print(f"{', '.join(exited)} exited; shutting down", file=sys.stderr, flush=True)
                break
            time.sleep(0.5)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name, proc in reversed(children):
            _stop(proc, name)
        (paths.run_dir / "dev.pid").unlink(missing_ok=True)
        lock.release()
    return 0
