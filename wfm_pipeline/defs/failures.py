"""The one adapter from the pipeline's errors to Dagster's step failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from wfm_pipeline.errors import PipelineError


@contextmanager
def pipeline_errors_fail_the_step() -> Iterator[None]:
    """A ``PipelineError`` (bad raw data, a refused slice, a failed blocking check, nothing to export)
    fails the step without step retries, since a retry meets the same data; any other exception is a bug
    of ours (or a crash) and keeps the retry policy."""
    try:
        yield
    except PipelineError as exc:
        raise dg.Failure(str(exc), metadata=dict(exc.metadata), allow_retries=False) from exc
