"""Changes behind our back: another program (pacman) wrote the databases or holds the lock.

Twice a second: reload the query handle when the databases' directories moved,
report who holds the lock (``LockHolder``, ``LockChanged``), drop finished
transactions past their time, ping the watchdog, and end an idle daemon.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alpmd.dbus.daemon import Daemon

INTERVAL = 0.5


class Watcher:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.lock_holder = ""
        self._stamp: tuple[int, ...] = ()

    def stamp(self) -> tuple[int, ...]:
        """The local store's own stamp (any backend) and the sync directory's mtime."""
        h = self.daemon.handle
        try:
            sync = os.stat(h.dbpath + "sync").st_mtime_ns
        except OSError:
            sync = 0
        return (h.localdb.stamp(), sync)

    def rebase(self) -> None:
        """The query handle was just (re)opened: this is the state it saw."""
        self._stamp = self.stamp()

    def changed_behind(self) -> bool:
        return self.stamp() != self._stamp

    def set_holder(self, holder: str) -> None:
        if holder != self.lock_holder:
            self.lock_holder = holder
            m = self.daemon.manager
            if m is not None:
                m.changed("LockHolder")
                m.LockChanged(holder)

    async def check(self) -> None:
        d = self.daemon
        if d.current is None and self.changed_behind():
            await d.reload()
            d.record.spawn(d.record.import_log())
        # (a look at every process's descriptors, as many as their users care to open:
        # never on the event loop)
        holder = await asyncio.to_thread(d.handle.lock_holder)
        if d.current is not None and d.current.state in ("committing", "hooks"):
            holder = holder or self.lock_holder
        if holder != self.lock_holder:
            self.set_holder(holder)
            if holder and d.current is None:
                d.set_state("waiting-lock" if d.queue else d.state)
        now = time.monotonic()
        d.drop([t for t in d.transactions.values()
                if t.state == "finished" and t.finished_at is not None
                and now - t.finished_at > d.keep_finished])
        d.lifecycle.tick()
        busy = d.current is not None or bool(d.queue) or any(
            t.state != "finished" for t in d.transactions.values())
        if d.lifecycle.idle_expired(busy):
            d.stopping.set()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                await self.check()
            except Exception:  # the watcher must outlive a bad moment (a full disk...)
                import logging
                logging.getLogger("alpmd").exception("watcher")
