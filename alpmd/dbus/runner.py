"""Drives one engine transaction for a transaction object: events become properties.

The engine's synchronous steps run in a worker thread; its events, progress
and questions come back to the event loop through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import enum
import functools
import gc
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbus_fast.signature import Variant

from alpmd.dbus import authority, errors
from alpmd.dbus.packages import repo_name
from alpmd.dbus.transaction import Cancelled, TransactionObject
from alpmd.engine import download, pkgcache, trust
from alpmd.engine import events as ev
from alpmd.engine.db import convert
from alpmd.engine.db.stores import Store
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import Reason
from alpmd.engine.handle import Handle
from alpmd.engine.history import DAEMON_PREFIX, Change, changes_between, installed_versions
from alpmd.engine.journal import FinalFlush
from alpmd.engine.package import Package
from alpmd.engine.resolve import Plan
from alpmd.engine.trans import Transaction
from alpmd.i18n import N_, translate, translator

if TYPE_CHECKING:
    from alpmd.dbus.daemon import Daemon

log = logging.getLogger("alpmd")

#: option → engine flag
FLAGS = {"asdeps": ev.TransFlag.ALLDEPS, "asexplicit": ev.TransFlag.ALLEXPLICIT,
         "needed": ev.TransFlag.NEEDED, "cascade": ev.TransFlag.CASCADE,
         "recursive": ev.TransFlag.RECURSE, "nosave": ev.TransFlag.NOSAVE,
         "download-only": ev.TransFlag.DOWNLOADONLY}


class Runner:
    """Runs the writer queue's transactions, one at a time."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    async def run(self, t: TransactionObject) -> None:
        _ = translator(t.locale)
        t.add_log("info", "daemon", _("starting {kind} {targets}").format(
            kind=t.kind, targets=" ".join(t.targets)).strip())
        t.started_wall = time.time()
        if t.cancelled:
            raise Cancelled()
        try:
            await self._run(t)
        finally:
            # The engine objects of the transaction (its handle, parsed databases, loaded
            # packages) are garbage now; give their memory back to the system at once.
            return_memory()

    async def _run(self, t: TransactionObject) -> None:
        if t.kind == "refresh":
            await self.refresh(t, shadow=True)
        elif t.kind in ("sysupgrade", "install", "install-files", "remove"):
            await self.transact(t)
        elif t.kind == "set-reason":
            await self.set_reason(t)
        elif t.kind == "trust-key":
            await self.trust_key(t)
        elif t.kind == "clean-cache":
            await self.clean_cache(t)
        elif t.kind == "convert-database":
            await self.convert_database(t)
        else:
            raise errors.code_text(errors.INTERNAL, "internal", f"{t.kind} is not available")

    # -- progress -----------------------------------------------------------------------

    def download_progress(self, t: TransactionObject, loop: asyncio.AbstractEventLoop
                          ) -> download.DownloadProgressCallback:
        def cb(p: download.DownloadProgress) -> None:
            def apply() -> None:
                done = int(p.overall_done or p.bytes_done or 0)
                total = int(p.overall_total or p.total or 0)
                t.bytes = [done, max(total, done)]
                t.speed = float(p.rate or 0.0)
                t.current_item = p.file
                if t.speed > 0 and total > done:
                    t.remaining = int((total - done) / t.speed)
                t.mark("Bytes", "Speed", "CurrentItem", "RemainingTime")
                if total:
                    t.set_percentage(40.0 * done / total)
                if t.due("download"):
                    t.DownloadProgress(t.current_item, done, max(total, done), t.speed)
            loop.call_soon_threadsafe(apply)
        return cb

    def callbacks(self, t: TransactionObject, loop: asyncio.AbstractEventLoop
                  ) -> tuple[ev.EventCallback, ev.ProgressCallback]:
        def on_event(e: ev.Event) -> None:
            text = event_text(e, t.locale)
            source = "scriptlet" if isinstance(e, ev.ScriptletInfo) else (
                "hook" if isinstance(e, (ev.HookEvent, ev.HookRun)) else "alpm")

            def apply() -> None:
                if isinstance(e, ev.PacnewCreated):
                    t.pacnew.append(str(e.file) + ".pacnew")
                    t.mark("Pacnew")
                if isinstance(e, ev.Warning_):
                    t.warnings.append(e.message)
                    t.mark("Warnings")
                if isinstance(e, (ev.HookEvent, ev.HookRun)) and t.state == "committing":
                    t.set_state("hooks")
                if text:
                    t.add_log("warning" if isinstance(e, ev.Warning_) else "info", source, text)
            loop.call_soon_threadsafe(apply)

        def on_progress(p: ev.Progress) -> None:
            def apply() -> None:
                t.items = [max(0, p.current - 1) + (1 if p.percent >= 100 else 0), p.total]
                t.current_item = p.name
                t.mark("Items", "CurrentItem")
                if p.kind in (ev.ProgressKind.ADD, ev.ProgressKind.UPGRADE,
                              ev.ProgressKind.DOWNGRADE, ev.ProgressKind.REINSTALL,
                              ev.ProgressKind.REMOVE) and p.total:
                    frac = (p.current - 1 + p.percent / 100.0) / p.total
                    t.set_percentage(45.0 + 50.0 * frac)
                else:
                    t.flush()
                t.ItemProgress(p.name, max(0, min(100, p.percent)), max(0, p.current),
                               max(0, p.total))
            loop.call_soon_threadsafe(apply)

        return on_event, on_progress

    # -- engine transactions --------------------------------------------------------------

    def engine_transaction(self, t: TransactionObject, h: Handle, event: ev.EventCallback,
                           progress: ev.ProgressCallback,
                           question: ev.QuestionCallback | None) -> Transaction:
        flags = ev.TransFlag.NONE
        for key, flag in FLAGS.items():
            if t.opts.get(key):
                flags |= flag
        et = Transaction(h, flags, event=event, progress=progress, question=question)
        et.final_flush = FinalFlush.THREAD  # the last flush goes on after the reply
        if t.full_upgrade:
            et.sysupgrade(allow_downgrade=bool(t.opts.get("allow-downgrade")))
        if t.kind in ("install", "sysupgrade"):
            for target in t.targets:
                et.add_sync_target(target)
        elif t.kind == "install-files":
            for path in t.files:
                et.add_file(path)
        elif t.kind == "remove":
            for target in t.targets:
                et.add_remove_target(target)
        return et

    async def simulate(self, t: TransactionObject) -> list[dict[str, Variant]]:
        """The plan, computed in a worker under a deadline (never changes anything)."""
        if t.kind not in ("sysupgrade", "install", "install-files", "remove"):
            return []
        loop = asyncio.get_running_loop()
        h = self.daemon.handles.new()

        def work() -> list[dict[str, Variant]]:
            on_event, on_progress = self.callbacks(t, loop)
            try:
                et = self.engine_transaction(t, h, on_event, on_progress, None)
                try:
                    return plan_rows(et.prepare(), h)
                finally:
                    et.release()
            finally:
                h.release()
        try:
            return await self.daemon.workers.run(t.sender, self.daemon.limits.simulate_deadline,
                                                 work, "simulating the transaction", uid=t.uid)
        except AlpmError as exc:
            t.error_details = error_details(exc)
            t.changed("ErrorDetails")
            raise errors.from_alpm(exc, t.locale) from None

    async def transact(self, t: TransactionObject) -> None:
        d = self.daemon
        loop = asyncio.get_running_loop()
        if t.full_upgrade and t.opts.get("refresh", True) and any(
                db.repo.servers for db in d.handle.syncdbs if db.repo is not None):
            # The real sync databases change only here, inside a full upgrade.
            await self.refresh(t, shadow=False)
        h = d.handles.new()
        t.set_state("resolving")
        et: Transaction | None = None
        try:
            on_event, on_progress = self.callbacks(t, loop)
            et = await asyncio.to_thread(self.engine_transaction, t, h, on_event, on_progress,
                                         t.ask_threadsafe(loop))
            t.engine_trans = et
            plan = await asyncio.to_thread(et.prepare)
            if t.cancelled:
                raise Cancelled()
            t.plan = plan_rows(plan, h)
            t.warnings.extend(plan.warnings)
            t.changed("Plan", "Warnings")
            # what the plan does, not only what the options said, must be authorised
            for action in authority.plan_actions(
                    t.kind, [row["action"].value for row in t.plan]):
                if action not in t.authorized:
                    _ = translator(t.locale)
                    t.add_log("info", "daemon", _("the plan needs {action}").format(
                        action=action))
                    await d.authority.check(t.sender, action, t.auth_details(),
                                            interactive=bool(t.hints.get("interactive")))
                    t.authorized.add(action)
            t.set_percentage(5.0, force=True)
            t.set_state("downloading")
            await et.download(progress=self.download_progress(t, loop), cancel=t.cancel_event)
            if t.cancelled:
                raise Cancelled()
            t.set_percentage(45.0, force=True)
            if t.opts.get("download-only"):
                return
            await self.wait_lock(t, h)
            t.set_state("committing")
            d.watcher.set_holder(f"pid {os.getpid()} (alpmd)")
            t.before = await asyncio.to_thread(installed_versions, h)
            # pacman.log's transaction that follows is ours (history.import_log skips it)
            h.logaction(DAEMON_PREFIX, f"transaction {t.n} ({t.kind} {' '.join(t.targets)}) "
                        f"for uid {t.uid} ({t.sender or 'root'})")
            async with d.committing(h):
                await asyncio.to_thread(et.commit)
            t.set_percentage(100.0, force=True)
        finally:
            t.engine_trans = None
            if t.before is not None:  # (while the transaction holds the lock: ours alone)
                t.changes = await self.changes_since(t.before)
            if et is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(et.release)
            h.release()
            await d.reload()

    async def changes_since(self, before: dict[str, str]) -> list[Change]:
        """What a commit moved, read as soon as it ends and while its transaction still
        holds the lock: the history row is written later, when the next queued transaction
        (or a pacman run once the lock is gone) may have committed its own changes."""
        def work() -> list[Change]:
            h = self.daemon.handles.new()
            try:
                return changes_between(before, installed_versions(h))
            finally:
                h.release()
        try:
            return await asyncio.to_thread(work)
        except AlpmError as exc:
            log.error("could not read what the transaction changed: %s", exc.message)
            return []

    async def wait_lock(self, t: TransactionObject, h: Handle) -> None:
        while os.path.exists(h.lockfile):
            t.set_state("waiting-lock")
            holder = await asyncio.to_thread(h.lock_holder)  # (/proc: off the loop)
            if holder == "stale":
                raise AlpmError(ErrorCode.HANDLE_LOCK,
                                f"a stale lock is left behind ({h.lockfile}); not removing it",
                                lockfile=h.lockfile)
            try:
                await asyncio.wait_for(t.cancel_event.wait(), 0.5)
            except TimeoutError:
                continue
            raise Cancelled()

    # -- the other kinds ------------------------------------------------------------------

    async def refresh(self, t: TransactionObject, *, shadow: bool) -> None:
        d = self.daemon
        t.set_state("downloading")
        h = d.handles.new()
        loop = asyncio.get_running_loop()
        target = d.shadow_dir + "sync/" if shadow else None
        try:
            if target:
                Path(target).mkdir(parents=True, exist_ok=True)
                download.seed_shadow(h, target)
            changed = await download.refresh_databases(
                h, force=bool(t.opts.get("force")), target_dir=target,
                progress=self.download_progress(t, loop), cancel=t.cancel_event)
        finally:
            h.release()
        _ = translator(t.locale)
        for name, was_changed in changed.items():
            text = _("{db} is updated") if was_changed else _("{db} is up to date")
            t.add_log("info", "alpm", text.format(db=name))
        await d.refreshed()

    async def clean_cache(self, t: TransactionObject) -> None:
        keep = t.opts.get("keep-versions")
        h = self.daemon.handles.new()
        everything = bool(t.opts.get("all"))
        try:
            res = await asyncio.to_thread(
                pkgcache.clean_cache, h, keep_installed=not everything,
                keep_versions=keep if isinstance(keep, int) else None, all=everything)
        finally:
            h.release()
        _ = translator(t.locale)
        t.add_log("info", "daemon", _("cache cleaned: {result}").format(result=res))

    async def set_reason(self, t: TransactionObject) -> None:
        reason = Reason.DEPEND if t.opts.get("reason") == "dependency" else Reason.EXPLICIT
        h = self.daemon.handles.new()

        def work() -> None:
            h.lock()
            try:
                for name in t.targets:
                    h.localdb.set_reason(name, reason)
            finally:
                h.unlock()
        try:
            await self.wait_lock(t, h)
            t.set_state("committing")
            async with self.daemon.committing(h):
                await asyncio.to_thread(work)
        finally:
            h.release()
            await self.daemon.reload()

    async def convert_database(self, t: TransactionObject) -> None:
        """The local database into another store, under the lock; then every handle anew."""
        h = self.daemon.handles.new()
        try:
            await self.wait_lock(t, h)
            t.set_state("committing")
            async with self.daemon.committing(h):
                res = await asyncio.to_thread(convert.convert, h, Store(t.targets[0]))
        finally:
            h.release()
            await self.daemon.reload()
        _ = translator(t.locale)
        t.add_log("info", "alpm", _("converted {n} entries from {source} to {target}: {path}")
                  .format(n=res.entries, source=res.source.value, target=res.target.value,
                          path=res.path))
        if res.moved_aside:
            t.add_log("info", "alpm", _("the old database was moved to {path}").format(
                path=res.moved_aside))

    async def trust_key(self, t: TransactionObject) -> None:
        """Import (asking the client: ImportKey) and locally sign a packager key.

        The key comes only from a local source the engine knows (a distribution
        keyring), never from the network; the import question is never answered
        for the client (a missing answer takes the default, no).
        """
        ask = t.ask_threadsafe(asyncio.get_running_loop())
        h = self.daemon.handles.new()
        t.set_state("committing")
        try:
            res = await asyncio.to_thread(trust.trust_key, h, t.targets[0], question=ask,
                                          who=f"uid {t.uid}")
        finally:
            h.release()
        if res.imported:
            _ = translator(t.locale)
            t.add_log("info", "alpm", _("imported key {fingerprint}").format(
                fingerprint=res.fingerprint))
        t.add_log("info", "alpm", res.message)


# -- translation helpers ----------------------------------------------------------------


def return_memory() -> None:
    """Collect reference cycles, then hand the C heap's free pages back (glibc's
    ``malloc_trim``): without it the daemon keeps a commit's peak for good."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None under a C library without it."""
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def _short(val: object) -> object:
    if isinstance(val, Package):
        return f"{val.name}-{val.version}"
    return val


def error_details(exc: AlpmError) -> dict[str, Variant]:
    out: dict[str, Variant] = {"code": Variant("s", exc.code.value)}
    for key, value in exc.details.items():
        if isinstance(value, (list, tuple)):
            out[key] = Variant("as", [describe_value(v) for v in value])
        elif isinstance(value, str):
            out[key] = Variant("s", value)
        elif isinstance(value, int) and not isinstance(value, bool) \
                and -(1 << 63) <= value < (1 << 63):
            out[key] = Variant("x", value)
    return out


def describe_value(v: object) -> str:
    if isinstance(v, str):
        return v
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return ", ".join(f"{f.name}={_short(vars(v).get(f.name))}"
                         for f in dataclasses.fields(v))
    return str(v)


#: A finished package operation, as the log signal reports it.
_DONE: dict[ev.Operation, str] = {
    ev.Operation.INSTALL: N_("installed {name} ({version})"),
    ev.Operation.REINSTALL: N_("reinstalled {name} ({version})"),
    ev.Operation.UPGRADE: N_("upgraded {name} ({old} -> {version})"),
    ev.Operation.DOWNGRADE: N_("downgraded {name} ({old} -> {version})"),
    ev.Operation.REMOVE: N_("removed {name} ({version})"),
}


def event_text(e: ev.Event, locale: str = "") -> str:  # noqa: C901 - one branch per event type
    """The Log signal's line for ``e`` in the client's ``locale`` (its SetHints locale):
    the command line's texts for what it shows, ``Type field=value`` for the rest."""
    if isinstance(e, ev.ScriptletInfo):
        return e.line.rstrip("\n")
    if isinstance(e, ev.Warning_):
        return translate(e.message, locale)
    _ = translator(locale)
    if isinstance(e, ev.StepEvent) and not e.done:
        line = ev.STEP_LINES.get(type(e)) or ev.QUIET_STEP_LINES.get(type(e))
        if line is not None:
            return _(line)
    if isinstance(e, ev.TransactionStep) and not e.done:
        return _("Processing package changes...")
    if isinstance(e, ev.PackageOperation) and (e.new or e.old) is not None:
        pkg = e.new or e.old
        assert pkg is not None
        if not e.done:
            return f"{_(ev.OPERATION_WORDS[e.operation])} {pkg.name}..."
        old = e.old.version if e.old is not None else ""
        return _(_DONE[e.operation]).format(name=pkg.name, version=pkg.version, old=old)
    if isinstance(e, ev.PacnewCreated):
        return _("{file} installed as {file}.pacnew").format(file=e.file)
    if isinstance(e, ev.PacsaveCreated):
        return _("{file} saved as {file}.pacsave").format(file=e.file)
    if isinstance(e, ev.OptdepRemoval):
        name = e.pkg.name if e.pkg is not None else ""
        return _("{name} optionally requires {optdep}").format(name=name, optdep=e.optdep)
    if isinstance(e, ev.HookEvent) and not e.done:
        return (_("Running pre-transaction hooks...") if e.when.startswith("Pre")
                else _("Running post-transaction hooks..."))
    if isinstance(e, ev.HookRun) and not e.done:
        return f"({e.position}/{e.total}) {e.description or e.name}"
    if isinstance(e, ev.DatabaseMissing):
        return _("database file for '{db}' does not exist (use '-Sy' to download)").format(
            db=e.dbname)
    values = vars(e)
    bits = []
    for f in dataclasses.fields(e):
        val = _short(values.get(f.name))
        if val is None or val == "" or isinstance(val, (list, dict)):
            continue
        if isinstance(val, enum.Enum):
            val = val.value
        bits.append(f"{f.name}={val}")
    return f"{type(e).__name__} {' '.join(bits)}".strip()


def plan_rows(plan: Plan | None, h: Handle) -> list[dict[str, Variant]]:
    rows: list[dict[str, Variant]] = []
    if plan is None:
        return rows
    local = h.localdb
    for pkg in plan.remove:
        rows.append({"action": Variant("s", "remove"), "name": Variant("s", pkg.name),
                     "old": Variant("s", pkg.version), "new": Variant("s", ""),
                     "repo": Variant("s", "local"), "download_size": Variant("t", 0),
                     "size_change": Variant("x", -(pkg.isize or 0))})
    for pkg in plan.add:
        old = local.get(pkg.name)
        action = plan.operation(pkg, local).value
        rows.append({"action": Variant("s", action.lower()), "name": Variant("s", pkg.name),
                     "old": Variant("s", old.version if old is not None else ""),
                     "new": Variant("s", pkg.version),
                     "repo": Variant("s", repo_name(pkg) or "file"),
                     "download_size": Variant("t", max(0, pkg.csize or 0)),
                     "size_change": Variant("x", (pkg.isize or 0)
                                            - ((old.isize or 0) if old is not None else 0))})
    return rows

