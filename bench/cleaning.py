"""Cleaning rate (not a test): our transforms on raw users-details pages vs DuckDB's own `read_json`.

    .venv/bin/python -m bench.cleaning [--days 14] [--agents 300]

Both sides read the same raw files Genesys served and produce one row per status record with parsed
timestamps; ours then deduplicates, clips to local days and computes occupancy (more work, same input).
Rates are raw status records per second. Without --data-dir the files are fetched from a `fast` sandbox
with the project's client.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from wfm_pipeline.genesys import ClientSettings, GenesysClient, UserDetailsExportRequest
from wfm_pipeline.sandbox.launcher import SandboxProcess
from wfm_pipeline.transforms import (
    PRESENCE_COLUMNS,
    ROUTING_STATUS_COLUMNS,
    ManagementUnitInfo,
    agent_occupancy,
    day_frame,
    membership_frame,
    segments,
    status_records_from_json,
)

FIRST_DAY = date(2024, 3, 4)
REPEATS = 3


def fetch_pages(base_url: str, workdir: Path, days: int) -> tuple[list[Path], list[ManagementUnitInfo]]:
    settings = ClientSettings.for_sandbox(base_url)
    with GenesysClient(settings, state_dir=workdir / "state") as client:
        units = [
            ManagementUnitInfo(unit.id, unit.time_zone, tuple(client.management_unit_user_ids(unit.id)))
            for unit in client.management_units()
        ]
        start = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC) - timedelta(hours=14)
        end = start + timedelta(days=days, hours=28)
        result = client.run_export(UserDetailsExportRequest(start=start, end=end), workdir / "raw")
    return [Path(file.path) for file in result.files], units


def ours(paths: list[Path], units: list[ManagementUnitInfo], days: int) -> tuple[int, float]:
    started = time.perf_counter()
    routing_records, presence_records = status_records_from_json(path.read_bytes() for path in paths)
    last = FIRST_DAY + timedelta(days=days - 1)
    days_frame = day_frame(units, FIRST_DAY, last)
    membership = membership_frame(units)
    routing = segments(routing_records, membership, days_frame, ROUTING_STATUS_COLUMNS)
    presence = segments(presence_records, membership, days_frame, PRESENCE_COLUMNS)
    agent_occupancy(routing, presence, days_frame)
    return routing_records.height + presence_records.height, time.perf_counter() - started


def our_stages(paths: list[Path], units: list[ManagementUnitInfo], days: int) -> dict[str, float]:
    """Seconds of each stage of ``ours`` (best of REPEATS each): where our side spends its time."""
    best: dict[str, float] = {}
    for _ in range(REPEATS):
        started = time.perf_counter()
        routing_records, presence_records = status_records_from_json(path.read_bytes() for path in paths)
        parsed = time.perf_counter()
        days_frame = day_frame(units, FIRST_DAY, FIRST_DAY + timedelta(days=days - 1))
        membership = membership_frame(units)
        routing = segments(routing_records, membership, days_frame, ROUTING_STATUS_COLUMNS)
        presence = segments(presence_records, membership, days_frame, PRESENCE_COLUMNS)
        segmented = time.perf_counter()
        agent_occupancy(routing, presence, days_frame)
        done = time.perf_counter()
        for stage, seconds in (
            ("parse JSON", parsed - started),
            ("dedupe, overlaps, clip to local days", segmented - parsed),
            ("occupancy", done - segmented),
        ):
            best[stage] = min(best.get(stage, seconds), seconds)
    return best


def duckdb_read_json(paths: list[Path]) -> tuple[int, float]:
    files = [str(path) for path in paths]
    started = time.perf_counter()
    with duckdb.connect() as con:
        con.execute(
            "CREATE TABLE pages AS SELECT unnest(userDetails) AS ud FROM read_json(?, format='auto')", [files]
        )
        con.execute(
            "CREATE TABLE routing AS SELECT ud.userId AS user_id, "
            "CAST(r.startTime AS TIMESTAMPTZ) AS start_time, CAST(r.endTime AS TIMESTAMPTZ) AS end_time, "
            "r.routingStatus AS routing_status "
            "FROM (SELECT ud, unnest(ud.routingStatus) AS r FROM pages)"
        )
        con.execute(
            "CREATE TABLE presence AS SELECT ud.userId AS user_id, "
            "CAST(p.startTime AS TIMESTAMPTZ) AS start_time, CAST(p.endTime AS TIMESTAMPTZ) AS end_time, "
            "p.systemPresence AS system_presence, "
            "p.organizationPresenceId AS organization_presence_id "
            "FROM (SELECT ud, unnest(ud.primaryPresence) AS p FROM pages)"
        )
        row = con.execute(
            "SELECT (SELECT count(*) FROM routing) + (SELECT count(*) FROM presence)"
        ).fetchone()
    return int(row[0]) if row else 0, time.perf_counter() - started


def best_of(measure, *args) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    runs = [measure(*args) for _ in range(REPEATS)]
    rows = {count for count, _ in runs}
    if len(rows) != 1:
        raise RuntimeError(f"row counts differ between repeats: {rows}")
    return rows.pop(), min(seconds for _, seconds in runs)


def measure(paths: list[Path], units: list[ManagementUnitInfo], days: int) -> str:
    our_rows, our_seconds = best_of(ours, paths, units, days)
    duck_rows, duck_seconds = best_of(duckdb_read_json, paths)
    if our_rows != duck_rows:
        raise RuntimeError(f"the two readers disagree on the raw record count: {our_rows} vs {duck_rows}")
    our_rate, duck_rate = our_rows / our_seconds, duck_rows / duck_seconds
    size_mib = sum(path.stat().st_size for path in paths) / 2**20
    return "\n".join(
        [
            f"### Cleaning rate: {len(paths)} raw users-details pages, {size_mib:.1f} MiB, "
            f"{our_rows:,} status records ({days} days)",
            "",
            "| reader | seconds (best of 3) | records/s |",
            "|---|---|---|",
            f"| DuckDB `read_json` + unnest + timestamp cast | {duck_seconds:.2f} | {duck_rate:,.0f} |",
            f"| wfm-pipeline transforms (parse, dedupe, clip, occupancy) | {our_seconds:.2f} "
            f"| {our_rate:,.0f} |",
            f"| ratio (target >= 0.70) | | {our_rate / duck_rate:.2f} |",
            "",
            "Our side by stage (seconds, best of 3 each): "
            + "; ".join(
                f"{stage} {seconds:.2f}" for stage, seconds in our_stages(paths, units, days).items()
            ),
        ]
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--agents", type=int, default=300)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="wfm-cleaning-") as tmp,
        SandboxProcess(profile="fast", agents=args.agents) as sandbox,
    ):
        paths, units = fetch_pages(sandbox.base_url, Path(tmp), args.days)
        return measure(paths, units, args.days)


if __name__ == "__main__":
    print(main())
