"""Regular-expression searches in a child process the daemon can kill.

Python's regular expressions hold the interpreter for as long as a match runs,
and a pattern such as ``((.+)+)+!`` runs for minutes: no thread can bound it.
So a search whose terms carry regex syntax runs in a separate process (started
fresh, never forked from the threaded daemon) with its own handle on the same
configuration; past the deadline that process is killed and the caller gets
``org.alpm.Error.Timeout``. Plain terms stay in the daemon (their matching is
linear).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import threading
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger("alpmd")
#: A child with nothing to do for this long exits (the next search starts another).
IDLE_EXIT = 300.0
REGEX_SYNTAX = frozenset("\\.[]()*+?{}|^$")


def needs_isolation(terms: list[str]) -> bool:
    """Whether any term is a regular expression (not a plain word)."""
    return any(REGEX_SYNTAX.intersection(t) for t in terms)


@dataclass(frozen=True)
class Request:
    generation: int
    terms: list[str]
    scope: str
    repos: list[str]
    names_only: bool
    offset: int
    limit: int


class SearchTimeout(Exception):
    """The child did not answer in time (and was killed)."""


class SearchFailed(Exception):
    """The child raised: ``code`` is the engine's error code when it was an AlpmError."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Child:
    def __init__(self, config_path: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_end = ctx.Pipe()
        self.proc: BaseProcess = ctx.Process(target=_serve, args=(child_end, config_path),
                                             daemon=True, name="alpmd-search")
        self.proc.start()
        child_end.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class Searcher:
    """A few children, each answering one search at a time (blocking calls: run them in a
    worker thread)."""

    def __init__(self, config_path: str, children: int = 2) -> None:
        self.config_path = config_path
        self.idle: list[_Child] = []
        self.slots = threading.BoundedSemaphore(children)
        self.lock = threading.Lock()

    def search(self, req: Request, deadline: float) -> list[list[Any]]:
        if not self.slots.acquire(timeout=deadline):
            raise SearchTimeout("no search process became free in time")
        try:
            with self.lock:
                child = self.idle.pop() if self.idle else None
            if child is None or not child.proc.is_alive():
                child = _Child(self.config_path)
            try:
                child.conn.send(req)
                if not child.conn.poll(deadline):
                    raise SearchTimeout(f"the search took longer than {deadline:g} s")
                kind, payload = child.conn.recv()
            except (SearchTimeout, EOFError, OSError):
                child.kill()
                raise
            with self.lock:
                self.idle.append(child)
            if kind == "ok":
                rows: list[list[Any]] = payload
                return rows
            code, message = payload
            raise SearchFailed(code, message)
        finally:
            self.slots.release()

    def close(self) -> None:
        with self.lock:
            children, self.idle = self.idle, []
        for c in children:
            c.kill()


def _serve(conn: multiprocessing.connection.Connection, config_path: str) -> None:
    """The child: answer requests over a handle opened once per generation."""
    from alpmd.dbus.query import search_rows
    from alpmd.engine.config import load_config
    from alpmd.engine.errors import AlpmError
    from alpmd.engine.handle import Handle

    handle: Handle | None = None
    generation = -1
    while conn.poll(IDLE_EXIT):
        try:
            req: Request = conn.recv()
        except EOFError:
            return
        try:
            if handle is None or req.generation != generation:
                if handle is not None:
                    handle.release()
                handle, _ = Handle.from_config(load_config(config_path))
                generation = req.generation
            rows = search_rows(handle, req.terms, req.scope, req.repos, req.names_only,
                               req.offset, req.limit)
            conn.send(("ok", rows))
        except AlpmError as exc:
            conn.send(("error", (exc.code.value, exc.message)))
        except Exception as exc:
            conn.send(("error", ("internal", f"internal error ({type(exc).__name__})")))
