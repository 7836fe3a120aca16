"""Resources: the Genesys client, the raw store and DuckDB.

Definitions load without credentials (the client then targets the sandbox at WFM_SANDBOX_URL); with
GENESYSCLOUD_OAUTHCLIENT_ID/_SECRET/_REGION set they use the real org. Configuration problems surface at
load (paths, numbers, the sandbox URL: ``PipelineSettings``) or at first use (credentials, region:
``ClientSettings``), with messages naming the variable to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource
from duckdb import DuckDBPyConnection

from wfm_pipeline import warehouse
from wfm_pipeline.defs.settings import PipelineSettings
from wfm_pipeline.genesys import (
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_REGION,
    AuthenticationError,
    BadRequestError,
    ClientSettings,
    ConfigurationError,
    GenesysClient,
    GenesysError,
    PermissionDeniedError,
    ResponseTooLargeError,
    StateFileError,
    UnexpectedResponseError,
)
from wfm_pipeline.raw_store import RawStore

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


# Dagster's type parameter of ConfigurableResource is the resource itself; subscripting the pydantic model
# at runtime would insert a generated class into the MRO, so the bases stay bare (type-arg ignored).
class GenesysApiResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Builds a ``GenesysClient`` per use.

    A real org: ``client_id``/``client_secret``/``region`` are ``dg.EnvVar``s (``resources()`` below), so
    the Resources page names the variables and never shows a value; blank values are refused naming the
    variable (a failed secret mount never means "use the sandbox"). The sandbox: ``sandbox_url``.
    """

    client_id: str = ""
    client_secret: str = ""
    region: str = ""  # blank: us_east_1, Genesys's default
    sandbox_url: str = ""
    state_dir: str

    def settings(self) -> ClientSettings:
        try:
            if self.sandbox_url:
                return ClientSettings.for_sandbox(self.sandbox_url)
            # The fields hold the variables' values: the client's own rules (and messages naming the
            # variables) apply exactly as they do to the environment.
            variables = {ENV_CLIENT_ID: self.client_id, ENV_CLIENT_SECRET: self.client_secret}
            return ClientSettings.from_env({**variables, ENV_REGION: self.region})
        except ConfigurationError as exc:
            raise dg.Failure(f"Genesys client configuration: {exc}", allow_retries=False) from exc

    @contextmanager
    def client(self) -> Iterator[GenesysClient]:
        """A client; errors no retry can cure end the step without Dagster's step retries."""
        try:
            with GenesysClient(self.settings(), state_dir=Path(self.state_dir)) as client:
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


class RawStoreResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # see GenesysApiResource
    """Where raw files, manifests and quarantined files live (``$WFM_DATA_DIR``)."""

    data_dir: str

    def store(self) -> RawStore:
        return RawStore(Path(self.data_dir))


def _credential(name: str, settings: PipelineSettings) -> str:
    """``dg.EnvVar(name)`` when the variable is set, else blank (refused at first use with the client's
    message, which names every variable involved, rather than Dagster's "not set")."""
    return dg.EnvVar(name) if name in settings.genesys.variables else ""


def resources(settings: PipelineSettings) -> dict[str, dg.ConfigurableResource[Any]]:
    """The pipeline's resources for ``settings`` (read once by ``wfm_pipeline.definitions``)."""
    genesys = GenesysApiResource(
        client_id=_credential(ENV_CLIENT_ID, settings),
        client_secret=_credential(ENV_CLIENT_SECRET, settings),
        region=_credential(ENV_REGION, settings),
        sandbox_url=settings.genesys.sandbox_url,
        state_dir=str(settings.state_dir),
    )
    return {
        "genesys": genesys,
        "raw_store": RawStoreResource(data_dir=str(settings.data_dir)),
        "duckdb": WarehouseResource(database=str(settings.duckdb_path)),
    }
