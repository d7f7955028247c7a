"""``org.alpm.Manager1`` and the daemon's state: handles, the writer queue, watchers.

Queries read ``daemon.handle``; a writer works on a handle of its own, and the
query handle is replaced (Generation bumps) once the databases changed, so a
query never sees a half-written database. One writer runs at a time, FIFO;
identical refresh/upgrade requests queued together are merged.
"""

import asyncio
import collections
import contextlib
import importlib
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from dbus_fast import DBusError
from dbus_fast.aio import MessageBus
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property, dbus_signal
from dbus_fast.signature import Variant

from alpmd import __version__
from alpmd.dbus import bus as busmod
from alpmd.dbus import errors, logind, notify, options, polkit
from alpmd.dbus.packages import package_id
from alpmd.dbus.transaction import ACTIONS, Cancelled, TransactionObject
from alpmd.dbus.types import AH, AO, AS, B, ListOfDicts, O, Opts, S, T, U
from alpmd.engine import events as ev
from alpmd.engine.config import load_config
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.handle import Handle
from alpmd.engine.package import Package

log = logging.getLogger("alpmd")
KEEP_FINISHED = 60.0
MAX_TARGETS = 10_000


def _engine(name: str) -> Any:
    """An engine module written by another engineer, looked up when first needed."""
    try:
        return importlib.import_module(f"alpmd.engine.{name}")
    except ImportError as exc:
        raise errors.code_text(errors.INTERNAL, "internal",
                               f"the engine has no {name} module yet") from exc


def _check_targets(targets: Sequence[str]) -> list[str]:
    if len(targets) > MAX_TARGETS:
        raise errors.invalid("too many targets")
    for t in targets:
        if not t or len(t) > 512 or any(c in t for c in "\0\n\r\t ") or t.startswith("-"):
            raise errors.invalid(f"invalid target {t!r}")
    return list(targets)


class Daemon:
    """Everything the interfaces share."""

    def __init__(self, bus: MessageBus, config_path: str, *, keep_finished: float = KEEP_FINISHED,
                 idle_timeout: float = 0) -> None:
        self.bus = bus
        self.config_path = config_path
        self.keep_finished = keep_finished
        self.idle_timeout = idle_timeout
        self.handle = self.new_handle()
        self.state_dir = self.handle.options.root + "var/lib/alpmd/"
        self.shadow_dir = self.state_dir + "shadow/"
        self.marker = self.state_dir + "committing"
        self.recovery: dict[str, Any] = {}
        self.inhibitor: Any = None
        self.generation = 1
        self.last_refresh = 0
        self.state = "idle"
        self.lock_holder = ""
        self.transactions: dict[int, TransactionObject] = {}
        self._next = 1
        self.queue: collections.deque[TransactionObject] = collections.deque()
        self._wakeup = asyncio.Event()
        self.followers: dict[int, list[TransactionObject]] = {}
        self.current: TransactionObject | None = None
        self.manager: Manager1 | None = None
        self._local_stamp = self._stamp()
        self._updates_cache: list[dict[str, Variant]] | None = None
        self.updates_announced: int | None = None
        self.history: list[dict[str, Any]] = []
        self.last_activity = time.monotonic()
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    # -- handles ------------------------------------------------------------------------

    def new_handle(self, *, dbpath: str | None = None) -> Handle:
        config = load_config(self.config_path, dbpath_override=dbpath)
        handle, errs = Handle.from_config(config)
        for exc in errs:
            log.warning("could not register a database: %s", exc.message)
        return handle

    def shadow_handle(self) -> Handle:
        """The sync databases as the last Refresh saw them (in the shadow directory)."""
        Path(self.shadow_dir).mkdir(parents=True, exist_ok=True)
        h = self.new_handle(dbpath=self.shadow_dir)
        h._localdb = self.handle.localdb
        return h

    def _stamp(self) -> tuple[int, ...]:
        out = []
        for sub in ("local", "sync"):
            try:
                out.append(os.stat(self.handle.dbpath + sub).st_mtime_ns)
            except OSError:
                out.append(0)
        return tuple(out)

    def reload(self) -> None:
        """Re-open the databases for queries (after a commit or a change behind our back)."""
        old = self.handle
        self.handle = self.new_handle()
        old.logwriter.close()
        self._local_stamp = self._stamp()
        self._updates_cache = None
        self.generation += 1
        if self.manager is not None:
            self.manager.changed("Generation", "UpdatesAvailable")
            self.manager.InstalledChanged(self.generation)
            self.announce_updates(only_if_changed=True)

    def announce_updates(self, *, only_if_changed: bool = False) -> None:
        """UpdatesChanged(count): after a refresh, and when the installed set moved the count."""
        try:
            count = len(self.updates())
        except Exception:
            log.exception("could not compute the updates")
            return
        if only_if_changed and count == self.updates_announced:
            return
        self.updates_announced = count
        if self.manager is not None:
            self.manager.UpdatesChanged(count)

    # -- updates ------------------------------------------------------------------------

    def updates(self) -> list[dict[str, Variant]]:
        if self._updates_cache is not None:
            return self._updates_cache
        rows: list[dict[str, Variant]] = []
        shadow = self.shadow_handle()
        if any(os.path.exists(db.path) for db in shadow.syncdbs):
            from alpmd.engine.query import upgrades
            find_cached = _engine("download").find_cached
            for old, new in upgrades(self.handle, shadow):
                rows.append({
                    "name": Variant("s", old.name),
                    "old": Variant("s", old.version),
                    "new": Variant("s", new.version),
                    "repo": Variant("s", getattr(new.db, "name", "")),
                    "id": Variant("s", package_id(new)),
                    "download_size": Variant("t", new.csize or 0),
                    "installed_size": Variant("t", new.isize or 0),
                    "downloaded": Variant("b", find_cached(self.handle, new) is not None),
                })
        self._updates_cache = rows
        return rows

    # -- transactions -------------------------------------------------------------------

    def create(self, kind: str, targets: list[str], opts: dict[str, Variant]) -> str:
        sender = busmod.CALLER.get()
        t = TransactionObject(self, self._next, kind, targets, options.plain(opts), -1, sender)
        self._next += 1
        self.transactions[t.n] = t
        self.bus.export(t.path, t)
        self.last_activity = time.monotonic()
        if self.manager is not None:
            self.manager.changed("Transactions")
        return t.path

    async def authorize_action(self, t: TransactionObject, action: str) -> None:
        caller = busmod.CALLER.get() or t.sender
        try:
            uid = await busmod.caller_uid(self.bus, caller) if caller else 0
        except LookupError as exc:
            raise errors.code_text(errors.NOT_AUTHORIZED, "not-authorized",
                                   f"the caller has left the bus ({exc})") from None
        details = {"org.alpm.kind": t.kind, "org.alpm.targets": " ".join(t.targets[:100])}
        await polkit.check(self.bus, caller, uid, action, details,
                           interactive=bool(t.hints.get("interactive")))

    async def authorize(self, t: TransactionObject) -> None:
        if t.sender:
            try:
                t.uid = await busmod.caller_uid(self.bus, t.sender)
            except LookupError as exc:
                raise errors.code_text(errors.NOT_AUTHORIZED, "not-authorized",
                                       f"the caller has left the bus ({exc})") from None
            t.changed("Uid")
        actions = [ACTIONS[t.kind]]
        if t.opts.get("allow-downgrade"):
            actions.append("org.alpm.downgrade")
        if t.kind == "install" and t.opts.get("no-sysupgrade"):
            actions.append("org.alpm.no-sysupgrade")
        for action in actions:
            await self.authorize_action(t, action)

    def enqueue(self, t: TransactionObject) -> None:
        if t.kind in ("refresh", "sysupgrade"):
            for other in self.queue:
                if other.kind == t.kind and other.opts == t.opts and other.state == "queued":
                    self.followers.setdefault(other.n, []).append(t)
                    t.set_state("queued")
                    t.add_log("info", "daemon", f"merged with transaction {other.n}")
                    return
        t.set_state("queued")
        self.queue.append(t)
        self._wakeup.set()

    def dequeue(self, t: TransactionObject) -> None:
        """Take ``t`` out of the queue; a cancelled leader hands its place to its followers."""
        followers = self.followers.pop(t.n, [])
        if t in self.queue:
            idx = self.queue.index(t)
            if followers:
                self.queue[idx] = self._promote(followers)
            else:
                del self.queue[idx]
        for group in self.followers.values():
            if t in group:
                group.remove(t)

    def _promote(self, followers: list[TransactionObject]) -> TransactionObject:
        """The first follower leads the rest (its leader was cancelled: theirs was not)."""
        lead, rest = followers[0], followers[1:]
        if rest:
            self.followers[lead.n] = rest
        lead.add_log("info", "daemon", "the transaction it was merged with was cancelled; "
                     "running it on its own")
        return lead

    def finished(self, t: TransactionObject) -> None:
        followers = self.followers.pop(t.n, [])
        if followers and t.result == "cancelled":
            # cancelled while running: the others asked for the same and still want it
            self.queue.appendleft(self._promote(followers))
            self._wakeup.set()
            followers = []
        for f in followers:
            f.error_details = t.error_details
            f.finish(t.result, *t.error)
        self.history.append({"id": t.n, "kind": t.kind, "targets": t.targets, "uid": t.uid,
                             "sender": t.sender, "result": t.result, "time": int(time.time())})
        notify.event(f"transaction {t.n} ({t.kind}) finished: {t.result}",
                     alpmd_transaction=t.n, alpmd_uid=t.uid, alpmd_kind=t.kind,
                     alpmd_result=t.result)
        for fd in t.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        t.fds.clear()
        asyncio.get_running_loop().call_later(self.keep_finished, self.drop, t)

    def drop(self, t: TransactionObject) -> None:
        if self.transactions.pop(t.n, None) is not None:
            with contextlib.suppress(Exception):
                self.bus.unexport(t.path, t)
            if self.manager is not None:
                self.manager.changed("Transactions")

    def client_gone(self, name: str) -> None:
        for t in list(self.transactions.values()):
            if t.sender == name and t.state == "setup":
                t.finish("cancelled", errors.CANCELLED, "the client left")
                self.drop(t)

    # -- the writer ---------------------------------------------------------------------

    async def writer(self) -> None:
        while True:
            while not self.queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            t = self.queue.popleft()
            self.current = t
            self.set_state("busy")
            try:
                await self.run(t)
                t.finish("success")
            except Cancelled:
                t.finish("cancelled", errors.CANCELLED, "cancelled")
            except DBusError as exc:
                t.finish("cancelled" if exc.type == errors.CANCELLED else "failed",
                         exc.type, exc.text)
            except AlpmError as exc:
                t.error_details = _details(exc)
                err = errors.from_alpm(exc)
                t.finish("cancelled" if t.cancelled else "failed", err.type, err.text)
            except Exception as exc:
                log.exception("transaction %d failed", t.n)
                err = errors.internal(exc)
                t.finish("failed", err.type, err.text)
            finally:
                self.current = None
                self.last_activity = time.monotonic()
                self.set_state("idle")
                if self._stamp() != self._local_stamp:
                    self.reload()

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.manager is not None:
                self.manager.changed("State")
            notify.notify(f"STATUS={state}")

    async def run(self, t: TransactionObject) -> None:
        t.add_log("info", "daemon", f"starting {t.kind} {' '.join(t.targets)}".strip())
        if t.cancelled:
            raise Cancelled()
        if t.kind == "refresh":
            await self.refresh(t, shadow=True)
        elif t.kind in ("sysupgrade", "install", "install-files", "remove"):
            await self.transact(t)
        elif t.kind == "set-reason":
            await self.set_reason(t)
        elif t.kind == "trust-key":
            await self.trust_key(t)
        elif t.kind == "clean-cache":
            pkgcache = _engine("pkgcache")
            keep = t.opts.get("keep-versions")
            res = await asyncio.to_thread(pkgcache.clean_cache, self.new_handle(),
                                          keep_installed=not t.opts.get("all", False),
                                          keep_versions=keep, all=bool(t.opts.get("all")))
            t.add_log("info", "daemon", f"cache cleaned: {res}")
        else:
            raise errors.code_text(errors.INTERNAL, "internal", f"{t.kind} is not available")

    def _download_progress(self, t: TransactionObject, loop: asyncio.AbstractEventLoop) -> Any:
        def cb(p: Any) -> None:
            def apply() -> None:
                done = int(getattr(p, "overall_done", getattr(p, "bytes_done", 0)) or 0)
                total = int(getattr(p, "overall_total", getattr(p, "total", 0)) or 0)
                t.bytes = [done, max(total, done)]
                t.speed = float(getattr(p, "rate", 0.0) or 0.0)
                t.current_item = str(getattr(p, "file", ""))
                if t.speed > 0 and total > done:
                    t.remaining = int((total - done) / t.speed)
                t.mark("Bytes", "Speed", "CurrentItem", "RemainingTime")
                if total:
                    t.set_percentage(40.0 * done / total)
                if t.due("download"):
                    t.DownloadProgress(t.current_item, done, max(total, done), t.speed)
            loop.call_soon_threadsafe(apply)
        return cb

    async def refresh(self, t: TransactionObject, *, shadow: bool) -> None:
        download = _engine("download")
        t.set_state("downloading")
        h = self.new_handle()
        loop = asyncio.get_running_loop()
        target = self.shadow_dir + "sync/" if shadow else None
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            _engine("download").seed_shadow(h, target)
        changed = await download.refresh_databases(
            h, force=bool(t.opts.get("force")), target_dir=target,
            progress=self._download_progress(t, loop), cancel=t.cancel_event)
        for name, was_changed in changed.items():
            t.add_log("info", "alpm", f"{name} is {'updated' if was_changed else 'up to date'}")
        self.last_refresh = int(time.time())
        self._updates_cache = None
        if self.manager is not None:
            self.manager.changed("LastRefresh", "UpdatesAvailable")
        self.announce_updates()

    def _callbacks(self, t: TransactionObject, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
        def on_event(e: ev.Event) -> None:
            text = _event_text(e)
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

        return {"event": on_event, "progress": on_progress, "question": t.ask_threadsafe(loop)}

    def _engine_trans(self, t: TransactionObject, h: Handle, cbs: dict[str, Any]) -> Any:
        trans = _engine("trans")
        flags = ev.TransFlag.NONE
        for key, flag in (("asdeps", "ALLDEPS"), ("asexplicit", "ALLEXPLICIT"),
                          ("needed", "NEEDED"), ("cascade", "CASCADE"),
                          ("recursive", "RECURSE"), ("nosave", "NOSAVE"),
                          ("download-only", "DOWNLOADONLY")):
            if t.opts.get(key) and hasattr(ev.TransFlag, flag):
                flags |= getattr(ev.TransFlag, flag)
        et = trans.Transaction(h, flags, **cbs)
        full_upgrade = t.kind == "sysupgrade" or (t.kind == "install"
                                                  and not t.opts.get("no-sysupgrade"))
        if full_upgrade:
            et.sysupgrade(allow_downgrade=bool(t.opts.get("allow-downgrade")))
        if t.kind in ("install", "sysupgrade"):
            for target in t.targets:
                et.add_sync_target(target)
        elif t.kind == "install-files":
            for fd in t.fds:
                et.add_file(f"/proc/{os.getpid()}/fd/{fd}")
        elif t.kind == "remove":
            for target in t.targets:
                et.add_remove_target(target)
        return et

    async def simulate(self, t: TransactionObject) -> list[dict[str, Variant]]:
        if t.kind not in ("sysupgrade", "install", "install-files", "remove"):
            return []
        loop = asyncio.get_running_loop()
        h = self.new_handle()

        def work() -> list[dict[str, Variant]]:
            cbs = self._callbacks(t, loop)
            cbs["question"] = None
            et = self._engine_trans(t, h, cbs)
            try:
                return _plan_rows(et.prepare(), h)
            finally:
                et.release()
                h.release()
        try:
            return await asyncio.to_thread(work)
        except AlpmError as exc:
            t.error_details = _details(exc)
            t.changed("ErrorDetails")
            raise errors.from_alpm(exc) from None

    async def transact(self, t: TransactionObject) -> None:
        loop = asyncio.get_running_loop()
        full_upgrade = t.kind == "sysupgrade" or (t.kind == "install"
                                                  and not t.opts.get("no-sysupgrade"))
        if full_upgrade and t.opts.get("refresh", True) and any(
                db.repo.servers for db in self.handle.syncdbs if db.repo is not None):
            # The real sync databases change only here, inside a full upgrade.
            await self.refresh(t, shadow=False)
        h = self.new_handle()
        t.set_state("resolving")
        et = None
        try:
            et = await asyncio.to_thread(self._engine_trans, t, h, self._callbacks(t, loop))
            t.engine_trans = et
            plan = await asyncio.to_thread(et.prepare)
            if t.cancelled:
                raise Cancelled()
            t.plan = _plan_rows(plan, h)
            t.warnings.extend(getattr(plan, "warnings", []) or [])
            t.changed("Plan", "Warnings")
            t.set_percentage(5.0, force=True)
            t.set_state("downloading")
            await et.download(progress=self._download_progress(t, loop), cancel=t.cancel_event)
            if t.cancelled:
                raise Cancelled()
            t.set_percentage(45.0, force=True)
            if t.opts.get("download-only"):
                return
            await self._wait_lock(t, h)
            t.set_state("committing")
            self.lock_holder = f"pid {os.getpid()} (alpmd)"
            if self.manager is not None:
                self.manager.changed("LockHolder")
                self.manager.LockChanged(self.lock_holder)
            async with self.committing(h):
                await asyncio.to_thread(et.commit)
            t.set_percentage(100.0, force=True)
        finally:
            t.engine_trans = None
            if et is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(et.release)
            h.release()
            self.reload()

    async def _wait_lock(self, t: TransactionObject, h: Handle) -> None:
        while os.path.exists(h.lockfile):
            t.set_state("waiting-lock")
            holder = h.lock_holder()
            if holder == "stale":
                raise AlpmError(ErrorCode.HANDLE_LOCK,
                                f"a stale lock is left behind ({h.lockfile}); not removing it",
                                lockfile=h.lockfile)
            try:
                await asyncio.wait_for(t.cancel_event.wait(), 0.5)
            except TimeoutError:
                continue
            raise Cancelled()

    async def set_reason(self, t: TransactionObject) -> None:
        from alpmd.engine.formats.desc import Reason
        reason = Reason.DEPEND if t.opts.get("reason") == "dependency" else Reason.EXPLICIT
        h = self.new_handle()

        def work() -> None:
            h.lock()
            try:
                for name in t.targets:
                    h.localdb.set_reason(name, reason)
            finally:
                h.unlock()
        try:
            await self._wait_lock(t, h)
            t.set_state("committing")
            async with self.committing(h):
                await asyncio.to_thread(work)
        finally:
            h.release()
            self.reload()

    async def trust_key(self, t: TransactionObject) -> None:
        """Import (asking the client: ImportKey) and locally sign a packager key.

        The key comes only from a local source the engine knows (a distribution
        keyring), never from the network; the import question is never answered
        for the client (a missing answer takes the default, no).
        """
        from alpmd.engine import keyring, signing

        loop = asyncio.get_running_loop()
        ask = t.ask_threadsafe(loop)
        h = self.new_handle()
        ident = t.targets[0]

        def work() -> str:
            gpgdir = keyring.keyring_dir(h.options.gpgdir)
            key = keyring.find_key(gpgdir, ident)
            if key is None:
                def only_this(q: ev.Question) -> object:
                    fp = getattr(q, "fingerprint", "").upper()
                    if isinstance(q, ev.ImportKey) and not fp.endswith(ident):
                        return False
                    return ask(q)
                if not signing.import_key(h, ident, question=only_this):
                    raise AlpmError(ErrorCode.SIG_MISSING,
                                    f"key {ident} is not in the keyring and was not imported",
                                    key=ident)
                key = keyring.find_key(gpgdir, ident)
                if key is None:
                    raise AlpmError(ErrorCode.GPGME, f"key {ident} could not be imported")
                loop.call_soon_threadsafe(t.add_log, "info", "alpm",
                                          f"imported key {key.fingerprint}")
            if keyring.is_lsigned(gpgdir, key.fingerprint):
                return f"key {key.fingerprint} is already trusted"
            keyring.lsign_keys(gpgdir, [key.fingerprint])
            h.logaction("ALPMD", f"locally signed key {key.fingerprint} (uid {t.uid})")
            return f"locally signed key {key.fingerprint}"
        t.set_state("committing")
        try:
            msg = await asyncio.to_thread(work)
        finally:
            h.release()
        t.add_log("info", "alpm", msg)

    # -- commits and crashes ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def committing(self, h: Handle) -> AsyncIterator[None]:
        """Mark a commit in progress (for the next start after a crash) and hold off shutdown.

        The marker names our pid and the lock file: after a SIGKILL it tells the next
        daemon that the lock left behind is its own, so it may take it back.
        """
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)
        tmp = self.marker + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n{h.lockfile}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.marker)
        self.inhibitor = await logind.inhibit("shutdown:sleep", "alpmd",
                                              "a package transaction is being committed")
        try:
            yield
        finally:
            logind.release(self.inhibitor)
            self.inhibitor = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.marker)

    def _crashed_commit(self) -> bool:
        """Whether a previous daemon died while committing (its marker names a dead pid)."""
        try:
            pid_text, lockfile = Path(self.marker).read_text().split("\n")[:2]
            pid = int(pid_text)
        except (OSError, ValueError):
            return False
        if pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return lockfile == self.handle.lockfile or not lockfile
        except PermissionError:
            return False
        # the pid is alive: reused by another process unless it holds the lock
        return not self.handle.lock_holder().startswith(f"pid {pid} ")

    def recover(self) -> dict[str, Any]:
        """Repair what a killed commit left (the engine's journal recovery), at start-up.

        A lock is removed only when our own marker shows that a previous alpmd took it
        and nobody holds it open now; any other lock is reported, never touched.
        """
        from alpmd.engine.trans import Transaction

        h = self.new_handle()
        ours = self._crashed_commit()
        holder = h.lock_holder()
        out: dict[str, Any] = {"time": int(time.time()), "lock": holder, "ours": ours}
        try:
            if holder and holder != "stale":
                out["result"] = f"database locked by {holder}; not recovering"
                return out
            report = Transaction.recover(h, repair=True, remove_stale_lock=ours and bool(holder))
            out["pending"] = [f"{s.action} {s.name}" for s in report.pending]
            out["actions"] = list(report.actions)
            out["unresolved"] = list(report.unresolved)
            if report.clean:
                out["result"] = "clean"
            elif report.repaired or (report.journal is None and not report.stale_lock):
                out["result"] = "repaired"
            else:
                out["result"] = "unresolved"
            if ours and not report.unresolved:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.marker)
        except AlpmError as exc:
            out["result"] = "failed"
            out["unresolved"] = [exc.message]
        finally:
            h.release()
        if out["result"] != "clean":
            log.warning("start-up recovery: %s (%s)", out["result"],
                        "; ".join(out.get("actions", []) + out.get("unresolved", [])))
            self.history.append({"id": 0, "kind": "recovery", "targets": out.get("pending", []),
                                 "uid": 0, "sender": "", "result": out["result"],
                                 "time": out["time"],
                                 "detail": "; ".join(out.get("actions", [])
                                                     + out.get("unresolved", []))})
        self.recovery = out
        self.reload()
        self.lock_holder = self.handle.lock_holder()
        return out

    # -- background ---------------------------------------------------------------------

    async def watch(self) -> None:
        """Notice database changes and lock changes made behind our back (pacman)."""
        interval = notify.watchdog_interval()
        last_ping = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            if self.current is None and self._stamp() != self._local_stamp:
                self.reload()
            holder = self.handle.lock_holder()
            if self.current is not None and self.current.state in ("committing", "hooks"):
                holder = holder or self.lock_holder
            if holder != self.lock_holder:
                self.lock_holder = holder
                if self.manager is not None:
                    self.manager.changed("LockHolder")
                    self.manager.LockChanged(holder)
                if holder and self.current is None:
                    self.set_state("waiting-lock" if self.queue else self.state)
            if interval is not None and time.monotonic() - last_ping >= interval:
                notify.notify("WATCHDOG=1")
                last_ping = time.monotonic()
            now = time.monotonic()
            for t in list(self.transactions.values()):
                if t.state == "finished" and t.finished_at and now - t.finished_at > self.keep_finished:
                    self.drop(t)
            if (self.idle_timeout and self.current is None and not self.queue
                    and not any(t.state != "finished" for t in self.transactions.values())
                    and now - self.last_activity > self.idle_timeout):
                log.info("idle for %d s; exiting", int(self.idle_timeout))
                self.stopping.set()


def _details(exc: AlpmError) -> dict[str, Variant]:
    out: dict[str, Variant] = {"code": Variant("s", exc.code.value)}
    for key, value in exc.details.items():
        if isinstance(value, (list, tuple)):
            out[key] = Variant("as", [_describe(v) for v in value])
        elif isinstance(value, str):
            out[key] = Variant("s", value)
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = Variant("x", value)
    return out


def _describe(v: Any) -> str:
    if isinstance(v, str):
        return v
    fields = getattr(v, "__dataclass_fields__", None)
    if fields:
        parts = []
        for name in fields:
            val = getattr(v, name)
            if isinstance(val, Package):
                val = f"{val.name}-{val.version}"
            parts.append(f"{name}={val}")
        return ", ".join(parts)
    return str(v)


def _event_text(e: ev.Event) -> str:
    if isinstance(e, ev.ScriptletInfo):
        return str(getattr(e, "line", "") or getattr(e, "text", "")).rstrip("\n")
    msg = getattr(e, "message", "")
    if msg:
        return str(msg)
    name = type(e).__name__
    fields = getattr(e, "__dataclass_fields__", {})
    bits = []
    for f in fields:
        val = getattr(e, f)
        if isinstance(val, Package):
            val = f"{val.name}-{val.version}"
        elif val is None or val == "" or isinstance(val, (list, dict)):
            continue
        bits.append(f"{f}={getattr(val, 'value', val)}")
    return f"{name} {' '.join(bits)}".strip()


def _plan_rows(plan: Any, h: Handle) -> list[dict[str, Variant]]:
    rows: list[dict[str, Variant]] = []
    if plan is None:
        return rows
    local = h.localdb
    for pkg in getattr(plan, "remove", []):
        rows.append({"action": Variant("s", "remove"), "name": Variant("s", pkg.name),
                     "old": Variant("s", pkg.version), "new": Variant("s", ""),
                     "repo": Variant("s", "local"), "download_size": Variant("t", 0),
                     "size_change": Variant("x", -(pkg.isize or 0))})
    for pkg in getattr(plan, "add", []):
        old = local.get(pkg.name)
        try:
            action = plan.operation(pkg, local).value
        except Exception:
            action = "upgrade" if old is not None else "install"
        rows.append({"action": Variant("s", str(action).lower()), "name": Variant("s", pkg.name),
                     "old": Variant("s", old.version if old is not None else ""),
                     "new": Variant("s", pkg.version),
                     "repo": Variant("s", getattr(pkg.db, "name", "file") or "file"),
                     "download_size": Variant("t", pkg.csize or 0),
                     "size_change": Variant("x", (pkg.isize or 0)
                                            - ((old.isize or 0) if old is not None else 0))})
    return rows


class Manager1(ServiceInterface):
    """The entry point: creates transactions, reports the daemon's state."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__("org.alpm.Manager1")
        self.daemon = daemon
        daemon.manager = self

    def changed(self, *names: str) -> None:
        values = {"State": lambda: self.daemon.state, "LockHolder": lambda: self.daemon.lock_holder,
                  "Transactions": lambda: self._paths(), "Generation": lambda: self.daemon.generation,
                  "LastRefresh": lambda: self.daemon.last_refresh,
                  "UpdatesAvailable": lambda: len(self.daemon.updates())}
        with contextlib.suppress(Exception):
            self.emit_properties_changed({n: values[n]() for n in names})  # type: ignore[no-untyped-call]

    def _paths(self) -> list[str]:
        return [t.path for t in self.daemon.transactions.values()]

    @dbus_property(access=PropertyAccess.READ)
    def Version(self) -> S:
        return __version__

    @dbus_property(access=PropertyAccess.READ)
    def State(self) -> S:
        return self.daemon.state

    @dbus_property(access=PropertyAccess.READ)
    def LockHolder(self) -> S:
        return self.daemon.lock_holder

    @dbus_property(access=PropertyAccess.READ)
    def Transactions(self) -> AO:
        return self._paths()

    @dbus_property(access=PropertyAccess.READ)
    def Generation(self) -> T:
        return self.daemon.generation

    @dbus_property(access=PropertyAccess.READ)
    def LastRefresh(self) -> T:
        return self.daemon.last_refresh

    @dbus_property(access=PropertyAccess.READ)
    def UpdatesAvailable(self) -> U:
        try:
            return len(self.daemon.updates())
        except Exception:
            return 0

    @dbus_property(access=PropertyAccess.READ)
    def RebootRequired(self) -> B:
        return os.path.exists(self.daemon.handle.options.root + "run/reboot-required")

    # -- transactions -------------------------------------------------------------------

    async def _new(self, kind: str, targets: list[str], opts: Opts) -> str:
        """A new transaction object; option ``run`` = true authorises and queues it within
        this call (for busctl, whose one-shot connection is gone once the call returns)."""
        run = options.get(opts, "run", bool, False)
        path = self.daemon.create(kind, targets, opts)
        t = self.daemon.transactions[int(path.rsplit("/", 1)[1])]
        if run:
            await t.start()
        return t.path

    @dbus_method()
    async def Refresh(self, opts: Opts) -> O:
        """A refresh into the shadow databases (option run=true: Run it at once)."""
        options.get(opts, "force", bool, False)
        return await self._new("refresh", [], opts)

    @dbus_method()
    async def Sysupgrade(self, opts: Opts) -> O:
        options.get(opts, "allow-downgrade", bool, False)
        return await self._new("sysupgrade", [], opts)

    @dbus_method()
    async def Install(self, targets: AS, opts: Opts) -> O:
        if not targets:
            raise errors.invalid("no targets")
        options.get(opts, "no-sysupgrade", bool, False)
        return await self._new("install", _check_targets(targets), opts)

    @dbus_method()
    async def InstallFiles(self, fds: AH, opts: Opts) -> O:
        if not fds:
            raise errors.invalid("no package files")
        bag = {k: v for k, v in opts.items() if k != "run"}
        path = await self._new("install-files", [], bag)
        t = self.daemon.transactions[int(path.rsplit("/", 1)[1])]
        t.fds = list(fds)
        t.targets = [f"fd:{i}" for i in range(len(fds))]
        if options.get(opts, "run", bool, False):
            await t.start()
        return path

    @dbus_method()
    async def Remove(self, targets: AS, opts: Opts) -> O:
        if not targets:
            raise errors.invalid("no targets")
        return await self._new("remove", _check_targets(targets), opts)

    @dbus_method()
    async def SetReason(self, targets: AS, reason: S, opts: Opts) -> O:
        if reason not in ("explicit", "dependency"):
            raise errors.invalid("reason must be explicit or dependency")
        bag = dict(opts)
        bag["reason"] = Variant("s", reason)
        return await self._new("set-reason", _check_targets(targets), bag)

    @dbus_method()
    async def CleanCache(self, opts: Opts) -> O:
        return await self._new("clean-cache", [], opts)

    @dbus_method()
    async def TrustKey(self, fingerprint: S, opts: Opts) -> O:
        fp = fingerprint.replace(" ", "")
        if not (8 <= len(fp) <= 40) or any(c not in "0123456789abcdefABCDEF" for c in fp):
            raise errors.invalid("not a key fingerprint")
        return await self._new("trust-key", [fp.upper()], opts)

    @dbus_method()
    def GetHistory(self, opts: Opts) -> ListOfDicts:
        """pacman.log's transactions (newest last) and the daemon's record of who asked."""
        limit = options.get(opts, "limit", int, 100)
        rows: list[dict[str, Variant]] = []
        logfile = self.daemon.handle.options.logfile
        try:
            with open(str(logfile), encoding="utf-8", errors="replace") as fh:
                lines = fh.read().splitlines()[-max(0, limit) * 20:]
        except OSError:
            lines = []
        for line in lines:
            if "] [ALPM] " not in line:
                continue
            when, _, rest = line.partition("] [ALPM] ")
            words = rest.split(" ", 2)
            if words and words[0] in ("installed", "upgraded", "removed", "downgraded",
                                      "reinstalled"):
                rows.append({"time": Variant("s", when.lstrip("[")),
                             "action": Variant("s", words[0]),
                             "package": Variant("s", words[1] if len(words) > 1 else ""),
                             "detail": Variant("s", words[2] if len(words) > 2 else ""),
                             "source": Variant("s", "pacman.log")})
        for rec in self.daemon.history:
            rows.append({"time": Variant("s", time.strftime("%Y-%m-%dT%H:%M:%S",
                                                             time.localtime(rec["time"]))),
                         "action": Variant("s", rec["kind"]),
                         "package": Variant("s", " ".join(rec["targets"])),
                         "detail": Variant("s", rec.get("detail") or rec["result"]),
                         "result": Variant("s", rec["result"]),
                         "uid": Variant("u", max(0, rec["uid"])),
                         "client": Variant("s", rec["sender"]),
                         "source": Variant("s", "alpmd")})
        return rows[-limit:] if limit else rows

    @dbus_method()
    async def Quit(self) -> None:
        """Stop the daemon (tests; root only)."""
        sender = busmod.CALLER.get()
        if sender and await busmod.caller_uid(self.daemon.bus, sender) != 0:
            raise errors.code_text(errors.NOT_AUTHORIZED, "not-authorized", "only root may stop alpmd")
        self.daemon.stopping.set()

    # -- signals ------------------------------------------------------------------------

    @dbus_signal()
    def UpdatesChanged(self, count: U) -> U:
        return count

    @dbus_signal()
    def InstalledChanged(self, generation: T) -> T:
        return generation

    @dbus_signal()
    def LockChanged(self, holder: S) -> S:
        return holder

