"""The transaction: init → targets → prepare → download → commit → release.

libalpm's ``alpm_trans_*`` as one object per handle. The resolver decides what
changes (:mod:`resolve`); the commit engineer's modules do the file-system work
(:mod:`extract`, :mod:`remove`, :mod:`conflict`, :mod:`scriptlet`, :mod:`hooks`,
:mod:`diskspace`); this module orders the steps, emits the events, writes
pacman.log and the local database, and keeps the commit journal
(:mod:`journal`) so that a commit killed at any point can be repaired by
:meth:`Transaction.recover`.

Modules of other engineers are looked up when used (:func:`_module`), so this
file works while they land one by one; a missing safety check is never skipped
silently (see :meth:`Transaction._verify_signature`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import glob
import hashlib
import importlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType, TracebackType
from typing import Any

from alpmd.engine.archive import load_package_file
from alpmd.engine.config import SigCheck, SigLevel
from alpmd.engine.errors import AlpmError, ErrorCode
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
from alpmd.engine.journal import Journal, JournalState, Step, discard_journal, read_journal
from alpmd.engine.ldconfig import run_ldconfig
from alpmd.engine.package import Origin, Package, Part

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


def _module(name: str) -> ModuleType | None:
    """Another engineer's engine module, or ``None`` while it has not landed."""
    full = f"alpmd.engine.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name == full:
            return None
        raise


def _require(name: str) -> ModuleType:
    mod = _module(name)
    if mod is None:
        raise AlpmError(ErrorCode.SYSTEM, f"engine module '{name}' is not available")
    return mod


_PROGRESS_KIND = {Operation.INSTALL: ProgressKind.ADD, Operation.UPGRADE: ProgressKind.UPGRADE,
                  Operation.DOWNGRADE: ProgressKind.DOWNGRADE,
                  Operation.REINSTALL: ProgressKind.REINSTALL,
                  Operation.REMOVE: ProgressKind.REMOVE}


def operation_for(new: Package, old: Package | None) -> Operation:
    """Install, upgrade, downgrade or reinstall, by version comparison as libalpm."""
    from alpmd.engine.version import vercmp

    if old is None:
        return Operation.INSTALL
    cmp = vercmp(new.version, old.version)
    if cmp > 0:
        return Operation.UPGRADE
    if cmp < 0:
        return Operation.DOWNGRADE
    return Operation.REINSTALL


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
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


@dataclass
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
        self.remove_targets: list[str] = []
        self.sysupgrade_level = 0
        self.plan: Any = None
        self.paths: dict[str, str] = {}
        self._interrupted = False
        self._journal: Journal | None = None
        self._locked_here = False
        #: paths moving to another package of this transaction: their old owner leaves them
        self._skip_remove: set[str] = set()
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
        """A package file to install (``-U``); read now so a bad file fails here."""
        self._set_kind("add")
        pkg = load_package_file(path, full=True)
        for other in self.files:
            if other.name == pkg.name:
                raise AlpmError(ErrorCode.TRANS_DUP_TARGET,
                                f"duplicate target: {pkg.name}", target=pkg.name)
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

    def prepare(self) -> Any:
        """Resolve the targets into a Plan (dependencies, conflicts, replaces)."""
        self._need(TransState.INITIALIZED)
        resolve = _require("resolve")
        if self.kind == "remove":
            plan = resolve.resolve_remove(self.handle, self.remove_targets, flags=self.flags,
                                          question=self.question_cb, event=self.event_cb)
        else:
            plan = resolve.resolve_sync(self.handle, self.sync_targets, files=self.files,
                                        flags=self.flags, sysupgrade=self.sysupgrade_level,
                                        question=self.question_cb, event=self.event_cb)
        self.plan = plan
        self.state = TransState.PREPARED
        return plan

    # -- download -------------------------------------------------------------------

    def _to_fetch(self) -> list[Package]:
        need = []
        download = _module("download")
        for pkg in self.plan.add if self.plan is not None else []:
            if pkg.origin is not Origin.SYNCDB or pkg.name in self.paths:
                continue
            cached = download.find_cached(self.handle, pkg) if download is not None else None
            if cached is not None:
                self.paths[pkg.name] = cached
            else:
                need.append(pkg)
        return need

    async def download(self, *, progress: Any = None, cancel: asyncio.Event | None = None) -> None:
        """Fetch the packages of the plan that are not in a cache directory (no lock held)."""
        self._need(TransState.PREPARED)
        need = self._to_fetch()
        if not need:
            return
        download = _require("download")
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
        if self.kind != "remove" and self._to_fetch():
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
        info: Any = None
        try:
            leftover = read_journal(self.handle.dbpath)
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
            total = len(plan.remove) + len(items)
            n = 0
            for old in plan.remove:
                n += 1
                self._check_interrupt()
                self._remove_one(old, n, total, replaced=bool(plan.add))
            for item in items:
                n += 1
                self._check_interrupt()
                self._add_one(item, n, total)
            self._journal.end()
            self._journal = None
            run_ldconfig(self.handle, event=self.event_cb)
            self._event(TransactionStep(done=True))
            ok = True
        except BaseException:
            if self._journal is not None:
                # A step failed cleanly or we were interrupted between steps: the
                # journal says which; keep it only if a step is left half done.
                state = read_journal(self.handle.dbpath)
                if state is not None and not state.pending:
                    self._journal.end()
                else:
                    self._journal.close()
                self._journal = None
            if started:
                self.handle.logaction("ALPM", "transaction interrupted" if self._interrupted
                                      else "transaction failed")
            self.state = TransState.INTERRUPTED if self._interrupted else TransState.PREPARED
            raise
        finally:
            if self._locked_here:
                self.handle.unlock()
                self._locked_here = False
        if ok:
            self.handle.logaction("ALPM", "transaction completed")
            self.state = TransState.COMMITTED
            self._run_hooks("PostTransaction", info)

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
            repo = getattr(pkg.db, "repo", None)
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
        signing = _module("signing")
        if signing is not None:
            result = signing.verify_package(
                self.handle, item.path, item.planned if item.planned.origin is Origin.SYNCDB
                else None, level, question=self.question_cb)
            # Failures raise; a returned result is acceptable. "pgp" only if one was checked.
            return bool(result.checked and not result.missing)
        # TODO(signing): signing.verify_package has not landed. Until it does, only
        # the levels that accept an unsigned package go through; a signature that
        # would have to be checked is refused, never accepted unchecked.
        if level.package.check is SigCheck.OPTIONAL and not has_sig:
            return False
        raise AlpmError(ErrorCode.SIG_MISSING,
                        f"{item.planned.name}: signature verification is not available",
                        target=item.planned.name)

    def _check_files(self, items: list[_Item], remove: Sequence[Package]) -> None:
        pkgs = [i.pkg for i in items if i.pkg is not None]
        if not self.flags & TransFlag.DBONLY:
            conflict = _require("conflict")
            self._event(FileConflicts())
            found = conflict.find_file_conflicts(self.handle, pkgs, list(remove),
                                                 flags=self.flags,
                                                 skip_remove=self._skip_remove)
            self._event(FileConflicts(done=True))
            if found:
                raise AlpmError(ErrorCode.FILE_CONFLICTS, conflicts=found)
        if self.handle.options.checkspace:
            diskspace = _module("diskspace")
            if diskspace is not None:
                self._event(DiskSpace())
                diskspace.check_diskspace(self.handle, pkgs, list(remove))
                self._event(DiskSpace(done=True))

    def _trans_info(self, items: list[_Item], remove: Sequence[Package]) -> Any:
        """hooks.TransactionInfo, computed before anything changes (old entries vanish)."""
        if self.flags & TransFlag.NOHOOKS:
            return None
        hooks = _module("hooks")
        if hooks is None:
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
        removed = [p for p in remove if p.name not in added]
        return hooks.TransactionInfo(installed=installed, upgraded=upgraded, removed=removed)

    def _run_hooks(self, when: str, info: Any) -> None:
        if info is None:
            return
        hooks = _require("hooks")
        hooks.run_hooks(self.handle, when, info, event=self.event_cb)

    # -- commit: one package ---------------------------------------------------------

    def _scriptlet(self, script: bytes | None, function: str, new: str | None,
                   old: str | None) -> None:
        if not script or self.flags & TransFlag.NOSCRIPTLET:
            return
        if f"{function}".encode() not in script:
            return
        scriptlet = _require("scriptlet")
        scriptlet.run_scriptlet(self.handle, script, function, new, old, event=self.event_cb)

    def _remove_one(self, old: Package, n: int, total: int, *, replaced: bool) -> None:
        assert self._journal is not None
        localdb = self.handle.localdb
        self._event(PackageOperation(operation=Operation.REMOVE, old=old))
        self._progress(ProgressKind.REMOVE, old.name, 0, total, n)
        seq = self._journal.intent("remove", old.name, old=old.version)
        script = old.scriptlet if old.has_scriptlet else None
        self._scriptlet(script, "pre_remove", old.version, None)
        if not self.flags & TransFlag.DBONLY:
            _require("remove").remove_package_files(self.handle, old, flags=self.flags,
                                                    event=self.event_cb,
                                                    skip=self._skip_remove)
        self.handle.logaction("ALPM", f"removed {old.name} ({old.version})")
        self._scriptlet(script, "post_remove", old.version, None)
        self._event(DatabaseWrite())
        localdb.remove(old.name)
        self._event(DatabaseWrite(done=True))
        self._journal.done(seq)
        self._progress(ProgressKind.REMOVE, old.name, 100, total, n)
        self._event(PackageOperation(done=True, operation=Operation.REMOVE, old=old))

    def _reason(self, pkg: Package, old: Package | None) -> Reason:
        reasons = getattr(self.plan, "reason", None) or {}
        if pkg.name in reasons:
            return Reason(reasons[pkg.name])
        if self.flags & TransFlag.ALLDEPS:
            return Reason.DEPEND
        if self.flags & TransFlag.ALLEXPLICIT:
            return Reason.EXPLICIT
        return old.reason if old is not None else Reason.EXPLICIT

    def _add_one(self, item: _Item, n: int, total: int) -> None:
        assert self._journal is not None and item.pkg is not None
        new = item.pkg
        localdb = self.handle.localdb
        old = localdb.get(new.name)
        op = operation_for(new, old)
        kind = _PROGRESS_KIND[op]
        reason = self._reason(new, old)
        self._event(PackageOperation(operation=op, new=new, old=old))
        self._progress(kind, new.name, 0, total, n)
        seq = self._journal.intent("add", new.name, old=old.version if old else None,
                                   new=new.version, file=item.path, reason=int(reason),
                                   validation=item.validation)
        script = new.scriptlet
        oldv = old.version if old is not None else None
        if old is None:
            self._scriptlet(script, "pre_install", new.version, None)
        else:
            self._scriptlet(script, "pre_upgrade", new.version, oldv)
        filelist = self._install_files(new, old, kind, n, total)
        self._record(new, filelist, reason, item.validation)
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
        self._progress(kind, new.name, 100, total, n)
        self._event(PackageOperation(done=True, operation=op, new=new, old=old))

    def _install_files(self, new: Package, old: Package | None, kind: ProgressKind, n: int,
                       total: int) -> FileList:
        if self.flags & TransFlag.DBONLY:
            return FileList(list(new.filelist.files), list(new.filelist.backup))
        if old is not None:
            _require("remove").remove_package_files(self.handle, old, new=new, flags=self.flags,
                                                    event=self.event_cb,
                                                    skip=self._skip_remove)
        extract = _require("extract")

        def progress(p: Progress) -> None:
            self._progress(kind, new.name, p.percent, total, n)

        result: FileList = extract.extract_package(self.handle, new, old, flags=self.flags,
                                                   event=self.event_cb, progress=progress)
        return result

    def _record(self, new: Package, filelist: FileList, reason: Reason,
                validation: list[str]) -> None:
        meta = dataclasses.replace(new.meta, installdate=int(time.time()), reason=reason,
                                   validation=list(validation))
        self._event(DatabaseWrite())
        self.handle.localdb.add(meta, filelist, mtree=new.mtree,
                                scriptlet=new.scriptlet if new.has_scriptlet else None)
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
        if self.handle.trans is self:
            self.handle.trans = None
        self.state = TransState.IDLE

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

        A lock file is reported; it is deleted only with ``remove_stale_lock`` and
        only when the process that wrote the journal is gone. Pending steps are
        rolled forward from the package file the journal names, or rolled back
        to the recorded old version when that file is gone.
        """
        report = RecoveryReport()
        if os.path.exists(handle.lockfile) and not handle.locked:
            report.stale_lock = handle.lockfile
        state = read_journal(handle.dbpath)
        report.journal = state
        if state is None:
            if report.stale_lock is not None and repair and remove_stale_lock:
                os.unlink(report.stale_lock)
                report.actions.append(f"removed stale lock {report.stale_lock}")
                report.repaired = True
            return report
        report.pending = state.pending
        if not repair:
            return report
        if state.pid is not None and state.pid != os.getpid() and _alive(state.pid):
            report.unresolved.append(f"the transaction of process {state.pid} is still running")
            return report
        locked_here = False
        if not handle.locked:
            if report.stale_lock is not None:
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


def _durable(handle: Handle) -> bool:
    backend = handle.localdb.backend
    return bool(getattr(backend, "durable", True))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cached_file(handle: Handle, name: str, version: str) -> str | None:
    """A package file for ``name-version`` in a cache directory (for roll back)."""
    for d in handle.options.cachedirs:
        for path in sorted(glob.glob(os.path.join(glob.escape(d), f"{glob.escape(name)}-"
                                                  f"{glob.escape(version)}-*.pkg.tar*"))):
            if not path.endswith(".sig"):
                return path
    return None


def _entries(handle: Handle, name: str) -> list[str]:
    """Every version of ``name`` with a directory in local/ (a torn upgrade leaves two)."""
    from alpmd.engine.db.backend import split_entry_name

    out = []
    local = os.path.join(handle.dbpath, "local")
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(local):
            key = split_entry_name(entry)
            if key is not None and key.name == name and os.path.isdir(os.path.join(local, entry)):
                out.append(key.version)
    return out


def _repair_step(handle: Handle, step: Step, report: RecoveryReport,
                 event: EventCallback | None) -> None:
    from alpmd.engine.db.backend import EntryKey

    localdb = handle.localdb
    versions = _entries(handle, step.name)
    if len(versions) > 1:
        # A replace was cut between writing the new entry and removing the old one.
        keep = step.new if step.new in versions else versions[0]
        for v in versions:
            if v != keep:
                localdb.backend.remove(EntryKey(step.name, v))
        localdb.invalidate()
        report.actions.append(f"{step.name}: dropped duplicate database entries, kept {keep}")
    flags = TransFlag(0)
    if step.action == "remove":
        cur = localdb.get(step.name)
        if cur is None:
            report.actions.append(f"{step.name}: removal had completed")
            return
        remove = _module("remove")
        if remove is not None:
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
    extract = _module("extract")
    if extract is None:
        report.unresolved.append(f"{step.name}: cannot re-extract (no extract module)")
        return
    remove = _module("remove")
    if cur is not None and remove is not None and cur.version != pkg.version:
        with contextlib.suppress(AlpmError):
            remove.remove_package_files(handle, cur, new=pkg, flags=flags, event=event)
    files: FileList = extract.extract_package(handle, pkg, cur, flags=flags, event=event,
                                              progress=None)
    pkg.ensure(Part.ALL)
    reason = Reason(step.reason) if step.new == target_version else (
        cur.reason if cur is not None else Reason(step.reason))
    meta = dataclasses.replace(pkg.meta, installdate=int(time.time()), reason=reason,
                               validation=list(step.validation) or ["none"])
    localdb.add(meta, files, mtree=pkg.mtree, scriptlet=pkg.scriptlet if pkg.has_scriptlet
                else None)
    how = "rolled forward to" if target_version == step.new else "rolled back to"
    handle.logaction("ALPM", f"repaired {step.name} ({target_version})")
    report.actions.append(f"{step.name}: {how} {target_version}")
    if event is not None:
        event(Warning_(message=f"{step.name}: {how} {target_version}"))
