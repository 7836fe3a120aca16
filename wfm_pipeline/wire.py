"""Genesys Cloud wire-format constants.

The only module shared by the API client (``wfm_pipeline.genesys``) and the emulator
(``wfm_pipeline.sandbox``). It holds names the real API fixes -- paths, headers, enum spellings,
error codes -- and no behaviour, so neither side can hide the other's bugs.
Source of truth: the official SDK ``purecloudplatformclientv2`` models.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

API_PREFIX: Final = "/api/v2"
TOKEN_PATH: Final = "/oauth/token"

# --- WFM discovery ------------------------------------------------------------------------------
BUSINESS_UNITS_PATH: Final = "/api/v2/workforcemanagement/businessunits"
BUSINESS_UNIT_MANAGEMENT_UNITS_PATH: Final = (
    "/api/v2/workforcemanagement/businessunits/{business_unit_id}/managementunits"
)
MANAGEMENT_UNITS_PATH: Final = "/api/v2/workforcemanagement/managementunits"
MANAGEMENT_UNIT_PATH: Final = "/api/v2/workforcemanagement/managementunits/{management_unit_id}"
MANAGEMENT_UNIT_USERS_PATH: Final = "/api/v2/workforcemanagement/managementunits/{management_unit_id}/users"
USERS_PATH: Final = "/api/v2/users"
PRESENCE_DEFINITIONS_PATH: Final = "/api/v2/presence/definitions"

# --- Directory: what the dimension tables are built from --------------------------------------------
DIVISIONS_PATH: Final = "/api/v2/authorization/divisions"
BUSINESS_UNIT_PATH: Final = "/api/v2/workforcemanagement/businessunits/{business_unit_id}"
BUSINESS_UNIT_ACTIVITY_CODES_PATH: Final = (
    "/api/v2/workforcemanagement/businessunits/{business_unit_id}/activitycodes"
)
DATA_RETENTION_PATH: Final = "/api/v2/analytics/dataretention/settings"
# GET /api/v2/users?state=...: one of USER_STATES, or USER_STATE_ANY for all of them.
USER_STATES: Final = ("active", "inactive", "deleted")
USER_STATE_ANY: Final = "any"
# GET .../managementunits/{id}?expand=settings adds ManagementUnit.settings (adherence thresholds among them).
MANAGEMENT_UNIT_EXPAND_SETTINGS: Final = "settings"
# GET .../businessunits/{id}?expand=settings adds BusinessUnitResponse.settings (timeZone, startDayOfWeek).
BUSINESS_UNIT_EXPAND_SETTINGS: Final = "settings"
# GET /api/v2/presence/definitions?deactivated=...: "Deactivated query can be TRUE or FALSE" (SDK); each
# value answers only its own definitions, so listing them all takes one request with each.
PRESENCE_DEACTIVATED_FALSE: Final = "FALSE"
PRESENCE_DEACTIVATED_TRUE: Final = "TRUE"

# --- WFM bulk historical adherence ----------------------------------------------------------------
ADHERENCE_BULK_PATH: Final = "/api/v2/workforcemanagement/adherence/historical/bulk"
ADHERENCE_BULK_JOB_PATH: Final = "/api/v2/workforcemanagement/adherence/historical/bulk/jobs/{job_id}"

# --- Analytics user details jobs and aggregates ---------------------------------------------------
USER_DETAILS_JOBS_PATH: Final = "/api/v2/analytics/users/details/jobs"
USER_DETAILS_JOB_PATH: Final = "/api/v2/analytics/users/details/jobs/{job_id}"
USER_DETAILS_JOB_RESULTS_PATH: Final = "/api/v2/analytics/users/details/jobs/{job_id}/results"
USER_DETAILS_AVAILABILITY_PATH: Final = "/api/v2/analytics/users/details/jobs/availability"
USER_AGGREGATES_QUERY_PATH: Final = "/api/v2/analytics/users/aggregates/query"

# --- Organization limits --------------------------------------------------------------------------
LIMITS_NAMESPACE_PATH: Final = "/api/v2/organizations/limits/namespaces/{namespace}"

# --- Headers (compare case-insensitively) ---------------------------------------------------------
HEADER_CORRELATION_ID: Final = "ININ-Correlation-Id"
HEADER_RATELIMIT_ALLOWED: Final = "inin-ratelimit-allowed"
HEADER_RATELIMIT_COUNT: Final = "inin-ratelimit-count"
HEADER_RATELIMIT_RESET: Final = "inin-ratelimit-reset"
HEADER_RETRY_AFTER: Final = "Retry-After"

# --- Enums, spelled exactly as the SDK models spell them -----------------------------------------
ADHERENCE_JOB_STATUSES: Final = ("Processing", "Complete", "Error")
ASYNC_QUERY_STATES: Final = ("QUEUED", "PENDING", "FAILED", "CANCELLED", "FULFILLED", "EXPIRED")
ASYNC_QUERY_TERMINAL_STATES: Final = ("FAILED", "CANCELLED", "FULFILLED", "EXPIRED")
ADHERENCE_JOB_PROCESSING: Final = "Processing"
ADHERENCE_JOB_COMPLETE: Final = "Complete"
ADHERENCE_JOB_ERROR: Final = "Error"
ASYNC_QUERY_QUEUED: Final = "QUEUED"
ASYNC_QUERY_PENDING: Final = "PENDING"
ASYNC_QUERY_FAILED: Final = "FAILED"
ASYNC_QUERY_CANCELLED: Final = "CANCELLED"
ASYNC_QUERY_FULFILLED: Final = "FULFILLED"
ASYNC_QUERY_EXPIRED: Final = "EXPIRED"
ACTIVITY_CATEGORIES: Final = (
    "OnQueueWork",
    "Break",
    "Meal",
    "Meeting",
    "OffQueueWork",
    "TimeOff",
    "Training",
    "Unavailable",
    "Unscheduled",
)
WFM_SYSTEM_PRESENCES: Final = (
    "Available",
    "Away",
    "Busy",
    "Offline",
    "Idle",
    "OnQueue",
    "Meal",
    "Training",
    "Meeting",
    "Break",
)
ANALYTICS_SYSTEM_PRESENCES: Final = (
    "AVAILABLE",
    "AWAY",
    "BUSY",
    "OFFLINE",
    "IDLE",
    "ON_QUEUE",
    "MEAL",
    "TRAINING",
    "MEETING",
    "BREAK",
)
# The activity category an analytics system presence counts as when adherence compares it with the schedule
# (keys: ANALYTICS_SYSTEM_PRESENCES, values: ACTIVITY_CATEGORIES); OFFLINE is not working, so it has none.
ACTIVITY_CATEGORY_OF_PRESENCE: Final[Mapping[str, str | None]] = MappingProxyType(
    {
        "ON_QUEUE": "OnQueueWork",
        "BREAK": "Break",
        "MEAL": "Meal",
        "MEETING": "Meeting",
        "TRAINING": "Training",
        "AVAILABLE": "OffQueueWork",
        "BUSY": "OffQueueWork",
        "AWAY": "OffQueueWork",
        "IDLE": "OffQueueWork",
        "OFFLINE": None,
    }
)
ROUTING_STATUSES: Final = ("OFF_QUEUE", "IDLE", "INTERACTING", "NOT_RESPONDING", "COMMUNICATING")
ADHERENCE_IMPACTS: Final = ("Positive", "Negative", "Neutral", "Unknown")
USER_AGGREGATE_METRICS: Final = ("tAgentRoutingStatus", "tSystemPresence", "tOrganizationPresence")

# --- Documented limits -----------------------------------------------------------------------------
ADHERENCE_MAX_DAYS: Final = 31
ADHERENCE_MAX_DAYS_WITH_EXCEPTIONS: Final = 7
AGGREGATES_MAX_USER_PREDICATES: Final = 100
REQUEST_BYTES_MAX: Final = 512_000

# --- Error codes (ErrorBody.code) -------------------------------------------------------------------
ERROR_BAD_REQUEST: Final = "bad.request"
ERROR_INVALID_VALUE: Final = "invalid.value"
ERROR_INVALID_DATE: Final = "invalid.date"
ERROR_AUTHENTICATION_REQUIRED: Final = "authentication.required"
ERROR_BAD_CREDENTIALS: Final = "bad.credentials"
ERROR_CREDENTIALS_EXPIRED: Final = "credentials.expired"
ERROR_MISSING_PERMISSIONS: Final = "missing.permissions"
ERROR_NOT_FOUND: Final = "not.found"
ERROR_UNSUPPORTED_MEDIA_TYPE: Final = "unsupported.media.type"
ERROR_REQUEST_ENTITY_TOO_LARGE: Final = "request.entity.too.large"
ERROR_TOO_MANY_REQUESTS_RETRY_AFTER: Final = "too.many.requests.retry.after"
ERROR_TOO_MANY_REQUESTS: Final = "too.many.requests"
ERROR_INTERNAL_SERVER_ERROR: Final = "internal.server.error"
ERROR_SERVICE_UNAVAILABLE: Final = "service.unavailable"
ERROR_REQUEST_TIMEOUT: Final = "request.timeout"
OAUTH_ERROR_INVALID_CLIENT: Final = "invalid_client"
OAUTH_ERROR_UNSUPPORTED_GRANT_TYPE: Final = "unsupported_grant_type"

# --- Permissions each route needs (403 names them) ------------------------------------------------
PERMISSION_HISTORICAL_ADHERENCE_VIEW: Final = "wfm:historicalAdherence:view"
PERMISSION_USER_DETAIL_VIEW: Final = "analytics:userDetail:view"
PERMISSION_USER_AGGREGATE_VIEW: Final = "analytics:userAggregate:view"
PERMISSION_WFM_AGENT_VIEW: Final = "wfm:agent:view"
PERMISSION_MANAGEMENT_UNIT_VIEW: Final = "wfm:managementUnit:view"
PERMISSION_ACTIVITY_CODE_VIEW: Final = "wfm:activityCode:view"
PERMISSION_DIVISION_VIEW: Final = "authorization:division:view"
PERMISSION_DATA_RETENTION_VIEW: Final = "analytics:dataRetention:view"

# --- Sandbox defaults: the embedded default when no credentials are configured ----------------------
SANDBOX_DEFAULT_HOST: Final = "127.0.0.1"
SANDBOX_DEFAULT_PORT: Final = 8765
SANDBOX_CLIENT_ID: Final = "wfm-sandbox"
SANDBOX_CLIENT_SECRET: Final = "wfm-sandbox-secret"
