"""The transforms' error tree: what a raw file can be wrong about.

``TransformError`` derives from the pipeline's base (``wfm_pipeline.errors.PipelineError``) and keeps
``ValueError`` in its MRO, since a malformed value is what it reports.
"""

from __future__ import annotations

from wfm_pipeline.errors import PipelineError


class TransformError(PipelineError, ValueError):
    """Base of every error the transforms raise about the raw records they are given."""


class RawRecordError(TransformError):
    """A raw record does not have the shape Genesys documents (missing field, bad timestamp, an interval
    that ends before it starts, an offset outside the query window). The file is quarantined."""


class UnknownValueError(RawRecordError):
    """A field holds a value Genesys does not document (yet): the file is well formed, so it stays where it
    is, but nothing is loaded until the value is known (``wfm_pipeline/wire.py``), since we cannot say
    what it means for adherence or occupancy."""

    def __init__(self, where: str, field: str, values: list[str], known: tuple[str, ...], count: int) -> None:
        self.field, self.values, self.count = field, values, count
        super().__init__(
            f"{where}: {count} record(s) with {field} {', '.join(repr(v) for v in values[:5])}, none of "
            f"the documented values {list(known)}. If Genesys added it, add it to wfm_pipeline/wire.py "
            "and re-run this step; the raw file is kept as it is"
        )
