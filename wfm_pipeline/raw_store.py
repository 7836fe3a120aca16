"""The raw area of the data directory: immutable files as served, per-day manifests, quarantine.

Layout under ``$WFM_DATA_DIR``::

    raw/<kind>/<file>.json (+ .meta.json)            written by the client, atomically, never modified
    raw/aggregates/<first>_<last>_<mu>.json          user aggregates sample for the occupancy check
    raw/manifests/<kind>/<YYYY-MM-DD>.json           which files cover that day + organization snapshot
    quarantine/<kind>/<file>.json                    raw files that failed to parse or verify
    scratch/scratch-*/                               a table step's private DuckDB (spills), removed after

A manifest is replaced (atomically) each time the raw-files asset runs for the day, so a day is always
loaded from the files of the latest successful download.

Errors derive from ``RawDataError`` (a ``PipelineError``) and carry the metadata the failed step shows: a
file that does not verify or does not parse is quarantined before the error is raised; a file holding a
value we do not know yet stays where it is.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from wfm_pipeline.errors import PipelineError
from wfm_pipeline.fileio import atomic_write_bytes
from wfm_pipeline.genesys import complete_file, sidecar_path
from wfm_pipeline.transforms import ManagementUnitInfo, RawRecordError, UnknownValueError

if TYPE_CHECKING:  # only for annotations: the raw store needs no client at run time
    from wfm_pipeline.genesys import ExportedFile, ExportJob

ADHERENCE = "adherence"
USER_DETAILS = "user_details"
DIRECTORY = "directory"  # snapshots of the org's users, units, codes and presences (not per day)
# A raw file larger than this is not read into memory: it is quarantined (a served file this large is a
# fault; the largest real ones, a 7-day window of a few thousand agents, are tens of MiB).
MAX_RAW_FILE_BYTES = 2 * 1024**3
T = TypeVar("T")


class RawDataError(PipelineError):
    """The raw area cannot give a step what it needs; ``metadata`` names the file(s) involved."""

    def __init__(self, message: str, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.metadata: dict[str, str] = dict(metadata or {})


class RawFileError(RawDataError):
    """A raw file or manifest is missing, does not match its manifest entry or cannot be read."""

    def __init__(self, path: Path, reason: str, quarantined_to: Path | None = None) -> None:
        where = f"; moved to {quarantined_to}" if quarantined_to else ""
        super().__init__(f"raw file {path}: {reason}{where}", {"path": str(path)})
        self.path = path
        self.reason = reason
        self.quarantined_to = quarantined_to


class MissingManifestError(RawDataError, FileNotFoundError):
    """Days of the slice have no manifest yet: their raw files were never downloaded."""


class MalformedRawFileError(RawDataError):
    """A raw file does not have the shape Genesys documents; it was moved to the quarantine."""

    def __init__(self, path: Path, kind: str, reason: RawRecordError, quarantined_to: Path) -> None:
        super().__init__(
            f"malformed raw file {path} ({reason}); moved to {quarantined_to}. Re-materialize "
            f"{kind}_raw_files for these partitions to download it again.",
            {"path": str(path), "quarantined_to": str(quarantined_to)},
        )


class UnknownRawValueError(RawDataError):
    """A well-formed raw file holds a value Genesys does not document (yet); the file is kept."""

    def __init__(self, path: Path, reason: UnknownValueError) -> None:
        super().__init__(f"raw file {path}: {reason}", {"path": str(path), "field": reason.field})


class MixedSourcesError(RawDataError):
    """The manifests of a slice do not name one API their files came from."""


class UnsafePathError(RawDataError):
    """A path built from served data would leave the data directory (refused before anything is written)."""


@dataclass(frozen=True)
class RawFileEntry:
    path: str  # relative to the data dir
    bytes: int
    sha256: str
    records: int
    job_id: str = ""
    window_start: str = ""
    window_end: str = ""


@dataclass(frozen=True)
class AggregatesEntry:
    path: str
    management_unit_id: str
    time_zone: str
    user_ids: tuple[str, ...]
    granularity: str = "PT30M"  # of the query; manifests written before it existed were PT30M


@dataclass(frozen=True)
class DayManifest:
    kind: str
    day: date
    files: tuple[RawFileEntry, ...]  # the files the day is loaded from
    management_units: tuple[ManagementUnitInfo, ...]
    data_availability_date: str | None = None
    # Adherence: the files of the same-zone grid windows next to this day's window on each side where the
    # day is its window's first or last day (to stitch exceptions Genesys cut at the window's bounds);
    # empty for the other days and for user details. Manifests written before it existed read as empty.
    adjacent_files: tuple[RawFileEntry, ...] = ()
    aggregates: tuple[AggregatesEntry, ...] = ()
    # Where the files came from: "sandbox" or the org's API host (GenesysClient settings' ``source``).
    source: str = ""
    run_id: str = ""
    written_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    # User details: the zone whose local days the records of agents in no unit are cut into (the org's
    # default time zone when the files were fetched); None in manifests written before: they are dropped.
    unassigned_time_zone: str | None = None

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["day"] = self.day.isoformat()
        return payload

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> DayManifest:
        return cls(
            kind=payload["kind"],
            day=date.fromisoformat(payload["day"]),
            files=tuple(RawFileEntry(**entry) for entry in payload["files"]),
            adjacent_files=tuple(RawFileEntry(**entry) for entry in payload.get("adjacent_files", [])),
            management_units=tuple(
                ManagementUnitInfo(**{**unit, "user_ids": tuple(unit["user_ids"])})
                for unit in payload["management_units"]
            ),
            data_availability_date=payload.get("data_availability_date"),
            aggregates=tuple(
                AggregatesEntry(**{**entry, "user_ids": tuple(entry["user_ids"])})
                for entry in payload.get("aggregates", [])
            ),
            source=payload.get("source", ""),
            run_id=payload.get("run_id", ""),
            written_at=payload.get("written_at", ""),
            unassigned_time_zone=payload.get("unassigned_time_zone"),
        )


@dataclass(frozen=True)
class RawStore:
    data_dir: Path
    max_file_bytes: int = MAX_RAW_FILE_BYTES

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    def files_dir(self, kind: str) -> Path:
        return self.raw_dir / kind

    def manifest_path(self, kind: str, day: date) -> Path:
        return self.raw_dir / "manifests" / kind / f"{day.isoformat()}.json"

    def relative(self, path: Path) -> str:
        return str(self.contained(path).relative_to(self.data_dir.resolve()))

    def contained(self, path: Path) -> Path:
        """``path`` resolved, after checking it stays inside the data directory (``UnsafePathError``)."""
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.data_dir.resolve()):
            raise UnsafePathError(f"{path} resolves to {resolved}, outside WFM_DATA_DIR={self.data_dir}")
        return resolved

    def write_file(self, path: Path, data: bytes) -> Path:
        """Atomically write ``data`` at ``path``, refused before any byte is written if it is outside."""
        target = self.contained(path)
        atomic_write_bytes(target, data)
        return target

    def absolute(self, relative_path: str) -> Path:
        return self.data_dir / relative_path

    # --- directory snapshots ---
    def directory_path(self, observed_at: datetime) -> Path:
        """Where the snapshot taken at ``observed_at`` goes; names sort by time (UTC, to the microsecond)."""
        stamp = observed_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return self.files_dir(DIRECTORY) / f"directory_{stamp}.json"

    def latest_directory(self) -> Path:
        """The newest directory snapshot, or a ``RawFileError`` saying which asset writes one."""
        snapshots = sorted(self.files_dir(DIRECTORY).glob("directory_*.json"))
        if not snapshots:
            raise RawFileError(
                self.files_dir(DIRECTORY),
                "no directory snapshot yet: materialize the asset directory_raw_files first",
            )
        return snapshots[-1]

    # --- manifests ---
    def write_manifest(self, manifest: DayManifest) -> Path:
        path = self.manifest_path(manifest.kind, manifest.day)
        return self.write_file(path, json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode())

    def read_manifest(self, kind: str, day: date) -> DayManifest | None:
        path = self.manifest_path(kind, day)
        try:
            return DayManifest.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise RawFileError(
                path,
                f"manifest cannot be read ({type(exc).__name__}: {exc}); re-materialize {kind}_raw_files "
                f"for {day.isoformat()} to write it again (the raw files it lists are kept)",
            ) from exc

    def read_manifests(self, kind: str, days: Iterable[date]) -> dict[date, DayManifest]:
        """Manifests of every day; ``MissingManifestError`` naming the days without one (download them
        first)."""
        found = {day: self.read_manifest(kind, day) for day in days}
        missing = sorted(day.isoformat() for day, manifest in found.items() if manifest is None)
        if missing:
            raise MissingManifestError(
                f"no {kind} manifest for {', '.join(missing)} under {self.raw_dir / 'manifests' / kind}: "
                f"materialize {kind}_raw_files for these partitions first"
            )
        return {day: manifest for day, manifest in found.items() if manifest is not None}

    # --- raw files ---
    def quarantine(self, path: Path, kind: str) -> Path:
        """Move a bad raw file (and its sidecar) out of the raw area; returns the new path."""
        target_dir = self.data_dir / "quarantine" / kind
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / path.name
        if target.exists():
            target = target_dir / f"{path.stem}.{uuid.uuid4().hex[:8]}{path.suffix}"
        shutil.move(str(path), str(target))
        sidecar = sidecar_path(path)
        if sidecar.exists():
            shutil.move(str(sidecar), str(sidecar_path(target)))
        return target

    def load_bytes(self, entry: RawFileEntry, kind: str) -> bytes:
        """The file's bytes, after checking it is the exact file the manifest lists (else quarantined and
        ``RawFileError`` raised)."""
        path = self.absolute(entry.path)
        self.contained(path)
        try:
            size = path.stat().st_size
            if size > self.max_file_bytes:
                raise RawFileError(
                    path,
                    f"{size:,} bytes, more than the {self.max_file_bytes:,} a raw file may have",
                    self.quarantine(path, kind),
                )
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise RawFileError(
                path, f"listed by the {kind} manifest but missing: re-materialize {kind}_raw_files"
            ) from exc
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            if complete_file(path) is not None:
                # Complete and matching its own sidecar: a later download of the file's job replaced it
                # (another run's manifest may list it), so it is kept where it is, not quarantined.
                raise RawFileError(
                    path,
                    f"replaced by a later download after this manifest was written: re-materialize "
                    f"{kind}_raw_files for these days",
                )
            raise RawFileError(path, "sha256 differs from the manifest", self.quarantine(path, kind))
        return data

    def parse(self, entry: RawFileEntry, kind: str, parse: Callable[[bytes], T]) -> T:
        """``parse`` (a pure transform) applied to the verified bytes of one raw file. A shape error the
        transform reports (``RawRecordError``) quarantines the file (``MalformedRawFileError``); a value we do
        not know yet (``UnknownValueError``) keeps it (``UnknownRawValueError``); any other exception is a
        bug of ours and propagates with the file left where it is."""
        data = self.load_bytes(entry, kind)
        path = self.absolute(entry.path)
        try:
            return parse(data)
        except UnknownValueError as exc:
            raise UnknownRawValueError(path, exc) from exc
        except RawRecordError as exc:
            raise MalformedRawFileError(path, kind, exc, self.quarantine(path, kind)) from exc

    def load_aggregates(self, relative_path: str) -> Any | None:
        """An aggregates sample (None if it is gone: the comparison is then skipped, not failed)."""
        try:
            return json.loads(self.absolute(relative_path).read_bytes())
        except (FileNotFoundError, ValueError, RecursionError):
            return None


def source_of(manifests: Mapping[date, DayManifest], kind: str) -> str:
    """The one API the slice's raw files came from (every manifest must name the same)."""
    sources = {manifest.source for manifest in manifests.values()}
    if len(sources) != 1 or "" in sources:
        named = sorted(f"{day}: {manifest.source or 'none recorded'}" for day, manifest in manifests.items())
        raise MixedSourcesError(
            f"the {kind} manifests of this slice do not name one source ({'; '.join(named[:6])}); "
            f"re-materialize {kind}_raw_files for these partitions"
        )
    return sources.pop()


def group_days_by_files(manifests: Mapping[date, DayManifest]) -> list[tuple[list[date], DayManifest]]:
    """Days that list the same set of files and the same set of adjacent files are loaded together;
    returns (days, a manifest of them)."""
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[date]] = {}
    for day, manifest in sorted(manifests.items()):
        files = tuple(sorted(entry.path for entry in manifest.files))
        adjacent = tuple(sorted(entry.path for entry in manifest.adjacent_files))
        groups.setdefault((files, adjacent), []).append(day)
    return [(days, manifests[days[-1]]) for days in groups.values()]


def entries_for(files: Sequence[ExportedFile], store: RawStore, job: ExportJob) -> list[RawFileEntry]:
    """Manifest entries for the files a client export downloaded for ``job``."""
    return [
        RawFileEntry(
            path=store.relative(Path(file.path)),
            bytes=file.bytes,
            sha256=file.sha256,
            records=file.records,
            job_id=job.job_id,
            window_start=job.window_start.isoformat(),
            window_end=job.window_end.isoformat(),
        )
        for file in files
    ]
