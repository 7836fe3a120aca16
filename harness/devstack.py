"""Drive a real `wfm-pipeline dev` (sandbox + dagster dev) from tests: start, GraphQL, stop, leftovers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from wfm_pipeline.sandbox.launcher import free_port

STARTUP_TIMEOUT_SECONDS = 240.0
BACKFILL_TIMEOUT_SECONDS = 1800.0

ASSETS_QUERY = """
{ assetNodes { assetKey { path } isPartitioned
    assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } } } }
"""
LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidStepError { invalidStepKey }
    ... on UnauthorizedError { message }
  }
}
"""
BACKFILL_STATUS = """
query BackfillStatus($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { id status numPartitions error { message } }
    ... on PythonError { message }
  }
}
"""
LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUN_STATUS = """
query RunStatus($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }
"""
REPOSITORIES_QUERY = (
    "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }"
)
TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
SENSORS_QUERY = "{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors { id name } } } } }"
STOP_SENSOR = "mutation($id: String!) { stopSensor(id: $id) { __typename } }"
TERMINAL_BACKFILL_STATUSES = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
SUCCESSFUL_BACKFILL_STATUSES = {"COMPLETED", "COMPLETED_SUCCESS"}
FAILURE_SETTLE_SECONDS = 30.0


@dataclass
class DevStack:
    """One `wfm-pipeline dev` process tree, isolated in its own directory and ports."""

    root: Path
    ui_port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    sandbox_args: str = "--profile fast"
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}/graphql"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GENESYSCLOUD_", "DAGSTER_", "WFM_"))}
        env.update(
            DAGSTER_HOME=str(self.dagster_home),
            WFM_DATA_DIR=str(self.data_dir),
            WFM_RUN_DIR=str(self.root / "run"),
            WFM_SANDBOX_ARGS=self.sandbox_args,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        return [
            str(Path(sys.executable).with_name("wfm-pipeline")),
            "dev",
            "--port",
            str(self.ui_port),
            "--sandbox-port",
            str(self.sandbox_port),
        ]

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / "dev.log").open("wb")
        self.process = subprocess.Popen(
            self.command(), env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"wfm-pipeline dev exited early:\n{self.log_tail()}")
            try:
                if self.graphql("{ version }").get("version") and self._code_location_loaded():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise RuntimeError(f"dagster dev did not come up in {STARTUP_TIMEOUT_SECONDS} s:\n{self.log_tail()}")

    def _code_location_loaded(self) -> bool:
        data = self.graphql(
            "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus "
            "locationOrLoadError { __typename } } } } }"
        )
        entries = data["workspaceOrError"].get("locationEntries", [])
        return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)

    def log_tail(self, lines: int = 60) -> str:
        path = self.root / "dev.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(
            self.graphql_url, json={"query": query, "variables": variables or {}}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    @contextlib.contextmanager
    def running(self) -> Iterator[DevStack]:
        """Started for the block; stopped (Ctrl-C) after it unless a test already stopped it."""
        self.start()
        try:
            yield self
        finally:
            if self.process is not None and self.process.poll() is None:
                self.stop()

    def stop(self, timeout: float = 90.0) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
                raise
        return self.process.returncode

    def wait_until_idle(self, timeout: float = 3600.0) -> None:
        """Until no run is queued or in progress (a run measured alone is not slowed by others)."""
        instance = DagsterInstance.from_config(str(self.dagster_home))
        busy = [
            DagsterRunStatus.QUEUED,
            DagsterRunStatus.NOT_STARTED,
            DagsterRunStatus.STARTING,
            DagsterRunStatus.STARTED,
            DagsterRunStatus.CANCELING,
        ]
        deadline = time.monotonic() + timeout
        while instance.get_runs_count(RunsFilter(statuses=busy)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"runs still in progress after {timeout} s")
            time.sleep(5.0)

    def stop_sensors(self) -> None:
        """Switch the automation off, as a user would in the UI, so a backfill is measured alone."""
        for repo in self.graphql(SENSORS_QUERY)["repositoriesOrError"]["nodes"]:
            for sensor in repo["sensors"]:
                self.graphql(STOP_SENSOR, {"id": sensor["id"]})

    def launch_backfill(self, partition_keys: list[str]) -> str:
        """What the UI's Materialize all -> Launch backfill does, for every asset; returns the backfill id."""
        asset_paths = [node["assetKey"]["path"] for node in self.graphql(ASSETS_QUERY)["assetNodes"]]
        params = {
            "partitionNames": partition_keys,
            "assetSelection": [{"path": path} for path in asset_paths],
            "fromFailure": False,
            "tags": [],
        }
        result = self.graphql(LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return str(result["backfillId"])

    def launch_job_run(self, job_name: str, tags: dict[str, str]) -> str:
        """A run of ``job_name`` with ``tags``, as a sensor's ``RunRequest`` makes one; returns its id."""
        (repository,) = self.graphql(REPOSITORIES_QUERY)["repositoriesOrError"]["nodes"]
        params = {
            "selector": {
                "repositoryLocationName": repository["location"]["name"],
                "repositoryName": repository["name"],
                "jobName": job_name,
            },
            "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in tags.items()]},
        }
        result = self.graphql(LAUNCH_RUN, {"executionParams": params})["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return str(result["run"]["runId"])

    def wait_for_run(self, run_id: str, timeout: float = BACKFILL_TIMEOUT_SECONDS) -> str:
        """The run's final status (SUCCESS, FAILURE or CANCELED)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = str(self.graphql(RUN_STATUS, {"runId": run_id})["runOrError"]["status"])
            if status in TERMINAL_RUN_STATUSES:
                return status
            time.sleep(1.0)
        raise AssertionError(f"run {run_id} not finished after {timeout} s\n{self.log_tail()}")

    def backfill_status(self, backfill_id: str) -> dict[str, Any]:
        """The backfill's GraphQL status; ``{}`` while the UI is down (the supervisor is restarting it)."""
        try:
            reply = self.graphql(BACKFILL_STATUS, {"backfillId": backfill_id})
        except httpx.HTTPError:
            return {}
        return dict(reply["partitionBackfillOrError"])

    def wait_for_backfill(
        self, backfill_id: str, timeout: float = BACKFILL_TIMEOUT_SECONDS
    ) -> dict[str, Any]:
        """The backfill's final status: a success at once; a failure once it has lasted FAILURE_SETTLE_SECONDS
        (`wfm-pipeline dev` resumes a backfill Dagster failed only because the code was not loadable)."""
        deadline = time.monotonic() + timeout
        failed_since: float | None = None
        while time.monotonic() < deadline:
            status = self.backfill_status(backfill_id)
            if status.get("status") in SUCCESSFUL_BACKFILL_STATUSES:
                return status
            if status.get("status") in TERMINAL_BACKFILL_STATUSES:
                failed_since = failed_since or time.monotonic()
                if time.monotonic() - failed_since >= FAILURE_SETTLE_SECONDS:
                    return status
            else:
                failed_since = None
            time.sleep(5.0)
        raise AssertionError(
            f"backfill not finished after {timeout} s: {self.backfill_status(backfill_id)}\n{self.log_tail()}"
        )

    def backfill_finished(self, backfill_id: str) -> bool:
        return self.backfill_status(backfill_id).get("status") in SUCCESSFUL_BACKFILL_STATUSES

    def processes(self, *needles: str) -> list[int]:
        """Pids of this stack's processes (by DAGSTER_HOME) whose command line contains every needle."""
        return [
            int(line.split(":", 1)[0])
            for line in self.leftover_processes()
            if all(n in line for n in needles)
        ]

    def leftover_processes(self) -> list[str]:
        """Processes anywhere on the machine whose environment points at this stack's DAGSTER_HOME."""
        marker = f"DAGSTER_HOME={self.dagster_home}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                environ = (proc / "environ").read_bytes()
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                found.append(f"{proc.name}: {cmdline}")
        return found


def step_intervals(
    instance: DagsterInstance, run_ids: list[str]
) -> tuple[dict[str, list[tuple[float, float]]], list[str]]:
    """Execution interval (STEP_START to STEP_SUCCESS/FAILURE) of every step of the runs, keyed by step key,
    from the event log; plus ``run_id/step_key`` of steps that started and never ended."""
    intervals: dict[str, list[tuple[float, float]]] = {}
    unfinished: list[str] = []
    for run_id in run_ids:
        started: dict[str, float] = {}
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or record.step_key is None:
                continue
            if event.event_type == DagsterEventType.STEP_START:
                started[record.step_key] = record.timestamp
            elif record.step_key in started and event.event_type in (
                DagsterEventType.STEP_SUCCESS,
                DagsterEventType.STEP_FAILURE,
            ):
                begun = started.pop(record.step_key)
                intervals.setdefault(record.step_key, []).append((begun, record.timestamp))
        unfinished += [f"{run_id}/{step_key}" for step_key in started]
    return intervals, unfinished
