"""The transforms' timestamp wrapper and error tree."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wfm_pipeline.errors import PipelineError
from wfm_pipeline.transforms import RawRecordError, TransformError, UnknownValueError
from wfm_pipeline.transforms._days import parse_timestamp


@pytest.mark.parametrize(
    "text",
    ["2024-03-01T08:30:15.000Z", "2024-03-01T08:30:15z", "2024-03-01T10:30:15+02:00", "2024-03-01T08:30:15"],
)
def test_parse_timestamp_reads_every_wire_form_as_utc(text: str) -> None:
    assert parse_timestamp(text, "startTime") == datetime(2024, 3, 1, 8, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize("value", ["yesterday", "", None, 1709281815])
def test_parse_timestamp_names_the_field_of_a_bad_value(value: object) -> None:
    with pytest.raises(RawRecordError, match=r"^userDetails\[0\]\.startTime: "):
        parse_timestamp(value, "userDetails[0].startTime")


def test_the_transforms_errors_are_pipeline_errors_and_value_errors() -> None:
    for error in (RawRecordError, UnknownValueError):
        assert issubclass(error, TransformError)
    assert issubclass(TransformError, PipelineError) and issubclass(TransformError, ValueError)
