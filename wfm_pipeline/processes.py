"""Process lifecycle on one host: is a process still the one we started, and children that die with parents.

Used by the run launcher's worker health check (a run whose worker is gone is failed, so its slots are
freed and run retries take over), by the steps (a step process must not outlive its killed run worker and
keep holding the DuckDB writer or a job slot), and by ``wfm-pipeline dev`` (its children must not outlive
it). Linux gives exact answers (``/proc``, ``prctl``); elsewhere liveness falls back to ``kill(pid, 0)``
and the parent-death signal is not available.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PROC = Path("/proc")


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _boot_time() -> float:
    for line in (_PROC / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def process_started_at(pid: int) -> float | None:
    """Epoch seconds the process started (Linux), None if it is gone or a zombie."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # fields after the command name (which may contain spaces) start after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return _boot_time() + int(fields[19]) / _clock_ticks()


def group_members(pgid: int) -> dict[int, str]:
    """Pid -> command line of the live processes in process group ``pgid`` (Linux; empty elsewhere)."""
    members: dict[int, str] = {}
    if not _PROC.is_dir():
        return members
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited while we looked
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members[int(entry.name)] = command.strip()
    return members


def is_alive(pid: int, started_by: float | None = None) -> bool:
    """True while ``pid`` runs; with ``started_by`` (epoch seconds), also only if it started no later than
    that (+1 s of clock granularity), so a recycled pid of an unrelated new process does not count."""
    if sys.platform.startswith("linux") and _PROC.is_dir():
        started = process_started_at(pid)
        if started is None:
            return False
        return started_by is None or started <= started_by + 1.0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux; a no-op elsewhere).
    If the parent is already gone (we were re-parented before asking), exit now."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if parent == 1 or not is_alive(parent):
        os.kill(os.getpid(), sig)


def bind_step_to_run_worker() -> None:
    """In a step process of Dagster's multiprocess executor (a ``multiprocessing`` child of the run
    worker): die with the run worker. A process that is no multiprocessing child (tests, ``materialize``)
    is left alone; the in_process executor's steps do not call it (``defs.executors.bind_to_run_worker``)."""
    if multiprocessing.parent_process() is not None:
        die_with_parent()
