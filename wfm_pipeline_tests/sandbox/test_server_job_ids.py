"""Job ids never repeat across sandbox restarts with the same seed (real servers on loopback).

A client that registered a job id before a restart and resumes it must get 404, never the results of
whichever new request happened to draw the same id; the results themselves stay a function of the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from wfm_pipeline import wire
from wfm_pipeline.sandbox.jobs import JobRegistry
from wfm_pipeline.sandbox.launcher import SandboxProcess
from wfm_pipeline_tests.sandbox.test_server_faults import wait_bulk

SEED = 31
DAY = {"startDate": "2024-02-01T00:00:00Z", "endDate": "2024-02-02T00:00:00Z"}
DETAILS_BODY = {"interval": "2024-02-01T00:00:00Z/2024-02-02T00:00:00Z"}


@dataclass(frozen=True)
class Submitted:
    adherence_id: str
    details_id: str
    download_path: str  # the presigned URL without scheme and host: valid on any server of the seed
    download_body: bytes


def bearer(http: httpx.Client) -> dict[str, str]:
    reply = http.post(
        wire.TOKEN_PATH,
        auth=(wire.SANDBOX_CLIENT_ID, wire.SANDBOX_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
    )
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def submit_the_same_requests(base_url: str) -> Submitted:
    """One bulk adherence job and one user-details job, the same bodies on every server."""
    with httpx.Client(base_url=base_url, timeout=30) as http:
        headers = bearer(http)
        mu = http.get(wire.MANAGEMENT_UNITS_PATH, headers=headers).json()["entities"][0]["id"]
        bulk = http.post(
            wire.ADHERENCE_BULK_PATH,
            json={"timeZone": "UTC", "items": [{"managementUnitId": mu, **DAY}]},
            headers=headers,
        )
        assert bulk.status_code == 202, bulk.text
        details = http.post(wire.USER_DETAILS_JOBS_PATH, json=DETAILS_BODY, headers=headers)
        assert details.status_code == 202, details.text
        adherence_id = bulk.json()["job"]["id"]
        done = wait_bulk(http, headers, adherence_id)
        assert done["job"]["status"] == "Complete"
        url = done["downloadUrls"][0]
        download = httpx.get(url, timeout=30)
        assert download.status_code == 200
        return Submitted(adherence_id, details.json()["jobId"], url.removeprefix(base_url), download.content)


def test_job_ids_differ_after_a_restart_with_the_same_seed_and_old_ids_are_gone(
    start_sandbox: Callable[..., SandboxProcess],
) -> None:
    first_server = start_sandbox(seed=SEED, agents=10)
    before = submit_the_same_requests(first_server.base_url)
    first_server.stop()

    second_server = start_sandbox(seed=SEED, agents=10)
    after = submit_the_same_requests(second_server.base_url)

    assert after.adherence_id != before.adherence_id
    assert after.details_id != before.details_id
    # What the seed does promise: the same request gets the same results.
    assert after.download_body == before.download_body

    with httpx.Client(base_url=second_server.base_url, timeout=30) as http:
        headers = bearer(http)
        for path in (
            wire.ADHERENCE_BULK_JOB_PATH.format(job_id=before.adherence_id),
            wire.USER_DETAILS_JOB_PATH.format(job_id=before.details_id),
            wire.USER_DETAILS_JOB_RESULTS_PATH.format(job_id=before.details_id),
        ):
            reply = http.get(path, headers=headers)
            assert reply.status_code == 404, (path, reply.text)
            assert reply.json()["code"] == wire.ERROR_NOT_FOUND
        # The old presigned URL is still correctly signed (same seed, same key) but names no job here.
        stale = http.get(before.download_path)
        assert stale.status_code == 404 and "NoSuchKey" in stale.text


def test_the_id_sequence_is_a_function_of_seed_and_nonce() -> None:
    """Each registry (sandbox start) draws its own nonce; pinning it replays the ids, for debugging."""
    assert JobRegistry(SEED).new_id() != JobRegistry(SEED).new_id()
    pinned = [JobRegistry(SEED, nonce=b"fixed").new_id() for _ in range(2)]
    assert pinned[0] == pinned[1]
    assert JobRegistry(SEED + 1, nonce=b"fixed").new_id() != pinned[0]
