"""The tracking database: which pkgbase, version and packager is in which repository.

Stored with the standard library's sqlite3 in ``ROOT/.alpm-repo/tracking.sqlite``
until the engine's database backend interface has a SQLite backend to put it
behind. Each row also keeps the exact ``desc`` and ``files`` texts of the
package's database entries, so writing a database after a change streams the
stored entries instead of re-reading every package file or unpacking the old
database (what makes a one-package change on a large repository fast).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.repo.dbarchive import Chunk, Entry, key

TRACKING_NAME = "tracking.sqlite"

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
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=60)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise AlpmError(ErrorCode.DB_OPEN, f"could not open {self.path}: {exc}",
                            path=self.path) from exc

    def close(self) -> None:
        self.conn.close()

    # -- reading ------------------------------------------------------------------------

    def _rows(self, where: str, args: Iterable[object]) -> list[Row]:
        cur = self.conn.execute(f"SELECT {_COLUMNS} FROM entries {where}", tuple(args))
        return [Row(*r) for r in cur]

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
        cur = self.conn.execute("SELECT name FROM entries WHERE repo = ? AND arch = ? AND "
                                "filename = ?", (repo, arch, filename))
        return any(r[0] not in besides for r in cur)

    def chunks(self, repo: str, arch: str, kind: str) -> tuple[str, list[Chunk]] | None:
        """The chunk index recorded for a database file, with the file's identity."""
        cur = self.conn.execute("SELECT identity, chunks FROM dbfiles WHERE repo = ? AND "
                                "arch = ? AND kind = ?", (repo, arch, kind))
        got = cur.fetchone()
        if got is None:
            return None
        return str(got[0]), [Chunk(*c) for c in json.loads(got[1])]

    def row(self, repo: str, arch: str, name: str) -> Row | None:
        got = self._rows("WHERE repo = ? AND arch = ? AND name = ?", (repo, arch, name))
        return got[0] if got else None

    def by_base(self, base: str) -> list[Row]:
        return self._rows("WHERE base = ?", (base,))

    def filenames(self) -> set[str]:
        """Every package file some database references."""
        return {r[0] for r in self.conn.execute("SELECT DISTINCT filename FROM entries")}

    def references(self, filename: str) -> bool:
        cur = self.conn.execute("SELECT 1 FROM entries WHERE filename = ? LIMIT 1", (filename,))
        return cur.fetchone() is not None

    def history(self, base: str | None = None) -> list[HistoryEntry]:
        sql = "SELECT at, user, action, repo, arch, base, version, detail FROM history"
        cur = (self.conn.execute(sql + " WHERE base = ? ORDER BY id", (base,)) if base
               else self.conn.execute(sql + " ORDER BY id"))
        return [HistoryEntry(*r) for r in cur]

    def _meta(self, name: str) -> str | None:
        got = self.conn.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
        return str(got[0]) if got else None

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
        c = self.conn
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
            raise AlpmError(ErrorCode.DB_WRITE, f"could not update {self.path}: {exc}",
                            path=self.path) from exc


def entries_of(rows: Iterable[Row], files: bool) -> list[Entry]:
    """Database archive entries for ``rows`` (sorted here), ``.files`` members when ``files``."""
    out: list[Entry] = []
    for r in sorted(rows, key=lambda r: key(r.dirname)):
        members = [("desc", r.desc)]
        if files:
            members.append(("files", r.files if r.files is not None else b"%FILES%\n"))
        out.append((r.dirname, r.released_at, members))
    return out
