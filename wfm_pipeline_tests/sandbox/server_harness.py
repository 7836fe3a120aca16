"""In-process sandbox for server tests: Starlette TestClient + ManualClock (no sockets, no waiting)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from starlette.testclient import TestClient

from wfm_pipeline import wire
from wfm_pipeline.sandbox.app import create_app
from wfm_pipeline.sandbox.config import ClientSpec, ManualClock, SandboxConfig, default_clients
from wfm_pipeline.sandbox.org import OrgConfig, SandboxOrg

SEED = 11
HISTORY_START = date(2024, 1, 1)
NOW = datetime(2024, 6, 12, 15, 30, tzinfo=UTC)
_ORG: SandboxOrg | None = None


def shared_org() -> SandboxOrg:
    """One small org for all in-process tests (the org is immutable; its caches are bounded)."""
    global _ORG
    if _ORG is None:
        _ORG = SandboxOrg(OrgConfig(seed=SEED, agents=40, history_start=HISTORY_START))
    return _ORG


@dataclass
class Harness:
    client: TestClient
    clock: ManualClock
    org: SandboxOrg
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, client_id: str = wire.SANDBOX_CLIENT_ID, secret: str = wire.SANDBOX_CLIENT_SECRET) -> str:
        reply = self.client.post(
            wire.TOKEN_PATH, auth=(client_id, secret), data={"grant_type": "client_credentials"}
        )
        assert reply.status_code == 200, reply.text
        return reply.json()["access_token"]

    def headers(
        self, client_id: str = wire.SANDBOX_CLIENT_ID, secret: str = wire.SANDBOX_CLIENT_SECRET
    ) -> dict[str, str]:
        if client_id not in self.tokens:
            self.tokens[client_id] = self.token(client_id, secret)
        return {"Authorization": f"Bearer {self.tokens[client_id]}"}

    def get(self, path: str, client_id: str = wire.SANDBOX_CLIENT_ID, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers(client_id, SECRETS[client_id]), **kwargs)

    def post(self, path: str, body: Any, client_id: str = wire.SANDBOX_CLIENT_ID) -> Any:
        return self.client.post(path, json=body, headers=self.headers(client_id, SECRETS[client_id]))

    def set_limits(self, **limits: Any) -> None:
        assert self.client.put("/sandbox/limits", json=limits).status_code == 200

    def limits(self) -> dict[str, Any]:
        return self.client.get("/sandbox/limits").json()["limits"]


SECRETS = {
    wire.SANDBOX_CLIENT_ID: wire.SANDBOX_CLIENT_SECRET,
    "other-client": "other-secret",
    "limited-client": "limited-secret",
}


def harness(profile: str = "fast", **overrides: Any) -> Harness:
    clients = default_clients()
    clients["other-client"] = ClientSpec("other-secret")
    clients["limited-client"] = ClientSpec("limited-secret", frozenset({wire.PERMISSION_WFM_AGENT_VIEW}))
    config = SandboxConfig(profile=profile, seed=SEED, agents=40, history_start=HISTORY_START,
                           limit_overrides=overrides, clients=clients)  # fmt: skip
    clock = ManualClock(NOW)
    app = create_app(config, org=shared_org(), clock=clock)
    return Harness(TestClient(app, raise_server_exceptions=False), clock, shared_org())
