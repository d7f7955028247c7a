"""The tracking database: which pkgbase, version and packager is in which repository.

One SQLite file, ``ROOT/.alpm-repo/tracking.sqlite``, opened only here. It is
not behind :class:`alpmd.engine.db.backend.DatabaseBackend`: that interface is
one package database (entries named ``name-version``, parts ``desc``/``files``/
``mtree``..., each write atomic on its own), while a change to a repository tree
is one transaction over many repositories and architectures together with
release history, the chunk indexes of the written databases and the journal's
commit mark, with questions (by pkgbase, by file name, by range of entry names)
that interface has no words for. It follows the engine's SQLite store in the
rest: WAL, ``synchronous=FULL``, an application id and schema version (another
program's file or a newer schema is refused), SQLite errors as engine errors.

Each row also keeps the exact ``desc`` and ``files`` texts of the package's
database entries, so writing a database after a change streams the stored
entries instead of re-reading every package file or unpacking the old database
(what makes a one-package change on a large repository fast).

SQLite's locks are POSIX record locks, which a process loses when it closes *any*
descriptor of the file: nothing in the process may open this file, its ``-wal``
or ``-shm`` while a :class:`Tracking` is open. :meth:`Tracking.is_own` tells
whether a file someone hands the engine is one of them.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from alpmd.engine.db import sqlitefiles
from alpmd.engine.db.sqlite import sqlite_error
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.repo.dbarchive import Chunk, Entry, key

TRACKING_NAME = "tracking.sqlite"
#: ``PRAGMA application_id``: "arpt" — tells a tracking database from any other SQLite file.
APPLICATION_ID = 0x61727074
#: ``PRAGMA user_version``: bumped when the tables change; a newer one is refused.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    repo TEXT NOT NULL, arch TEXT NOT NULL, name TEXT NOT NULL,
    base TEXT NOT NULL, version TEXT NOT NULL, filename TEXT NOT NULL,
    pkgarch TEXT NOT NULL, packager TEXT NOT NULL, builddate INTEGER NOT NULL,
    sha256 TEXT NOT NULL, released_by TEXT NOT NULL, released_at INTEGER NOT NULL,
    desc BLOB NOT NULL, files BLOB, dirname TEXT NOT NULL,
    PRIMARY KEY (repo, arch, name));
CREATE INDEX IF NOT EXISTS entries_dirname ON entries (repo, arch, dirname);
CREATE INDEX IF NOT EXISTS entries_base ON entries (base);
CREATE INDEX IF NOT EXISTS entries_filename ON entries (filename);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY, at INTEGER NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,
    repo TEXT NOT NULL, arch TEXT NOT NULL, base TEXT NOT NULL, version TEXT NOT NULL,
    detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_base ON history (base);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dbfiles (
    repo TEXT NOT NULL, arch TEXT NOT NULL, kind TEXT NOT NULL, identity TEXT NOT NULL,
    chunks TEXT NOT NULL, PRIMARY KEY (repo, arch, kind));
"""

_COLUMNS = ("repo, arch, name, base, version, filename, pkgarch, packager, builddate, sha256, "
            "released_by, released_at, desc, files")


@dataclass(frozen=True)
class Row:
    """One package in one repository and architecture, with its database entry texts."""

    repo: str
    arch: str
    name: str
    base: str
    version: str
    filename: str
    pkgarch: str
    packager: str
    builddate: int
    sha256: str
    released_by: str
    released_at: int
    desc: bytes
    files: bytes | None

    @property
    def dirname(self) -> str:
        """The entry's directory in the database archive (``name-version``)."""
        return f"{self.name}-{self.version}"

    def placed(self, repo: str, arch: str) -> Row:
        """The same package recorded in another repository or architecture."""
        return Row(repo, arch, self.name, self.base, self.version, self.filename, self.pkgarch,
                   self.packager, self.builddate, self.sha256, self.released_by,
                   self.released_at, self.desc, self.files)


@dataclass(frozen=True)
class HistoryEntry:
    """One line of the release history."""

    at: int
    user: str
    action: str
    repo: str
    arch: str
    base: str
    version: str
    detail: str


class Tracking:
    """The open tracking database of one repository tree."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, TRACKING_NAME)
        sqlitefiles.note(self.path)
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=60)
        except sqlite3.Error as exc:
            raise self._error(exc, "open", ErrorCode.DB_OPEN) from exc
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise

    def _error(self, exc: sqlite3.Error, doing: str, code: ErrorCode) -> AlpmError:
        return sqlite_error(exc, self.path, doing, code)

    def _unmarked(self) -> bool:
        """Whether the file still needs its tables and marks (new, or made before the marks
        existed: it has ``entries``); AlpmError when it is another program's or newer."""
        c = self._conn
        app = c.execute("PRAGMA application_id").fetchone()[0]
        version = c.execute("PRAGMA user_version").fetchone()[0]
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
        if app != APPLICATION_ID and not (app == 0 and (not names or "entries" in names)):
            raise AlpmError(ErrorCode.DB_INVALID, f"{self.path} is not an alpm-repo "
                            "tracking database (another program's SQLite file)",
                            path=self.path)
        if version > SCHEMA_VERSION:
            raise AlpmError(ErrorCode.DB_VERSION, f"tracking database {self.path} has "
                            f"schema version {version}, this program reads version "
                            f"{SCHEMA_VERSION}: it was written by a newer alpm-repo",
                            path=self.path, version=version)
        return bool(app == 0 or version < SCHEMA_VERSION)

    def _prepare(self) -> None:
        """Full syncs; WAL and the tables when the file is new (an existing one of ours is
        only read here, so a reader without write access can open it)."""
        c = self._conn
        try:
            c.execute("PRAGMA synchronous=FULL")
            if not self._unmarked():
                return
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("BEGIN IMMEDIATE")
            if self._unmarked():  # (unless another process made them meanwhile)
                marks = [f"PRAGMA application_id={APPLICATION_ID}",
                         f"PRAGMA user_version={SCHEMA_VERSION}"]
                for statement in [*_SCHEMA.split(";"), *marks]:
                    if statement.strip():
                        c.execute(statement)
            c.execute("COMMIT")
        except BaseException as exc:
            if c.in_transaction:
                c.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc, "open", ErrorCode.DB_OPEN) from exc
            raise

    def close(self) -> None:
        self._conn.close()

    def is_own(self, st: os.stat_result) -> bool:
        """Whether ``st`` (of a file about to be opened) is this database or its WAL files.

        Opening and closing one of them would drop this process's SQLite locks.
        """
        for suffix in ("", "-wal", "-shm"):
            try:
                mine = os.stat(self.path + suffix)
            except FileNotFoundError:
                continue
            if (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino):
                return True
        return False

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, tuple(args)).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "read", ErrorCode.DB_INVALID) from exc

    # -- reading ------------------------------------------------------------------------

    def _rows(self, where: str, args: Iterable[object]) -> list[Row]:
        return [Row(*r) for r in self._query(f"SELECT {_COLUMNS} FROM entries {where}",
                                             tuple(args))]

    def rows(self, repo: str | None = None, arch: str | None = None) -> list[Row]:
        """Every row, or those of one repository (and architecture)."""
        if repo is None:
            return self._rows("ORDER BY repo, arch, name", ())
        if arch is None:
            return self._rows("WHERE repo = ? ORDER BY arch, name", (repo,))
        return self._rows("WHERE repo = ? AND arch = ? ORDER BY name", (repo, arch))

    def rows_between(self, repo: str, arch: str, lo: str | None, hi: str | None) -> list[Row]:
        """The rows of one database whose entry directories lie in ``[lo, hi)``."""
        where = "WHERE repo = ? AND arch = ?"
        args: list[object] = [repo, arch]
        if lo is not None:
            where += " AND dirname >= ?"
            args.append(lo)
        if hi is not None:
            where += " AND dirname < ?"
            args.append(hi)
        return self._rows(where, args)

    def filename_used(self, repo: str, arch: str, filename: str, besides: set[str]) -> bool:
        """Whether a row of the database other than the names ``besides`` has ``filename``."""
        cur = self._query("SELECT name FROM entries WHERE repo = ? AND arch = ? AND "
                          "filename = ?", (repo, arch, filename))
        return any(r[0] not in besides for r in cur)

    def chunks(self, repo: str, arch: str, kind: str) -> tuple[str, list[Chunk]] | None:
        """The chunk index recorded for a database file, with the file's identity."""
        got = self._query("SELECT identity, chunks FROM dbfiles WHERE repo = ? AND "
                          "arch = ? AND kind = ?", (repo, arch, kind))
        if not got:
            return None
        return str(got[0][0]), [Chunk(*c) for c in json.loads(got[0][1])]

    def row(self, repo: str, arch: str, name: str) -> Row | None:
        got = self._rows("WHERE repo = ? AND arch = ? AND name = ?", (repo, arch, name))
        return got[0] if got else None

    def by_base(self, base: str) -> list[Row]:
        return self._rows("WHERE base = ?", (base,))

    def filenames(self) -> set[str]:
        """Every package file some database references."""
        return {r[0] for r in self._query("SELECT DISTINCT filename FROM entries")}

    def references(self, filename: str) -> bool:
        return bool(self._query("SELECT 1 FROM entries WHERE filename = ? LIMIT 1",
                                (filename,)))

    def history(self, base: str | None = None) -> list[HistoryEntry]:
        sql = "SELECT at, user, action, repo, arch, base, version, detail FROM history"
        cur = (self._query(sql + " WHERE base = ? ORDER BY id", (base,)) if base
               else self._query(sql + " ORDER BY id"))
        return [HistoryEntry(*r) for r in cur]

    def _meta(self, name: str) -> str | None:
        got = self._query("SELECT value FROM meta WHERE key = ?", (name,))
        return str(got[0][0]) if got else None

    def txid(self) -> str | None:
        """The journal id of the last change committed (how recovery tells done from not)."""
        return self._meta("txid")

    def generation(self) -> str | None:
        """The database generation the last change committed (what ``current`` names)."""
        return self._meta("generation")

    # -- writing ------------------------------------------------------------------------

    def apply(self, txid: str, drops: Iterable[tuple[str, str, str]], puts: Iterable[Row],
              history: Iterable[HistoryEntry],
              chunks: Iterable[tuple[str, str, str, str, list[Chunk]]] = (),
              generation: str | None = None) -> None:
        """One atomic change, marked with the journal's ``txid`` (how recovery knows it)."""
        c = self._conn
        try:
            c.execute("BEGIN IMMEDIATE")
            c.executemany("DELETE FROM entries WHERE repo = ? AND arch = ? AND name = ?",
                          list(drops))
            c.executemany(f"INSERT OR REPLACE INTO entries ({_COLUMNS}, dirname) VALUES "
                          "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                          [(r.repo, r.arch, r.name, r.base, r.version, r.filename, r.pkgarch,
                            r.packager, r.builddate, r.sha256, r.released_by, r.released_at,
                            r.desc, r.files, r.dirname) for r in puts])
            c.executemany("INSERT OR REPLACE INTO dbfiles (repo, arch, kind, identity, chunks) "
                          "VALUES (?,?,?,?,?)",
                          [(repo, arch, kind, ident,
                            json.dumps([[ch.first, ch.offset, ch.length, ch.count]
                                        for ch in index]))
                           for repo, arch, kind, ident, index in chunks])
            c.executemany("INSERT INTO history (at, user, action, repo, arch, base, version, "
                          "detail) VALUES (?,?,?,?,?,?,?,?)",
                          [(h.at, h.user, h.action, h.repo, h.arch, h.base, h.version, h.detail)
                           for h in history])
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('txid', ?)", (txid,))
            if generation is not None:
                c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('generation', ?)",
                          (generation,))
            c.execute("COMMIT")
        except sqlite3.Error as exc:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise self._error(exc, "update", ErrorCode.DB_WRITE) from exc


def entries_of(rows: Iterable[Row], files: bool) -> list[Entry]:
    """Database archive entries for ``rows`` (sorted here), ``.files`` members when ``files``."""
    out: list[Entry] = []
    for r in sorted(rows, key=lambda r: key(r.dirname)):
        members = [("desc", r.desc)]
        if files:
            members.append(("files", r.files if r.files is not None else b"%FILES%\n"))
        out.append((r.dirname, r.released_at, members))
    return out
