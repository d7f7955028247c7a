"""The local database in one SQLite file (``<dbpath>/local.sqlite``), beside pacman's files.

An alternative to :class:`~alpmd.engine.db.local.LocalFilesBackend` for systems
that only alpmd manages: each entry is one row holding its parts as pacman
would write them (``desc``, ``files``, ``mtree``, ``install``, ``changelog``,
byte for byte, so conversion back to files is lossless), plus indexes built
from them at write time: relation names (depends, provides, conflicts,
replaces, optdepends, groups), file owners, and a full-text index of names and
descriptions.

Crash safety comes from SQLite itself: WAL mode and one SQL transaction per
write, replace or remove (a commit step), so after a kill an entry is the old
one or the new one. ``synchronous=FULL`` unless the handle is not durable, and
``NORMAL`` while a commit flushes the file system in batches itself.

Errors are the engine's: a file that is not an SQLite database or is damaged
is ``DB_INVALID``; one written by a newer schema ``DB_VERSION``; a database
another process keeps locked ``HANDLE_LOCK``; a full disk ``DISK_SPACE`` (the
transaction is rolled back, nothing half-written).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence

from alpmd import TYPE_CHECKING
from alpmd.engine.db import sqlitefiles
from alpmd.engine.db.backend import (
    PART_NAMES,
    DatabaseBackend,
    Entry,
    EntryKey,
    RawEntry,
)
from alpmd.engine.db.local import (
    check_key,
    desc_fields_readable,
    desc_list_fields,
    desc_notes,
)
from alpmd.engine.db.stores import STORE_NAME
from alpmd.engine.depend import Depend
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta, parse_local_desc, write_local_desc
from alpmd.engine.formats.files import FileList, parse_files, write_files
from alpmd.engine.log import LogCallback, LogLevel
from alpmd.engine.package import Loaded, Part
from alpmd.i18n import N_, Message

if TYPE_CHECKING:
    from typing import Any

__all__ = ["SCHEMA_VERSION", "STORE_NAME", "LocalSqliteBackend", "sqlite_error"]

#: ``PRAGMA application_id``: "alpm" — tells our file from any other SQLite file.
APPLICATION_ID = 0x616C706D
#: ``PRAGMA user_version``: bumped when the tables change; newer is refused.
SCHEMA_VERSION = 1
#: Seconds to wait for another writer before reporting the database locked.
LOCK_TIMEOUT = 2.0

#: Single ``desc`` reads before the rest are fetched in one query (a walk over all).
BULK_AFTER = 32

#: desc list fields indexed by name (``rel.kind``).
REL_FIELDS = ("depends", "provides", "conflicts", "replaces", "optdepends", "groups")

_SCHEMA = """
CREATE TABLE pkg(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    desc BLOB NOT NULL,
    files BLOB,
    mtree BLOB,
    install BLOB,
    changelog BLOB,
    mtimes TEXT,
    UNIQUE(name, version)
);
CREATE TABLE rel(pkg INTEGER NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
                 value TEXT NOT NULL);
CREATE INDEX rel_by_name ON rel(kind, name);
CREATE INDEX rel_by_pkg ON rel(pkg);
CREATE TABLE owns(pkg INTEGER NOT NULL, path BLOB NOT NULL);
CREATE INDEX owns_by_path ON owns(path);
CREATE INDEX owns_by_pkg ON owns(pkg);
CREATE VIRTUAL TABLE search USING fts5(name, description);
"""

#: The column of each part (same names as the files backend's files).
_COLUMNS = PART_NAMES
_COLUMN_BITS = [(part.value, name) for part, name in _COLUMNS.items()]
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_FULL = 5, 6, 11, 13
_SQLITE_NOTADB = 26


def sqlite_error(exc: sqlite3.Error, path: str, doing: str, code: ErrorCode) -> AlpmError:
    """The engine's error for an SQLite failure while ``doing`` something to ``path``
    (``code`` when no more precise one applies)."""
    # Errors raised by the sqlite3 module itself (a closed connection) carry no code.
    primary = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    why = str(exc)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return AlpmError(ErrorCode.HANDLE_LOCK, f"could not {doing} {path}: the "
                         "database is locked by another process", path=path)
    if primary == _SQLITE_FULL:
        return AlpmError(ErrorCode.DISK_SPACE, f"could not {doing} {path}: {why}; "
                         "nothing was changed", path=path)
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or isinstance(exc, sqlite3.DatabaseError) \
            and not isinstance(exc, sqlite3.OperationalError):
        return AlpmError(ErrorCode.DB_INVALID, f"could not {doing} {path}: the "
                         f"database is damaged ({why})", path=path)
    return AlpmError(code, f"could not {doing} {path}: {why}", path=path)


def _dep_name(value: str) -> str:
    try:
        return Depend.parse(value).name
    except AlpmError:
        return value


class LocalSqliteBackend(DatabaseBackend):
    """Installed packages in ``<dbpath>/local.sqlite``; see the module documentation."""

    writable = True

    def __init__(self, dbpath: str, *, log: LogCallback | None = None,
                 durable: bool = True) -> None:
        self.dbpath = dbpath
        self.path = os.path.join(dbpath, STORE_NAME)
        sqlitefiles.note(self.path)
        self.label = self.path
        self.durable = durable
        self._log_cb = log
        self._conn: sqlite3.Connection | None = None
        #: One connection serves every thread (the daemon reads while a commit writes):
        #: a read never runs inside another thread's write transaction.
        self._mutex = threading.RLock()
        #: See :meth:`_bulk_desc`; dropped by every write.
        self._descs: dict[EntryKey, tuple[bytes, bool]] | None = None
        self._desc_reads = 0
        #: "unopened", "missing" (no file yet: an empty database) or "valid".
        self.state = "unopened"
        #: Entries whose %NAME%/%VERSION% were checked (reported once, as pacman does).
        self._checked: set[EntryKey] = set()

    def _log(self, level: LogLevel, message: str) -> None:
        if self._log_cb is not None:
            self._log_cb(level, message)

    # -- errors -----------------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error, doing: str, code: ErrorCode) -> AlpmError:
        return sqlite_error(exc, self.path, doing, code)

    @contextlib.contextmanager
    def _reading(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            conn = self._connection()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise self._error(exc, doing, ErrorCode.DB_INVALID) from exc

    @contextlib.contextmanager
    def _writing(self, doing: str, code: ErrorCode = ErrorCode.DB_WRITE
                 ) -> Iterator[sqlite3.Connection]:
        """One SQL transaction: committed whole, or rolled back on any error."""
        with self._mutex:
            self._descs = None
            self._desc_reads = 0
            self._prepare_write()
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc, doing, code) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc, doing, code) from exc
                raise

    # -- life cycle --------------------------------------------------------------------------

    def _connect(self, mode: str) -> sqlite3.Connection:
        # SQLite's URI path: only %, ? and # need escaping (urllib.parse costs start-up).
        path = self.path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        uri = f"file:{path}?mode={mode}"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=LOCK_TIMEOUT,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA synchronous={self._synchronous()}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _synchronous(self) -> str:
        """FULL: every commit flushed; NORMAL while a commit flushes in batches (WAL stays
        consistent after a power cut, the journal redoes the steps lost); OFF for fixtures."""
        if not self.durable:
            return "OFF"
        return "NORMAL" if self.deferred else "FULL"

    def defer_sync(self, defer: bool) -> None:
        with self._mutex:
            self.deferred = defer
            if self._conn is not None:
                with self._reading("configure"):
                    self._conn.execute(f"PRAGMA synchronous={self._synchronous()}")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.state == "unopened":
                self.open()
            if self._conn is None:
                raise AlpmError(ErrorCode.DB_NULL, f"{self.path} is not open", path=self.path)
        return self._conn

    def open(self) -> None:
        """Check the file is ours and of a schema we read; a missing file is an empty database."""
        with self._mutex:
            self._open()

    def _open(self) -> None:
        if self._conn is not None:
            return
        if not os.path.exists(self.path):
            self.state = "missing"
            return
        try:
            conn = self._connect("rw")
        except sqlite3.Error as exc:
            raise self._error(exc, "open", ErrorCode.DB_OPEN) from exc
        try:
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if app != APPLICATION_ID:
                raise AlpmError(ErrorCode.DB_INVALID, f"{self.path} is not an alpmd local "
                                "database (another program's SQLite file)", path=self.path)
            if version > SCHEMA_VERSION:
                raise AlpmError(ErrorCode.DB_VERSION, f"local database {self.path} has schema "
                                f"version {version}, this program reads version "
                                f"{SCHEMA_VERSION}: it was written by a newer alpmd",
                                path=self.path, version=version)
            if version < 1:
                raise AlpmError(ErrorCode.DB_INVALID, f"{self.path} has no tables",
                                path=self.path)
            conn.execute("SELECT count(*) FROM pkg").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise self._error(exc, "open", ErrorCode.DB_OPEN) from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self.state = "valid"

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            self.state = "unopened"
            self._descs = None
            self._desc_reads = 0

    def _prepare_write(self) -> None:
        """Create the file and its tables with the first write."""
        if self.state == "unopened":
            self.open()
        if self.state != "missing":
            return
        try:
            os.makedirs(self.dbpath, exist_ok=True)
            conn = self._connect("rwc")
        except (OSError, sqlite3.Error) as exc:
            raise AlpmError(ErrorCode.DB_CREATE, f"could not create local database "
                            f"{self.path}: {exc}", path=self.path) from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.close()
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(self.path + suffix)
            raise self._error(exc, "create", ErrorCode.DB_CREATE) from exc
        self._conn = conn
        self.state = "valid"

    # -- reading -------------------------------------------------------------------------------

    def scan(self) -> Iterator[EntryKey]:
        if self.state == "unopened":
            self.open()
        if self.state == "missing":
            return iter(())
        with self._reading("read") as conn:
            rows = conn.execute("SELECT name, version FROM pkg").fetchall()
            self._descs = None  # a new scan is a new view: nothing fetched before it
            self._desc_reads = 0
        return map(EntryKey._make, rows)

    def unique_versions(self) -> dict[str, str] | None:
        """One query, no key objects: a cold -Qo of 5,000 packages spent half its time
        making them."""
        if self.state == "unopened":
            self.open()
        if self.state == "missing":
            return {}
        with self._reading("read") as conn:
            rows = conn.execute("SELECT name, version FROM pkg").fetchall()
            self._descs = None  # a new view, as scan() starts one
            self._desc_reads = 0
        versions = dict(rows)
        return versions if len(versions) == len(rows) else None

    def _bulk_desc(self, key: EntryKey) -> tuple[bytes, bool] | None:
        """``desc`` from one query for all entries, once a walk over many is under way.

        One SELECT per entry costs more than reading a small file; after
        :data:`BULK_AFTER` single reads the remaining ones are fetched at once
        and handed out (each once: the package keeps what it parsed). Point
        queries never pay for the whole table. With each ``desc`` comes whether
        an install scriptlet exists (``-Qi`` shows it: no second query per package).
        """
        with self._reading("read") as conn:
            if self._descs is None:
                self._desc_reads += 1
                if self._desc_reads <= BULK_AFTER:
                    return None
                self._descs = {EntryKey(n, v): (d, bool(i)) for n, v, d, i in conn.execute(
                    "SELECT name, version, desc, install IS NOT NULL FROM pkg")}
            data = self._descs.pop(key, None)
            if not self._descs:  # handed out: the next walk starts counting again
                self._descs = None
                self._desc_reads = 0
            return data

    def read(self, key: EntryKey, parts: Part) -> Loaded:
        got = Loaded()
        want = parts.value  # plain ints: enum flag tests cost microseconds per entry
        cols = [name for bit, name in _COLUMN_BITS if want & bit]
        if not cols:
            return got
        if cols == ["desc"]:
            bulk = self._bulk_desc(key)
            if bulk is not None:
                got.meta = self._parse_desc(key, bulk[0])
                got.has_scriptlet = bulk[1]
                return got
        # With desc comes whether a scriptlet exists (a flag, not the script).
        flag = "desc" in cols and "install" not in cols
        select = ", ".join(cols) + (", install IS NOT NULL" if flag else "")
        with self._reading("read") as conn:
            row = conn.execute(f"SELECT {select} FROM pkg WHERE name=? AND version=?",
                               key).fetchone()
        if row is None:
            raise AlpmError(ErrorCode.DB_INVALID, f"corrupted database: no entry "
                            f"{key.dirname} in {self.path}", path=self.path)
        values: dict[str, bytes | None] = dict(zip(cols, row, strict=False))
        if flag:
            got.has_scriptlet = bool(row[-1])
        if "desc" in values:
            got.meta = self._parse_desc(key, values["desc"])
        if "files" in values:
            data = values["files"]
            try:
                got.files = parse_files(data.decode("utf-8", "surrogateescape")) if data \
                    else FileList()
            except AlpmError as exc:
                raise AlpmError(ErrorCode.DB_INVALID, f"corrupted database entry "
                                f"{key.dirname}/files in {self.path}: {exc.message}",
                                path=self.path, entry=key.dirname) from exc
        if "mtree" in values:
            got.mtree = values["mtree"]
        if "install" in values:
            got.scriptlet = values["install"]
            got.has_scriptlet = got.scriptlet is not None
        if "changelog" in values:
            got.changelog = values["changelog"]
        return got

    def _parse_desc(self, key: EntryKey, data: bytes | None) -> PkgMeta:
        try:
            meta = parse_local_desc((data or b"").decode("utf-8", "surrogateescape"), key)
        except AlpmError as exc:
            raise AlpmError(ErrorCode.DB_INVALID, f"corrupted database entry "
                            f"{key.dirname}/desc in {self.path}: {exc.message}",
                            path=self.path, entry=key.dirname) from exc
        if data is not None:
            self._check_identity(key, data)
        meta.name, meta.version = key.name, key.version
        return meta

    def _check_identity(self, key: EntryKey, data: bytes) -> None:
        """Report a stored ``desc`` naming another package, once per entry (the files
        store's rule: kept byte for byte, the desc says what pacman would read)."""
        if key not in self._checked:
            self._checked.add(key)
            for level, message in desc_notes(data, key):
                self._log(level, message)

    def read_fields(self, key: EntryKey, fields: Sequence[str]) -> dict[str, Any] | None:
        if not desc_fields_readable(fields):
            return None
        with self._reading("read") as conn:
            row = conn.execute("SELECT desc FROM pkg WHERE name=? AND version=?",
                               key).fetchone()
        if row is None:
            return None
        self._check_identity(key, row[0])
        return desc_list_fields(row[0], fields)

    def columns(self, fields: Sequence[str]) -> tuple[list[str], dict[str, list[Any]]] | None:
        """Fields of every entry in one query: relation fields straight from the index,
        others (``-Qs`` wants ``desc``) read from each stored ``desc`` by section."""
        relations = all(f in REL_FIELDS for f in fields)
        if not fields or not (relations or desc_fields_readable(fields)):
            return None
        if self.state == "unopened":
            self.open()
        if self.state == "missing":
            return [], {f: [] for f in fields}
        if not relations:
            return self._desc_columns(fields)
        marks = ", ".join("?" * len(fields))
        with self._reading("read") as conn:
            names = [n for (n,) in conn.execute("SELECT name FROM pkg ORDER BY name")]
            if len(set(names)) != len(names):
                return None  # duplicate entries: the cache decides which one counts
            index = {n: i for i, n in enumerate(names)}
            values: dict[str, list[Any]] = {f: [[] for _ in names] for f in fields}
            rows = conn.execute(f"SELECT p.name, r.kind, r.value FROM rel r JOIN pkg p "
                                f"ON p.id = r.pkg WHERE r.kind IN ({marks}) ORDER BY r.rowid",
                                tuple(fields))
            for name, kind, value in rows:
                values[kind][index[name]].append(value)
        return names, values

    def _desc_columns(self, fields: Sequence[str]) -> tuple[list[str], dict[str, list[Any]]] | None:
        with self._reading("read") as conn:
            rows = conn.execute("SELECT name, version, desc FROM pkg ORDER BY name").fetchall()
        names = [n for n, _, _ in rows]
        if len(set(names)) != len(names):
            return None  # duplicate entries: the cache decides which one counts
        values: dict[str, list[Any]] = {f: [] for f in fields}
        appends = [(f, values[f].append) for f in fields]
        for name, version, data in rows:
            self._check_identity(EntryKey(name, version), data)
            got = desc_list_fields(data, fields)
            assert got is not None  # desc_fields_readable(fields)
            for f, append in appends:
                append(got[f])
        return names, values

    def grep(self, keys: Sequence[EntryKey], part: Part, needles: Sequence[bytes] | None
             ) -> Iterator[tuple[EntryKey, bytes | None]]:
        """One query: the needles are tested by SQLite (``instr`` on the stored bytes)."""
        if needles is not None and not needles:
            return
        if self.state == "unopened":
            self.open()
        if self.state == "missing":
            return
        col = _COLUMNS[part]
        desc = part is Part.DESC
        where = " OR ".join(f"instr({col}, ?) > 0" for _ in needles) if needles else "1"
        if desc and needles:
            # Entries whose desc may name another package come too: reading them is
            # what makes pacman report them (see _check_identity), needle or not.
            where += "".join(f" OR instr(desc, CAST('%{h}%' || char(10) || {c} || char(10) "
                             f"AS BLOB)) = 0" for h, c in (("NAME", "name"),
                                                            ("VERSION", "version")))
        with self._reading("read") as conn:
            found = {EntryKey(n, v): d for n, v, d in conn.execute(
                f"SELECT name, version, {col} FROM pkg WHERE {where}",
                [bytes(n) for n in needles or ()])}
        if needles is None:
            # Every entry is wanted: a part the row lacks reads as the files backend's
            # missing file would (the caller asks the package).
            for key in keys:
                data = found.get(key)
                if desc and data is not None:
                    self._check_identity(key, data)
                yield key, data
            return
        for key in keys:
            data = found.get(key)
            if data is None:
                continue
            if desc:
                self._check_identity(key, data)
            if any(n in data for n in needles):
                yield key, data

    def owners(self, paths: Sequence[str]) -> dict[str, list[EntryKey]] | None:
        """Path → entries whose file list holds it, from the index."""
        out: dict[str, list[EntryKey]] = {}
        if self.state == "unopened":
            self.open()
        if self.state == "missing":
            return out
        with self._reading("read") as conn:
            for path in paths:
                raw = path.encode("utf-8", "surrogateescape")
                for name, version in conn.execute(
                        "SELECT p.name, p.version FROM owns o JOIN pkg p ON p.id = o.pkg "
                        "WHERE o.path = ? ORDER BY p.name", (raw,)):
                    out.setdefault(path, []).append(EntryKey(name, version))
        return out

    def required_by(self, name: str) -> list[str]:
        """Names of the entries whose depends name ``name`` (by name only, unsatisfied kept)."""
        if self.state == "unopened":
            self.open()
        if self.state == "missing":
            return []
        with self._reading("read") as conn:
            return [n for (n,) in conn.execute(
                "SELECT DISTINCT p.name FROM rel r JOIN pkg p ON p.id = r.pkg "
                "WHERE r.kind = 'depends' AND r.name = ? ORDER BY p.name", (name,))]

    def search_text(self, query: str) -> list[EntryKey]:
        """Entries whose name or description match an FTS5 ``query`` (whole words)."""
        if self.state == "unopened":
            self.open()
        if self.state == "missing":
            return []
        with self._reading("search") as conn:
            return [EntryKey(n, v) for n, v in conn.execute(
                "SELECT p.name, p.version FROM search s JOIN pkg p ON p.id = s.rowid "
                "WHERE search MATCH ? ORDER BY p.name", (query,))]

    def read_raw(self, key: EntryKey) -> RawEntry:
        import json  # conversion and checks only: queries never load it

        cols = list(_COLUMNS.values())
        with self._reading("read") as conn:
            row = conn.execute(f"SELECT {', '.join(cols)}, mtimes FROM pkg "
                               "WHERE name=? AND version=?", key).fetchone()
        if row is None:
            raise AlpmError(ErrorCode.DB_INVALID, f"no entry {key.dirname} in {self.path}",
                            path=self.path)
        parts = {c: v for c, v in zip(cols, row[:-1], strict=True) if v is not None}
        mtimes: dict[str, int] = {}
        if row[-1]:
            try:
                loaded = json.loads(row[-1])
                mtimes = {str(k): int(v) for k, v in loaded.items()}
            except (ValueError, TypeError, AttributeError):
                self._log(LogLevel.WARNING, f"ignoring bad file times of {key.dirname} in "
                                            f"{self.path}")
        return RawEntry(key, parts, mtimes)

    def check(self) -> list[Message]:
        """Rows without a file list (``desc`` is NOT NULL by the schema)."""
        if self.state == "unopened":
            self.open()
        if self.state == "missing":
            return []
        with self._reading("check") as conn:
            return [Message(N_("'{name}': file list is missing"), {"name": f"{n}-{v}"})
                    for n, v in conn.execute(
                "SELECT name, version FROM pkg WHERE files IS NULL ORDER BY name")]

    def stamp(self) -> int:
        """Changes whenever a write committed (the WAL or the file was modified)."""
        out = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                out = max(out, os.stat(self.path + suffix).st_mtime_ns)
        return out

    # -- writing -------------------------------------------------------------------------------

    @staticmethod
    def _render(entry: Entry, parts: Part) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        if Part.DESC in parts:
            out["desc"] = write_local_desc(entry.meta).encode("utf-8", "surrogateescape")
        if Part.FILES in parts:
            out["files"] = write_files(entry.files or FileList()).encode("utf-8",
                                                                        "surrogateescape")
        if Part.MTREE in parts:
            out["mtree"] = entry.mtree
        if Part.SCRIPTLET in parts:
            out["install"] = entry.scriptlet
        if Part.CHANGELOG in parts:
            out["changelog"] = entry.changelog
        return out

    @staticmethod
    def _delete(conn: sqlite3.Connection, pkg_id: int) -> None:
        conn.execute("DELETE FROM rel WHERE pkg = ?", (pkg_id,))
        conn.execute("DELETE FROM owns WHERE pkg = ?", (pkg_id,))
        conn.execute("DELETE FROM search WHERE rowid = ?", (pkg_id,))
        conn.execute("DELETE FROM pkg WHERE id = ?", (pkg_id,))

    @staticmethod
    def _index(conn: sqlite3.Connection, pkg_id: int, key: EntryKey, desc: bytes | None,
               files: bytes | None, *, what: Sequence[str] = ("desc", "files")) -> None:
        if "desc" in what:
            conn.execute("DELETE FROM rel WHERE pkg = ?", (pkg_id,))
            conn.execute("DELETE FROM search WHERE rowid = ?", (pkg_id,))
            meta = parse_local_desc((desc or b"").decode("utf-8", "surrogateescape"), key)
            rows = [(pkg_id, f, v if f == "groups" else _dep_name(v), v)
                    for f in REL_FIELDS for v in getattr(meta, f)]
            conn.executemany("INSERT INTO rel(pkg, kind, name, value) VALUES (?, ?, ?, ?)",
                             rows)
            conn.execute("INSERT INTO search(rowid, name, description) VALUES (?, ?, ?)",
                         (pkg_id, meta.name, meta.desc or ""))
        if "files" in what:
            conn.execute("DELETE FROM owns WHERE pkg = ?", (pkg_id,))
            if files:
                listed = parse_files(files.decode("utf-8", "surrogateescape")).files
                conn.executemany("INSERT INTO owns(pkg, path) VALUES (?, ?)",
                                 [(pkg_id, p.encode("utf-8", "surrogateescape"))
                                  for p in listed])

    def _insert(self, conn: sqlite3.Connection, key: EntryKey,
                values: Mapping[str, bytes | str | None]) -> None:
        cols = ["name", "version", *values]
        cur = conn.execute(f"INSERT INTO pkg({', '.join(cols)}) VALUES "
                           f"({', '.join('?' * len(cols))})",
                           (key.name, key.version, *values.values()))
        pkg_id = cur.lastrowid
        assert pkg_id is not None
        desc, files = values.get("desc"), values.get("files")
        assert not isinstance(desc, str) and not isinstance(files, str)
        self._index(conn, pkg_id, key, desc, files)

    def _id(self, conn: sqlite3.Connection, key: EntryKey) -> int | None:
        row = conn.execute("SELECT id FROM pkg WHERE name=? AND version=?", key).fetchone()
        return None if row is None else int(row[0])

    def write(self, entry: Entry, parts: Part = Part.ALL) -> None:
        key = entry.key
        check_key(key)
        values = self._render(entry, parts)
        with self._writing(f"write {key.dirname} to") as conn:
            self._put(conn, key, values)

    def _put(self, conn: sqlite3.Connection, key: EntryKey,
             values: dict[str, bytes | None]) -> None:
        pkg_id = self._id(conn, key)
        if pkg_id is None:
            if values.get("desc") is None:
                raise AlpmError(ErrorCode.DB_WRITE, f"cannot create {key.dirname} in "
                                f"{self.path} without its desc", path=self.path)
            self._insert(conn, key, values)
            return
        sets = [c + " = ?" for c in values]
        if "install" in values or "changelog" in values:
            sets.append("mtimes = NULL")  # the kept times described the old bytes
        conn.execute(f"UPDATE pkg SET {', '.join(sets)} WHERE id = ?",
                     (*values.values(), pkg_id))
        what = [c for c in ("desc", "files") if c in values]
        if what:
            row = conn.execute("SELECT desc, files FROM pkg WHERE id = ?", (pkg_id,)).fetchone()
            self._index(conn, pkg_id, key, row[0], row[1], what=what)

    def replace(self, old: EntryKey, entry: Entry, parts: Part = Part.ALL) -> None:
        """Both halves of an upgrade in one transaction."""
        key = entry.key
        check_key(key)
        values = self._render(entry, parts)
        with self._writing(f"write {key.dirname} to") as conn:
            if old != key:
                pkg_id = self._id(conn, old)
                if pkg_id is not None:
                    self._delete(conn, pkg_id)
            self._put(conn, key, values)

    def remove(self, key: EntryKey) -> None:
        check_key(key)
        with self._writing(f"remove {key.dirname} from", ErrorCode.DB_REMOVE) as conn:
            pkg_id = self._id(conn, key)
            if pkg_id is None:
                raise AlpmError(ErrorCode.DB_REMOVE, f"could not remove database entry "
                                f"{key.dirname}: not in {self.path}", path=self.path)
            self._delete(conn, pkg_id)

    def write_raw(self, entries: Iterator[RawEntry]) -> None:
        """All entries in one transaction (conversion: the new store is whole or absent)."""
        import json

        with self._writing("fill") as conn:
            for raw in entries:
                check_key(raw.key)
                if "desc" not in raw.parts:
                    raise AlpmError(ErrorCode.DB_INVALID, f"entry {raw.key.dirname} has no "
                                    "desc", entry=raw.key.dirname)
                values: dict[str, bytes | str | None] = {c: raw.parts.get(c)
                                                         for c in _COLUMNS.values()}
                values["mtimes"] = json.dumps(raw.mtimes) if raw.mtimes else None
                self._insert(conn, raw.key, values)

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (before the file is moved or copied)."""
        if self._conn is not None:
            with self._reading("checkpoint") as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
