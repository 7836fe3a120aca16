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

from wfm_pipeline.defs.raw_store import RawStore
from wfm_pipeline.defs.settings import PipelineSettings
from wfm_pipeline.genesys import ClientSettings, ConfigurationError, GenesysClient


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
        with GenesysClient(self.settings(), state_dir=self.resolved_state_dir()) as client:
            yield client


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
        "duckdb": DuckDBResource(database=str(settings.duckdb_path)),
    }
