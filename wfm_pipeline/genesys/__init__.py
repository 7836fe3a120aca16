"""Genesys Cloud API client (httpx; no Dagster imports): shared request budget, retries, resumable exports.

The public API is what this module lists in ``__all__``; the ``_modules`` are the implementation (see
README.md for what each holds) and may change without notice.
"""

from wfm_pipeline.genesys._client import GenesysClient
from wfm_pipeline.genesys._errors import (
    AuthenticationError,
    BadRequestError,
    BudgetWaitTimeout,
    ConfigurationError,
    ExportJobFailed,
    GenesysError,
    JobTimeout,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseTooLargeError,
    ServerError,
    StateFileError,
    UnexpectedResponseError,
    UnknownRegionError,
)
from wfm_pipeline.genesys._files import ExportedFile, complete_file, sidecar_path
from wfm_pipeline.genesys._metrics import RequestMetrics
from wfm_pipeline.genesys._models import (
    AdherenceExportRequest,
    ExportJob,
    ExportResult,
    JobResult,
    LeftOut,
    ManagementUnit,
    UserDetailsExportRequest,
)
from wfm_pipeline.genesys._regions import REGION_DOMAINS, resolve_region
from wfm_pipeline.genesys._settings import (
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_REGION,
    ENV_SANDBOX_URL,
    GENESYS_ENV_PREFIX,
    ClientSettings,
    sandbox_url_from_env,
    uses_sandbox,
)

__all__ = [
    "ENV_CLIENT_ID",
    "ENV_CLIENT_SECRET",
    "ENV_REGION",
    "ENV_SANDBOX_URL",
    "GENESYS_ENV_PREFIX",
    "REGION_DOMAINS",
    "AdherenceExportRequest",
    "AuthenticationError",
    "BadRequestError",
    "BudgetWaitTimeout",
    "ClientSettings",
    "ConfigurationError",
    "ExportJob",
    "ExportJobFailed",
    "ExportResult",
    "ExportedFile",
    "GenesysClient",
    "GenesysError",
    "JobResult",
    "JobTimeout",
    "LeftOut",
    "ManagementUnit",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestMetrics",
    "ResponseTooLargeError",
    "ServerError",
    "StateFileError",
    "UnexpectedResponseError",
    "UnknownRegionError",
    "UserDetailsExportRequest",
    "complete_file",
    "resolve_region",
    "sandbox_url_from_env",
    "sidecar_path",
    "uses_sandbox",
]
