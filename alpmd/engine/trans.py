"""The transaction: init → targets → prepare → download → commit → release.

libalpm's ``alpm_trans_*`` as one object per handle. The resolver decides what
changes (:mod:`resolve`); the commit engineer's modules do the file-system work
(:mod:`extract`, :mod:`remove`, :mod:`conflict`, :mod:`scriptlet`, :mod:`hooks`,
:mod:`diskspace`); this module orders the steps, emits the events, writes
pacman.log and the local database, and keeps the commit journal
(:mod:`journal`) so that a commit killed at any point can be repaired by
:meth:`Transaction.recover`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import re
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from alpmd import TYPE_CHECKING
from alpmd.engine import (
    conflict,
    extract,
    hooks,
    remove,
    resolve,
    scriptlet,
)
from alpmd.engine.archive import load_package_file, load_package_files
from alpmd.engine.config import SigCheck, SigLevel
from alpmd.engine.db.sync import SyncDatabase
from alpmd.engine.errors import AlpmError, ErrorCode, from_os_error, system_error
from alpmd.engine.events import (
    CorruptedPackage,
    DatabaseWrite,
    DiskSpace,
    EventCallback,
    FileConflicts,
    Integrity,
    KeyringCheck,
    LoadPackages,
    Operation,
    PackageOperation,
    Progress,
    ProgressCallback,
    ProgressKind,
    QuestionCallback,
    TransactionStep,
    TransFlag,
    Warning_,
    answer,
)
from alpmd.engine.formats.desc import Reason
from alpmd.engine.formats.files import FileList
from alpmd.engine.handle import Handle
from alpmd.engine.journal import (
    Ended,
    FinalFlush,
    Journal,
    JournalState,
    Step,
    discard_journal,
    read_journal,
    settle_finished,
    staging_dir,
    staging_prefix,
    sweep_staging,
    sync_filesystems,
)
from alpmd.engine.ldconfig import run_ldconfig
from alpmd.engine.package import Origin, Package, Part
from alpmd.engine.version import vercmp

if TYPE_CHECKING:
    import asyncio  # only downloads use it; a -U of local files never imports it
    from typing import Any

__all__ = ["RecoveryReport", "TransState", "Transaction"]


class TransState(enum.Enum):
    """Where a transaction is (libalpm's ``alpm_transstate_t``, plus DOWNLOADING)."""

    IDLE = "idle"
    INITIALIZED = "initialized"
    PREPARED = "prepared"
    DOWNLOADING = "downloading"
    COMMITTING = "committing"
    COMMITTED = "committed"
    INTERRUPTED = "interrupted"


#: A long commit flushes the file systems (one ``syncfs`` each) every this many seconds:
#: it bounds what a power cut makes repair redo (a kill loses nothing written).
SYNC_SECONDS = 5.0

_PROGRESS_KIND = {Operation.INSTALL: ProgressKind.ADD, Operation.UPGRADE: ProgressKind.UPGRADE,
                  Operation.DOWNGRADE: ProgressKind.DOWNGRADE,
                  Operation.REINSTALL: ProgressKind.REINSTALL,
                  Operation.REMOVE: ProgressKind.REMOVE}


class _Flush(threading.Thread):
    """One background ``syncfs`` of a batch (a thread of its own: no executor to import)."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(name="alpmd-syncfs")
        self.paths = paths
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            sync_filesystems(self.paths)
        except BaseException as exc:  # handed to the commit by result()
            self.error = exc

    def result(self) -> None:
        """Wait for the flush; what it raised is raised here."""
        self.join()
        if self.error is not None:
            raise self.error


def operation_for(new: Package, old: Package | None) -> Operation:
    """Install, upgrade, downgrade or reinstall, by version comparison as libalpm."""
    if old is None:
        return Operation.INSTALL
    cmp = vercmp(new.version, old.version)
    if cmp > 0:
        return Operation.UPGRADE
    if cmp < 0:
        return Operation.DOWNGRADE
    return Operation.REINSTALL


def _sha256(path: str) -> str:
    import hashlib  # not for -U of local files (OpenSSL's start-up)

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(eq=False, repr=False)
class RecoveryReport:
    """What :meth:`Transaction.recover` found and did."""

    #: The lock file left behind, if any (reported; removed only when asked to).
    stale_lock: str | None = None
    #: The journal that was found (``None``: nothing to repair).
    journal: JournalState | None = None
    #: Steps that were pending, and one line per repair action taken.
    pending: list[Step] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    #: Problems repair could not fix (the user must reinstall these packages).
    unresolved: list[str] = field(default_factory=list)
    repaired: bool = False

    @property
    def clean(self) -> bool:
        return self.journal is None and self.stale_lock is None


@dataclass(eq=False, repr=False)
class _Item:
    """One package to add, resolved to a file on disk."""

    planned: Package           # from the plan (sync database or file)
    pkg: Package | None = None  # loaded from the package file
    path: str | None = None
    validation: list[str] = field(default_factory=list)


class Transaction:
    """One transaction on a handle; see the module documentation for the steps."""

    def __init__(self, handle: Handle, flags: TransFlag = TransFlag.NONE, *,
                 event: EventCallback | None = None, progress: ProgressCallback | None = None,
                 question: QuestionCallback | None = None) -> None:
        if handle.trans is not None:
            raise AlpmError(ErrorCode.TRANS_NOT_NULL)
        self.handle = handle
        self.flags = flags
        self.event_cb = event
        self.progress_cb = progress
        self.question_cb = question
        self.state = TransState.INITIALIZED
        #: "add" (-S/-U) or "remove" (-R), fixed by the first target.
        self.kind: str | None = None
        self.sync_targets: list[str] = []
        self.files: list[Package] = []
        self._file_names: set[str] = set()
        self.remove_targets: list[str] = []
        self.sysupgrade_level = 0
        self.plan: resolve.Plan | None = None
        self.paths: dict[str, str] = {}
        self._interrupted = False
        self._journal: Journal | None = None
        self._locked_here = False
        #: paths moving to another package of this transaction: their old owner leaves them
        self._skip_remove: set[str] = set()
        #: staged copies of package files passed by descriptor (see add_fd)
        self._staged: list[str] = []
        #: packages whose step of the commit finished, in order (what really changed)
        self.completed: list[str] = []
        #: the package whose step is under way
        self._current: str | None = None
        #: When the last flush of the file systems started (or the plan was flushed).
        self._flushed_at = 0.0
        #: The batch flush running in the background: the last step it covers, and it.
        self._flushing: tuple[int, _Flush] | None = None
        #: Who makes a finished commit durable (its last flush and the journal's deletion):
        #: the commit itself unless the front end hands it on (``alpm``: a process, the
        #: daemon: a thread), so that it need not wait for the disk.
        self.final_flush = FinalFlush.WAIT
        #: The ended journal waiting to be handed off when the lock is released.
        self._ended: Ended | None = None
        handle.trans = self

    # -- helpers --------------------------------------------------------------------

    def _event(self, ev: Any) -> None:
        if self.event_cb is not None:
            self.event_cb(ev)

    def _progress(self, kind: ProgressKind, name: str, percent: int, total: int,
                  current: int) -> None:
        if self.progress_cb is not None:
            self.progress_cb(Progress(kind, name, percent, total, current))

    def _need(self, *states: TransState) -> None:
        if self.state in states:
            return
        if self.state is TransState.IDLE:
            raise AlpmError(ErrorCode.TRANS_NULL)
        if TransState.PREPARED in states:
            raise AlpmError(ErrorCode.TRANS_NOT_PREPARED)
        raise AlpmError(ErrorCode.TRANS_NOT_INITIALIZED,
                        f"transaction is {self.state.value}, not {states[0].value}")

    def _set_kind(self, kind: str) -> None:
        self._need(TransState.INITIALIZED)
        if self.kind is not None and self.kind != kind:
            raise AlpmError(ErrorCode.TRANS_TYPE)
        self.kind = kind

    # -- targets --------------------------------------------------------------------

    def add_sync_target(self, target: str) -> None:
        """A package, ``repo/package``, group or provision to install from the repositories."""
        self._set_kind("add")
        if target in self.sync_targets:
            raise AlpmError(ErrorCode.TRANS_DUP_TARGET, f"duplicate target: {target}")
        self.sync_targets.append(target)

    def add_file(self, path: str) -> None:
        """A package file to install (``-U``); read now so a bad file fails here.

        A path that names a descriptor (``/proc/PID/fd/N``, ``/dev/fd/N``) is
        staged as :meth:`add_fd` does: it would not outlive this process.
        """
        self._set_kind("add")
        if _names_a_descriptor(path):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise AlpmError(ErrorCode.PKG_OPEN, f"could not open {path}: {exc.strerror}",
                                path=path) from exc
            try:
                self.add_fd(fd, regular_only=False)
            finally:
                os.close(fd)
            return
        self._add_loaded(load_package_file(path, full=True))

    def add_files(self, paths: Sequence[str], *, workers: int = 1) -> None:
        """Several package files (``-U``), in order, as :meth:`add_file` each.

        With ``workers`` > 1 forked processes share the reading
        (:func:`~alpmd.engine.archive.load_package_files`). The first file that
        fails, in order, raises its error with ``details["target_index"]``, its
        place in ``paths``.
        """
        self._set_kind("add")
        if any(_names_a_descriptor(p) for p in paths):
            workers = 1  # staged one by one below
        loaded = load_package_files([p for p in paths if not _names_a_descriptor(p)],
                                    workers=workers)
        for i, path in enumerate(paths):
            try:
                if _names_a_descriptor(path):
                    self.add_file(path)
                else:
                    self._add_loaded(next(loaded))
            except AlpmError as exc:
                exc.details.setdefault("target_index", i)
                loaded.close()
                raise

    def add_fd(self, fd: int, *, regular_only: bool = True) -> None:
        """A package file passed as an open descriptor (a client's, a pipe).

        Its bytes are copied through the descriptor itself (never reopened by
        path) into a staging file under the database directory
        (:func:`~alpmd.engine.journal.staging_dir`): what is checked is what is
        installed, and the journal names a file that outlives the descriptor.
        ``regular_only`` refuses anything but a readable regular file.
        """
        self._set_kind("add")
        path = _stage(self.handle, fd, regular_only=regular_only)
        self._staged.append(path)
        try:
            self._add_loaded(load_package_file(path, full=True))
        except BaseException:
            self._staged.remove(path)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise

    def _add_loaded(self, pkg: Package) -> None:
        if pkg.name in self._file_names:  # a set: -U of many files stays linear
            raise AlpmError(ErrorCode.TRANS_DUP_TARGET,
                            f"duplicate target: {pkg.name}", target=pkg.name)
        self._file_names.add(pkg.name)
        self.files.append(pkg)

    def add_remove_target(self, name: str) -> None:
        self._set_kind("remove")
        if name in self.remove_targets:
            raise AlpmError(ErrorCode.TRANS_DUP_TARGET, f"duplicate target: {name}")
        self.remove_targets.append(name)

    def sysupgrade(self, allow_downgrade: bool = False) -> None:
        self._set_kind("add")
        self.sysupgrade_level = 2 if allow_downgrade else 1

    # -- prepare --------------------------------------------------------------------

    def prepare(self) -> resolve.Plan:
        """Resolve the targets into a Plan (dependencies, conflicts, replaces)."""
        self._need(TransState.INITIALIZED)
        if self.kind == "remove":
            plan = resolve.resolve_remove(self.handle, self.remove_targets, flags=self.flags,
                                          question=self.question_cb, event=self.event_cb)
        else:
            plan = resolve.resolve_sync(self.handle, self.sync_targets, files=self.files,
                                        flags=self.flags, sysupgrade=self.sysupgrade_level,
                                        question=self.question_cb, event=self.event_cb)
        for pkg in plan.add:
            check_identity(pkg)
        self.plan = plan
        self.state = TransState.PREPARED
        return plan

    # -- download -------------------------------------------------------------------

    def _to_fetch(self) -> list[Package]:
        wanted = [pkg for pkg in (self.plan.add if self.plan is not None else [])
                  if pkg.origin is Origin.SYNCDB and pkg.name not in self.paths]
        if not wanted:
            return []
        # Imported only when a package may need fetching: the HTTP client costs a
        # few hundred milliseconds of start-up that a removal or -U of files never uses.
        from alpmd.engine import download

        need = []
        for pkg in wanted:
            cached = download.find_cached(self.handle, pkg)
            if cached is not None:
                self.paths[pkg.name] = cached
            else:
                need.append(pkg)
        return need

    async def download(self, *, progress: Any = None, cancel: asyncio.Event | None = None) -> None:
        """Fetch the packages of the plan that are not in a cache directory (no lock held)."""
        self._need(TransState.PREPARED)
        from alpmd.engine import download

        need = self._to_fetch()
        if not need:
            return
        self.state = TransState.DOWNLOADING
        try:
            got = await download.fetch_packages(self.handle, need, progress=progress,
                                                event=self.event_cb, cancel=cancel)
            self.paths.update(got)
        finally:
            self.state = (TransState.INTERRUPTED if self._interrupted
                          else TransState.PREPARED)

    # -- commit ---------------------------------------------------------------------

    def commit(self) -> None:
        """Do it: load and check the packages, then change the system package by package."""
        self._need(TransState.PREPARED)
        plan = self.plan
        assert plan is not None
        if self.kind != "remove" and self._to_fetch():
            import asyncio

            asyncio.run(self.download())
        if self.flags & TransFlag.DOWNLOADONLY:
            self.state = TransState.COMMITTED
            return
        self.state = TransState.COMMITTING
        if not self.flags & TransFlag.NOLOCK:
            self.handle.lock()
            self._locked_here = True
        ok = False
        started = False
        items: list[_Item] = []
        info: hooks.TransactionInfo | None = None
        try:
            # An ended journal whose last flush is not done yet is settled here (after
            # waiting for its settler); any other stops the commit.
            leftover = settle_finished(self.handle.dbpath, _written(self.handle),
                                       durable=_durable(self.handle))
            if leftover is not None:
                raise AlpmError(ErrorCode.TRANS_ABORT,
                                f"an interrupted transaction left {leftover.path}; "
                                "repair it first (alpm --repair)", journal=leftover.path)
            items = self._load(plan.add) if plan.add else []
            if plan.add:
                self._check_files(items, plan.remove)
            info = self._trans_info(items, plan.remove)
            self._run_hooks("PreTransaction", info)
            self.handle.logaction("ALPM", "transaction started")
            started = True
            self._event(TransactionStep())
            self._journal = Journal(self.handle.dbpath, durable=_durable(self.handle))
            self._journal.begin(self.flags.value)
            seqs = self._announce(plan.remove, items)
            total = len(plan.remove) + len(items)
            n = 0
            with self.handle.localdb.deferred_sync():
                for old in plan.remove:
                    n += 1
                    self._check_interrupt()
                    self._remove_one(old, seqs[n - 1], n, total, replaced=bool(plan.add))
                    self._batch_done(seqs[n - 1])
                for item in items:
                    n += 1
                    self._check_interrupt()
                    self._add_one(item, seqs[n - 1], n, total)
                    self._batch_done(seqs[n - 1])
                self._end_journal(self.final_flush)
            run_ldconfig(self.handle, event=self.event_cb)
            self._event(TransactionStep(done=True))
            ok = True
        except BaseException as exc:
            left: str | None = None
            if self._journal is not None:
                # A step failed cleanly or we were interrupted between steps: the
                # journal says which; keep it only if a step is left half done.
                state = read_journal(self.handle.dbpath)
                if state is not None and not state.pending:
                    with contextlib.suppress(OSError):  # the journal stays if this fails
                        # waited for: steps never begun must not be redone after a reboot
                        self._end_journal(FinalFlush.WAIT)
                if self._journal is not None:
                    with contextlib.suppress(OSError):  # a full disk: repair redoes more
                        self._collect_flush(wait=True)
                        self._journal.abandon(_written(self.handle))
                    self._journal.close()
                    left = self._journal.path
                self._journal = None
            if started:
                self.handle.logaction("ALPM", "transaction interrupted" if self._interrupted
                                      else "transaction failed")
            self.state = TransState.INTERRUPTED if self._interrupted else TransState.PREPARED
            named = system_error(exc)
            if named is None and isinstance(exc, AlpmError):
                named = exc
            if named is None:
                raise
            self._tell_the_truth(named, left)
            if named is exc:
                raise
            raise named from exc
        finally:
            self._stop_flusher()
            if self._locked_here:
                self.handle.unlock()
                self._locked_here = False
            if self._ended is not None:
                ended, self._ended = self._ended, None
                ended.hand_off(self.final_flush)
        if ok:
            self.handle.logaction("ALPM", "transaction completed")
            self.state = TransState.COMMITTED
            self._run_hooks("PostTransaction", info)

    def _announce(self, removing: Sequence[Package], items: list[_Item]) -> list[int]:
        """Write every step into the journal before any starts (one flush for all)."""
        assert self._journal is not None
        seqs = [self._journal.plan("remove", old.name, old=old.version) for old in removing]
        gone = {old.name for old in removing}
        for item in items:
            assert item.pkg is not None
            new = item.pkg
            old = None if new.name in gone else self.handle.localdb.get(new.name)
            seqs.append(self._journal.plan(
                "add", new.name, old=old.version if old else None, new=new.version,
                file=item.path, reason=int(self._reason(new, old)),
                validation=item.validation))
        self._journal.flush()
        self._flushed_at = time.monotonic()
        return seqs

    def _batch_done(self, seq: int) -> None:
        """After a step: flush the file systems once the last flush is old enough.

        The flush runs in a thread while the next steps go on (at most one at a
        time); its ``synced`` line is written once it returned. It only bounds what
        a power cut makes repair redo, so it goes by time, not by steps: a flush
        stalls file creation on a journaled disk (ext4), and a short commit makes
        none before its last (see :meth:`_end_journal`).
        """
        assert self._journal is not None
        self._collect_flush(wait=False)
        if time.monotonic() - self._flushed_at < SYNC_SECONDS or self._flushing is not None:
            return
        self._flushed_at = time.monotonic()
        if not self._journal.durable:
            self._journal.synced(seq)
            return
        running = _Flush(_written(self.handle))
        running.start()
        self._flushing = (seq, running)

    def _collect_flush(self, *, wait: bool) -> None:
        """Record the background flush once it is over (``wait``: wait for it)."""
        if self._flushing is None:
            return
        seq, running = self._flushing
        if not wait and running.is_alive():
            return
        self._flushing = None
        assert self._journal is not None
        try:
            running.result()  # a failed syncfs fails the commit here
        except OSError:
            self._journal.flush_failed()
            raise
        self._journal.synced(seq)

    def _stop_flusher(self) -> None:
        if self._flushing is not None:
            self._flushing[1].join()
        self._flushing = None

    def _end_journal(self, how: FinalFlush) -> None:
        """Every step is done: end the journal. Its last flush and deletion
        (:class:`~alpmd.engine.journal.Ended`) are done here with ``WAIT``, else handed
        off once the database lock is released (a settling process must not inherit
        it). A flush still running is waited for first (no thread may run at a fork)."""
        assert self._journal is not None
        self._collect_flush(wait=True)
        journal, self._journal = self._journal, None
        ended = journal.end(_written(self.handle))
        if ended is not None and how is FinalFlush.WAIT:
            ended.settle()
        else:
            self._ended = ended

    def _tell_the_truth(self, exc: AlpmError, journal: str | None) -> None:
        """Say in ``exc`` what the failed commit did change: the packages whose step
        finished (``completed``), the one left half done (``unfinished``) and the
        journal that repair (``alpm --repair``) will finish from."""
        exc.details.setdefault("completed", list(self.completed))
        exc.details.setdefault("unfinished", self._current if journal is not None else None)
        if journal is not None:
            exc.details.setdefault("journal", journal)
            if "alpm --repair" not in exc.message:
                exc.message += (f"; {self._current} was left unfinished (run 'alpm --repair' "
                                "once the cause is fixed)") if self._current else \
                    "; run 'alpm --repair' once the cause is fixed"
                exc.args = (exc.message,)

    def _check_interrupt(self) -> None:
        if self._interrupted:
            raise AlpmError(ErrorCode.CANCELLED, "transaction interrupted")

    # -- commit: loading and checks --------------------------------------------------

    def _load(self, add: Sequence[Package]) -> list[_Item]:
        """Find every package file, check integrity and signatures, read the files."""
        items = []
        for pkg in add:
            if pkg.origin is Origin.FILE:
                items.append(_Item(pkg, pkg, pkg.path))
            else:
                path = self.paths.get(pkg.name)
                if path is None:
                    raise AlpmError(ErrorCode.PKG_NOT_FOUND,
                                    f"{pkg.name}-{pkg.version}: package file not retrieved",
                                    target=pkg.name)
                items.append(_Item(pkg, None, path))
        total = len(items)
        self._event(KeyringCheck())
        self._event(KeyringCheck(done=True))
        self._event(Integrity())
        for i, item in enumerate(items, 1):
            self._progress(ProgressKind.INTEGRITY, item.planned.name, 100 * (i - 1) // total,
                           total, i)
            item.validation = self._validate(item)
        self._progress(ProgressKind.INTEGRITY, "", 100, total, total)
        self._event(Integrity(done=True))
        self._event(LoadPackages())
        for i, item in enumerate(items, 1):
            self._progress(ProgressKind.LOAD, item.planned.name, 100 * (i - 1) // total,
                           total, i)
            if item.pkg is None:
                assert item.path is not None
                loaded = load_package_file(item.path, full=True)
                if loaded.name != item.planned.name or loaded.version != item.planned.version:
                    raise AlpmError(ErrorCode.PKG_INVALID,
                                    f"{item.path}: package {loaded.name}-{loaded.version} "
                                    f"does not match {item.planned.name}-"
                                    f"{item.planned.version}", target=item.planned.name)
                item.pkg = loaded
        self._progress(ProgressKind.LOAD, "", 100, total, total)
        self._event(LoadPackages(done=True))
        return items

    def _validate(self, item: _Item) -> list[str]:
        """Checksums and signature as libalpm's ``_alpm_pkg_validate_internal``."""
        pkg = item.planned
        assert item.path is not None
        if pkg.origin is Origin.FILE:
            level = self.handle.options.local_file_siglevel
            has_sig = os.path.exists(item.path + ".sig")
        else:
            repo = pkg.db.repo if isinstance(pkg.db, SyncDatabase) else None
            level = repo.siglevel if repo is not None else self.handle.options.siglevel
            has_sig = bool(pkg.base64_sig) or os.path.exists(item.path + ".sig")
        check_sig = level.package.check is not SigCheck.NEVER
        validation: list[str] = []
        if pkg.origin is Origin.SYNCDB and not (has_sig and check_sig):
            why = None
            if pkg.csize is not None and os.path.getsize(item.path) != pkg.csize:
                why = "invalid or corrupted package (checksum)"
            elif pkg.sha256sum:
                if _sha256(item.path) != pkg.sha256sum:
                    why = "invalid or corrupted package (checksum)"
                validation.append("sha256")
            elif pkg.md5sum:
                import hashlib

                h = hashlib.md5()
                with open(item.path, "rb") as f:
                    h.update(f.read())
                if h.hexdigest() != pkg.md5sum:
                    why = "invalid or corrupted package (checksum)"
                validation.append("md5")
            if why is not None:
                q = CorruptedPackage(filepath=item.path, reason=why)
                if answer(self.question_cb, q):
                    with contextlib.suppress(OSError):
                        os.unlink(item.path)
                    self.paths.pop(pkg.name, None)
                raise AlpmError(ErrorCode.PKG_INVALID_CHECKSUM,
                                f"{os.path.basename(item.path)} is invalid or corrupted "
                                "(checksum)", target=pkg.name, path=item.path)
        if check_sig and self._verify_signature(item, level, has_sig):
            validation.append("pgp")
        return validation or ["none"]

    def _verify_signature(self, item: _Item, level: SigLevel, has_sig: bool) -> bool:
        """True when a signature was checked and is good; errors as the level says."""
        assert item.path is not None
        from alpmd.engine import signing  # with the keyring's gpg: only when a check is due

        result = signing.verify_package(
            self.handle, item.path, item.planned if item.planned.origin is Origin.SYNCDB
            else None, level, question=self.question_cb)
        # Failures raise; a returned result is acceptable. "pgp" only if one was checked.
        return bool(result.checked and not result.missing)

    def _check_files(self, items: list[_Item], removing: Sequence[Package]) -> None:
        pkgs = [i.pkg for i in items if i.pkg is not None]
        if not self.flags & TransFlag.DBONLY:
            self._event(FileConflicts())
            found = conflict.find_file_conflicts(self.handle, pkgs, list(removing),
                                                 flags=self.flags,
                                                 skip_remove=self._skip_remove)
            self._event(FileConflicts(done=True))
            if found:
                raise AlpmError(ErrorCode.FILE_CONFLICTS, conflicts=found)
        if self.handle.options.checkspace:
            self._event(DiskSpace())
            from alpmd.engine import diskspace  # CheckSpace only

            diskspace.check_diskspace(self.handle, pkgs, list(removing))
            self._event(DiskSpace(done=True))

    def _trans_info(self, items: list[_Item], removing: Sequence[Package]
                    ) -> hooks.TransactionInfo | None:
        """hooks.TransactionInfo, computed before anything changes (old entries vanish)."""
        if self.flags & TransFlag.NOHOOKS:
            return None
        localdb = self.handle.localdb
        installed: list[Package] = []
        upgraded: list[tuple[Package, Package]] = []
        for item in items:
            assert item.pkg is not None
            old = localdb.get(item.pkg.name)
            if old is None:
                installed.append(item.pkg)
            else:
                upgraded.append((item.pkg, old))
        added = {i.planned.name for i in items}
        removed = [p for p in removing if p.name not in added]
        return hooks.TransactionInfo(installed=installed, upgraded=upgraded, removed=removed)

    def _run_hooks(self, when: str, info: hooks.TransactionInfo | None) -> None:
        if info is None:
            return
        hooks.run_hooks(self.handle, when, info, event=self.event_cb)

    # -- commit: one package ---------------------------------------------------------

    def _scriptlet(self, script: bytes | None, function: str, new: str | None,
                   old: str | None) -> None:
        if not script or self.flags & TransFlag.NOSCRIPTLET:
            return
        if f"{function}".encode() not in script:
            return
        scriptlet.run_scriptlet(self.handle, script, function, new, old, event=self.event_cb)

    def _remove_one(self, old: Package, seq: int, n: int, total: int, *, replaced: bool
                    ) -> None:
        assert self._journal is not None
        localdb = self.handle.localdb
        self._event(PackageOperation(operation=Operation.REMOVE, old=old))
        self._progress(ProgressKind.REMOVE, old.name, 0, total, n)
        self._current = old.name
        self._journal.start(seq)
        script = old.scriptlet if old.has_scriptlet else None
        self._scriptlet(script, "pre_remove", old.version, None)
        if not self.flags & TransFlag.DBONLY:
            remove.remove_package_files(self.handle, old, flags=self.flags,
                                        event=self.event_cb, skip=self._skip_remove)
        self.handle.logaction("ALPM", f"removed {old.name} ({old.version})")
        self._scriptlet(script, "post_remove", old.version, None)
        self._event(DatabaseWrite())
        localdb.remove(old.name)
        self._event(DatabaseWrite(done=True))
        self._journal.done(seq)
        self.completed.append(old.name)
        self._current = None
        self._progress(ProgressKind.REMOVE, old.name, 100, total, n)
        self._event(PackageOperation(done=True, operation=Operation.REMOVE, old=old))

    def _reason(self, pkg: Package, old: Package | None) -> Reason:
        reasons = self.plan.reason if self.plan is not None else {}
        if pkg.name in reasons:
            return Reason(reasons[pkg.name])
        if self.flags & TransFlag.ALLDEPS:
            return Reason.DEPEND
        if self.flags & TransFlag.ALLEXPLICIT:
            return Reason.EXPLICIT
        return old.reason if old is not None else Reason.EXPLICIT

    def _add_one(self, item: _Item, seq: int, n: int, total: int) -> None:
        assert self._journal is not None and item.pkg is not None
        new = item.pkg
        localdb = self.handle.localdb
        old = localdb.get(new.name)
        op = operation_for(new, old)
        kind = _PROGRESS_KIND[op]
        reason = self._reason(new, old)
        self._event(PackageOperation(operation=op, new=new, old=old))
        self._progress(kind, new.name, 0, total, n)
        self._current = new.name
        self._journal.start(seq)
        script = new.scriptlet
        oldv = old.version if old is not None else None
        if old is None:
            self._scriptlet(script, "pre_install", new.version, None)
        else:
            self._scriptlet(script, "pre_upgrade", new.version, oldv)
        db_members: dict[str, bytes] = {}
        filelist = self._install_files(new, old, n, total, db_members)
        self._record(new, filelist, reason, item.validation, db_members.get(".CHANGELOG"))
        if op is Operation.INSTALL:
            line = f"installed {new.name} ({new.version})"
        elif op is Operation.REINSTALL:
            line = f"reinstalled {new.name} ({new.version})"
        else:
            line = f"{'upgraded' if op is Operation.UPGRADE else 'downgraded'} {new.name} " \
                   f"({oldv} -> {new.version})"
        self.handle.logaction("ALPM", line)
        if old is None:
            self._scriptlet(script, "post_install", new.version, None)
        else:
            self._scriptlet(script, "post_upgrade", new.version, oldv)
        self._journal.done(seq)
        self.completed.append(new.name)
        self._current = None
        self._progress(kind, new.name, 100, total, n)
        self._event(PackageOperation(done=True, operation=op, new=new, old=old))

    def _install_files(self, new: Package, old: Package | None, n: int, total: int,
                       db_members: dict[str, bytes]) -> FileList:
        if self.flags & TransFlag.DBONLY:
            return FileList(list(new.filelist.files), list(new.filelist.backup))
        if old is not None:
            remove.remove_package_files(self.handle, old, new=new, flags=self.flags,
                                        event=self.event_cb, skip=self._skip_remove)

        # The reports go straight to the callback: one object per entry, not two.
        result: FileList = extract.extract_package(self.handle, new, old, flags=self.flags,
                                                   event=self.event_cb,
                                                   progress=self.progress_cb,
                                                   db_members=db_members, position=(total, n))
        return result

    def _record(self, new: Package, filelist: FileList, reason: Reason,
                validation: list[str], changelog: bytes | None) -> None:
        meta = dataclasses.replace(new.meta, installdate=int(time.time()), reason=reason,
                                   validation=list(validation))
        self._event(DatabaseWrite())
        self.handle.localdb.add(meta, filelist, mtree=new.mtree,
                                scriptlet=new.scriptlet if new.has_scriptlet else None,
                                changelog=changelog)
        self._event(DatabaseWrite(done=True))

    # -- interrupt / release ----------------------------------------------------------

    def interrupt(self) -> None:
        """Stop at the next package boundary (safe: the journal marks where)."""
        self._interrupted = True
        if self.state is not TransState.COMMITTING:
            self.state = TransState.INTERRUPTED

    def release(self) -> None:
        """End the transaction: the lock (if still ours) goes, the handle is free again."""
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        if self._locked_here:
            self.handle.unlock()
            self._locked_here = False
        self._drop_staged()
        if self.handle.trans is self:
            self.handle.trans = None
        self.state = TransState.IDLE

    def _drop_staged(self) -> None:
        """Delete the staged copies, except those a journal left for repair names."""
        if not self._staged:
            return
        state = read_journal(self.handle.dbpath)
        keep = {s.file for s in state.steps} if state is not None else set()
        for path in self._staged:
            if path not in keep:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))  # only when empty
        self._staged = []

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    # -- recovery ---------------------------------------------------------------------

    @staticmethod
    def recover(handle: Handle, *, repair: bool = True, remove_stale_lock: bool = False,
                event: EventCallback | None = None) -> RecoveryReport:
        """Report (and with ``repair``, fix) what a killed transaction left behind.

        A lock file is reported; it is deleted only with ``remove_stale_lock``,
        only when no process holds it open and the process that wrote the journal
        is gone (PID and start time: a zombie or a reused PID is gone). Pending steps are
        rolled forward from the package file the journal names, or rolled back
        to the recorded old version when that file is gone. A journal whose commit
        ended names nothing to repair (in its boot, or once flushed): it is not
        reported, and with ``repair`` it is flushed and deleted if the lock is free.
        """
        report = RecoveryReport()
        if os.path.exists(handle.lockfile) and not handle.locked:
            report.stale_lock = handle.lockfile
        state = read_journal(handle.dbpath)
        named = {s.file for s in state.steps if s.file} if state is not None else set()
        # A commit that ended, its last flush perhaps still under way: nothing to repair.
        finished = state is not None and state.finished
        report.journal = None if finished else state
        if repair:
            swept = sweep_staging(handle.dbpath, keep=named)
            if swept:
                report.actions.append(f"removed {len(swept)} staged package file"
                                      f"{'s' if len(swept) != 1 else ''} of dead processes")
        if report.journal is None:
            if report.stale_lock is not None and repair and remove_stale_lock:
                holder = handle.lock_holder()
                if holder.startswith("pid "):
                    report.unresolved.append(f"database is locked by {holder}")
                    return report
                os.unlink(report.stale_lock)
                report.actions.append(f"removed stale lock {report.stale_lock}")
                report.repaired = True
            if finished and repair:
                _settle_finished(handle)
            return report
        assert state is not None
        report.pending = state.pending
        if not repair:
            return report
        if state.pid is not None and state.pid != os.getpid() and state.writer_alive():
            report.unresolved.append(f"the transaction of process {state.pid} is still running")
            return report
        locked_here = False
        if not handle.locked:
            if report.stale_lock is not None:
                holder = handle.lock_holder()
                if holder.startswith("pid "):
                    report.unresolved.append(f"database is locked by {holder}")
                    return report
                if not remove_stale_lock:
                    report.unresolved.append(f"database is locked ({report.stale_lock}); "
                                             "remove the stale lock to repair")
                    return report
                os.unlink(report.stale_lock)
                report.actions.append(f"removed stale lock {report.stale_lock}")
            handle.lock()
            locked_here = True
        try:
            handle.localdb.invalidate()
            for step in report.pending:
                _repair_step(handle, step, report, event)
            handle.localdb.invalidate()
            discard_journal(handle.dbpath)
            handle.logaction("ALPM", "transaction repaired")
            report.repaired = not report.unresolved
        finally:
            if locked_here:
                handle.unlock()
        return report


#: pacman 7's package name: these characters, not starting with '-' or '.'.
_NAME_RE = re.compile(r"[A-Za-z0-9@_+][A-Za-z0-9@._+-]*")
#: ``[epoch:]pkgver-pkgrel``: no '/', ':' or '-' inside pkgver, no whitespace, no leading '.'.
_VERSION_RE = re.compile(r"(?:[0-9]+:)?[^\s/:.-][^\s/:-]*-[^\s/:-]+")


def check_identity(pkg: Package) -> None:
    """Refuse a package whose name or version cannot name a database entry safely.

    ``local/<name>-<version>/`` is built from them: a ``/`` or a leading ``.``
    would put the entry elsewhere or hide it, and a version without its release
    cannot be split back. Checked when the transaction is prepared, before any
    file is written (the package readers check pacman 7's rules too; this is
    the last gate before the file system).
    """
    where = f"{os.path.basename(pkg.path)}: " if pkg.origin is Origin.FILE and pkg.path else ""
    if _NAME_RE.fullmatch(pkg.name) is None:
        raise AlpmError(ErrorCode.PKG_INVALID, f"{where}invalid package name '{pkg.name}'",
                        target=pkg.name)
    if _VERSION_RE.fullmatch(pkg.version) is None:
        raise AlpmError(ErrorCode.PKG_INVALID,
                        f"{where}invalid version '{pkg.version}' of package '{pkg.name}'",
                        target=pkg.name, version=pkg.version)


def _names_a_descriptor(path: str) -> bool:
    """A path that is an open descriptor of some process, gone when that process ends."""
    return path.startswith(("/proc/", "/dev/fd/")) or path == "/dev/stdin"


def _stage(handle: Handle, fd: int, *, regular_only: bool) -> str:
    """Copy what ``fd`` reads into a new file of the staging directory; its path."""
    try:
        st = os.fstat(fd)
    except OSError as exc:
        raise AlpmError(ErrorCode.PKG_OPEN, f"bad package descriptor: {exc.strerror}") from exc
    regular = stat.S_ISREG(st.st_mode)
    if regular_only and not regular:
        raise AlpmError(ErrorCode.PKG_OPEN, "package descriptor is not a regular file")
    import tempfile

    durable = _durable(handle)
    where = staging_dir(handle.dbpath)
    try:
        os.makedirs(where, mode=0o700, exist_ok=True)
        out, path = tempfile.mkstemp(prefix=staging_prefix(), suffix=".pkg", dir=where)
    except PermissionError:
        # not ours to write (a user's -Up <(...)): nothing will be committed from it
        where = tempfile.mkdtemp(prefix="alpmd-staging-")
        durable = False
        out, path = tempfile.mkstemp(prefix="pkg-", suffix=".pkg", dir=where)
    except OSError as exc:
        raise from_os_error(exc, f"could not create a file in {where}") from exc
    try:
        offset = 0
        while True:
            try:
                chunk = os.pread(fd, 1 << 20, offset) if regular else os.read(fd, 1 << 20)
            except OSError as exc:
                raise AlpmError(ErrorCode.PKG_OPEN, f"could not read package descriptor: "
                                f"{exc.strerror}") from exc
            if not chunk:
                break
            offset += len(chunk)
            view = memoryview(chunk)
            try:
                while view:
                    view = view[os.write(out, view):]
            except OSError as exc:
                raise from_os_error(exc, f"could not write {path}") from exc
        if durable:
            try:
                os.fsync(out)
            except OSError as exc:
                raise from_os_error(exc, f"could not write {path}") from exc
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(out)
    return path


def _settle_finished(handle: Handle) -> None:
    """Settle an ended journal when the database lock is free (a holder settles it itself
    when it commits)."""
    locked_here = False
    if not handle.locked:
        if os.path.exists(handle.lockfile):
            return
        try:
            handle.lock()
        except AlpmError:
            return
        locked_here = True
    try:
        settle_finished(handle.dbpath, _written(handle), durable=_durable(handle))
    finally:
        if locked_here:
            handle.unlock()


def _written(handle: Handle) -> list[str]:
    """Where a commit writes: the root (mounts below it included) and the database."""
    return [handle.options.root, handle.dbpath]


def _durable(handle: Handle) -> bool:
    return handle.localdb.durable


def _cached_file(handle: Handle, name: str, version: str) -> str | None:
    """A package file for ``name-version`` in a cache directory (for roll back)."""
    import glob

    for d in handle.options.cachedirs:
        for path in sorted(glob.glob(os.path.join(glob.escape(d), f"{glob.escape(name)}-"
                                                  f"{glob.escape(version)}-*.pkg.tar*"))):
            if not path.endswith(".sig"):
                return path
    return None


def _repair_step(handle: Handle, step: Step, report: RecoveryReport,
                 event: EventCallback | None) -> None:
    localdb = handle.localdb
    versions = localdb.stored_versions(step.name)
    if len(versions) > 1:
        # A replace was cut between writing the new entry and removing the old one.
        keep = step.new if step.new in versions else versions[0]
        for v in versions:
            if v != keep:
                localdb.remove_stored(step.name, v)
        localdb.invalidate()
        report.actions.append(f"{step.name}: dropped duplicate database entries, kept {keep}")
    flags = TransFlag(0)
    if step.action == "remove":
        cur = localdb.get(step.name)
        if cur is None:
            report.actions.append(f"{step.name}: removal had completed")
            return
        remove.remove_package_files(handle, cur, flags=flags, event=event)
        localdb.remove(step.name)
        handle.logaction("ALPM", f"removed {step.name} ({cur.version}) (repair)")
        report.actions.append(f"{step.name}: finished removal of {cur.version}")
        return
    # add: roll forward from the package file when it is there.
    target_version = step.new
    path = step.file if step.file and os.path.exists(step.file) else None
    if path is None and step.old is not None:
        target_version = step.old
        path = _cached_file(handle, step.name, step.old)
        if path is None:
            report.unresolved.append(f"{step.name}: neither {step.new} nor {step.old} is "
                                     f"available as a package file; reinstall {step.name}")
            return
    if path is None:
        report.unresolved.append(f"{step.name}: package file of {step.new} is gone; files of "
                                 "the interrupted installation may be left behind")
        return
    pkg = load_package_file(path, full=True)
    cur = localdb.get(step.name)
    if cur is not None and cur.version != pkg.version:
        with contextlib.suppress(AlpmError):
            remove.remove_package_files(handle, cur, new=pkg, flags=flags, event=event)
    db_members: dict[str, bytes] = {}
    files: FileList = extract.extract_package(handle, pkg, cur, flags=flags, event=event,
                                              progress=None, db_members=db_members)
    pkg.ensure(Part.ALL)
    reason = Reason(step.reason) if step.new == target_version else (
        cur.reason if cur is not None else Reason(step.reason))
    meta = dataclasses.replace(pkg.meta, installdate=int(time.time()), reason=reason,
                               validation=list(step.validation) or ["none"])
    localdb.add(meta, files, mtree=pkg.mtree, scriptlet=pkg.scriptlet if pkg.has_scriptlet
                else None, changelog=db_members.get(".CHANGELOG"))
    how = "rolled forward to" if target_version == step.new else "rolled back to"
    handle.logaction("ALPM", f"repaired {step.name} ({target_version})")
    report.actions.append(f"{step.name}: {how} {target_version}")
    if event is not None:
        event(Warning_(message=f"{step.name}: {how} {target_version}"))
