"""The daemon's handles: a new one for each writer and job, and the one queries read.

Queries read one handle whose databases were loaded before it was published, and it
is replaced whole after a change, so no query sees a half-written database. A worker
thread borrows it (:meth:`QueryHandles.lend`); a replaced handle is released by the
last worker still reading it, or at once in a thread when none is (:meth:`retire`), so
no query finds its store closed and the event loop never closes one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from alpmd.engine.config import load_config
from alpmd.engine.handle import Handle

log = logging.getLogger("alpmd")
R = TypeVar("R")


class QueryHandles:
    """Handles on the daemon's configuration, and the current query handle."""

    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self.current = self.new()
        #: the query handles lent to worker threads (how many each), and replaced handles
        #: to release once their last worker gives them back
        self._lent: dict[Handle, int] = {}
        self._retired: set[Handle] = set()
        self._lock = threading.Lock()

    def new(self, *, dbpath: str | None = None) -> Handle:
        """A fresh handle (its databases not read yet); ``dbpath`` instead of the configured."""
        config = load_config(self.config_path, dbpath_override=dbpath)
        handle, errs = Handle.from_config(config)
        for exc in errs:
            log.warning("could not register a database: %s", exc.message)
        return handle

    def loaded(self) -> Handle:
        """A new query handle with its databases already read (run it off the event loop)."""
        handle = self.new()
        try:
            handle.load_databases(compact=True)
        except BaseException:
            handle.release()
            raise
        return handle

    def lend(self, fn: Callable[[Handle], R]) -> R:
        """``fn(handle)`` on the query handle, in a worker thread: a handle replaced meanwhile
        (:meth:`swap`) is released only once its last such worker is done."""
        with self._lock:
            h = self.current
            self._lent[h] = self._lent.get(h, 0) + 1
        try:
            return fn(h)
        finally:
            with self._lock:
                left = self._lent.pop(h) - 1
                if left:
                    self._lent[h] = left
                last = not left and h in self._retired
                if last:  # (one worker done of several: the handle stays retired)
                    self._retired.discard(h)
            if last:
                h.release()

    def swap(self, handle: Handle) -> Handle:
        """Make ``handle`` (loaded) the query handle; the one it replaced, for :meth:`retire`."""
        with self._lock:
            old, self.current = self.current, handle
        return old

    def retire(self, old: Handle) -> None:
        """Release a replaced query handle (in a thread), or leave that to its last worker."""
        with self._lock:
            if old in self._lent:
                self._retired.add(old)
                return
        old.release()
