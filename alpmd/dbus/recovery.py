"""Crash safety around commits: the daemon's commit marker, and recovery at start.

The marker names our pid and the lock file while a commit runs: after a
SIGKILL it tells the next daemon that the lock left behind is its own, so the
engine's journal recovery may take it back. Any other lock is reported, never
touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alpmd.engine.errors import AlpmError
from alpmd.engine.handle import Handle, lock_holder_process
from alpmd.engine.process import ProcessId
from alpmd.engine.trans import Transaction

log = logging.getLogger("alpmd")


@dataclass
class RecoveryResult:
    """What start-up recovery found and did."""

    time: int
    lock: str
    ours: bool
    result: str = ""
    pending: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)


class CommitMarker:
    """The ``committing`` file under the daemon's state directory."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.path = state_dir + "committing"

    @contextlib.contextmanager
    def held(self, lockfile: str) -> Iterator[None]:
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            me = ProcessId.current()
            fh.write(f"{me.pid} {me.start if me.start is not None else ''}\n{lockfile}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def crashed(self, handle: Handle) -> bool:
        """Whether a previous daemon died while committing: the process its marker names
        (PID and start time, so a reused PID or a zombie is no survivor) no longer holds
        the lock."""
        try:
            who, lockfile = Path(self.path).read_text().split("\n")[:2]
            pid_text, _, start_text = who.partition(" ")
            writer = ProcessId(int(pid_text), int(start_text) if start_text.strip() else None)
        except (OSError, ValueError):
            return False
        if writer.pid == os.getpid():
            return False
        if not writer.alive():
            return lockfile == handle.lockfile or not lockfile
        # the very process is alive: it crashed only if it no longer holds the lock
        holder = lock_holder_process(handle.lockfile)
        return holder is None or holder.pid != writer.pid

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def recover(handle: Handle, marker: CommitMarker) -> RecoveryResult:
    """Repair what a killed commit left (the engine's journal recovery), at start-up."""
    ours = marker.crashed(handle)
    holder = handle.lock_holder()
    out = RecoveryResult(time=int(time.time()), lock=holder, ours=ours)
    if holder and holder != "stale":
        out.result = f"database locked by {holder}; not recovering"
        return out
    try:
        report = Transaction.recover(handle, repair=True, remove_stale_lock=ours and bool(holder))
    except AlpmError as exc:
        out.result = "failed"
        out.unresolved = [exc.message]
        return out
    out.pending = [f"{s.action} {s.name}" for s in report.pending]
    out.actions = list(report.actions)
    out.unresolved = list(report.unresolved)
    if report.clean:
        out.result = "clean"
    elif report.repaired or (report.journal is None and not report.stale_lock):
        out.result = "repaired"
    else:
        out.result = "unresolved"
    if ours and not report.unresolved:
        marker.clear()
    if out.result != "clean":
        log.warning("start-up recovery: %s (%s)", out.result,
                    "; ".join(out.actions + out.unresolved))
    return out


def clear_incoming(incoming: str, result: RecoveryResult) -> None:
    """Drop the copies of clients' package files a previous daemon left, once recovery no
    longer needs them (a journal that could not be resolved may still point at one)."""
    if result.result in ("clean", "repaired"):
        shutil.rmtree(incoming, ignore_errors=True)
