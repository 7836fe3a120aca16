"""Request accounting: what an operation cost, for materialization metadata and benchmarks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class RequestMetrics:
    requests: int = 0  # HTTP requests sent (including retries, polls, downloads, token calls)
    retries: int = 0  # requests repeated after a retryable failure
    throttled: int = 0  # 429 responses received
    waited_seconds: float = 0.0  # time spent waiting on the budget, pauses, backoff and polling
    bytes: int = 0  # response bytes written to files
    records: int = 0  # records in the files written
    jobs_submitted: int = 0
    jobs_resumed: int = 0
    jobs_done: int = 0  # jobs whose files are on disk (downloaded now, or earlier and reused)
    files: int = 0  # files written (a user-details page, an adherence unit's file)

    def snapshot(self) -> RequestMetrics:
        return RequestMetrics(**asdict(self))

    def since(self, earlier: RequestMetrics) -> RequestMetrics:
        """The difference ``self - earlier`` (what happened between two snapshots)."""
        return RequestMetrics(
            **{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(RequestMetrics)}
        )

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)
