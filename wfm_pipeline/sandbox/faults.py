"""Fault injection, switchable at runtime (``PUT /sandbox/faults``) and deterministic under the seed.

A rule: ``{"kind": ..., "route": "<fnmatch pattern on the path>", "method": "GET" (optional),
"probability": 0..1 | "count": N, "retryAfter": seconds (optional), "delaySeconds": s (slow only),
"headers": {"<name>": "<value>", ...} (ratelimit_headers only)}``.
With ``count`` the first N matching requests get the fault; with ``probability`` each matching request
draws from a per-rule ``random.Random`` seeded from the sandbox seed and the rule's position, so the same
rules and the same request sequence give the same faults on every run.

``ratelimit_headers`` does not change how the request is handled: the response it gets (whatever it is)
carries the rule's ``headers``, each replacing the sandbox's own header of the same name
(case-insensitive), e.g. ``{"inin-ratelimit-count": "300", "inin-ratelimit-allowed": "300",
"inin-ratelimit-reset": "31536000"}`` on a normal 200. Names are limited to the ``inin-ratelimit-*``
family and ``Retry-After`` (the headers a client paces itself by; anything else, e.g. Content-Length,
could break the response framing), values to printable ASCII (no CR/LF: no header injection).
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from wfm_pipeline import wire

# kind -> (HTTP status, ErrorBody code) for faults answered with an error body
ERROR_FAULTS: dict[str, tuple[int, str]] = {
    "error_500": (500, wire.ERROR_INTERNAL_SERVER_ERROR),
    "error_502": (502, "bad.gateway"),
    "error_503": (503, wire.ERROR_SERVICE_UNAVAILABLE),
    "error_504": (504, wire.ERROR_REQUEST_TIMEOUT),
    "legacy_429": (429, wire.ERROR_TOO_MANY_REQUESTS),  # pre-2021 form: no Retry-After
    "rate_limit_429": (429, wire.ERROR_TOO_MANY_REQUESTS_RETRY_AFTER),  # normalized form, Retry-After
}
OTHER_FAULTS = (
    "slow",  # sleep delaySeconds (scaled by the time scale) before handling
    "drop_connection",  # close the socket without any response
    "truncate_download",  # Content-Length larger than the bytes sent, then close
    "revoke_token",  # revoke the caller's token: this request and later ones get 401 bad.credentials
    "fail_job",  # a job created by this request ends FAILED (analytics) / Error (adherence)
    "expire_job",  # a job created by this request expires right after completing
    "ratelimit_headers",  # answer normally, but with the rule's headers replacing the sandbox's own
)
FAULT_KINDS = (*ERROR_FAULTS, *OTHER_FAULTS)

# ratelimit_headers: the header names a rule may set (case-insensitive) and the values it may give
RATELIMIT_HEADER_NAME = re.compile(r"inin-ratelimit-[a-z0-9-]+|retry-after", re.IGNORECASE)
HEADER_VALUE = re.compile(r"[\x20-\x7e]{0,256}")  # printable ASCII: no CR/LF, so no header injection


@dataclass
class FaultRule:
    kind: str
    route: str = "*"
    method: str | None = None
    probability: float | None = None
    count: int | None = None
    retry_after: int | None = None
    delay_seconds: float = 5.0
    headers: dict[str, str] = field(default_factory=dict)  # ratelimit_headers only
    rng: random.Random = field(default_factory=random.Random, repr=False)
    served: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return fnmatch.fnmatchcase(path, self.route)

    def fires(self) -> bool:
        """Consume one matching request; True when the fault applies to it."""
        if self.count is not None:
            if self.served >= self.count:
                return False
        elif self.rng.random() >= (self.probability if self.probability is not None else 1.0):
            return False
        self.served += 1
        return True

    def as_dict(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"kind": self.kind, "route": self.route, "served": self.served}
        if self.method:
            rule["method"] = self.method
        if self.count is not None:
            rule["count"] = self.count
        if self.probability is not None:
            rule["probability"] = self.probability
        if self.retry_after is not None:
            rule["retryAfter"] = self.retry_after
        if self.kind == "slow":
            rule["delaySeconds"] = self.delay_seconds
        if self.kind == "ratelimit_headers":
            rule["headers"] = dict(self.headers)
        return rule


def parse_rule(raw: Any, position: int, seed: int) -> FaultRule:
    """One rule from JSON; ValueError with a readable message when it is malformed."""
    if not isinstance(raw, dict):
        raise ValueError(f"rule {position}: must be an object")
    unknown = set(raw) - {
        "kind",
        "route",
        "method",
        "probability",
        "count",
        "retryAfter",
        "delaySeconds",
        "headers",
    }
    if unknown:
        raise ValueError(f"rule {position}: unknown fields {sorted(unknown)}")
    kind = raw.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"rule {position}: kind must be one of {list(FAULT_KINDS)}")
    route = raw.get("route", "*")
    method = raw.get("method")
    if not isinstance(route, str) or (method is not None and not isinstance(method, str)):
        raise ValueError(f"rule {position}: route and method must be strings")
    probability, count = raw.get("probability"), raw.get("count")
    if probability is not None and count is not None:
        raise ValueError(f"rule {position}: give probability or count, not both")
    if probability is not None and (
        isinstance(probability, bool) or not isinstance(probability, int | float) or not 0 <= probability <= 1
    ):
        raise ValueError(f"rule {position}: probability must be a number in [0, 1]")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise ValueError(f"rule {position}: count must be a non-negative integer")
    retry_after = raw.get("retryAfter")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
    ):
        raise ValueError(f"rule {position}: retryAfter must be a non-negative integer")
    delay = raw.get("delaySeconds", 5.0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 600:
        raise ValueError(f"rule {position}: delaySeconds must be a number in [0, 600]")
    headers = parse_headers(raw, kind, position)
    return FaultRule(
        kind=kind,
        route=route,
        method=method.upper() if method else None,
        probability=float(probability) if probability is not None else None,
        count=count,
        retry_after=retry_after,
        delay_seconds=float(delay),
        headers=headers,
        rng=random.Random(f"{seed}:fault:{position}:{kind}:{route}"),
    )


def parse_headers(raw: dict[str, Any], kind: str, position: int) -> dict[str, str]:
    """The ``headers`` of a ratelimit_headers rule (required there, refused on every other kind)."""
    if kind != "ratelimit_headers":
        if "headers" in raw:
            raise ValueError(f"rule {position}: headers is only for kind ratelimit_headers")
        return {}
    headers = raw.get("headers")
    if not isinstance(headers, dict) or not headers:
        raise ValueError(f"rule {position}: headers must be a non-empty object of header name -> string")
    seen: set[str] = set()
    for name, value in headers.items():
        if not RATELIMIT_HEADER_NAME.fullmatch(name):
            raise ValueError(
                f"rule {position}: header {name!r} is not allowed (only inin-ratelimit-* and Retry-After)"
            )
        if name.lower() in seen:
            raise ValueError(f"rule {position}: header {name!r} is given twice (names are case-insensitive)")
        seen.add(name.lower())
        if not isinstance(value, str) or not HEADER_VALUE.fullmatch(value):
            raise ValueError(
                f"rule {position}: header {name!r} needs a string of at most 256 printable ASCII characters"
            )
    return dict(headers)


class FaultBook:
    """The active rules. ``draw`` returns the faults that fire for one request, in rule order."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def replace(self, raw_rules: Any) -> None:
        if isinstance(raw_rules, dict) and "rules" in raw_rules:
            raw_rules = raw_rules["rules"]
        if not isinstance(raw_rules, list):
            raise ValueError('body must be a JSON list of rules (or {"rules": [...]})')
        rules = [parse_rule(raw, position, self._seed) for position, raw in enumerate(raw_rules)]
        with self._lock:
            self._rules = rules

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.as_dict() for rule in self._rules]

    def draw(self, method: str, path: str) -> list[FaultRule]:
        with self._lock:
            if not self._rules:
                return []
            return [rule for rule in self._rules if rule.matches(method, path) and rule.fires()]
