"""The commit journal: what a transaction meant to do, so a killed one can be repaired.

libalpm keeps no record of a commit in progress; a ``kill -9`` in the middle of
an upgrade leaves files of two versions and no way to tell which packages were
touched. We append one JSON line per step to ``<dbpath>/alpmd-journal`` (beside
``local/``, never inside it, so pacman's scans do not see it), fsynced before the
step starts (``intent``); ``done`` follows when it finished, made durable by the
next fsync (a lost one only makes repair redo a finished step). A clean end deletes
the file; a file that is still there at the next start names exactly the steps
that may be half done. A torn last line (the kill hit the write) is ignored:
its step never started.

The journal names the process that wrote it by PID *and* start time
(:class:`~alpmd.engine.process.ProcessId`), so a zombie or a process that
reused the PID is never mistaken for a commit still running. Package files
that would not outlive the writer (a client's descriptor, ``/proc/PID/fd/N``)
are copied first into ``<dbpath>/alpmd-staging/`` (:func:`staging_dir`); the
journal names the copy, and repair can roll forward after any crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.process import ProcessId

JOURNAL_NAME = "alpmd-journal"
STAGING_NAME = "alpmd-staging"


def journal_path(dbpath: str) -> str:
    return os.path.join(dbpath, JOURNAL_NAME)


def staging_dir(dbpath: str) -> str:
    """Where copies of package files passed by descriptor wait for their commit."""
    return os.path.join(dbpath, STAGING_NAME)


@dataclass
class Step:
    """One package's change: ``action`` is ``add`` (install/upgrade/...) or ``remove``."""

    seq: int
    action: str
    name: str
    old: str | None = None
    new: str | None = None
    #: The package file the new version comes from (roll forward needs it).
    file: str | None = None
    reason: int = 0
    validation: list[str] = field(default_factory=list)
    done: bool = False


@dataclass
class JournalState:
    """What a journal left behind says about the transaction that wrote it."""

    path: str
    pid: int | None = None
    #: The writer's start time (``/proc/PID/stat`` field 22); None in older journals.
    pid_start: int | None = None
    started: float | None = None
    flags: int = 0
    steps: list[Step] = field(default_factory=list)
    ended: bool = False

    @property
    def pending(self) -> list[Step]:
        """Steps announced but never finished: the ones to repair, in order."""
        return [s for s in self.steps if not s.done]

    @property
    def writer(self) -> ProcessId | None:
        return ProcessId(self.pid, self.pid_start) if self.pid is not None else None

    def writer_alive(self) -> bool:
        """Whether the process that wrote the journal still runs (so it is not to repair)."""
        writer = self.writer
        return writer is not None and writer.alive()


class Journal:
    """The writer: one open file, every record fsynced before the call returns."""

    def __init__(self, dbpath: str, *, durable: bool = True) -> None:
        self.path = journal_path(dbpath)
        self.durable = durable
        self._fd: int | None = None
        self._seq = 0

    def _append(self, record: dict[str, Any], *, sync: bool = True) -> None:
        if self._fd is None:
            raise AlpmError(ErrorCode.SYSTEM, "journal is not open")
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view):]
        if sync and self.durable:
            os.fsync(self._fd)

    def begin(self, flags: int = 0) -> None:
        """Start a new journal; an unrepaired one is refused (repair first)."""
        if os.path.exists(self.path):
            raise AlpmError(ErrorCode.TRANS_ABORT,
                            f"an interrupted transaction left {self.path}; "
                            "repair it first (alpm --repair)", journal=self.path)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
                               | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise AlpmError(ErrorCode.SYSTEM, f"could not create journal {self.path}: "
                                              f"{exc.strerror}") from exc
        if self.durable:
            fsync_dir(os.path.dirname(self.path))
        me = ProcessId.current()
        self._append({"t": "begin", "pid": me.pid, "pid_start": me.start, "time": time.time(),
                      "flags": flags})

    def intent(self, action: str, name: str, *, old: str | None = None, new: str | None = None,
               file: str | None = None, reason: int = 0,
               validation: list[str] | None = None) -> int:
        """Record that a step is about to start; returns its number for :meth:`done`."""
        self._seq += 1
        self._append({"t": "intent", "n": self._seq, "action": action, "name": name,
                      "old": old, "new": new, "file": file, "reason": reason,
                      "validation": validation or []})
        return self._seq

    def done(self, seq: int) -> None:
        """Record that a step finished; not fsynced on its own.

        The step's effects are durable already (the database entry is fsynced
        before this is called), and the next intent's fsync carries this line
        along. Should a power cut lose it, repair rolls that step forward again
        from the package file: redone, never half done.
        """
        self._append({"t": "done", "n": seq}, sync=False)

    def end(self) -> None:
        """The transaction finished (well or with a clean error): forget the journal."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # a full disk: the unlink below still ends it
            self._append({"t": "end"})
        os.close(self._fd)
        self._fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        if self.durable:
            fsync_dir(os.path.dirname(self.path))

    def close(self) -> None:
        """Close without ending: the journal stays for repair (an unclean exit)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def fsync_dir(path: str) -> None:
    """Make a rename or a new entry in ``path`` durable (fsync of the directory)."""
    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_journal(dbpath: str) -> JournalState | None:
    """The journal an unfinished transaction left, or ``None`` when there is none."""
    path = journal_path(dbpath)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    state = JournalState(path)
    steps: dict[int, Step] = {}
    for raw in data.split(b"\n"):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            continue  # a torn line: the step it announced never started
        if not isinstance(rec, dict):
            continue
        kind = rec.get("t")
        if kind == "begin":
            state.pid = rec.get("pid")
            start = rec.get("pid_start")
            state.pid_start = start if isinstance(start, int) else None
            state.started = rec.get("time")
            state.flags = int(rec.get("flags") or 0)
        elif kind == "intent":
            step = Step(int(rec["n"]), str(rec["action"]), str(rec["name"]), rec.get("old"),
                        rec.get("new"), rec.get("file"), int(rec.get("reason") or 0),
                        list(rec.get("validation") or []))
            steps[step.seq] = step
            state.steps.append(step)
        elif kind == "done":
            s = steps.get(int(rec.get("n", -1)))
            if s is not None:
                s.done = True
        elif kind == "end":
            state.ended = True
    return state


def discard_journal(dbpath: str) -> None:
    """Delete the journal once its transaction is repaired, with the staged copies it named."""
    path = journal_path(dbpath)
    state = read_journal(dbpath)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fsync_dir(os.path.dirname(path))
    if state is not None:
        for step in state.steps:
            if step.file is not None and is_staged(dbpath, step.file):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(step.file)


def staging_prefix() -> str:
    """Staged file names start with their owner (PID and start time), so a sweep can
    tell the copies of a live transaction from those a dead process left."""
    me = ProcessId.current()
    return f"pkg-{me.pid}-{me.start if me.start is not None else 0}-"


def sweep_staging(dbpath: str, keep: set[str] | None = None) -> list[str]:
    """Delete staged copies whose owner is gone (and no journal names); the deleted paths."""
    where = staging_dir(dbpath)
    try:
        names = os.listdir(where)
    except FileNotFoundError:
        return []
    gone: list[str] = []
    for name in names:
        path = os.path.join(where, name)
        parts = name.split("-")
        if path in (keep or set()) or len(parts) < 4 or parts[0] != "pkg":
            continue
        try:
            owner = ProcessId(int(parts[1]), int(parts[2]) or None)
        except ValueError:
            continue
        if owner.alive():
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            gone.append(path)
    with contextlib.suppress(OSError):
        os.rmdir(where)  # only when empty
    return gone


def is_staged(dbpath: str, path: str) -> bool:
    """Whether ``path`` is a staged copy (ours to delete), not a user's package file."""
    return os.path.dirname(os.path.abspath(path)) == os.path.abspath(staging_dir(dbpath))
