"""`wfm-pipeline dev`: the sandbox (unless real credentials are set) plus `dagster dev`, supervised.

What `make run` starts. It keeps run history in a persistent DAGSTER_HOME and refuses to start twice.
Supervision: a child that exits on its own (sandbox, `dagster dev` with its webserver and daemon) is
restarted with a growing delay, and the code location is reloaded when its code server died, so a crash
needs nobody at the keyboard; a child crashing again and again gives up after a few tries. Every child
runs in its own process group and is told by the kernel to die with this process, however it ends. On
Ctrl-C (or SIGTERM) the shutdown is ordered: SIGINT to every group, a grace period in which run workers
record the end of their runs, then SIGKILL for stragglers.
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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from filelock import FileLock, Timeout

from wfm_pipeline import wire
from wfm_pipeline.defs.settings import PipelineConfigError, PipelineSettings
from wfm_pipeline.genesys import ClientSettings, ConfigurationError, uses_sandbox
from wfm_pipeline.processes import die_with_parent, group_members, is_alive

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHUTDOWN_GRACE_SECONDS = 30.0
SINGLETON_GRACE_SECONDS = 10.0
# `dagster dev`'s webserver and daemon (python -m dagster_webserver / dagster._daemon run).
DAGSTER_DEV_SINGLETONS = ("-m dagster_webserver", "-m dagster._daemon")
STARTUP_TIMEOUT_SECONDS = 60.0
# Delay before the n-th restart of a crashed child (the last one repeats); more than MAX_CRASHES crashes
# within CRASH_WINDOW_SECONDS is a crash loop: everything stops and the exit code says so.
RESTART_DELAYS_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
MAX_CRASHES = 5
CRASH_WINDOW_SECONDS = 600.0
LOCATION_CHECK_SECONDS = 5.0
LOCATIONS_QUERY = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename } } } } }"
)
# Dagster fails an asset backfill outright when its daemon evaluates it while the code location cannot be
# loaded (DagsterAssetBackfillDataLoadError is not among the errors its backfill daemon retries), e.g. in
# the seconds a crashed code server or a restarted `dagster dev` needs. Such backfills are resumed.
UNLOADABLE_CODE_ERRORS = (
    "DagsterAssetBackfillDataLoadError",
    "DagsterUserCodeUnreachableError",
    "DagsterCodeLocationLoadError",
)
MAX_BACKFILL_RESUMES = 5
ENDED_BACKFILLS_QUERY = (
    "{ partitionBackfillsOrError(limit: 50) { ... on PartitionBackfills { results { id status "
    "error { message } } } } }"
)
RESUME_BACKFILL = "mutation Resume($id: String!) { resumePartitionBackfill(backfillId: $id) { __typename } }"
RELOAD_LOCATION = (
    "mutation Reload($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) "
    "{ __typename } }"
)


@dataclass(frozen=True)
class DevPaths:
    dagster_home: Path
    data_dir: Path
    run_dir: Path

    @classmethod
    def from_env(cls, root: Path) -> DevPaths:
        """The data directory by the pipeline's own rule (``PipelineSettings``), anchored at ``root``."""
        return cls(
            dagster_home=Path(os.environ.get("DAGSTER_HOME", root / ".dagster_home")).resolve(),
            data_dir=PipelineSettings.from_env(base_dir=root).data_dir.resolve(),
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


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(process: subprocess.Popen[bytes], name: str) -> None:
    """SIGINT the child's process group, then SIGTERM; then give what is left of the group (run workers,
    which record the end of their runs on SIGINT) the grace period to finish before SIGKILL."""
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
    # Grandchildren (webserver, daemon, code server, run workers) share the group after their parent exits.
    deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=10)
    print(f"stopped {name}", flush=True)


def _stop_members(pgid: int, fragments: tuple[str, ...]) -> None:
    """SIGTERM the processes of group ``pgid`` whose command line contains one of ``fragments``, then
    SIGKILL those still there after ``SINGLETON_GRACE_SECONDS``."""
    doomed = [pid for pid, command in group_members(pgid).items() if any(f in command for f in fragments)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + SINGLETON_GRACE_SECONDS
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(map(is_alive, doomed)):
            time.sleep(0.1)
        doomed = [pid for pid in doomed if is_alive(pid)]
    for pid in doomed:
        print(f"pid {pid} of a stopped group outlived SIGKILL", file=sys.stderr, flush=True)


@dataclass
class Supervised:
    """A child of `wfm-pipeline dev`: how to start it (and wait until it is ready), and its crash history."""

    name: str
    launch: Callable[[], subprocess.Popen[bytes]]
    # Command-line fragments of the processes of its group that must not outlive it: a restart starts
    # new ones, and two of them at once (two Dagster daemons) would both dequeue runs.
    singletons: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    crashes: list[float] = field(default_factory=list)
    restart_at: float | None = None

    def start(self) -> None:
        self.process = self.launch()
        self.restart_at = None

    def check(self, now: float) -> bool:
        """Restart the child if it exited (after its delay); False when it is crashing in a loop."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                print(f"restarting {self.name}", flush=True)
                self.start()
                print(f"{self.name} restarted", flush=True)
            return True
        if self.process is None or self.process.poll() is None:
            return True
        # The rest of its process group is left running: run workers finish their runs (the new code
        # server takes new ones). The singletons are stopped: they do not always follow `dagster dev`
        # (a soak saw its webserver and daemon outlive a kill -9 of it by minutes, beside the new ones).
        _stop_members(self.process.pid, self.singletons)
        code = self.process.returncode
        self.crashes = [t for t in self.crashes if now - t < CRASH_WINDOW_SECONDS] + [now]
        if len(self.crashes) > MAX_CRASHES:
            print(
                f"{self.name} exited {len(self.crashes)} times within {CRASH_WINDOW_SECONDS:.0f} s "
                f"(last exit code {code}); giving up",
                file=sys.stderr,
                flush=True,
            )
            return False
        delay = RESTART_DELAYS_SECONDS[min(len(self.crashes), len(RESTART_DELAYS_SECONDS)) - 1]
        print(
            f"{self.name} exited with code {code}; restarting it in {delay:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        self.restart_at = now + delay
        return True


def _popen(
    command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """A child in its own process group that the kernel kills if this process dies, by any signal."""
    return subprocess.Popen(command, start_new_session=True, preexec_fn=die_with_parent, env=env, cwd=cwd)


def _graphql(graphql_url: str, query: str, variables: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``data`` of one GraphQL call (``httpx.HTTPError`` or ``ValueError`` while the UI is down)."""
    reply = httpx.post(graphql_url, json={"query": query, "variables": variables or {}}, timeout=60).json()
    return reply.get("data") or {}


def resume_backfills_failed_by_unloadable_code(graphql_url: str, resumed: dict[str, int]) -> list[str]:
    """Resume (as the UI's Resume button does) every backfill that failed only because the code location
    could not be loaded at that moment, at most MAX_BACKFILL_RESUMES times each (``resumed`` counts)."""
    try:
        backfills = (_graphql(graphql_url, ENDED_BACKFILLS_QUERY).get("partitionBackfillsOrError") or {}).get(
            "results"
        ) or []
        due = [
            backfill["id"]
            for backfill in backfills
            if backfill.get("status") in ("FAILED", "FAILING")
            and any(
                name in ((backfill.get("error") or {}).get("message") or "")
                for name in UNLOADABLE_CODE_ERRORS
            )
            and resumed.get(backfill["id"], 0) < MAX_BACKFILL_RESUMES
        ]
        for backfill_id in due:
            _graphql(graphql_url, RESUME_BACKFILL, {"id": backfill_id})
            resumed[backfill_id] = resumed.get(backfill_id, 0) + 1
    except (httpx.HTTPError, ValueError):
        return []
    return due


def reload_broken_locations(graphql_url: str) -> list[str]:
    """Reload every code location whose server cannot be reached (its code server died): what pressing
    Reload in the UI does. Returns the locations reloaded; an unreachable webserver is not an error."""
    try:
        workspace = _graphql(graphql_url, LOCATIONS_QUERY).get("workspaceOrError") or {}
        broken = [
            entry["name"]
            for entry in workspace.get("locationEntries") or []
            if entry.get("loadStatus") == "LOADED"
            and (entry.get("locationOrLoadError") or {}).get("__typename") == "PythonError"
        ]
        for name in broken:
            _graphql(graphql_url, RELOAD_LOCATION, {"name": name})
    except (httpx.HTTPError, ValueError):
        return []
    return broken


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wfm-pipeline dev", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000, help="Dagster UI port")
    parser.add_argument("--sandbox-port", type=int, default=wire.SANDBOX_DEFAULT_PORT)
    parser.add_argument(
        "--sandbox-args",
        default=os.environ.get("WFM_SANDBOX_ARGS", "--profile realistic --time-scale 60"),
        help="extra arguments for `wfm-pipeline sandbox` (env WFM_SANDBOX_ARGS)",
    )
    return parser.parse_args(argv)


def _single_instance_lock(paths: DevPaths, args: argparse.Namespace) -> FileLock | None:
    """The lock held while this `wfm-pipeline dev` runs (its pid in ``dev.pid``); None, after saying
    which pid holds it, when another one runs."""
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
        return None
    (paths.run_dir / "dev.pid").write_text(str(os.getpid()))
    return lock


def _prepared_environment(paths: DevPaths) -> dict[str, str]:
    """The Dagster instance configured (config file, pool limits) and the children's environment."""
    _install_instance_config(paths.dagster_home)
    pools = _apply_pool_limits(paths.dagster_home)
    print("pool limits: " + ", ".join(f"{pool}={limit}" for pool, limit in pools.items()), flush=True)
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    return dict(os.environ, DAGSTER_HOME=str(paths.dagster_home), WFM_DATA_DIR=str(paths.data_dir))


def _sandbox_child(args: argparse.Namespace, env: dict[str, str]) -> Supervised:
    command = [
        sys.executable,
        "-m",
        "wfm_pipeline.sandbox",
        "--host",
        args.host,
        "--port",
        str(args.sandbox_port),
        *args.sandbox_args.split(),
    ]

    def launch_sandbox() -> subprocess.Popen[bytes]:
        process = _popen(command, env=env)
        _wait_for_port(args.host, args.sandbox_port, process, "the sandbox")
        return process

    return Supervised("sandbox", launch_sandbox)


def _dagster_child(args: argparse.Namespace, env: dict[str, str]) -> Supervised:
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "dev",
        "-h",
        args.host,
        "-p",
        str(args.port),
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
    ]
    return Supervised(
        "dagster dev", lambda: _popen(command, env=env, cwd=PROJECT_ROOT), singletons=DAGSTER_DEV_SINGLETONS
    )


def _heal_code_location(graphql_url: str, resumed: dict[str, int]) -> None:
    """Resume backfills failed by an unloadable code location and reload unreachable locations."""
    for backfill_id in resume_backfills_failed_by_unloadable_code(graphql_url, resumed):
        print(
            f"backfill {backfill_id} failed because the code location could not be loaded; resumed it",
            file=sys.stderr,
            flush=True,
        )
    for name in reload_broken_locations(graphql_url):
        print(f"code location {name} could not be reached; reloaded it", file=sys.stderr, flush=True)


def _supervise(children: list[Supervised], graphql_url: str, stop_requested: threading.Event) -> int:
    """Keep the children running until a stop is requested (0) or one crashes in a loop (1)."""
    next_location_check = time.monotonic() + LOCATION_CHECK_SECONDS
    resumed: dict[str, int] = {}
    while not stop_requested.is_set():
        now = time.monotonic()
        if not all(child.check(now) for child in children):
            return 1
        if now >= next_location_check:
            _heal_code_location(graphql_url, resumed)
            next_location_check = now + LOCATION_CHECK_SECONDS
        time.sleep(0.5)
    return 0


def run(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        # The pipeline's own rules (sandbox only when no GENESYSCLOUD_* is set; paths, dates, numbers),
        # checked before anything starts: blank credentials are an error here, not a sandbox writing into
        # the org's warehouse, and a bad WFM_* variable is named, not a traceback.
        ClientSettings.from_env()
        paths = DevPaths.from_env(PROJECT_ROOT)
    except (ConfigurationError, PipelineConfigError) as exc:
        print(f"wfm-pipeline dev: {exc}", file=sys.stderr)
        return 2
    lock = _single_instance_lock(paths, args)
    if lock is None:
        return 1
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
    env = _prepared_environment(paths)
    children: list[Supervised] = []
    stop_requested = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        if with_sandbox:
            env["WFM_SANDBOX_URL"] = f"http://{args.host}:{args.sandbox_port}"
            children.append(_sandbox_child(args, env))
            children[-1].start()
            print(
                f"Genesys Cloud sandbox on {env['WFM_SANDBOX_URL']} (no GENESYSCLOUD_* variable set)",
                flush=True,
            )
        else:
            print("GENESYSCLOUD_* variables set: using the real Genesys Cloud org", flush=True)
        children.append(_dagster_child(args, env))
        children[-1].start()
        print(f"Dagster UI: http://{args.host}:{args.port}  (Ctrl-C stops everything)", flush=True)
        return _supervise(children, f"http://{args.host}:{args.port}/graphql", stop_requested)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in reversed(children):
            if child.process is not None:
                _stop(child.process, child.name)
        (paths.run_dir / "dev.pid").unlink(missing_ok=True)
        lock.release()
