"""Pipeline settings: the environment is read ONCE, here, by ``wfm_pipeline.definitions`` (and by
``wfm-pipeline dev`` before it starts anything), validated with messages that name what to fix. Everything
else receives a ``PipelineSettings``; no module reads the environment at import.

Variables (default in brackets):
- GENESYSCLOUD_OAUTHCLIENT_ID / _SECRET / GENESYSCLOUD_REGION [unset]: a real org. Only their NAMES are kept
  here: the Genesys resource reads their values through ``dg.EnvVar`` (see ``resources.py``), so the Dagster
  UI shows which variable holds a credential, never its value. With no ``GENESYSCLOUD_*`` set at all:
- WFM_SANDBOX_URL [http://127.0.0.1:8765]: the embedded sandbox
- WFM_DATA_DIR [./data]: raw files, manifests, quarantine
- WFM_STATE_DIR [<data dir>/state]: client token cache, request budget, job registry
- WFM_DUCKDB_PATH [<data dir>/warehouse.duckdb]: the DuckDB database (schema ``wfm``)
- WFM_PARTITIONS_START [2023-01-01]: first daily partition
- WFM_BACKFILL_MAX_PARTITIONS_PER_RUN [35]: days per backfill run (five weeks of adherence windows)
- WFM_REFRESH_DAYS [3]: recent days re-materialized once a day by the sensor
- WFM_SENSOR_LOOKBACK_DAYS [7]: missing days the sensor fills in (older ones: launch a backfill)
- WFM_SENSOR_INTERVAL_SECONDS [300]: sensor evaluation interval
- WFM_OCCUPANCY_SAMPLE_AGENTS [2]: agents per unit compared with the aggregates API
- WFM_STEP_EXECUTOR [multiprocess]: how a backfill's (or any UI-launched) run executes its steps:
  multiprocess, forkserver or in_process (``defs/executors.py``)
- WFM_SENSOR_STEP_EXECUTOR [in_process]: the same for the sensor's ``wfm_daily`` runs: a few days each, whose
  steps would otherwise spend longer starting than computing (BENCHMARKS.md "Start-up")
- WFM_OCCUPANCY_INTERVAL [PT30M]: the interval rows of ``agent_occupancy``: PT15M, PT30M or PT60M
- WFM_ASSET_OWNERS [team:wfm-pipeline]: owners of every asset (comma-separated e-mails or team:<name>)
- WFM_FRESHNESS_DEADLINE_CRON [0 12 * * *]: when (UTC) the previous day's partition of every fact table
  should be materialized; a freshness check per table warns after it
- WFM_DEFAULT_TIME_ZONE [the business units' zone, else UTC]: the IANA zone whose local days the presence,
  routing and occupancy of agents in no management unit are cut into (``management_unit_id`` NULL)

The DuckDB file is NOT called ``wfm.duckdb``: a catalog named like the schema ``wfm`` makes ``wfm.<table>``
ambiguous in every query ("Ambiguous reference to catalog or schema").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# not in dagster's top level; the same check Dagster applies to a schedule's cron string
from dagster._utils.schedules import is_valid_cron_string

from wfm_pipeline.defs.executors import STEP_EXECUTORS
from wfm_pipeline.errors import PipelineError
from wfm_pipeline.genesys import GENESYS_ENV_PREFIX, ConfigurationError, sandbox_url_from_env, uses_sandbox
from wfm_pipeline.transforms import OccupancyInterval


class PipelineConfigError(PipelineError, ValueError):
    """Bad pipeline configuration; the message names the variable and the expected form."""


@dataclass(frozen=True)
class GenesysEnvironment:
    """Which API the pipeline talks to, decided from the environment without keeping any secret: the
    sandbox (no ``GENESYSCLOUD_*`` variable set at all, see ``genesys.settings.uses_sandbox``) or a real org
    whose credentials the resource reads from the variables named here."""

    sandbox_url: str  # "" for a real org
    variables: tuple[str, ...] = ()  # the GENESYSCLOUD_* variables that are set (names only)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GenesysEnvironment:
        if uses_sandbox(environ):
            return cls(sandbox_url=sandbox_url_from_env(environ))
        return cls(
            sandbox_url="", variables=tuple(sorted(n for n in environ if n.startswith(GENESYS_ENV_PREFIX)))
        )


def _env(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def _int_env(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = _env(environ, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise PipelineConfigError(f"{name}={raw!r} is not an integer (expected >= {minimum})") from exc
    if value < minimum:
        raise PipelineConfigError(f"{name}={value} must be >= {minimum}")
    return value


def _choice_env(environ: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = _env(environ, name) or default
    if value not in choices:
        raise PipelineConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def _time_zone_env(environ: Mapping[str, str], name: str) -> str | None:
    value = _env(environ, name)
    if not value:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PipelineConfigError(
            f"{name}={value!r} is not an IANA time zone (e.g. America/Chicago, Europe/London, UTC)"
        ) from exc
    return value


def _owners_env(environ: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = _env(environ, name)
    if not raw:
        return default
    owners = tuple(owner.strip() for owner in raw.split(",") if owner.strip())
    wrong = [owner for owner in owners if not (owner.startswith("team:") or "@" in owner)]
    if wrong or not owners:
        raise PipelineConfigError(
            f"{name}={raw!r}: each owner is an e-mail address or team:<name> (Dagster's owners), "
            f"comma-separated; not {', '.join(wrong) or 'empty'}"
        )
    return owners


def _cron_env(environ: Mapping[str, str], name: str, default: str) -> str:
    value = _env(environ, name) or default
    if not is_valid_cron_string(value):
        raise PipelineConfigError(
            f"{name}={value!r} is not a cron schedule (e.g. '0 12 * * *': 12:00 UTC daily)"
        )
    return value


@dataclass(frozen=True)
class PipelineSettings:
    data_dir: Path
    state_dir: Path
    duckdb_path: Path
    partitions_start: date
    max_partitions_per_run: int
    refresh_days: int
    sensor_lookback_days: int
    sensor_interval_seconds: int
    occupancy_sample_agents: int
    step_executor: str  # a key of ``defs.executors.STEP_EXECUTORS``
    sensor_step_executor: str  # the same, for the sensor's job
    occupancy_interval: OccupancyInterval
    asset_owners: tuple[str, ...]
    freshness_deadline_cron: str
    default_time_zone: str | None  # None: the org's (its business units' zone when they agree, else UTC)
    # Which API: the sandbox's URL, or the names of the GENESYSCLOUD_* variables that are set (never values).
    genesys: GenesysEnvironment

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, base_dir: Path = Path(".")
    ) -> PipelineSettings:
        """``base_dir`` anchors the relative defaults (``wfm-pipeline dev`` passes the project root)."""
        env = os.environ if environ is None else environ
        try:
            genesys = GenesysEnvironment.from_env(env)
        except ConfigurationError as exc:
            raise PipelineConfigError(str(exc)) from exc
        data_dir = Path(_env(env, "WFM_DATA_DIR") or base_dir / "data").expanduser()
        state_dir = Path(_env(env, "WFM_STATE_DIR") or data_dir / "state").expanduser()
        duckdb_path = Path(_env(env, "WFM_DUCKDB_PATH") or data_dir / "warehouse.duckdb").expanduser()
        if duckdb_path.name.split(".")[0].lower() == "wfm":
            raise PipelineConfigError(
                f"WFM_DUCKDB_PATH={duckdb_path}: a database file named 'wfm' (any case, any extension) "
                "clashes with the schema 'wfm' (DuckDB cannot tell catalog from schema in wfm.<table>); "
                "choose another file name, e.g. warehouse.duckdb"
            )
        raw_start = _env(env, "WFM_PARTITIONS_START") or "2023-01-01"
        try:
            partitions_start = date.fromisoformat(raw_start)
        except ValueError as exc:
            raise PipelineConfigError(
                f"WFM_PARTITIONS_START={raw_start!r} is not a date; expected YYYY-MM-DD"
            ) from exc
        if partitions_start > date.today():
            raise PipelineConfigError(
                f"WFM_PARTITIONS_START={raw_start} is after today: there would be no day to load; set the "
                "first day of history you want (YYYY-MM-DD, e.g. 2023-01-01)"
            )
        return cls(
            data_dir=data_dir,
            state_dir=state_dir,
            duckdb_path=duckdb_path,
            partitions_start=partitions_start,
            max_partitions_per_run=_int_env(env, "WFM_BACKFILL_MAX_PARTITIONS_PER_RUN", 35, 1),
            refresh_days=_int_env(env, "WFM_REFRESH_DAYS", 3, 0),
            sensor_lookback_days=_int_env(env, "WFM_SENSOR_LOOKBACK_DAYS", 7, 1),
            sensor_interval_seconds=_int_env(env, "WFM_SENSOR_INTERVAL_SECONDS", 300, 5),
            occupancy_sample_agents=_int_env(env, "WFM_OCCUPANCY_SAMPLE_AGENTS", 2, 0),
            step_executor=_choice_env(env, "WFM_STEP_EXECUTOR", tuple(STEP_EXECUTORS), "multiprocess"),
            sensor_step_executor=_choice_env(
                env, "WFM_SENSOR_STEP_EXECUTOR", tuple(STEP_EXECUTORS), "in_process"
            ),
            occupancy_interval=OccupancyInterval(
                _choice_env(
                    env, "WFM_OCCUPANCY_INTERVAL", tuple(OccupancyInterval), OccupancyInterval.PT30M.value
                )
            ),
            default_time_zone=_time_zone_env(env, "WFM_DEFAULT_TIME_ZONE"),
            asset_owners=_owners_env(env, "WFM_ASSET_OWNERS", ("team:wfm-pipeline",)),
            freshness_deadline_cron=_cron_env(env, "WFM_FRESHNESS_DEADLINE_CRON", "0 12 * * *"),
            genesys=genesys,
        )
