"""Guards that are not refusals: bounded pauses, hidden secrets, private state, encoded ids."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from wfm_pipeline import wire
from wfm_pipeline.genesys import ClientSettings
from wfm_pipeline.genesys._budget import PAUSE_SLICE_SECONDS, SharedBudget
from wfm_pipeline.genesys._client import default_state_dir
from wfm_pipeline.genesys._responses import api_path

ONE_YEAR = 365 * 24 * 3600


class Clock:
    """A fake clock whose sleeps advance it; ``on_sleep`` lets a test act as another process."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def budget(tmp_path: Path, clock: Clock, **options: float) -> SharedBudget:
    return SharedBudget(tmp_path, "k", clock=clock, sleep=clock.sleep, **options)  # type: ignore[arg-type]


def test_a_one_year_reset_header_pauses_only_up_to_the_cap(tmp_path: Path) -> None:
    clock = Clock()
    shared = budget(tmp_path, clock, max_pause_seconds=30.0)
    shared.observe(
        {
            wire.HEADER_RATELIMIT_ALLOWED: "300",
            wire.HEADER_RATELIMIT_COUNT: "300",
            wire.HEADER_RATELIMIT_RESET: str(ONE_YEAR),
        }
    )
    assert shared.paused_until == pytest.approx(clock.now + 30.0)  # obeyed, but only up to the cap
    shared.acquire_request()
    assert sum(clock.sleeps) == pytest.approx(30.0)
    assert max(clock.sleeps) <= PAUSE_SLICE_SECONDS


def test_a_persisted_pause_beyond_the_cap_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A year-long pause already in the shared state (written before the cap existed) must not hold any
    process, and a restart must not be needed to get out of it."""
    clock = Clock()
    shared = budget(tmp_path, clock, max_pause_seconds=30.0)
    shared._state.set("paused_until", clock.now + ONE_YEAR)
    with caplog.at_level(logging.WARNING, logger="wfm_pipeline.genesys._budget"):
        shared.acquire_request()
    assert clock.sleeps == []
    assert "ignoring a shared pause" in caplog.text and "max_pause_seconds" in caplog.text


def test_a_pause_shortened_by_another_process_is_seen_within_one_slice(tmp_path: Path) -> None:
    clock = Clock()
    shared = budget(tmp_path, clock)
    shared.pause(120.0)
    other = budget(tmp_path, clock)

    def sleep_then_clear(seconds: float) -> None:
        Clock.sleep(clock, seconds)
        if len(clock.sleeps) == 3:
            other._state.set("paused_until", clock.now)  # another process ends the pause

    shared._sleep = sleep_then_clear
    shared.acquire_request()
    assert len(clock.sleeps) == 3 and sum(clock.sleeps) <= 3 * PAUSE_SLICE_SECONDS


def test_settings_repr_never_shows_the_secret() -> None:
    settings = ClientSettings.for_region("eu_west_1", "client-id", "very-secret-value")
    assert "very-secret-value" not in repr(settings) and "very-secret-value" not in str(settings)
    assert "client-id" in repr(settings)


def test_client_state_defaults_to_a_per_user_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert default_state_dir() == Path.home() / ".local" / "state" / "wfm-pipeline" / "genesys"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "wfm-pipeline" / "genesys"


def test_ids_are_percent_encoded_in_request_paths() -> None:
    assert api_path(wire.USER_DETAILS_JOB_PATH, job_id="a/../b c") == (
        "/api/v2/analytics/users/details/jobs/a%2F..%2Fb%20c"
    )
