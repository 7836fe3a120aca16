"""Resources: the Genesys client, the raw store and DuckDB.

Definitions load without credentials (the client then targets the sandbox at WFM_SANDBOX_URL); with
GENESYSCLOUD_OAUTHCLIENT_ID/_SECRET/_REGION set they use the real org. Configuration problems surface at
load (paths, numbers: ``PipelineSettings``) or at first use (credentials, region: ``ClientSettings``),
with messages naming the variable to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from duckdb import DuckDBPyConnection

from wfm_pipeline import warehouse
from wfm_pipeline.defs.raw_store import RawStore
from wfm_pipeline.defs.settings import PipelineSettings
from wfm_pipeline.genesys import (
    AuthenticationError,
    BadRequestError,
    ClientSettings,
    ConfigurationError,
    GenesysClient,
    GenesysError,
    PermissionDeniedError,
    ResponseTooLargeError,
    UnexpectedResponseError,
)
from wfm_pipeline.genesys.budget import StateFileError

# Errors a retry cannot cure: the step fails at once instead of spending its retries (and a minute).
PERMANENT_ERRORS: tuple[type[GenesysError], ...] = (
    AuthenticationError,
    PermissionDeniedError,
    BadRequestError,
    ConfigurationError,
    UnexpectedResponseError,
    ResponseTooLargeError,
    StateFileError,
)


class GenesysApiResource(dg.ConfigurableResource):
    """Builds a ``GenesysClient`` per use. Empty fields mean "from the environment".

    ``sandbox_url`` forces the sandbox (tests); otherwise ``ClientSettings.from_env()`` decides.
    """

    sandbox_url: str = ""
    state_dir: str = ""

    def settings(self) -> ClientSettings:
        try:
            if self.sandbox_url:
                return ClientSettings.for_sandbox(self.sandbox_url)
            return ClientSettings.from_env()
        except ConfigurationError as exc:
            raise dg.Failure(f"Genesys client configuration: {exc}", allow_retries=False) from exc

    def resolved_state_dir(self) -> Path:
        return Path(self.state_dir) if self.state_dir else PipelineSettings.from_env().state_dir

    @contextmanager
    def client(self) -> Iterator[GenesysClient]:
        """A client; errors no retry can cure end the step without Dagster's step retries."""
        try:
            with GenesysClient(self.settings(), state_dir=self.resolved_state_dir()) as client:
                yield client
        except PERMANENT_ERRORS as exc:
            raise dg.Failure(f"{type(exc).__name__}: {exc}", allow_retries=False) from exc


class WarehouseResource(DuckDBResource):
    """The DuckDB warehouse. Unlike ``DuckDBResource`` (which retries any open error for ~2 minutes and
    leaves the connection open when the step fails) a bad file fails in seconds naming it, and the
    connection is closed however the step ends."""

    @contextmanager
    def get_connection(self) -> Iterator[DuckDBPyConnection]:
        try:
            connection = warehouse.connect(Path(self.database), self.connection_config)
        except warehouse.WarehouseFileError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc
        try:
            yield connection
        finally:
            connection.close()


class RawStoreResource(dg.ConfigurableResource):
    """Where raw files, manifests and quarantined files live (``$WFM_DATA_DIR``)."""

    data_dir: str

    def store(self) -> RawStore:
        return RawStore(Path(self.data_dir))


def default_resources(settings: PipelineSettings | None = None) -> dict[str, object]:
    settings = settings or PipelineSettings.from_env()
    return {
        "genesys": GenesysApiResource(state_dir=str(settings.state_dir)),
        "raw_store": RawStoreResource(data_dir=str(settings.data_dir)),
        "duckdb": WarehouseResource(database=str(settings.duckdb_path)),
    }
