"""The daemon's shared state: handles, the live transaction objects, and its parts.

Queries read ``daemon.handle``; a writer works on a handle of its own, and the
query handle is replaced (Generation bumps) once the databases changed, so a
query never sees a half-written database. The parts: :mod:`~alpmd.dbus.queue`
(writer FIFO), :mod:`~alpmd.dbus.runner` (engine transactions),
:mod:`~alpmd.dbus.authority` (polkit), :mod:`~alpmd.dbus.recovery` (crash
marker, start-up recovery), :mod:`~alpmd.dbus.watcher` (changes behind our
back), :mod:`~alpmd.dbus.lifecycle` (notify, inhibit, idle exit) and
:mod:`~alpmd.dbus.limits` (caps).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from dbus_fast import DBusError
from dbus_fast.aio import MessageBus
from dbus_fast.signature import Variant

from alpmd.dbus import bus as busmod
from alpmd.dbus import errors, fds, limits, notify
from alpmd.dbus.authority import Authority
from alpmd.dbus.lifecycle import Lifecycle
from alpmd.dbus.packages import package_id, repo_name
from alpmd.dbus.queue import WriterQueue
from alpmd.dbus.recovery import CommitMarker, RecoveryResult, clear_incoming, recover
from alpmd.dbus.runner import Runner, error_details, return_memory
from alpmd.dbus.transaction import Cancelled, TransactionObject
from alpmd.dbus.watcher import Watcher
from alpmd.engine import download
from alpmd.engine.config import load_config
from alpmd.engine.errors import AlpmError
from alpmd.engine.handle import Handle
from alpmd.engine.history import Entry, History, changes_between, installed_versions
from alpmd.engine.query import upgrades

if TYPE_CHECKING:
    from alpmd.dbus.manager import Manager1

log = logging.getLogger("alpmd")
R = TypeVar("R")
KEEP_FINISHED = 60.0


class Daemon:
    """Everything the interfaces share."""

    def __init__(self, bus: MessageBus, config_path: str, *, keep_finished: float = KEEP_FINISHED,
                 idle_timeout: float = 0, caps: limits.Limits = limits.LIMITS) -> None:
        self.bus = bus
        self.config_path = config_path
        self.keep_finished = keep_finished
        self.limits = caps
        self.handle = self.new_handle()
        self.state_dir = self.handle.options.root + "var/lib/alpmd/"
        self.shadow_dir = self.state_dir + "shadow/"
        self.incoming_dir = self.state_dir + "incoming/"
        self.marker = CommitMarker(self.state_dir)
        self.recovery: RecoveryResult | None = None
        self.generation = 1
        self.last_refresh = 0
        self.state = "idle"
        self.transactions: dict[int, TransactionObject] = {}
        self._next = 1
        self.queue = WriterQueue(caps)
        self.current: TransactionObject | None = None
        self.manager: Manager1 | None = None
        self._updates_cache: list[dict[str, Variant]] | None = None
        self.updates_announced: int | None = None
        self.history = History(self.state_dir + "history.sqlite")
        #: history writes still running (GetHistory waits for them)
        self.history_tasks: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()
        self.authority = Authority(bus)
        self.runner = Runner(self)
        self.lifecycle = Lifecycle(idle_timeout)
        self.watcher = Watcher(self)
        self.workers = limits.Workers(caps, self.authority.uid)
        self.share = limits.LoopShare(caps, self.authority.uids.get, self.authority.uid,
                                      bus._process_message)
        bus.add_message_handler(self.share.gate)
        fds.crowded = self.let_go_of_store
        #: the query handles lent to worker threads (how many each), and replaced handles
        #: to release once their last worker gives them back
        self._lent: dict[Handle, int] = {}
        self._retired: set[Handle] = set()
        self._lending = threading.Lock()
        self._letting_go: asyncio.Future[None] | None = None
        self._let_go_again = False
        self.file_bytes = 0
        self._reloading = asyncio.Lock()

    # -- handles ------------------------------------------------------------------------

    def new_handle(self, *, dbpath: str | None = None) -> Handle:
        config = load_config(self.config_path, dbpath_override=dbpath)
        handle, errs = Handle.from_config(config)
        for exc in errs:
            log.warning("could not register a database: %s", exc.message)
        return handle

    def shadow_handle(self) -> Handle:
        """The sync databases as the last Refresh saw them (in the shadow directory; its
        local database is not used)."""
        Path(self.shadow_dir).mkdir(parents=True, exist_ok=True)
        return self.new_handle(dbpath=self.shadow_dir)

    def let_go_of_store(self) -> None:
        """Many client descriptors of files the daemon keeps open are parked (see
        :mod:`~alpmd.dbus.fds`): close the query handle's local store, close the parked
        descriptors of its files, open it again — in a worker thread, under the store's own
        lock (a query reading it waits a moment, never finds it closed), one at a time (a
        request while one runs starts another after it)."""
        if self._letting_go is not None:
            self._let_go_again = True
            return
        before = self.watcher.stamp()

        def work() -> None:
            self.on_query_handle(lambda h: h.localdb.backend.reopen(
                lambda: fds.opening(unpark_first=True)))

        def done(fut: asyncio.Future[None]) -> None:
            self._letting_go = None
            self.watcher.touched(before)
            if not fut.cancelled() and fut.exception() is not None:
                log.error("could not reopen the local database: %s", fut.exception())
            if self._let_go_again:
                self._let_go_again = False
                self.let_go_of_store()
        self._letting_go = asyncio.get_running_loop().run_in_executor(None, work)
        self._letting_go.add_done_callback(done)

    @property
    def letting_go(self) -> bool:
        """Whether the query store is being closed and reopened (not a change to reload for)."""
        return self._letting_go is not None

    def on_query_handle(self, fn: Callable[[Handle], R]) -> R:
        """``fn(handle)`` on the query handle, in a worker thread: a handle replaced meanwhile
        (:meth:`publish`) is released only once its last such worker is done."""
        with self._lending:
            h = self.handle
            self._lent[h] = self._lent.get(h, 0) + 1
        try:
            return fn(h)
        finally:
            with self._lending:
                left = self._lent.pop(h) - 1
                if left:
                    self._lent[h] = left
                last = not left and h in self._retired
                if last:  # (one worker done of several: the handle stays retired)
                    self._retired.discard(h)
            if last:
                self._release(h)

    def retire(self, old: Handle) -> None:
        """Release a replaced query handle (in a thread), or leave that to its last worker."""
        with self._lending:
            if old in self._lent:
                self._retired.add(old)
                return
        self._release(old)

    @staticmethod
    def _release(h: Handle) -> None:
        h.release()
        fds.unpark()  # (descriptors of its store's files, kept while it had them open)

    def loaded_handle(self) -> Handle:
        """A new query handle with its databases already read (run it off the event loop)."""
        handle = self.new_handle()
        try:
            handle.load_databases(compact=True)
        except BaseException:
            handle.release()
            raise
        return handle

    async def reload(self) -> None:
        """Re-open the databases for queries (at start, after a commit or a change behind
        our back). The new handle's databases are read in a worker thread while queries are
        still answered from the previous handle; it is published (Generation,
        InstalledChanged) only once loaded, so no query parses a database on the event loop
        and no two threads run one handle's lazy loaders. Reloads run one at a time."""
        async with self._reloading:
            handle = await asyncio.to_thread(self.loaded_handle)
            old = self.publish(handle)
            await asyncio.to_thread(self.retire, old)
            # the parse's garbage and the old handle's tables, back to the system
            await asyncio.to_thread(return_memory)

    def publish(self, handle: Handle) -> Handle:
        """Make ``handle`` (loaded) the query handle and tell the clients; the one it
        replaced (for :meth:`retire`: a worker may still read it, and closing its store is
        I/O for a thread)."""
        with self._lending:
            old = self.handle
            self.handle = handle
        self.watcher.rebase()
        self._updates_cache = None
        self.generation += 1
        if self.manager is not None:
            self.manager.changed("Generation", "UpdatesAvailable")
            self.manager.InstalledChanged(self.generation)
            self.announce_updates(only_if_changed=True)
        return old

    def refreshed(self) -> None:
        self.last_refresh = int(time.time())
        self._updates_cache = None
        if self.manager is not None:
            self.manager.changed("LastRefresh", "UpdatesAvailable")
        self.announce_updates()

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

    def updates(self) -> list[dict[str, Variant]]:
        if self._updates_cache is not None:
            return self._updates_cache
        rows: list[dict[str, Variant]] = []
        shadow = self.shadow_handle()
        try:
            if any(os.path.exists(db.path) for db in shadow.syncdbs):
                for old, new in upgrades(self.handle, shadow):
                    rows.append({
                        "name": Variant("s", old.name),
                        "old": Variant("s", old.version),
                        "new": Variant("s", new.version),
                        "repo": Variant("s", repo_name(new)),
                        "id": Variant("s", package_id(new)),
                        "download_size": Variant("t", max(0, new.csize or 0)),
                        "installed_size": Variant("t", max(0, new.isize or 0)),
                        "downloaded": Variant("b", download.find_cached(self.handle, new)
                                              is not None),
                    })
        finally:
            shadow.release()
        self._updates_cache = rows
        return rows

    # -- transactions -------------------------------------------------------------------

    def create(self, kind: str, targets: list[str], opts: dict[str, object], sender: str,
               uid: int) -> TransactionObject:
        """A new transaction object on the bus (LimitExceeded past a cap)."""
        limits.check_new_transaction(self.transactions.values(), sender, uid, self.limits)
        t = TransactionObject(self, self._next, kind, targets, opts, uid, sender)
        self._next += 1
        self.transactions[t.n] = t
        # the bus announces the new object to everybody (InterfacesAdded, with its
        # properties): read them as a stranger would, so the details stay private
        token = busmod.CALLER.set("(everybody)")
        try:
            self.bus.export(t.path, t)
        finally:
            busmod.CALLER.reset(token)
        self.lifecycle.touch()
        if self.manager is not None:
            self.manager.changed("Transactions")
        return t

    def get(self, path: str) -> TransactionObject:
        return self.transactions[int(path.rsplit("/", 1)[1])]

    async def start(self, t: TransactionObject) -> None:
        """Authorise (polkit) and queue; a refusal finishes the transaction."""
        self.queue.check_room(t.sender)
        t.set_state("waiting-auth")
        try:
            await self.authorize(t)
            self.queue.check_room(t.sender)
        except DBusError as exc:
            t.finish("failed", exc.type, exc.text)
            raise
        if t.cancelled:
            return
        self.queue.push(t)

    async def authorize(self, t: TransactionObject) -> None:
        if t.sender:
            t.uid = await self.authority.uid(t.sender)
            t.changed("Uid")
        for action in t.needed_actions():
            if action in t.authorized:
                continue
            await self.authority.check(t.sender, action, t.auth_details(),
                                       interactive=bool(t.hints.get("interactive")))
            t.authorized.add(action)

    def cancel_queued(self, t: TransactionObject) -> None:
        self.queue.remove(t)

    def finished(self, t: TransactionObject) -> None:
        for f in self.queue.finished(t):
            f.error_details = t.error_details
            f.finish(t.result, *t.error)
        if t.authorized:
            # only what polkit let run: every refused or abandoned request of anybody
            # (each with up to 10,000 targets) was a row, and the history grew without end
            self.spawn_history(self.record_history(t))
        notify.event(f"transaction {t.n} ({t.kind}) finished: {t.result}",
                     alpmd_transaction=t.n, alpmd_uid=t.uid, alpmd_kind=t.kind,
                     alpmd_result=t.result)
        self.release_files(t)
        asyncio.get_running_loop().call_later(self.keep_finished, self.drop, [t])

    def drop_unstarted(self, t: TransactionObject, why: str) -> None:
        """A transaction whose creating call failed: gone at once."""
        t.finish("failed", errors.INTERNAL, why)
        self.drop([t])

    def release_files(self, t: TransactionObject) -> None:
        for path in t.files:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self.file_bytes -= t.file_bytes
        t.file_bytes = 0
        t.files = []

    def drop(self, ts: Iterable[TransactionObject]) -> None:
        """Take finished transactions off the bus; one Transactions change for all."""
        dropped = False
        for t in ts:
            if self.transactions.pop(t.n, None) is not None:
                with contextlib.suppress(Exception):
                    self.bus.unexport(t.path, t)
                self.release_files(t)
                dropped = True
        if dropped and self.manager is not None:
            self.manager.changed("Transactions")

    def client_gone(self, name: str) -> None:
        """A client left: its unstarted transactions go, its open questions take the default."""
        self.authority.forget(name)
        gone: list[TransactionObject] = []
        for t in self.transactions.values():
            if t.sender != name:
                continue
            if t.state == "setup":
                t.cancelled = True
                t.finish("cancelled", errors.CANCELLED, "the client left")
                gone.append(t)
            else:
                t.owner_left()
        self.drop(gone)

    # -- the writer ---------------------------------------------------------------------

    async def writer(self) -> None:
        while True:
            t = await self.queue.pop()
            self.current = t
            self.set_state("busy")
            try:
                await self.runner.run(t)
                t.finish("success")
            except Cancelled:
                t.finish("cancelled", errors.CANCELLED, "cancelled")
            except DBusError as exc:
                t.finish("cancelled" if exc.type == errors.CANCELLED else "failed",
                         exc.type, exc.text)
            except AlpmError as exc:
                t.error_details = error_details(exc)
                err = errors.from_alpm(exc, t.locale)
                t.finish("cancelled" if t.cancelled else "failed", err.type, err.text)
            except Exception as exc:
                err = errors.internal(exc)
                if err.type == errors.INTERNAL:
                    log.exception("transaction %d failed", t.n)
                else:
                    log.error("transaction %d failed: %s", t.n, err.text)
                t.finish("failed", err.type, err.text)
            finally:
                self.current = None
                self.lifecycle.touch()
                self.set_state("idle")
                if self.watcher.changed_behind():
                    with contextlib.suppress(Exception):
                        await self.reload()
                # the finished object lives on the bus until dropped, not in this loop
                del t

    def set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.manager is not None:
                self.manager.changed("State")
            self.lifecycle.status(state)

    # -- commits and crashes ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def committing(self, h: Handle) -> AsyncIterator[None]:
        """Mark a commit in progress (for the next start after a crash) and hold off shutdown."""
        with self.marker.held(h.lockfile):
            async with self.lifecycle.inhibited():
                yield

    def recover(self) -> RecoveryResult:
        """Start-up: repair what a killed commit left (in a thread, before the service's
        :meth:`reload` opens the databases for queries)."""
        h = self.new_handle()
        try:
            out = recover(h, self.marker)
        finally:
            h.release()
        clear_incoming(self.incoming_dir, out)
        if out.result != "clean":
            try:
                self.history.record(Entry(kind="recovery", targets=list(out.pending),
                                          started=float(out.time), uid=0, result=out.result,
                                          error="; ".join(out.actions + out.unresolved)))
            except AlpmError as exc:
                log.error("could not record the recovery: %s", exc.message)
        self.recovery = out
        return out

    # -- history ------------------------------------------------------------------------

    def spawn_history(self, work: Coroutine[None, None, None]) -> None:
        """Run a history write in the background; GetHistory waits for it."""
        task = asyncio.ensure_future(work)
        self.history_tasks.add(task)
        task.add_done_callback(self.history_tasks.discard)

    async def history_settled(self) -> None:
        """Wait for the history writes started so far, then read pacman.log's news."""
        if self.history_tasks:
            await asyncio.gather(*list(self.history_tasks), return_exceptions=True)
        await self.import_history()

    async def import_history(self) -> None:
        """What pacman (or anybody) did behind our back, from pacman.log (off the loop)."""
        try:
            await asyncio.to_thread(self.history.import_log, str(self.handle.options.logfile))
        except AlpmError as exc:
            log.error("could not read pacman.log into the history: %s", exc.message)

    async def record_history(self, t: TransactionObject) -> None:
        """Store a finished transaction: who asked, what moved, how it ended."""
        started = t.started_wall or time.time()

        def work() -> None:
            changes = []
            if t.before is not None:
                h = self.new_handle()
                try:
                    changes = changes_between(t.before, installed_versions(h))
                finally:
                    h.release()
            code, message = t.error
            self.history.record(Entry(
                kind=t.kind, targets=list(t.targets), started=started,
                duration=max(0.0, time.time() - started), uid=t.uid, client=t.sender,
                result=t.result, error=message or code, changes=changes))
        try:
            await asyncio.to_thread(work)
        except AlpmError as exc:
            log.error("could not record transaction %d: %s", t.n, exc.message)

    # -- package files from clients -----------------------------------------------------

    def take_files(self, t: TransactionObject, paths: list[str], size: int) -> None:
        t.files = paths
        t.file_bytes = size
        self.file_bytes += size

    def incoming_path(self, n: int, i: int) -> str:
        Path(self.incoming_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.incoming_dir, 0o700)
        return f"{self.incoming_dir}{os.getpid()}-{n}-{i}.pkg"


__all__ = ["Daemon", "KEEP_FINISHED"]
