"""The daemon's history (``history.sqlite``): what each transaction did, for GetHistory.

Rows are written in worker threads after a transaction ends, so the event loop
never waits on SQLite; GetHistory first waits for the writes started so far
(:meth:`Record.settled`) and reads pacman.log's news, what pacman or anybody did
behind the daemon's back, into it. The stop waits (bounded) for the last writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine

from alpmd.dbus.recovery import RecoveryResult
from alpmd.dbus.transaction import TransactionObject
from alpmd.engine.errors import AlpmError
from alpmd.engine.history import Entry, History

log = logging.getLogger("alpmd")


class Record:
    """The history database and the writes to it still running."""

    def __init__(self, path: str, logfile: Callable[[], str]) -> None:
        self.db = History(path)
        self._logfile = logfile
        self.writes: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[None, None, None]) -> None:
        """Run a history write in the background; GetHistory waits for it."""
        task = asyncio.ensure_future(work)
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)

    async def settled(self) -> None:
        """Wait for the history writes started so far, then read pacman.log's news."""
        if self.writes:
            await asyncio.gather(*list(self.writes), return_exceptions=True)
        await self.import_log()

    async def import_log(self) -> None:
        """What pacman (or anybody) did behind our back, from pacman.log (off the loop)."""
        try:
            await asyncio.to_thread(self.db.import_log, self._logfile())
        except AlpmError as exc:
            log.error("could not read pacman.log into the history: %s", exc.message)

    async def transaction(self, t: TransactionObject) -> None:
        """Store a finished transaction: who asked, what moved, how it ended."""
        started = t.started_wall or time.time()

        def work() -> None:
            code, message = t.error
            self.db.record(Entry(
                kind=t.kind, targets=list(t.targets), started=started,
                duration=max(0.0, time.time() - started), uid=t.uid, client=t.sender,
                result=t.result, error=message or code, changes=list(t.changes)))
        try:
            await asyncio.to_thread(work)
        except AlpmError as exc:
            log.error("could not record transaction %d: %s", t.n, exc.message)

    def recovery(self, out: RecoveryResult) -> None:
        """Store what the start-up repair did (called in its thread)."""
        try:
            self.db.record(Entry(kind="recovery", targets=list(out.pending),
                                 started=float(out.time), uid=0, result=out.result,
                                 error="; ".join(out.actions + out.unresolved)))
        except AlpmError as exc:
            log.error("could not record the recovery: %s", exc.message)

    async def stopping(self, timeout: float) -> None:
        """At the stop: the rows still being written are not lost (at most ``timeout``)."""
        if self.writes:
            await asyncio.wait(list(self.writes), timeout=timeout)
