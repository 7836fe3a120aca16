"""Loopback-only admin routes (Host guard against DNS rebinding) over real HTTP, and the CLI's warning
for a non-loopback ``--host`` (checked without binding anything)."""

from __future__ import annotations

import logging
import socket
from typing import Any

import httpx
import pytest

from wfm_pipeline import wire
from wfm_pipeline.sandbox import app as sandbox_app
from wfm_pipeline.sandbox import cli
from wfm_pipeline.sandbox.config import SandboxConfig
from wfm_pipeline.sandbox.launcher import SandboxProcess
from wfm_pipeline.sandbox.loopback import is_loopback_address, is_loopback_host_header

ACCEPTED_HOSTS = [
    "localhost",
    "localhost:8765",
    "LocalHost:1",
    "127.0.0.1",
    "127.0.0.1:8765",
    "127.8.9.10:65535",
    "[::1]",
    "[::1]:8765",
    "[0:0:0:0:0:0:0:1]:80",
]
REFUSED_HOSTS = [
    "evil.example.com",
    "evil.example.com:8765",
    "localhost.evil.example.com",  # a name that merely starts like a loopback one
    "127.0.0.1.nip.io",
    "127.0.0.1.evil.example.com:8765",
    "0.0.0.0:8765",
    "10.0.0.1",
    "192.168.1.20:8765",
    "[::2]:8765",
    "::1",  # IPv6 literal without brackets: malformed Host
    "localhost:",
    "localhost:port",
    "127.1",  # not a dotted quad: some resolvers map it to 127.0.0.1, the guard does not guess
    "",
]


@pytest.mark.parametrize("host", ACCEPTED_HOSTS)
def test_loopback_host_headers_are_accepted(host: str) -> None:
    assert is_loopback_host_header(host)


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_other_host_headers_are_refused(host: str) -> None:
    assert not is_loopback_host_header(host)


def test_a_missing_host_header_is_refused() -> None:
    assert not is_loopback_host_header(None)


def assert_refused(reply: httpx.Response) -> None:
    assert reply.status_code == 403, reply.text
    body = reply.json()
    assert body["code"] == "not.authorized" and body["status"] == 403
    assert body["contextId"] == reply.headers[wire.HEADER_CORRELATION_ID]
    assert "loopback-only" in body["message"]


@pytest.fixture
def http(sandbox: SandboxProcess) -> Any:
    with httpx.Client(base_url=sandbox.base_url, timeout=30) as client:
        yield client


@pytest.mark.parametrize(
    "host", ["evil.example.com", "evil.example.com:{port}", "0.0.0.0:{port}", "127.0.0.1.nip.io:{port}"]
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sandbox/health"),
        ("GET", "/sandbox/stats"),
        ("GET", "/sandbox/limits"),
        ("GET", "/sandbox/faults"),
        ("GET", "/sandbox/truth/org"),
        ("GET", "/sandbox/truth/timeline"),
        ("GET", "/sandbox/no-such-admin-route"),  # refused before routing: nothing under /sandbox/ leaks
    ],
)
def test_admin_and_truth_routes_refuse_a_foreign_host(
    http: httpx.Client, sandbox: SandboxProcess, host: str, method: str, path: str
) -> None:
    assert_refused(http.request(method, path, headers={"Host": host.format(port=sandbox.port)}))


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "127.3.4.5", "[::1]:{port}"])
def test_admin_routes_answer_a_loopback_host(http: httpx.Client, sandbox: SandboxProcess, host: str) -> None:
    reply = http.get("/sandbox/health", headers={"Host": host.format(port=sandbox.port)})
    assert reply.status_code == 200 and reply.json()["status"] == "ok"


def test_refused_admin_writes_change_nothing(http: httpx.Client) -> None:
    # Shared session sandbox: each write is harmless to other tests even if it were (wrongly) applied,
    # and the finally undoes it, so a failure here cannot leak into the rest of the run.
    evil = {"Host": "evil.example.com"}
    limits = http.get("/sandbox/limits").json()["limits"]
    try:
        assert http.delete("/sandbox/faults").status_code == 200
        rule = {"kind": "error_500", "route": "/nowhere"}
        assert_refused(http.put("/sandbox/faults", json=[rule], headers=evil))
        assert http.get("/sandbox/faults").json() == {"rules": []}
        changed = {"max_concurrent_jobs": limits["max_concurrent_jobs"] + 1}
        assert_refused(http.put("/sandbox/limits", json=changed, headers=evil))
        assert http.get("/sandbox/limits").json()["limits"] == limits
        reply = http.post(
            wire.TOKEN_PATH,
            auth=(wire.SANDBOX_CLIENT_ID, wire.SANDBOX_CLIENT_SECRET),
            data={"grant_type": "client_credentials"},
        )
        token = reply.json()["access_token"]
        assert_refused(http.post("/sandbox/tokens/revoke", json={"token": token}, headers=evil))
        bearer = {"Authorization": f"Bearer {token}"}
        assert http.get(wire.MANAGEMENT_UNITS_PATH, headers=bearer).status_code == 200  # not revoked
    finally:
        http.delete("/sandbox/faults")
        http.put("/sandbox/limits", json={"max_concurrent_jobs": limits["max_concurrent_jobs"]})


def test_the_emulated_api_and_downloads_ignore_the_host(http: httpx.Client) -> None:
    evil = {"Host": "evil.example.com"}
    reply = http.post(
        wire.TOKEN_PATH,
        auth=(wire.SANDBOX_CLIENT_ID, wire.SANDBOX_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        headers=evil,
    )
    assert reply.status_code == 200
    bearer = {"Authorization": f"Bearer {reply.json()['access_token']}", **evil}
    assert http.get(wire.MANAGEMENT_UNITS_PATH, headers=bearer).status_code == 200
    # The presigned downloads are part of the emulated API: they answer (here: S3's bad-signature XML).
    download = http.get("/sandbox/downloads/none.0?expires=1&signature=x", headers=evil)
    assert download.status_code == 403 and "SignatureDoesNotMatch" in download.text


def test_a_request_without_a_host_header_is_refused(sandbox: SandboxProcess) -> None:
    # HTTP/1.0 allows omitting Host; httpx always sends one, so speak HTTP by hand.
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as raw:
        raw.sendall(b"GET /sandbox/health HTTP/1.0\r\n\r\n")
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.split()[1] == b"403", received
    assert b"loopback-only" in rest


# --- the CLI's --host warning ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_bind_addresses_get_no_warning(host: str) -> None:
    assert is_loopback_address(host)
    assert cli.bind_warning(host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "sandbox.example.com", ""])
def test_other_bind_addresses_get_a_warning(host: str) -> None:
    warning = cli.bind_warning(host)
    assert warning is not None and "not a loopback address" in warning and "no authentication" in warning


def run_main(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> list[SandboxConfig]:
    """``cli.main`` with the server replaced by a recorder: nothing binds, nothing listens."""
    started: list[SandboxConfig] = []
    monkeypatch.setattr(sandbox_app, "run_sandbox", started.append)
    monkeypatch.setattr(logging, "basicConfig", lambda **_: None)  # keep the test process's logging as is
    assert cli.main(argv) == 0
    return started


def test_a_non_loopback_host_warns_on_stderr_and_still_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started = run_main(monkeypatch, ["--host", "0.0.0.0", "--port", "8765", "--agents", "5"])
    assert [config.host for config in started] == ["0.0.0.0"]
    captured = capsys.readouterr()
    assert "WARNING: --host '0.0.0.0' is not a loopback address" in captured.err
    assert "WARNING" not in captured.out


def test_a_loopback_host_starts_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started = run_main(monkeypatch, ["--host", "127.0.0.1", "--agents", "5"])
    assert len(started) == 1
    assert "WARNING" not in capsys.readouterr().err
