"""A tiny scripted Genesys for httpx.MockTransport unit tests (the real emulator is wfm_pipeline.sandbox).

Only what the client's control flow needs: tokens, discovery, job lifecycles, paging, and a queue of
scripted failures per (method, path prefix) so retry/refresh/resubmit paths can be driven exactly.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx

Scripted = Callable[[httpx.Request], httpx.Response] | httpx.Response | BaseException

# Genesys ids are UUIDs (the client refuses anything else).
MU_ID = "3b8c1a52-0d2e-4f7a-9c61-5e2f0a7b9d14"
BU_ID = "a1d4e6f8-2b3c-4d5e-8f90-1a2b3c4d5e6f"
MEMBER_IDS = ("0c9e5d1a-7b2f-4e3a-8d6c-9f1b2a3c4d5e", "5f4e3d2c-1b0a-4987-b654-3210fedcba98")


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    correlation = str(uuid.uuid4())
    body = {
        "message": message,
        "code": code,
        "status": status,
        "contextId": correlation,
        "details": [],
        "errors": [],
    }
    return httpx.Response(status, json=body, headers={"ININ-Correlation-Id": correlation, **headers})


class FakeGenesys:
    def __init__(self, polls_until_done: int = 1, pages: int = 3, download_urls: int = 2) -> None:
        self.requests: list[httpx.Request] = []
        self.scripted: dict[tuple[str, str], list[Scripted]] = defaultdict(list)
        self.tokens_minted = 0
        self.valid_tokens: set[str] = set()
        self.polls_until_done = polls_until_done
        self.pages = pages
        self.download_urls = download_urls
        self.jobs: dict[str, dict[str, Any]] = {}
        self.submissions: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.jobs_submitted_ids: list[str] = []
        self.availability = "2030-01-01T00:00:00.000Z"
        self.url_generation = 0

    def script(self, method: str, path_prefix: str, *outcomes: Scripted) -> None:
        self.scripted[(method, path_prefix)].extend(outcomes)

    def count(self, method: str, path_prefix: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path.startswith(path_prefix))

    # --- dispatch ---------------------------------------------------------------------------------------
    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for (method, prefix), queue in self.scripted.items():
            if queue and request.method == method and request.url.path.startswith(prefix):
                outcome = queue.pop(0)
                if isinstance(outcome, BaseException):
                    raise outcome
                if isinstance(outcome, httpx.Response):
                    return outcome
                return outcome(request)
        return self.handle(request)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/oauth/token":
            self.tokens_minted += 1
            token = f"tok-{self.tokens_minted}"
            self.valid_tokens.add(token)
            return httpx.Response(
                200, json={"access_token": token, "token_type": "bearer", "expires_in": 86400}
            )
        if path.startswith("/downloads/"):
            generation, job_id, index = path.split("/")[2:5]
            if int(generation) != self.url_generation:
                return httpx.Response(403, text="<Error>Request has expired</Error>")
            items = self.jobs[job_id]["body"]["items"]
            item = items[int(index) % len(items)]  # a file answers one item of the request
            body = {
                "managementUnitId": item["managementUnitId"],
                "startDate": item["startDate"],
                "endDate": item["endDate"],
                "userResults": [{"userId": f"u{i}"} for i in range(3)],
            }
            return httpx.Response(
                200, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
            )
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid_tokens:
            return error(401, "bad.credentials", "Invalid login credentials.")
        headers = {"inin-ratelimit-allowed": "300", "inin-ratelimit-count": "1", "inin-ratelimit-reset": "60"}
        response = self.route(method, path, request)
        response.headers.update(headers)
        return response

    def route(self, method: str, path: str, request: httpx.Request) -> httpx.Response:
        if path == "/api/v2/workforcemanagement/managementunits":
            return httpx.Response(
                200,
                json={
                    "entities": [
                        {"id": MU_ID, "name": "One", "businessUnit": {"id": BU_ID}, "timeZone": "UTC"}
                    ]
                },
            )
        if path.endswith("/users") and "managementunits" in path:
            return httpx.Response(200, json={"entities": [{"id": user_id} for user_id in MEMBER_IDS]})
        if path == "/api/v2/analytics/users/details/jobs/availability":
            return httpx.Response(200, json={"dataAvailabilityDate": self.availability})
        if path == "/api/v2/workforcemanagement/adherence/historical/bulk" and method == "POST":
            job_id = str(uuid.uuid4())
            submitted = json.loads(request.content)
            self.jobs[job_id] = {"polls": 0, "kind": "adherence", "body": submitted}
            self.submissions.append(submitted)
            return httpx.Response(202, json={"job": {"id": job_id, "status": "Processing"}})
        if path.startswith("/api/v2/workforcemanagement/adherence/historical/bulk/jobs/"):
            job = self.jobs.get(path.rsplit("/", 1)[1])
            if job is None:
                return error(404, "not.found", "The requested resource was not found.")
            job["polls"] += 1
            job_id = path.rsplit("/", 1)[1]
            if job["polls"] < self.polls_until_done:
                return httpx.Response(200, json={"job": {"id": job_id, "status": "Processing"}})
            urls = [
                f"http://dl.test/downloads/{self.url_generation}/{job_id}/{i}?sig=x"
                for i in range(self.download_urls)
            ]
            return httpx.Response(
                200, json={"job": {"id": job_id, "status": "Complete"}, "downloadUrls": urls}
            )
        if path == "/api/v2/analytics/users/details/jobs" and method == "POST":
            job_id = str(uuid.uuid4())
            self.jobs[job_id] = {"polls": 0, "kind": "user_details"}
            self.jobs_submitted_ids.append(job_id)
            self.submissions.append(json.loads(request.content))
            return httpx.Response(202, json={"jobId": job_id})
        if path.startswith("/api/v2/analytics/users/details/jobs/"):
            parts = path.split("/")
            job_id = parts[7]
            job = self.jobs.get(job_id)
            if job is None:
                return error(404, "not.found", "The requested resource was not found.")
            if method == "DELETE":
                self.deleted.append(job_id)
                del self.jobs[job_id]
                return httpx.Response(204)
            if path.endswith("/results"):
                page = int(request.url.params.get("cursor", "0"))
                body: dict[str, Any] = {"userDetails": [{"userId": f"u{page}"}, {"userId": f"v{page}"}]}
                if page + 1 < self.pages:
                    body["cursor"] = str(page + 1)
                return httpx.Response(200, json=body)
            job["polls"] += 1
            state = "FULFILLED" if job["polls"] >= self.polls_until_done else "PENDING"
            return httpx.Response(200, json={"state": state})
        if path == "/api/v2/analytics/users/aggregates/query":
            body = json.loads(request.content)
            users = [p["value"] for p in body["filter"]["predicates"]]
            return httpx.Response(
                200,
                json={
                    "systemToOrganizationMappings": {"ON_QUEUE": ["org-1"]},
                    "results": [{"group": {"userId": u}, "data": []} for u in users],
                },
            )
        return error(404, "not.found", f"no route {method} {path}")
