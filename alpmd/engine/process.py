"""Which process is which: a PID plus its start time.

A PID alone does not name a process: a killed one stays a zombie until its
parent reaps it (``kill(pid, 0)`` still succeeds), and the kernel reuses PIDs.
The start time (field 22 of ``/proc/PID/stat``, clock ticks since boot) is
fixed for a process's life and differs between two processes that shared a
PID, so ``(pid, start)`` names one process for as long as the machine runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["ProcessId", "proc_state", "start_time"]


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` split after the command name (which may hold spaces and ')')."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    end = raw.rfind(b")")
    if end < 0:
        return None
    # fields[0] is field 3 (state); field N is fields[N - 3]
    return raw[end + 2:].decode("ascii", "replace").split()


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None when there is no such process."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        return int(fields[19])
    except ValueError:
        return None


def proc_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` (``R``, ``S``, ``Z``...), or None when it is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


@dataclass(frozen=True)
class ProcessId:
    """One process: its PID and start time (None when the recorder could not read it)."""

    pid: int
    start: int | None = None

    @classmethod
    def current(cls) -> ProcessId:
        pid = os.getpid()
        return cls(pid, start_time(pid))

    def alive(self) -> bool:
        """Whether this very process still runs: not gone, not a zombie, not a PID reused.

        Without a recorded start time only existence and zombie state can be
        checked (a journal of an older version).
        """
        fields = _stat_fields(self.pid)
        if fields is None:
            return False
        if fields[0] in ("Z", "X", "x"):
            return False
        if self.start is None:
            return True
        try:
            return int(fields[19]) == self.start
        except (IndexError, ValueError):
            return False
