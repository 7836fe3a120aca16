"""Client settings: where to connect, with which credentials; the knobs of the budget, retries and jobs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import timedelta
from urllib.parse import urlsplit

from wfm_pipeline import wire
from wfm_pipeline.genesys._errors import ConfigurationError
from wfm_pipeline.genesys._regions import resolve_region

ENV_CLIENT_ID = "GENESYSCLOUD_OAUTHCLIENT_ID"
ENV_CLIENT_SECRET = "GENESYSCLOUD_OAUTHCLIENT_SECRET"
ENV_REGION = "GENESYSCLOUD_REGION"
ENV_SANDBOX_URL = "WFM_SANDBOX_URL"
DEFAULT_SANDBOX_URL = f"http://{wire.SANDBOX_DEFAULT_HOST}:{wire.SANDBOX_DEFAULT_PORT}"
# Any variable of this family set (even blank) means "a real org was meant": never fall back to the sandbox.
GENESYS_ENV_PREFIX = "GENESYSCLOUD_"
SANDBOX_SOURCE = "sandbox"


def uses_sandbox(environ: Mapping[str, str] | None = None) -> bool:
    """True when no ``GENESYSCLOUD_*`` variable is set at all (not even blank): the sandbox is the default
    only then, so a failed secret mount (blank values) cannot silently load synthetic rows."""
    env = os.environ if environ is None else environ
    return not any(name.startswith(GENESYS_ENV_PREFIX) for name in env)


def sandbox_url_from_env(environ: Mapping[str, str]) -> str:
    """``WFM_SANDBOX_URL`` (default ``http://127.0.0.1:8765``): scheme and host only, no path or query."""
    raw = environ.get(ENV_SANDBOX_URL, "").strip()
    if not raw:
        return DEFAULT_SANDBOX_URL
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{ENV_SANDBOX_URL}={raw!r} is not an http(s) URL with a host; "
            f"expected e.g. {DEFAULT_SANDBOX_URL}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ConfigurationError(
            f"{ENV_SANDBOX_URL}={raw!r} has a path, query or credentials; give only scheme, host and port, "
            f"e.g. {DEFAULT_SANDBOX_URL} (the API paths are added by the client)"
        )
    try:
        parts.port  # noqa: B018 -- raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ConfigurationError(f"{ENV_SANDBOX_URL}={raw!r}: {exc}") from exc
    return raw.rstrip("/")


@dataclass(frozen=True)
class ClientSettings:
    client_id: str
    client_secret: str = field(repr=False)  # never in a log line, a traceback or the Dagster UI
    api_base_url: str
    # OAuth host. The SDK derives it by replacing "//api." with "//login."; without "api." it is the API host.
    login_base_url: str = ""
    # Where the credentials came from, so an authentication error can name what to fix.
    client_id_source: str = "ClientSettings.client_id"
    client_secret_source: str = "ClientSettings.client_secret"
    api_base_url_source: str = "ClientSettings.api_base_url"
    # True for the embedded emulator; its rows must never be mixed with an org's (see ``source``).
    sandbox: bool = False

    # --- request budget (shared by every process using this client id + host) ---
    # Where each figure comes from: see the README "Budget rules". In short, the org's reported limits
    # (GET /api/v2/organizations/limits/namespaces/..., discovered on first use) and the
    # inin-ratelimit-* headers win over these; the job throttles below, when set to something other than
    # their default, cap what is reported (the stricter of the two is used).
    discover_limits: bool = True
    limits_cache_seconds: float = 300.0  # a discovery is shared through state_dir for this long
    requests_per_window: int = 300  # documented default: 300 requests per token per minute
    window_seconds: float = 60.0
    # Fraction of the server's allowance we use; the rest absorbs latency jitter and in-flight requests.
    safety_margin: float = 0.95
    # Job submissions (a secondary throttle Genesys has but does not publish): per window, shared. Used as
    # is when the org reports no quota (real Genesys); a reported quota replaces these defaults.
    submissions_per_window: int = 30
    submission_window_seconds: float = 60.0
    max_jobs_in_flight: int = 8

    # --- retries ---
    max_attempts: int = 6
    max_retry_seconds: float = 300.0
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 60.0
    # Longest pause any server header may impose (Retry-After, inin-ratelimit-reset): Genesys's windows
    # are 60 s, so a larger figure is a fault; one bad header must not freeze every process for a year.
    max_pause_seconds: float = 180.0
    # Longest a request waits for the shared budget (pause, request log, job slot) before failing.
    max_budget_wait_seconds: float = 900.0
    # Decoded bytes of one response (downloads, pages, listings); past it the request fails, nothing kept.
    max_response_bytes: int = 512 * 1024 * 1024

    # --- HTTP ---
    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0

    # --- jobs ---
    poll_initial_seconds: float = 1.0
    poll_factor: float = 1.5
    poll_cap_seconds: float = 30.0
    job_timeout_seconds: float = 3600.0
    max_resubmissions: int = 2
    # Users-details jobs cover whole cells of a fixed UTC grid of this length (from Monday 2000-01-03), so a
    # relaunch that groups days differently submits the same bodies. 7 days: the documented maximum of the
    # unfiltered user-details query (the pipeline's requests have no filter; the job variant documents no
    # limit), and one job per week like the adherence grid (5-6 jobs per 35-day run where 1-day cells need
    # 35-36 of the job-submission quota), at the cost of a one-day sensor run downloading the rest of its
    # week so far (at most 7 days, 2 cells when its day straddles a Monday 00:00 UTC). See genesys/README.md.
    user_details_cell: timedelta = timedelta(days=7)
    user_details_page_size: int = 100
    # GET /api/v2/users pages (the directory): 500 is the largest page Genesys serves (its default is 25).
    users_page_size: int = 500
    # Registered jobs older than this are not resumed: a retry within hours resumes the job it submitted,
    # a re-materialization a day later submits a fresh one (its data may have changed since).
    job_resume_max_age: timedelta = timedelta(hours=6)

    def __post_init__(self) -> None:
        if not self.login_base_url:
            object.__setattr__(self, "login_base_url", login_url_for(self.api_base_url))
        object.__setattr__(self, "api_base_url", self.api_base_url.rstrip("/"))
        object.__setattr__(self, "login_base_url", self.login_base_url.rstrip("/"))
        if not 0 < self.safety_margin <= 1:
            raise ConfigurationError("safety_margin must be in (0, 1]")
        if self.requests_per_window < 1 or self.window_seconds <= 0:
            raise ConfigurationError("requests_per_window and window_seconds must be positive")
        if not 0 < self.max_pause_seconds <= self.max_budget_wait_seconds:
            raise ConfigurationError("max_pause_seconds must be in (0, max_budget_wait_seconds]")
        if self.max_response_bytes < 1:
            raise ConfigurationError("max_response_bytes must be positive")
        if self.user_details_cell <= timedelta(0):
            raise ConfigurationError("user_details_cell must be positive")

    def is_configured(self, name: str) -> bool:
        """True when ``name`` differs from its default (a user's explicit choice caps discovered limits)."""
        return bool(getattr(self, name) != _DEFAULTS[name])

    @property
    def api_host(self) -> str:
        return urlsplit(self.api_base_url).netloc

    @property
    def source(self) -> str:
        """Where rows come from: ``sandbox`` or the org's API host (recorded in manifests and warehouse)."""
        return SANDBOX_SOURCE if self.sandbox else self.api_host

    def with_overrides(self, **changes: object) -> ClientSettings:
        # Keyword overrides of fields of mixed types: mypy cannot type them (an unknown name is a TypeError).
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def for_region(cls, region: str, client_id: str, client_secret: str, **options: object) -> ClientSettings:
        resolved = resolve_region(region)  # UnknownRegionError is a ConfigurationError
        return cls(
            client_id=client_id,
            client_secret=client_secret,
            api_base_url=resolved.api_base_url,
            login_base_url=resolved.login_base_url,
            api_base_url_source=f"region {region!r}",
            **options,  # type: ignore[arg-type]  # field overrides of mixed types, as in with_overrides
        )

    @classmethod
    def for_sandbox(cls, base_url: str = DEFAULT_SANDBOX_URL, **options: object) -> ClientSettings:
        return cls(
            client_id=wire.SANDBOX_CLIENT_ID,
            client_secret=wire.SANDBOX_CLIENT_SECRET,
            api_base_url=base_url,
            client_id_source="the sandbox default credentials",
            client_secret_source="the sandbox default credentials",
            sandbox=True,
            **options,  # type: ignore[arg-type]  # field overrides of mixed types, as in with_overrides
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: object) -> ClientSettings:
        """GENESYSCLOUD_OAUTHCLIENT_ID/_SECRET/REGION; the sandbox only when no GENESYSCLOUD_* is set."""
        env = os.environ if environ is None else environ
        if uses_sandbox(env):
            settings = cls.for_sandbox(sandbox_url_from_env(env), **options)
            return replace(
                settings, api_base_url_source=f"environment variable {ENV_SANDBOX_URL} or its default"
            )
        client_id = env.get(ENV_CLIENT_ID, "").strip()
        client_secret = env.get(ENV_CLIENT_SECRET, "").strip()
        if not client_id or not client_secret:
            blank = [
                name
                for name, value in ((ENV_CLIENT_ID, client_id), (ENV_CLIENT_SECRET, client_secret))
                if not value
            ]
            present = sorted(name for name in env if name.startswith(GENESYS_ENV_PREFIX))
            raise ConfigurationError(
                f"{' and '.join(blank)} {'is' if len(blank) == 1 else 'are'} unset or blank while "
                f"{', '.join(present)} {'is' if len(present) == 1 else 'are'} set: set both "
                f"{ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} to use your org, or unset every GENESYSCLOUD_* "
                "variable to use the sandbox (a blank value is treated as a failed secret mount, never as "
                "'use the sandbox')."
            )
        region = env.get(ENV_REGION, "").strip() or "us_east_1"
        settings = cls.for_region(region, client_id, client_secret, **options)
        return replace(
            settings,
            client_id_source=f"environment variable {ENV_CLIENT_ID}",
            client_secret_source=f"environment variable {ENV_CLIENT_SECRET}",
            api_base_url_source=f"environment variable {ENV_REGION}"
            + ("" if env.get(ENV_REGION, "").strip() else " (unset: us_east_1)"),
        )


_DEFAULTS: dict[str, object] = {f.name: f.default for f in fields(ClientSettings) if f.default is not MISSING}


def login_url_for(api_base_url: str) -> str:
    """The SDK rule: replace ``//api.`` by ``//login.``; hosts without it serve OAuth themselves."""
    if "//api." in api_base_url:
        return api_base_url.replace("//api.", "//login.", 1)
    return api_base_url
