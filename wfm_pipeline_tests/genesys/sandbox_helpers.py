"""Helpers for tests and benchmarks that drive the sandbox over HTTP (admin routes only)."""

from __future__ import annotations

from typing import Any

import httpx

from wfm_pipeline.genesys import ClientSettings


class SandboxAdmin:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        response = httpx.request(method, self.base_url + path, json=payload, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def _object(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        answer = self._call(method, path, payload)
        assert isinstance(answer, dict), f"{method} {path} answered {answer!r}"
        return answer

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        self._call("PUT", "/sandbox/faults", rules)

    def faults(self) -> list[dict[str, Any]]:
        """The active rules, each with how often it has ``served``."""
        rules: list[dict[str, Any]] = self._call("GET", "/sandbox/faults")["rules"]
        return rules

    def clear_faults(self) -> None:
        self._call("DELETE", "/sandbox/faults")

    def set_limits(self, **limits: Any) -> dict[str, Any]:
        return self._object("PUT", "/sandbox/limits", limits)

    def limits(self) -> dict[str, Any]:
        return self._object("GET", "/sandbox/limits")

    def stats(self) -> dict[str, Any]:
        return self._object("GET", "/sandbox/stats")

    def reset_stats(self) -> None:
        self._call("POST", "/sandbox/stats/reset")

    def requests_to(self, route: str) -> int:
        """All requests served on ``METHOD /route/template`` (any status)."""
        return sum(self.stats()["requests"].get(route, {}).values())

    def org(self) -> dict[str, Any]:
        return self._object("GET", "/sandbox/truth/org")

    def settings(self, **overrides: Any) -> ClientSettings:
        return ClientSettings.for_sandbox(self.base_url, **self.settings_options(**overrides))

    def settings_options(self, **overrides: Any) -> dict[str, Any]:
        """Client settings whose budget matches the sandbox wall-clock limits (as a user would set them)."""
        wall = self.limits()["effectiveWallClock"]
        options: dict[str, Any] = {
            "requests_per_window": int(wall["token_rate_per_minute"]),
            "window_seconds": float(wall["token_rate_window_seconds"]),
            "submissions_per_window": int(wall["job_submission_quota"]),
            "submission_window_seconds": float(wall["job_submission_window_seconds"]),
            "max_jobs_in_flight": min(8, int(wall["max_concurrent_jobs"])),
            "poll_initial_seconds": 0.05,
            "poll_cap_seconds": 0.2,
            "backoff_base_seconds": 0.05,
            "backoff_cap_seconds": 0.5,
            "max_retry_seconds": 60.0,
            "job_timeout_seconds": 120.0,
        }
        options.update(overrides)
        return options
