"""Genesys Cloud API client (httpx; no Dagster imports): shared request budget, retries, resumable exports."""

from wfm_pipeline.genesys.client import GenesysClient
from wfm_pipeline.genesys.errors import (
    AuthenticationError,
    BadRequestError,
    BudgetWaitTimeout,
    ConfigurationError,
    ExportJobFailed,
    GenesysError,
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
from wfm_pipeline.genesys.files import ExportedFile
from wfm_pipeline.genesys.jobs import JobTimeout
from wfm_pipeline.genesys.metrics import RequestMetrics
from wfm_pipeline.genesys.models import (
    AdherenceExportRequest,
    ExportJob,
    ExportResult,
    JobResult,
    LeftOut,
    ManagementUnit,
    UserDetailsExportRequest,
)
from wfm_pipeline.genesys.regions import REGION_DOMAINS, resolve_region
from wfm_pipeline.genesys.settings import ClientSettings

__all__ = [
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
    "resolve_region",
]
