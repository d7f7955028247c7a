"""The transaction record: who asked for what, what changed, when, how it ended.

One small SQLite file (``<state dir>/history.sqlite``) survives restarts. The
daemon :meth:`History.record`\\ s its own transactions; what pacman (or ``alpm``)
did behind its back is read from pacman.log by :meth:`History.import_log`,
incrementally from where the last read stopped, so neither call reads a whole log.
:meth:`History.page` answers from indexes (offset, limit, package, time window).
Every call opens its own connection: any thread may call (the daemon calls from
worker threads, never on its event loop).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from alpmd.engine.db import sqlitefiles
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.handle import Handle
from alpmd.engine.version import vercmp

__all__ = ["DAEMON_PREFIX", "Change", "Entry", "History", "changes_between", "installed_versions", "parse_log"]

SCHEMA_VERSION = 1
#: The largest integer SQLite stores (a page's offset or limit past it is clamped to it).
_SQL_INT_MAX = 2**63 - 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT UNIQUE,
    started REAL NOT NULL,
    duration REAL NOT NULL,
    kind TEXT NOT NULL,
    targets TEXT NOT NULL,
    uid INTEGER NOT NULL,
    client TEXT NOT NULL,
    result TEXT NOT NULL,
    error TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_started ON entries (started);
CREATE TABLE IF NOT EXISTS changes (
    entry INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    old TEXT,
    new TEXT
);
CREATE INDEX IF NOT EXISTS changes_name ON changes (name, entry);
CREATE INDEX IF NOT EXISTS changes_entry ON changes (entry);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Change:
    """One package's move: ``old`` is None for an install, ``new`` None for a removal."""

    name: str
    old: str | None
    new: str | None

    @property
    def action(self) -> str:
        """pacman.log's verb: installed, removed, upgraded, downgraded or reinstalled."""
        if self.old is None:
            return "installed"
        if self.new is None:
            return "removed"
        c = vercmp(self.new, self.old)
        return "upgraded" if c > 0 else "downgraded" if c < 0 else "reinstalled"


@dataclass
class Entry:
    """One transaction. ``uid`` is -1 when unknown (read from pacman.log)."""

    kind: str
    targets: list[str]
    started: float
    duration: float = 0.0
    uid: int = -1
    client: str = ""
    result: str = ""
    error: str = ""
    changes: list[Change] = field(default_factory=list)
    #: "alpmd" (recorded by the daemon) or "pacman.log" (found in the log)
    source: str = "alpmd"
    id: int = 0


def changes_between(before: Mapping[str, str], after: Mapping[str, str]) -> list[Change]:
    """What moved between two ``name -> version`` views of the local database, by name."""
    out = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old != new:
            out.append(Change(name, old, new))
    return out


# -- pacman.log -----------------------------------------------------------------------------

_LINE = re.compile(r"\[(?P<when>[^\]]+)\] \[(?P<who>[^\]]+)\] (?P<text>.*)")
_PKG = re.compile(r"(?P<verb>installed|removed|upgraded|downgraded|reinstalled) (?P<name>\S+) "
                  r"\((?P<v1>[^ )]+)(?: -> (?P<v2>[^ )]+))?\)$")
#: pacman.log prefix of the daemon's own lines
DAEMON_PREFIX = "ALPMD"
_ENDS = {"transaction completed": "success", "transaction failed": "failed",
         "transaction interrupted": "cancelled"}


def _when(stamp: str) -> float:
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M"):
        with contextlib.suppress(ValueError):
            return datetime.datetime.strptime(stamp, fmt).timestamp()
    return 0.0


def parse_log(data: bytes, *, final: bool = False) -> tuple[list[tuple[str, Entry]], int]:
    """Transactions that pacman.log bytes show were run by a command (``[PACMAN] Running``).

    Returns ``(key, entry)`` pairs and how many bytes were consumed: up to the end
    of the last whole transaction, so a transaction still being written is read
    next time (all of ``data`` with ``final``). Transactions with no command line
    before them, or with a ``[ALPMD]`` line after it (the daemon writes one before
    each commit; a ``pacman -Sy`` may have come before), are the daemon's own: it
    records those itself, so they are skipped.
    """
    entries: list[tuple[str, Entry]] = []
    command: str | None = None
    block: list[bytes] = []
    current: Entry | None = None
    consumed = 0
    pos = 0
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n") and not final:
            break
        pos += len(raw)
        m = _LINE.match(raw.decode("utf-8", "replace").rstrip("\n"))
        if m is None:
            continue
        who, text = m["who"], m["text"]
        if who == "PACMAN" and text.startswith("Running '") and current is None:
            command = text[len("Running '"):].rstrip("'")
            continue
        if who == DAEMON_PREFIX and current is None:
            command = None          # what follows is the daemon's, recorded by itself
            continue
        if who != "ALPM":
            continue
        if text == "transaction started":
            current = Entry(kind="pacman", targets=[], started=_when(m["when"]))
            block = [raw]
            continue
        if current is None:
            continue
        block.append(raw)
        pm = _PKG.match(text)
        if pm is not None:
            verb, v1, v2 = pm["verb"], pm["v1"], pm["v2"]
            old = None if verb == "installed" else v1
            new = None if verb == "removed" else (v2 if v2 is not None else v1)
            current.changes.append(Change(pm["name"], old, new))
        elif text in _ENDS:
            current.result = _ENDS[text]
            current.duration = max(0.0, _when(m["when"]) - current.started)
            if command is not None:
                argv = command.split()
                current.client = os.path.basename(argv[0]) if argv else "pacman"
                current.kind = current.client
                current.targets = [command]
                key = "log:" + hashlib.sha256(b"".join(block)).hexdigest()
                entries.append((key, current))
            current, command, block = None, None, []
            consumed = pos
    if current is None and command is None:
        consumed = pos
    return entries, consumed


# -- the store ------------------------------------------------------------------------------


class History:
    """The record in one SQLite file (created on first use)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        sqlitefiles.note(self.path)

    def _private(self) -> None:
        """Only its owner may open the file (and its -wal, -shm: SQLite makes them with the
        file's mode): a descriptor of it, sent to the daemon and closed there, would drop
        the daemon's SQLite locks. By path, never by opening it (which would do the same)."""
        for name in (str(self.path), f"{self.path}-wal", f"{self.path}-shm"):
            with contextlib.suppress(FileNotFoundError):
                if os.stat(name).st_mode & 0o077:
                    os.chmod(name, 0o600)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            self._private()
        except (OSError, sqlite3.Error) as exc:
            raise AlpmError(ErrorCode.SYSTEM, f"cannot open the history {self.path}: {exc}",
                            path=str(self.path)) from exc
        try:
            con.execute("PRAGMA foreign_keys = ON")
            con.execute("PRAGMA journal_mode = WAL")
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise AlpmError(ErrorCode.SYSTEM, f"history {self.path} is of a newer "
                                f"version ({version}) than this alpmd knows", path=str(self.path))
            if version != SCHEMA_VERSION:
                con.executescript(_SCHEMA)
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            yield con
        except sqlite3.Error as exc:
            raise AlpmError(ErrorCode.SYSTEM, f"history {self.path}: {exc}",
                            path=str(self.path)) from exc
        finally:
            con.close()

    @staticmethod
    def _insert(con: sqlite3.Connection, entry: Entry, key: str | None) -> int:
        cur = con.execute(
            "INSERT OR IGNORE INTO entries (key, started, duration, kind, targets, uid, client,"
            " result, error, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, entry.started, entry.duration, entry.kind, json.dumps(entry.targets),
             entry.uid, entry.client, entry.result, entry.error, entry.source))
        if cur.rowcount == 0:
            return 0
        rowid = cur.lastrowid or 0
        con.executemany("INSERT INTO changes (entry, name, old, new) VALUES (?, ?, ?, ?)",
                        [(rowid, c.name, c.old, c.new) for c in entry.changes])
        return rowid

    def record(self, entry: Entry) -> int:
        """Store one transaction (atomically); returns its id."""
        with self._db() as con:
            con.execute("BEGIN IMMEDIATE")
            entry.id = self._insert(con, entry, None)
            con.execute("COMMIT")
        return entry.id

    def import_log(self, logfile: str | os.PathLike[str], *, chunk: int = 1 << 20) -> int:
        """Record what pacman.log gained since the last call; returns how many transactions.

        Reads from the offset stored last time (from the start when the log was
        rotated or truncated), ``chunk`` bytes at a time, never the whole log at once.
        """
        try:
            fh = open(logfile, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise AlpmError(ErrorCode.SYSTEM, f"cannot read {logfile}: {exc}") from exc
        added = 0
        with fh, self._db() as con:
            st = os.fstat(fh.fileno())
            # a rotated log is a new file: another inode or another first line
            first = fh.readline(512)
            ident = f"{st.st_dev}:{st.st_ino}:{hashlib.sha256(first).hexdigest()[:16]}"
            row = con.execute("SELECT value FROM meta WHERE key = 'log'").fetchone()
            offset = 0
            if row is not None:
                was_ident, _, was_offset = row[0].rpartition("@")
                if was_ident == ident and int(was_offset) <= st.st_size:
                    offset = int(was_offset)
            fh.seek(offset)
            pending = b""
            while True:
                data = fh.read(chunk)
                if not data:
                    break
                buf = pending + data
                found, used = parse_log(buf)
                con.execute("BEGIN IMMEDIATE")
                for key, entry in found:
                    entry.source = "pacman.log"
                    if self._insert(con, entry, key):
                        added += 1
                offset += used
                con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('log', ?)",
                            (f"{ident}@{offset}",))
                con.execute("COMMIT")
                pending = buf[used:]
        return added

    def page(self, offset: int = 0, limit: int = 50, *, package: str | None = None,
             since: float | None = None, until: float | None = None) -> list[Entry]:
        """Entries newest first, ``limit`` of them after skipping ``offset``, optionally only
        those that changed ``package`` or started within ``[since, until)``."""
        if offset < 0 or limit < 0:
            raise AlpmError(ErrorCode.WRONG_ARGS, "offset and limit must not be negative")
        # (SQLite's integers stop at 2**63 - 1; no table gets near that many rows)
        offset, limit = min(offset, _SQL_INT_MAX), min(limit, _SQL_INT_MAX)
        where: list[str] = []
        args: list[str | float] = []
        if package is not None:
            where.append("id IN (SELECT entry FROM changes WHERE name = ?)")
            args.append(package)
        if since is not None:
            where.append("started >= ?")
            args.append(since)
        if until is not None:
            where.append("started < ?")
            args.append(until)
        sql = ("SELECT id, started, duration, kind, targets, uid, client, result, error, source"
               " FROM entries" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY started DESC, id DESC LIMIT ? OFFSET ?")
        with self._db() as con:
            rows = con.execute(sql, (*args, limit, offset)).fetchall()
            out = []
            for (rid, started, duration, kind, targets, uid, client, result, error,
                 source) in rows:
                changes = [Change(n, o, w) for n, o, w in con.execute(
                    "SELECT name, old, new FROM changes WHERE entry = ? ORDER BY rowid", (rid,))]
                out.append(Entry(kind=kind, targets=list(json.loads(targets)), started=started,
                                 duration=duration, uid=uid, client=client, result=result,
                                 error=error, changes=changes, source=source, id=rid))
        return out


def installed_versions(handle: Handle) -> dict[str, str]:
    """``name -> version`` of the local database now, for :func:`changes_between`."""
    return {p.name: p.version for p in handle.localdb.packages}
