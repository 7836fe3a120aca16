"""Atomic files with sidecars, and the persisted job registry."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from wfm_pipeline.fileio import remove_stale_temporaries
from wfm_pipeline.genesys._files import complete_file, sidecar_path, write_export_file
from wfm_pipeline.genesys._registry import JobRegistry, job_key


def test_write_produces_file_and_matching_sidecar(tmp_path: Path) -> None:
    data = b'{"userResults": [1, 2, 3]}'
    written = write_export_file(tmp_path / "a.json", data, records=3, extra={"job_id": "j1"})
    assert (tmp_path / "a.json").read_bytes() == data
    meta = json.loads(sidecar_path(tmp_path / "a.json").read_text())
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["bytes"] == len(data) and meta["records"] == 3 and meta["job_id"] == "j1"
    assert written.sha256 == meta["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.json.meta.json"]  # no temporaries left


def test_complete_file_rejects_missing_sidecar_and_tampered_bytes(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(b"{}")
    assert complete_file(path) is None  # no sidecar: not complete
    write_export_file(path, b'{"a": 1}', records=0)
    assert complete_file(path) is not None
    path.write_bytes(b'{"a": 2}')  # same size, different content
    assert complete_file(path) is None


def test_stale_temporaries_removed_only_when_old(tmp_path: Path) -> None:
    old = tmp_path / ".x.json.partial-old"
    fresh = tmp_path / ".x.json.partial-new"
    old.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(old, (1, 1))
    assert remove_stale_temporaries(tmp_path) == 1
    assert not old.exists() and fresh.exists()


def test_job_key_depends_on_every_part() -> None:
    body = {"interval": "a/b", "order": "asc"}
    base = job_key("user_details", body, "cid", "host")
    assert base == job_key("user_details", {"order": "asc", "interval": "a/b"}, "cid", "host")  # key order
    assert base != job_key("adherence", body, "cid", "host")
    assert base != job_key("user_details", {**body, "order": "desc"}, "cid", "host")
    assert base != job_key("user_details", body, "other", "host")
    assert base != job_key("user_details", body, "cid", "other-host")


def test_registry_survives_reopen_and_tracks_status(tmp_path: Path) -> None:
    registry = JobRegistry(tmp_path)
    registry.record_submission("k1", "user_details", "job-1", {"interval": "a/b"}, "QUEUED")
    registry.close()
    reopened = JobRegistry(tmp_path)
    row = reopened.get("k1")
    assert row is not None and row.job_id == "job-1" and not row.finished and row.body == {"interval": "a/b"}
    reopened.update_status("k1", "FULFILLED", finished=True)
    row = reopened.get("k1")
    assert row is not None and row.status == "FULFILLED" and row.finished
    reopened.record_submission("k1", "user_details", "job-2", {"interval": "a/b"}, "QUEUED")
    row = reopened.get("k1")
    assert row is not None and row.job_id == "job-2" and not row.finished
    assert reopened.get("missing") is None
