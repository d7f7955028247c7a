"""The daemon's shared state: handles, the live transaction objects, and its parts.

Queries read ``daemon.handle``; a writer works on a handle of its own, and the
query handle is replaced (Generation bumps) once the databases changed, so a
query never sees a half-written database. The parts: :mod:`~alpmd.dbus.handles`
(the query handle, lent to workers), :mod:`~alpmd.dbus.queue`
(writer FIFO), :mod:`~alpmd.dbus.runner` (engine transactions),
:mod:`~alpmd.dbus.authority` (polkit), :mod:`~alpmd.dbus.recovery` (crash
marker, start-up recovery), :mod:`~alpmd.dbus.watcher` (changes behind our
back), :mod:`~alpmd.dbus.lifecycle` (notify, inhibit, idle exit),
:mod:`~alpmd.dbus.limits` (caps), :mod:`~alpmd.dbus.updates` (the update list) and
:mod:`~alpmd.dbus.record` (the history of transactions).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dbus_fast import DBusError
from dbus_fast.aio import MessageBus

from alpmd.dbus import bus as busmod
from alpmd.dbus import errors, limits, notify
from alpmd.dbus.authority import Authority
from alpmd.dbus.handles import QueryHandles
from alpmd.dbus.lifecycle import Lifecycle
from alpmd.dbus.queue import WriterQueue
from alpmd.dbus.record import Record
from alpmd.dbus.recovery import CommitMarker, RecoveryResult, clear_incoming, recover
from alpmd.dbus.runner import Runner, error_details, return_memory
from alpmd.dbus.transaction import Cancelled, TransactionObject
from alpmd.dbus.updates import Rows, Updates
from alpmd.dbus.watcher import Watcher
from alpmd.engine.errors import AlpmError
from alpmd.engine.handle import Handle

if TYPE_CHECKING:
    from alpmd.dbus.manager import Manager1

log = logging.getLogger("alpmd")
KEEP_FINISHED = 60.0


class Daemon:
    """Everything the interfaces share."""

    def __init__(self, bus: MessageBus, config_path: str, *, keep_finished: float = KEEP_FINISHED,
                 idle_timeout: float = 0, caps: limits.Limits = limits.LIMITS,
                 ledger: limits.Ledger | None = None) -> None:
        self.bus = bus
        self.config_path = config_path
        self.keep_finished = keep_finished
        self.limits = caps
        self.handles = QueryHandles(config_path)
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
        self.updates = Updates(self.shadow_handle)
        self.record = Record(self.state_dir + "history.sqlite",
                             lambda: str(self.handle.options.logfile))
        self.stopping = asyncio.Event()
        self.authority = Authority(bus)
        self.runner = Runner(self)
        self.lifecycle = Lifecycle(idle_timeout)
        self.watcher = Watcher(self)
        self.workers = limits.Workers(caps, self.authority.uid)
        # (``ledger``: the one the bus relay admits messages with, see limits.Ledger)
        ledger = ledger if ledger is not None else limits.Ledger(caps)
        ledger.uid_of = self.authority.uids.get
        self.share = limits.LoopShare(caps, self.authority.uids.get, self.authority.uid,
                                      bus._process_message, ledger)
        bus.add_message_handler(self.share.gate)
        self.file_bytes = 0
        self._reloading = asyncio.Lock()

    # -- handles ------------------------------------------------------------------------

    @property
    def handle(self) -> Handle:
        """The query handle (see :mod:`~alpmd.dbus.handles`)."""
        return self.handles.current

    def shadow_handle(self) -> Handle:
        """The sync databases as the last Refresh saw them (in the shadow directory; its
        local database is not used)."""
        Path(self.shadow_dir).mkdir(parents=True, exist_ok=True)
        return self.handles.new(dbpath=self.shadow_dir)

    async def reload(self) -> None:
        """Re-open the databases for queries (at start, after a commit or a change behind
        our back). The new handle's databases are read in a worker thread while queries are
        still answered from the previous handle; it is published (Generation,
        InstalledChanged) only once loaded, so no query parses a database on the event loop
        and no two threads run one handle's lazy loaders. Reloads run one at a time."""
        async with self._reloading:
            handle = await asyncio.to_thread(self.handles.loaded)
            old = self.publish(handle)
            await self.recount_updates()
            await asyncio.to_thread(self.handles.retire, old)
            # the parse's garbage and the old handle's tables, back to the system
            await asyncio.to_thread(return_memory)

    def publish(self, handle: Handle) -> Handle:
        """Make ``handle`` (loaded) the query handle and tell the clients; the one it
        replaced (for :meth:`QueryHandles.retire`: a worker may still read it, and closing
        its store is I/O for a thread)."""
        old = self.handles.swap(handle)
        self.watcher.rebase()
        self.updates.stale()
        self.generation += 1
        if self.manager is not None:
            self.manager.changed("Generation")
            self.manager.InstalledChanged(self.generation)
        return old

    async def refreshed(self) -> None:
        """A Refresh wrote new shadow databases: LastRefresh, and the update list again."""
        self.last_refresh = int(time.time())
        self.updates.stale()
        if self.manager is not None:
            self.manager.changed("LastRefresh")
        await self.recount_updates(always=True)

    async def recount_updates(self, *, always: bool = False) -> None:
        """Work the update list out again in a worker thread, then UpdatesChanged(count):
        after every Refresh (``always``), and when the installed set moved the count."""
        change = self.updates.latest
        try:
            rows = await asyncio.to_thread(self.handles.lend, self.updates.work_out)
        except Exception:
            log.exception("could not compute the updates")
            return
        if not self.updates.keep(rows, change):
            return  # a newer change's recount follows
        count = self.updates.to_announce(always=always)
        if count is not None and self.manager is not None:
            self.manager.changed("UpdatesAvailable")
            self.manager.UpdatesChanged(count)

    async def update_rows(self, client: str, work_out: Callable[[Handle], Rows]) -> Rows:
        """The update list; worked out by ``work_out`` in a worker (the client's) when not
        known yet."""
        rows = self.updates.rows
        if rows is not None:
            return rows
        change = self.updates.latest
        rows = await self.workers.run(client, self.limits.search_deadline + 5,
                                      lambda: self.handles.lend(work_out), "the update list")
        self.updates.keep(rows, change)
        return rows

    # -- transactions -------------------------------------------------------------------

    def create(self, kind: str, targets: list[str], opts: dict[str, object], sender: str,
               uid: int) -> TransactionObject:
        """A new transaction object on the bus (LimitExceeded past a cap; NotAuthorized for
        a caller that has left: nobody would drop its transaction)."""
        if sender:
            self.authority.still_here(sender)
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
            self.record.spawn(self.record.transaction(t))
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
        h = self.handles.new()
        try:
            out = recover(h, self.marker)
        finally:
            h.release()
        clear_incoming(self.incoming_dir, out)
        if out.result != "clean":
            self.record.recovery(out)
        self.recovery = out
        return out

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
