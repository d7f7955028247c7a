"""The commit journal: what a transaction meant to do, so a killed one can be repaired.

libalpm keeps no record of a commit in progress; a ``kill -9`` in the middle of
an upgrade leaves files of two versions and no way to tell which packages were
touched. We append JSON lines to ``<dbpath>/alpmd-journal`` (beside ``local/``,
never inside it, so pacman's scans do not see it). A journal that is still there,
without an ``end`` line, names the steps that may be half done. A torn last line
(the kill hit the write) is ignored: its step never started.

What a crash can lose decides what is flushed. A killed process loses nothing
it wrote (the kernel keeps it), so the order of our own writes is enough there:
``start`` is written before a step touches anything and ``done`` after it
finished, neither flushed. A power cut loses whatever was not flushed, in any
order, so a commit announces its steps first (``plan``, one fsync for all of
them), then runs them without fsyncs of its own; a long one flushes the file
systems it writes every few seconds (one ``syncfs()`` each, :func:`sync_filesystems`)
and says so in a ``synced`` line. A commit that stops cleanly before its last steps
flushes and takes them out again (``drop``). ``begin`` names the boot
(``/proc/sys/kernel/random/boot_id``): read back in the same boot, the journal
is exact (the started, unfinished steps are pending); read after a reboot, every
announced step not finished before the last ``synced`` line is pending, and
repair redoes it from its package file (redone, never half done).

A commit that finished does not wait for its last flush: it writes ``end``
(unflushed) and hands the journal to a settler (:class:`Ended`; a detached
process for ``alpm``, a thread in the daemon) that flushes the file systems,
writes a flushed ``synced`` line for every step and deletes the journal. An
ended journal names nothing to repair in the boot that wrote it: when its
settler was killed, the next commit or repair flushes the file systems and
deletes it (:func:`settle_finished`). After a
reboot a settler that never finished is indistinguishable from a power cut: the
steps no ``synced`` line covers are redone. Each journal is locked (``flock``)
for its whole life by its writer and then its settler (the same open file);
anyone else who deletes a journal (the next commit, repair) holds the database
lock and takes that lock first, so a settler can never delete a newer
transaction's journal. pacman, for
comparison, flushes nothing and keeps no record.

The journal names the process that wrote it by PID *and* start time
(:class:`~alpmd.engine.process.ProcessId`), so a zombie or a process that
reused the PID is never mistaken for a commit still running. Package files
that would not outlive the writer (a client's descriptor, ``/proc/PID/fd/N``)
are copied first into ``<dbpath>/alpmd-staging/`` (:func:`staging_dir`); the
journal names the copy, and repair can roll forward after any crash.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import fcntl
import functools
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from alpmd import TYPE_CHECKING
from alpmd.engine.durable import fsync_dir
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.process import ProcessId

if TYPE_CHECKING:
    from typing import Any

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
    #: Whether the step was seen to start (``intent``/``start``), not only announced.
    started: bool = True


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
    #: The boot the journal was written in (None in older journals).
    boot: str | None = None
    #: The last step whose effects were flushed (``synced``), 0 before the first.
    synced: int = 0
    #: A flush of the commit's file systems failed (``flush-failed``): what was written
    #: since the last ``synced`` line may never reach the disk, in this boot too.
    flush_failed: bool = False

    @property
    def pending(self) -> list[Step]:
        """Steps that may be half done: the ones to repair, in order.

        In the boot that wrote the journal every line it wrote is there, so
        these are the steps started and not finished. After a reboot, unflushed
        lines may be lost and unflushed effects torn: every announced step not
        finished before the last ``synced`` line is redone. So after a failed flush: a
        later flush would not report the write-back error again (the kernel tells each
        error once per open file), so nothing short of redoing them makes those steps sure.
        """
        if self.flush_failed or (self.boot is not None and self.boot != boot_id()):
            return [s for s in self.steps if not (s.done and s.seq <= self.synced)]
        return [s for s in self.steps if s.started and not s.done]

    @property
    def finished(self) -> bool:
        """The commit ended and nothing is left to repair, only (maybe) its last flush:
        in the boot that wrote it an ``end`` line is enough; after a reboot, only when
        a ``synced`` line covers every step."""
        return self.ended and not self.pending

    @property
    def writer(self) -> ProcessId | None:
        return ProcessId(self.pid, self.pid_start) if self.pid is not None else None

    def writer_alive(self) -> bool:
        """Whether the process that wrote the journal still runs (so it is not to repair)."""
        writer = self.writer
        return writer is not None and writer.alive()


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def _write_lines(fd: int, lines: list[bytes]) -> None:
    """Append the lines in one write (a short write is continued)."""
    view = memoryview(b"".join(lines))
    while view:
        view = view[os.write(fd, view):]


def _say_flush_failed(fd: int, durable: bool) -> None:
    """Write the ``flush-failed`` line (flushed when ``durable``); if even that fails, the
    journal keeps what it says already (no ``synced`` line covers the steps)."""
    with contextlib.suppress(OSError):
        _write_lines(fd, [_line({"t": "flush-failed"})])
        if durable:
            os.fsync(fd)


class FinalFlush(enum.Enum):
    """Who settles an ended journal (see :class:`Ended`), and so whether a commit waits for
    its last flush: the commit itself (``WAIT``), a detached process (``PROCESS``: the
    ``alpm`` command exits at once) or a thread (``THREAD``: the daemon lives on)."""

    WAIT = "wait"
    PROCESS = "process"
    THREAD = "thread"


class Journal:
    """The writer: one open file; see the module documentation for what is flushed when."""

    def __init__(self, dbpath: str, *, durable: bool = True) -> None:
        self.path = journal_path(dbpath)
        self.durable = durable
        self._fd: int | None = None
        self._seq = 0
        self._started: set[int] = set()
        #: ``plan`` lines not written yet: written with the next line or :meth:`flush`.
        self._planned: list[bytes] = []
        #: Whether the journal's name (its directory) was flushed.
        self._named = False

    def _append(self, record: dict[str, Any], *, sync: bool = True) -> None:
        if self._fd is None:
            raise AlpmError(ErrorCode.SYSTEM, "journal is not open")
        lines, self._planned = [*self._planned, _line(record)], []
        _write_lines(self._fd, lines)
        if sync:
            self._sync()

    def _sync(self) -> None:
        """fsync the journal, and its directory the first time (its new name)."""
        if self._fd is None or not self.durable:
            return
        os.fsync(self._fd)
        if not self._named:
            fsync_dir(os.path.dirname(self.path))
            self._named = True

    @property
    def last(self) -> int:
        """The number of the last step announced."""
        return self._seq

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
        # Held for the journal's whole life, by the writer and then by whoever settles it
        # (the same open file, inherited): whoever discards a journal takes it first.
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        me = ProcessId.current()
        # Not flushed on its own: the plan's flush carries it and the new name, before any
        # step starts (the file first, then its directory: on ext4 the second then finds
        # nothing left to commit, one journal commit instead of two).
        self._append({"t": "begin", "pid": me.pid, "pid_start": me.start, "time": time.time(),
                      "flags": flags, "boot": boot_id()}, sync=False)

    def plan(self, action: str, name: str, *, old: str | None = None, new: str | None = None,
             file: str | None = None, reason: int = 0,
             validation: list[str] | None = None) -> int:
        """Announce a step (not flushed: :meth:`flush` after the last); its number."""
        self._seq += 1
        self._planned.append(_line({"t": "plan", "n": self._seq, "action": action,
                                    "name": name, "old": old, "new": new, "file": file,
                                    "reason": reason, "validation": validation or []}))
        return self._seq

    def flush(self) -> None:
        """Write the announced steps (one write for all) and make every line so far
        durable, before any step starts."""
        if self._fd is None:
            return
        if self._planned:
            lines, self._planned = self._planned, []
            _write_lines(self._fd, lines)
        self._sync()

    def start(self, seq: int) -> None:
        """An announced step begins; not flushed (a power cut redoes every announced step)."""
        self._started.add(seq)
        self._append({"t": "start", "n": seq}, sync=False)

    def abandon(self, paths: list[str]) -> None:
        """The commit stops before its last steps: flush what the finished steps wrote, then
        take the steps that never started out of the journal (flushed), so that repair,
        even after a reboot, finishes only the step left half done."""
        self.checkpoint(self._seq, paths)
        for seq in range(1, self._seq + 1):
            if seq not in self._started:
                self._append({"t": "drop", "n": seq}, sync=False)
        self.flush()

    def checkpoint(self, seq: int, paths: list[str]) -> None:
        """Steps up to ``seq`` are finished: flush their effects (one ``syncfs`` per file
        system under ``paths``), then say so; the line itself is carried by the next flush."""
        if self.durable:
            try:
                sync_filesystems(paths)
            except OSError:
                self.flush_failed()
                raise
        self.synced(seq)

    def flush_failed(self) -> None:
        """A flush of the commit's file systems failed: say so, flushed if it can be (the
        steps written since the last ``synced`` line are then redone by repair, see
        :attr:`JournalState.flush_failed`)."""
        if self._fd is not None:
            _say_flush_failed(self._fd, self.durable)

    def synced(self, seq: int) -> None:
        """Say that the effects of the steps up to ``seq`` were flushed (after the flush)."""
        self._append({"t": "synced", "n": seq}, sync=False)

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

        After a kill the line is there. After a power cut it counts only when a
        later ``synced`` line covers the step (its effects were flushed first);
        otherwise repair rolls the step forward again from the package file:
        redone, never half done.
        """
        self._append({"t": "done", "n": seq}, sync=False)

    def end(self, paths: list[str]) -> Ended | None:
        """Every started step is done: write the ``end`` line (not flushed) and hand the
        open journal, with its lock, to an :class:`Ended` that settles it (flushes
        ``paths``, deletes the journal); None when the journal is not open."""
        if self._fd is None:
            return None
        with contextlib.suppress(OSError):  # a full disk: settling still deletes it
            self._append({"t": "end"}, sync=False)
        fd, self._fd = self._fd, None
        return Ended(self.path, fd, self._seq, paths, self.durable)

    def close(self) -> None:
        """Close without ending: the journal stays for repair (an unclean exit)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class Ended:
    """A journal whose commit ended, its last steps not yet flushed, and the open file
    that holds its lock. :meth:`settle` flushes the file systems under ``paths``,
    writes a ``synced`` line covering every step (flushed: from then on the journal
    names nothing to redo in any boot) and deletes the journal. Until then the
    journal is harmless in the boot that wrote it, and after a power cut it names
    the steps to redo, as any journal does."""

    path: str
    fd: int
    last: int
    paths: list[str]
    durable: bool

    def settle(self, *, quiet: bool = False) -> None:
        """Flush, say so, delete the journal and close it (``quiet``: a failure leaves the
        journal for the next commit or repair, which settles it the same way)."""
        try:
            if self.durable:
                try:
                    sync_filesystems(self.paths)
                except OSError:
                    self.flush_failed()
                    raise
                _write_lines(self.fd, [_line({"t": "synced", "n": self.last})])
                os.fsync(self.fd)
            _discard(self.path, self.fd, self.durable)
        except OSError:
            if not quiet:
                raise
        finally:
            os.close(self.fd)

    def flush_failed(self) -> None:
        """The flush failed: the journal is kept, and says so, for the next commit or
        repair, which redo its steps (:attr:`JournalState.flush_failed`), never just
        delete it."""
        _say_flush_failed(self.fd, self.durable)

    def hand_off(self, how: FinalFlush) -> None:
        """Settle now (``WAIT``), in a thread, or in a detached process (see
        :class:`FinalFlush`); a journal that is not durable (nothing to flush) now."""
        if not self.durable:
            self.settle()
        elif how is FinalFlush.PROCESS:
            self.detach()
        elif how is FinalFlush.THREAD:
            try:
                threading.Thread(target=self.settle, kwargs={"quiet": True},
                                 name="alpmd-settle").start()
            except RuntimeError:  # no thread to be had: settle here
                self.settle(quiet=True)
        else:
            self.settle()

    def detach(self) -> None:
        """Settle in a process of its own that outlives this one (two forks, a new
        session, no descriptor but the journal's), so the caller need not wait for the
        flush. Inline when a thread runs (a fork would copy it stopped, perhaps holding
        a lock the child needs) or no process can be made; as in the background, a
        failed flush leaves the journal for the next commit or repair to settle."""
        if threading.active_count() > 1:
            self.settle(quiet=True)
            return
        _syncfs()  # bound before the fork, not in the child
        try:
            pid = os.fork()
        except OSError:
            self.settle(quiet=True)
            return
        if pid == 0:  # pragma: no cover - runs in the forked children
            code = 1
            try:
                os.setsid()
                if os.fork() == 0:
                    _only_descriptor(self.fd)
                    self.settle(quiet=True)
                code = 0
            finally:
                os._exit(code)
        os.close(self.fd)  # the grandchild holds the journal and its lock now
        os.waitpid(pid, 0)


def _only_descriptor(fd: int) -> None:
    """Standard streams to /dev/null and every other descriptor but ``fd`` closed, so that
    nobody reading this process's output (a pipe, a test's capture) waits for it."""
    null = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):
        if std != fd:
            os.dup2(null, std)
    keep = sorted({0, 1, 2, fd})
    for low, high in zip(keep, [*keep[1:], os.sysconf("SC_OPEN_MAX")], strict=True):
        os.closerange(low + 1, high)


def _discard(path: str, fd: int, durable: bool) -> None:
    """Delete the journal ``fd`` holds (locked), only if ``path`` still names it, then the
    staged package copies it names."""
    try:
        if not os.path.samestat(os.fstat(fd), os.stat(path)):
            return  # a newer transaction's journal: not ours to delete
    except FileNotFoundError:
        return
    dbpath = os.path.dirname(path)
    state = read_journal(dbpath)
    os.unlink(path)
    if durable:
        fsync_dir(dbpath)
    staged = [s.file for s in state.steps if s.file is not None and is_staged(dbpath, s.file)
              ] if state is not None else []
    for file in staged:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(file)
    if staged:
        with contextlib.suppress(OSError):
            os.rmdir(staging_dir(dbpath))  # only when empty


@contextlib.contextmanager
def _held(dbpath: str) -> Iterator[int | None]:
    """The journal's lock: waits for its writer or its settler; yields the locked
    descriptor, or None when there is no journal."""
    try:
        fd = os.open(journal_path(dbpath), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield None
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def settle_finished(dbpath: str, paths: list[str], *, durable: bool = True) -> JournalState | None:
    """Under the database lock: settle a journal whose commit ended (its settler was
    killed or is still at work: this waits for its lock). In the boot that wrote it an
    ended journal has nothing pending; unless a ``synced`` line covers every step, the
    file systems under ``paths`` are flushed first, then it is deleted. Returns the
    journal left to repair (not ended, or ended in another boot with steps to redo),
    None when there is none left."""
    state = read_journal(dbpath)
    if state is None or not state.finished:
        return state  # a journal still written is not waited for: its writer may live on
    with _held(dbpath) as fd:
        if fd is None:
            return None
        state = read_journal(dbpath)
        if state is None or not state.finished:
            return state
        if durable and any(s.seq > state.synced for s in state.steps):
            sync_filesystems(paths)
        _discard(journal_path(dbpath), fd, durable)
    return None


def wait_settled(dbpath: str) -> None:
    """Wait until whoever settles the journal under ``dbpath`` is done (its lock): after a
    commit, the journal is then gone unless its settler was killed."""
    with _held(dbpath):
        pass


@functools.cache
def boot_id() -> str | None:
    """This boot's id (the kernel's random ``boot_id``); None where there is none."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


@functools.cache
def _syncfs() -> Any:
    """libc's ``syncfs`` (Linux), or None where the C library has none."""
    with contextlib.suppress(OSError, AttributeError):
        fn = ctypes.CDLL(None, use_errno=True).syncfs  # the C library the interpreter uses
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn
    return None


#: Mounts that hold no files a package installs (and autofs, which opening would mount).
_NOT_WRITTEN = frozenset({"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "autofs",
                          "debugfs", "tracefs", "securityfs", "pstore", "bpf", "mqueue",
                          "hugetlbfs", "configfs", "fusectl", "binfmt_misc", "efivarfs",
                          "rpc_pipefs", "nsfs"})


def _mount_points() -> list[str]:
    """The mount points of this process's namespace that may hold installed files
    (``/proc/self/mountinfo``: field 5 is the mount point, the type follows ``-``)."""
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split(" ")
            if "-" not in fields[6:]:
                continue
            fstype = fields[fields.index("-", 6) + 1]
            if fstype in _NOT_WRITTEN:
                continue
            # the kernel writes a space in a path as \040
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                                 fields[4]))
    return points


def sync_filesystems(paths: list[str]) -> None:
    """Flush every file system a commit may have written under ``paths`` (the root and
    the database path): one ``syncfs`` each, the mounts below them included; ``sync()``
    where ``syncfs`` or the mount table is missing."""
    fn = _syncfs()
    try:
        points = _mount_points() if fn is not None else None
    except OSError:
        points = None
    if fn is None or points is None:
        os.sync()
        return
    bases = [os.path.abspath(p) for p in paths]
    todo = list(bases)
    for point in points:
        if any(point.startswith(b.rstrip("/") + "/") for b in bases):
            todo.append(point)
    seen: set[int] = set()
    for path in todo:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue  # gone, or a mount we may not open: nothing of ours to flush there
        try:
            dev = os.fstat(fd).st_dev
            if dev in seen:
                continue
            seen.add(dev)
            if fn(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), path)
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
    dropped: set[int] = set()
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
            boot = rec.get("boot")
            state.boot = boot if isinstance(boot, str) else None
        elif kind in ("intent", "plan"):
            step = Step(int(rec["n"]), str(rec["action"]), str(rec["name"]), rec.get("old"),
                        rec.get("new"), rec.get("file"), int(rec.get("reason") or 0),
                        list(rec.get("validation") or []), started=kind == "intent")
            steps[step.seq] = step
            state.steps.append(step)
        elif kind in ("start", "done"):
            s = steps.get(int(rec.get("n", -1)))
            if s is not None:
                s.started = True
                s.done = s.done or kind == "done"
        elif kind == "synced":
            state.synced = max(state.synced, int(rec.get("n") or 0))
        elif kind == "drop":
            dropped.add(int(rec.get("n", -1)))
        elif kind == "end":
            state.ended = True
        elif kind == "flush-failed":
            state.flush_failed = True
    if dropped:
        state.steps = [s for s in state.steps if s.seq not in dropped]
    return state


def discard_journal(dbpath: str) -> None:
    """Delete the journal once its transaction is repaired, with the staged copies it named
    (under its lock, as every discard: never a journal someone still settles)."""
    with _held(dbpath) as fd:
        if fd is not None:
            _discard(journal_path(dbpath), fd, True)


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
