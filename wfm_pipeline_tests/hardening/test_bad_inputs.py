"""A catalogue of bad inputs: each is refused with a message naming what to fix, and loses nothing.

Every case sets up a small world under a temporary root, then hands back the bad action and what its
refusal must look like. The runner snapshots every file under the root (path -> sha256) before the action
and checks, after it, that the error names what to fix (variable, file, endpoint, field, value) and that
no file changed except the ones the case says may (state files a client opens, a quarantine move), and
that no temporary (half-written) file is left behind.

HTTP shapes are served by the scripted ``FakeGenesys`` (MockTransport): the point is what the client does
with a body, not the network. Connection failures use a real closed port on loopback.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import polars as pl
import pytest

from wfm_pipeline import warehouse, wire
from wfm_pipeline.defs.assets.tables import write_checked
from wfm_pipeline.defs.failures import pipeline_errors_fail_the_step
from wfm_pipeline.defs.resources import WarehouseResource
from wfm_pipeline.defs.settings import PipelineConfigError, PipelineSettings
from wfm_pipeline.fileio import TEMP_MARKER
from wfm_pipeline.genesys import (
    AdherenceExportRequest,
    ClientSettings,
    ConfigurationError,
    GenesysClient,
    ManagementUnit,
    NetworkError,
    ResponseTooLargeError,
    StateFileError,
    UnexpectedResponseError,
    UserDetailsExportRequest,
)
from wfm_pipeline.genesys._auth import TokenCache
from wfm_pipeline.genesys._budget import SharedBudget
from wfm_pipeline.genesys._registry import JobRegistry
from wfm_pipeline.genesys._settings import (
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_REGION,
    ENV_SANDBOX_URL,
)
from wfm_pipeline.raw_store import RawFileEntry, RawFileError, RawStore, UnsafePathError
from wfm_pipeline.transforms import (
    ManagementUnitInfo,
    adherence_daily_rows,
    adherence_document,
    adherence_exception_rows,
    status_records_from_json,
)
from wfm_pipeline_tests.genesys.fake_genesys import BU_ID, MU_ID, FakeGenesys

OTHER_MU_ID = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
USER_ID = "7e6d5c4b-3a29-4817-9605-f4e3d2c1b0a9"
DAY = date(2024, 3, 1)
UNIT = ManagementUnitInfo(id=MU_ID, time_zone="UTC", user_ids=(USER_ID,))
REQUEST = AdherenceExportRequest([ManagementUnit(MU_ID, "One", BU_ID, "UTC")], DAY, DAY + timedelta(days=1))


@dataclass(frozen=True)
class Refusal:
    error: type[BaseException]
    names: tuple[str, ...]  # what the message must name so the user knows what to fix
    may_change: tuple[str, ...] = ()  # fnmatch patterns (relative to the root) the action may touch


Case = Callable[[Path], tuple[Callable[[], object], Refusal]]
CASES: dict[str, Case] = {}


def case(function: Case) -> Case:
    CASES[function.__name__] = function
    return function


def tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# --- environment and configuration ------------------------------------------------------------------
def env_case(environ: dict[str, str], *names: str) -> Case:
    def build(root: Path) -> tuple[Callable[[], object], Refusal]:
        return (lambda: ClientSettings.from_env(environ)), Refusal(ConfigurationError, names)

    return build


def pipeline_env_case(environ: dict[str, str], *names: str) -> Case:
    def build(root: Path) -> tuple[Callable[[], object], Refusal]:
        return (lambda: PipelineSettings.from_env(environ)), Refusal(PipelineConfigError, names)

    return build


# a failed secret mount: blank credentials with a region must never mean "use the sandbox"
CASES["blank_credentials_with_region"] = env_case(
    {ENV_CLIENT_ID: "", ENV_CLIENT_SECRET: "", ENV_REGION: "eu_west_1"}, ENV_CLIENT_ID, ENV_CLIENT_SECRET
)
CASES["region_without_credentials"] = env_case({ENV_REGION: "eu_west_1"}, ENV_CLIENT_ID, ENV_REGION)
CASES["blank_client_id_alone"] = env_case({ENV_CLIENT_ID: "  "}, ENV_CLIENT_ID, ENV_CLIENT_SECRET)
CASES["client_id_without_secret"] = env_case({ENV_CLIENT_ID: "cid"}, ENV_CLIENT_SECRET)
CASES["secret_without_client_id"] = env_case({ENV_CLIENT_SECRET: "s3cret"}, ENV_CLIENT_ID)
CASES["unknown_region"] = env_case(
    {ENV_CLIENT_ID: "cid", ENV_CLIENT_SECRET: "s", ENV_REGION: "atlantis"}, "atlantis", "eu_west_1"
)
CASES["sandbox_url_with_a_path"] = env_case(
    {ENV_SANDBOX_URL: "http://127.0.0.1:8765/api/v2"}, ENV_SANDBOX_URL
)
CASES["sandbox_url_not_http"] = env_case({ENV_SANDBOX_URL: "ftp://127.0.0.1:8765"}, ENV_SANDBOX_URL)
CASES["sandbox_url_bad_port"] = env_case({ENV_SANDBOX_URL: "http://127.0.0.1:99999"}, ENV_SANDBOX_URL)
CASES["duckdb_named_wfm"] = pipeline_env_case({"WFM_DUCKDB_PATH": "/x/wfm.duckdb"}, "WFM_DUCKDB_PATH")
CASES["duckdb_named_wfm_upper_case"] = pipeline_env_case(
    {"WFM_DUCKDB_PATH": "/x/WFM.duckdb"}, "WFM_DUCKDB_PATH"
)
CASES["duckdb_named_wfm_two_suffixes"] = pipeline_env_case(
    {"WFM_DUCKDB_PATH": "/x/wfm.db.bak"}, "WFM_DUCKDB_PATH"
)
CASES["partitions_start_after_today"] = pipeline_env_case(
    {"WFM_PARTITIONS_START": (date.today() + timedelta(days=1)).isoformat()}, "WFM_PARTITIONS_START"
)
CASES["partitions_start_not_a_date"] = pipeline_env_case(
    {"WFM_PARTITIONS_START": "01/02/2023"}, "WFM_PARTITIONS_START", "YYYY-MM-DD"
)
CASES["days_per_run_zero"] = pipeline_env_case(
    {"WFM_BACKFILL_MAX_PARTITIONS_PER_RUN": "0"}, "WFM_BACKFILL_MAX_PARTITIONS_PER_RUN"
)
CASES["refresh_days_not_a_number"] = pipeline_env_case({"WFM_REFRESH_DAYS": "three"}, "WFM_REFRESH_DAYS")
CASES["occupancy_interval_not_offered"] = pipeline_env_case(
    {"WFM_OCCUPANCY_INTERVAL": "PT20M"}, "WFM_OCCUPANCY_INTERVAL", "PT15M, PT30M, PT60M"
)
CASES["default_time_zone_unknown"] = pipeline_env_case(
    {"WFM_DEFAULT_TIME_ZONE": "Mars/Olympus"}, "WFM_DEFAULT_TIME_ZONE", "IANA"
)
CASES["asset_owner_not_an_owner"] = pipeline_env_case({"WFM_ASSET_OWNERS": "wfm team"}, "WFM_ASSET_OWNERS")
CASES["freshness_deadline_not_cron"] = pipeline_env_case(
    {"WFM_FRESHNESS_DEADLINE_CRON": "noon"}, "WFM_FRESHNESS_DEADLINE_CRON"
)


# --- local files: token directory, state files, warehouse ---------------------------------------------
@case
def token_directory_open_to_others(root: Path) -> tuple[Callable[[], object], Refusal]:
    tokens = root / "state" / "tokens"
    tokens.mkdir(parents=True)
    tokens.chmod(0o755)

    def open_cache() -> object:
        return TokenCache(root / "state", "cid", "api.test", lambda: ("t", 60.0))

    return open_cache, Refusal(ConfigurationError, (str(tokens), "chmod 700"))


def corrupt_state_case(relative: str, opener: Callable[[Path], object]) -> Case:
    def build(root: Path) -> tuple[Callable[[], object], Refusal]:
        path = root / "state" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"this is not a SQLite database, it was overwritten" * 20)
        # the other state files may be created; the corrupt one is named and left as it is
        others = ("state/budget/k-state.sqlite*", "state/budget/*.lock")
        return (lambda: opener(root / "state")), Refusal(StateFileError, (str(path), "delete"), others)

    return build


CASES["corrupt_budget_state_file"] = corrupt_state_case(
    "budget/k-state.sqlite", lambda s: SharedBudget(s, "k")
)
CASES["corrupt_request_log_file"] = corrupt_state_case(
    "budget/k-requests.sqlite", lambda s: SharedBudget(s, "k")
)
CASES["corrupt_job_registry"] = corrupt_state_case("jobs.sqlite", JobRegistry)


@case
def warehouse_path_is_a_directory(root: Path) -> tuple[Callable[[], object], Refusal]:
    directory = root / "warehouse.duckdb"
    directory.mkdir()

    def open_it() -> object:
        with WarehouseResource(database=str(directory)).get_connection():
            return None

    return open_it, Refusal(dg.Failure, ("WFM_DUCKDB_PATH", str(directory), "directory"))


@case
def warehouse_file_not_duckdb(root: Path) -> tuple[Callable[[], object], Refusal]:
    path = root / "warehouse.duckdb"
    path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 4096)  # someone's other database

    def open_it() -> object:
        with WarehouseResource(database=str(path)).get_connection():
            return None

    return open_it, Refusal(dg.Failure, ("WFM_DUCKDB_PATH", str(path), "not a DuckDB database"))


def as_step(action: Callable[[], object]) -> object:
    """``action`` as a table step runs it: the pipeline's errors become the step's ``dg.Failure``."""
    with pipeline_errors_fail_the_step():
        return action()


def occupancy_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=warehouse.AGENT_OCCUPANCY.columns)


@case
def warehouse_of_the_sandbox_given_org_rows(root: Path) -> tuple[Callable[[], object], Refusal]:
    resource = WarehouseResource(database=str(root / "warehouse.duckdb"))
    frames = [(warehouse.AGENT_OCCUPANCY, occupancy_frame())]
    tables = [warehouse.AGENT_OCCUPANCY]
    write_checked(resource, tables, frames, DAY, DAY, "sandbox", lambda connection: [])

    def load_org_rows() -> object:
        return as_step(
            lambda: write_checked(resource, tables, frames, DAY, DAY, "api.mypurecloud.ie", lambda c: [])
        )

    return load_org_rows, Refusal(dg.Failure, ("'sandbox'", "api.mypurecloud.ie", "WFM_DUCKDB_PATH"))


# --- the raw area ------------------------------------------------------------------------------------
@case
def aggregates_path_from_a_hostile_unit_id(root: Path) -> tuple[Callable[[], object], Refusal]:
    store = RawStore(root / "data")
    path = store.raw_dir / "aggregates" / "2024-03-01_2024-03-01_x/../../../../ESCAPED.json"
    return (lambda: store.write_file(path, b"{}")), Refusal(UnsafePathError, ("outside WFM_DATA_DIR",))


@case
def truncated_manifest(root: Path) -> tuple[Callable[[], object], Refusal]:
    store = RawStore(root / "data")
    path = store.manifest_path("adherence", DAY)
    path.parent.mkdir(parents=True)
    path.write_text('{"kind": "adherence", "day": "2024-03-01", "files": [')
    return (lambda: store.read_manifest("adherence", DAY)), Refusal(
        RawFileError, (str(path), "re-materialize adherence_raw_files")
    )


def raw_file(store: RawStore, name: str, data: bytes) -> RawFileEntry:
    path = store.files_dir("adherence") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return RawFileEntry(store.relative(path), len(data), hashlib.sha256(data).hexdigest(), 1)


@case
def oversized_raw_file(root: Path) -> tuple[Callable[[], object], Refusal]:
    store = RawStore(root / "data", max_file_bytes=100)
    entry = raw_file(store, "big.json", b"{" + b" " * 200 + b"}")
    return (lambda: store.load_bytes(entry, "adherence")), Refusal(
        RawFileError, (entry.path, "more than the 100"), ("data/raw/adherence/big.json*", "data/quarantine/*")
    )


def parse_case(data: bytes, parse: Callable[[bytes], object], *names: str, quarantined: bool) -> Case:
    """The loader's step fails naming the file; a malformed file is quarantined, a well-formed one with a
    value we do not know stays where it is (``may_change`` is empty, so a move would fail the case)."""

    def build(root: Path) -> tuple[Callable[[], object], Refusal]:
        store = RawStore(root / "data")
        entry = raw_file(store, "file.json", data)
        moved = ("data/raw/adherence/file.json*", "data/quarantine/*") if quarantined else ()
        return (lambda: as_step(lambda: store.parse(entry, "adherence", parse))), Refusal(
            dg.Failure, (entry.path, *names), moved
        )

    return build


def adherence_rows(data: bytes) -> object:
    document = adherence_document(data)
    units = {UNIT.id: UNIT}
    return (
        adherence_daily_rows(document, units, DAY, DAY + timedelta(days=5)),
        adherence_exception_rows(document, units, DAY, DAY + timedelta(days=5)),
    )


def user_details_rows(data: bytes) -> object:
    return status_records_from_json([data])


def day_metric(offset: int) -> dict[str, Any]:
    fields = [
        "adherenceScheduleSeconds", "conformanceScheduleSeconds", "conformanceActualSeconds",
        "exceptionCount", "exceptionDurationSeconds", "impactSeconds", "scheduleLengthSeconds",
        "actualLengthSeconds",
    ]  # fmt: skip
    return {"dayStartOffsetSeconds": offset, "adherencePercentage": 90.0, "conformancePercentage": 95.0,
            **dict.fromkeys(fields, 0)}  # fmt: skip


def exception_info(**overrides: Any) -> dict[str, Any]:
    return {
        "startOffsetSeconds": 3600,
        "endOffsetSeconds": 4500,
        "scheduledActivityCategory": "OnQueueWork",
        "actualActivityCategory": "Break",
        "systemPresence": "Break",
        "routingStatus": "OFF_QUEUE",
        "impact": "Negative",
        **overrides,
    }


def adherence_bytes(exceptions: list[dict[str, Any]] | None = None, days: list[int] | None = None) -> bytes:
    return json.dumps(
        {
            "startDate": "2024-03-01T00:00:00.000Z",
            "endDate": "2024-03-03T00:00:00.000Z",
            "managementUnitId": MU_ID,
            "userResults": [
                {
                    "userId": USER_ID,
                    "dayMetrics": [day_metric(offset) for offset in (days or [0])],
                    "exceptionInfo": exceptions or [],
                }
            ],
        }
    ).encode()


def page_bytes(*routing: dict[str, Any], presence: tuple[dict[str, Any], ...] = ()) -> bytes:
    detail: dict[str, Any] = {"userId": USER_ID, "routingStatus": list(routing)}
    if presence:
        detail["primaryPresence"] = list(presence)
    return json.dumps({"userDetails": [detail]}).encode()


def status(start: str, end: str, value: str = "IDLE") -> dict[str, str]:
    return {"startTime": start, "endTime": end, "routingStatus": value}


T8, T9 = "2024-03-01T08:00:00.000Z", "2024-03-01T09:00:00.000Z"

# values Genesys does not document: the file is kept, nothing is loaded, the field and value are named
CASES["unknown_routing_status"] = parse_case(
    page_bytes(status(T8, T9, "TELEPORTING")), user_details_rows,
    "routingStatus", "'TELEPORTING'", "wfm_pipeline/wire.py", quarantined=False,
)  # fmt: skip
CASES["unknown_system_presence"] = parse_case(
    page_bytes(presence=({"startTime": T8, "endTime": T9, "systemPresence": "SLEEPING"},)),
    user_details_rows, "systemPresence", "'SLEEPING'", quarantined=False,
)  # fmt: skip
CASES["unknown_actual_activity_category"] = parse_case(
    adherence_bytes([exception_info(actualActivityCategory="Napping")]), adherence_rows,
    "actualActivityCategory", "'Napping'", quarantined=False,
)  # fmt: skip
CASES["unknown_scheduled_activity_category"] = parse_case(
    adherence_bytes([exception_info(scheduledActivityCategory="Lunch")]), adherence_rows,
    "scheduledActivityCategory", "'Lunch'", quarantined=False,
)  # fmt: skip
CASES["unknown_impact"] = parse_case(
    adherence_bytes([exception_info(impact="Catastrophic")]), adherence_rows,
    "impact", "'Catastrophic'", quarantined=False,
)  # fmt: skip
CASES["unknown_exception_routing_status"] = parse_case(
    adherence_bytes([exception_info(routingStatus="WANDERING")]), adherence_rows,
    "routingStatus", "'WANDERING'", quarantined=False,
)  # fmt: skip
# shapes Genesys never serves: the file is quarantined and named
CASES["status_ends_before_it_starts"] = parse_case(
    page_bytes(status(T9, T8)), user_details_rows, "end before they start", T9,
    quarantined=True,
)  # fmt: skip
CASES["negative_exception_offset"] = parse_case(
    adherence_bytes([exception_info(startOffsetSeconds=-600)]), adherence_rows,
    "startOffsetSeconds -600", "outside the query window", quarantined=True,
)  # fmt: skip
CASES["exception_ends_after_the_window"] = parse_case(
    adherence_bytes([exception_info(endOffsetSeconds=10 * 86400)]), adherence_rows,
    "endOffsetSeconds", "outside the query window", quarantined=True,
)  # fmt: skip
CASES["day_metric_outside_the_window"] = parse_case(
    adherence_bytes(days=[-86400]), adherence_rows, "dayStartOffsetSeconds -86400",
    quarantined=True,
)  # fmt: skip
CASES["adherence_file_not_json"] = parse_case(
    b"<html>gateway timeout</html>", adherence_rows, "not valid JSON", quarantined=True
)
CASES["adherence_file_nested_too_deep"] = parse_case(
    b"[" * 200_000 + b"]" * 200_000, adherence_rows, "not valid JSON", quarantined=True
)
CASES["adherence_file_without_unit"] = parse_case(
    json.dumps({"startDate": "2024-03-01T00:00:00Z", "userResults": []}).encode(), adherence_rows,
    "managementUnitId", quarantined=True,
)  # fmt: skip
CASES["user_details_page_without_user_id"] = parse_case(
    json.dumps({"userDetails": [{"routingStatus": [status(T8, T9)]}]}).encode(), user_details_rows,
    "no userId", quarantined=True,
)  # fmt: skip
CASES["status_record_without_status"] = parse_case(
    json.dumps({"userDetails": [{"userId": USER_ID, "routingStatus": [{"startTime": T8}]}]}).encode(),
    user_details_rows, "no routingStatus", quarantined=True,
)  # fmt: skip


@case
def bug_in_a_transform_moves_no_file(root: Path) -> tuple[Callable[[], object], Refusal]:
    """A programming error of ours (here a KeyError) must not quarantine a good file."""
    store = RawStore(root / "data")
    entry = raw_file(store, "good.json", adherence_bytes())

    def buggy(data: bytes) -> object:
        return json.loads(data)["no such key"]

    return (lambda: as_step(lambda: store.parse(entry, "adherence", buggy))), Refusal(
        KeyError, ("no such key",)
    )


# --- HTTP shapes (scripted fake) ---------------------------------------------------------------------
def fake_client(root: Path, fake: FakeGenesys, **options: Any) -> GenesysClient:
    settings = ClientSettings.for_sandbox(
        "http://genesys.test",
        max_attempts=2,
        backoff_base_seconds=0.01,
        poll_initial_seconds=0.01,
        poll_cap_seconds=0.02,
        **options,
    )
    return GenesysClient(settings, root / "state", transport=httpx.MockTransport(fake), sleep=lambda s: None)


STATE = ("state/*",)


def http_case(
    method: str,
    path: str,
    reply: httpx.Response,
    call: Callable[[GenesysClient, Path], object],
    error: type[BaseException],
    *names: str,
    **options: Any,
) -> Case:
    def build(root: Path) -> tuple[Callable[[], object], Refusal]:
        fake = FakeGenesys()
        fake.script(method, path, *([reply] * 10))
        client = fake_client(root, fake, **options)
        (root / "raw").mkdir()
        return (lambda: call(client, root / "raw")), Refusal(error, names, STATE)

    return build


UNITS = wire.MANAGEMENT_UNITS_PATH


def listing(*entities: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"entities": list(entities)})


def units(client: GenesysClient, dest: Path) -> object:
    return client.management_units()


def export(client: GenesysClient, dest: Path) -> object:
    return client.run_export(REQUEST, dest)


CASES["unit_id_with_path_traversal"] = http_case(
    "GET", UNITS, listing({"id": "x/../../../ESCAPED", "timeZone": "UTC"}), units, UnexpectedResponseError,
    f"GET {UNITS}", "'x/../../../ESCAPED'", "UUID",
)  # fmt: skip
CASES["unit_without_id"] = http_case(
    "GET", UNITS, listing({"name": "No id", "timeZone": "UTC"}), units, UnexpectedResponseError,
    f"GET {UNITS}", "field id",
)  # fmt: skip
CASES["unit_without_time_zone"] = http_case(
    "GET", UNITS, listing({"id": MU_ID, "name": "No zone"}), units, UnexpectedResponseError,
    f"{UNITS}/{MU_ID}", "has no timeZone",
)  # fmt: skip
CASES["unit_with_invalid_time_zone"] = http_case(
    "GET", UNITS, listing({"id": MU_ID, "timeZone": "Mars/Olympus_Mons"}), units, UnexpectedResponseError,
    f"GET {UNITS}", MU_ID, "'Mars/Olympus_Mons'",
)  # fmt: skip
CASES["unit_listing_not_json"] = http_case(
    "GET", UNITS, httpx.Response(200, text="<html>Sign in</html>"), units, UnexpectedResponseError,
    f"GET {UNITS}", "not JSON",
)  # fmt: skip
CASES["unit_listing_entities_not_a_list"] = http_case(
    "GET", UNITS, httpx.Response(200, json={"entities": "none"}), units, UnexpectedResponseError,
    f"GET {UNITS}", "entities",
)  # fmt: skip
CASES["unit_listing_nested_too_deep"] = http_case(
    "GET", UNITS, httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000), units,
    UnexpectedResponseError, f"GET {UNITS}", "not JSON",
)  # fmt: skip
CASES["member_id_not_a_uuid"] = http_case(
    "GET", f"{UNITS}/{MU_ID}/users", listing({"id": "../../etc"}),
    lambda client, dest: client.management_unit_user_ids(MU_ID), UnexpectedResponseError, "/users",
    "'../../etc'",
)  # fmt: skip
CASES["availability_without_date"] = http_case(
    "GET", wire.USER_DETAILS_AVAILABILITY_PATH, httpx.Response(200, json={}),
    lambda client, dest: client.data_availability_date(), UnexpectedResponseError,
    wire.USER_DETAILS_AVAILABILITY_PATH, "dataAvailabilityDate",
)  # fmt: skip
CASES["availability_not_a_timestamp"] = http_case(
    "GET", wire.USER_DETAILS_AVAILABILITY_PATH, httpx.Response(200, json={"dataAvailabilityDate": "soon"}),
    lambda client, dest: client.data_availability_date(), UnexpectedResponseError, "'soon'",
)  # fmt: skip
CASES["adherence_submission_without_job"] = http_case(
    "POST", wire.ADHERENCE_BULK_PATH, httpx.Response(202, json={"id": MU_ID}), export,
    UnexpectedResponseError, f"POST {wire.ADHERENCE_BULK_PATH}", "job",
)  # fmt: skip
CASES["adherence_job_with_unknown_status"] = http_case(
    "POST",
    wire.ADHERENCE_BULK_PATH,
    httpx.Response(202, json={"job": {"id": MU_ID, "status": "Teleported"}}),
    export,
    UnexpectedResponseError,
    "'Teleported'",
    "Processing",
)
CASES["adherence_download_urls_not_urls"] = http_case(
    "POST", wire.ADHERENCE_BULK_PATH,
    httpx.Response(202, json={"job": {"id": MU_ID, "status": "Complete"}, "downloadUrls": ["../x"]}),
    export, UnexpectedResponseError, "downloadUrls",
)  # fmt: skip
CASES["user_details_submission_without_job_id"] = http_case(
    "POST", wire.USER_DETAILS_JOBS_PATH, httpx.Response(202, json={"id": "x"}),
    lambda client, dest: client.run_export(
        UserDetailsExportRequest(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC)), dest
    ),
    UnexpectedResponseError, f"POST {wire.USER_DETAILS_JOBS_PATH}", "jobId",
)  # fmt: skip
CASES["token_reply_without_access_token"] = http_case(
    "POST", wire.TOKEN_PATH, httpx.Response(200, json={"token_type": "bearer"}), units,
    UnexpectedResponseError, wire.TOKEN_PATH, "access_token",
)  # fmt: skip
CASES["response_larger_than_the_cap"] = http_case(
    "GET", UNITS, listing(*[{"id": MU_ID, "timeZone": "UTC", "name": "x" * 100}] * 50), units,
    ResponseTooLargeError, f"GET {UNITS}", "max_response_bytes", max_response_bytes=2_000,
)  # fmt: skip
CASES["decompression_bomb"] = http_case(
    "GET", UNITS,
    httpx.Response(200, content=gzip.compress(b" " * 5_000_000), headers={"Content-Encoding": "gzip"}),
    units, ResponseTooLargeError, "max_response_bytes", max_response_bytes=1_000_000,
)  # fmt: skip


@case
def adherence_results_of_another_request(root: Path) -> tuple[Callable[[], object], Refusal]:
    """A job id that serves another unit's file (a restarted server reusing ids): resubmitted, and when
    every resubmission does the same, refused with nothing kept."""
    fake = FakeGenesys(download_urls=1)
    foreign = {"managementUnitId": OTHER_MU_ID, "startDate": "2024-03-01T00:00:00.000Z",
               "endDate": "2024-03-02T00:00:00.000Z", "userResults": []}  # fmt: skip
    fake.script("GET", "/downloads/", *[httpx.Response(200, json=foreign)] * 10)
    client = fake_client(root, fake)
    (root / "raw").mkdir()
    return (lambda: client.run_export(REQUEST, root / "raw")), Refusal(
        UnexpectedResponseError, (OTHER_MU_ID, "nothing was kept"), STATE
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@case
def sandbox_not_running(root: Path) -> tuple[Callable[[], object], Refusal]:
    port = closed_port()
    settings = ClientSettings.from_env(
        {ENV_SANDBOX_URL: f"http://127.0.0.1:{port}"}, max_attempts=2, backoff_base_seconds=0.01
    )
    client = GenesysClient(settings, root / "state")
    return client.management_units, Refusal(NetworkError, (f"127.0.0.1:{port}", ENV_SANDBOX_URL), STATE)


# --- the runner (after every case is registered: parametrize reads CASES here) -------------------------
@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_refused_naming_what_to_fix_and_losing_nothing(name: str, tmp_path: Path) -> None:
    action, expected = CASES[name](tmp_path)
    before = tree(tmp_path)
    with pytest.raises(expected.error) as caught:
        action()
    message = str(caught.value)
    missing = [needle for needle in expected.names if needle not in message]
    assert not missing, f"the message does not name {missing}: {message}"
    after = tree(tmp_path)
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    unexpected = sorted(p for p in changed if not any(fnmatch(p, pattern) for pattern in expected.may_change))
    assert not unexpected, f"files changed that must not: {unexpected}"
    assert not [path for path in after if TEMP_MARKER in path], "a half-written temporary file is left"


def test_the_catalogue_holds_at_least_forty_bad_inputs() -> None:
    assert len(CASES) >= 40
