"""Sync databases: a repository's ``<repo>.db`` (and ``.files``) archive, read in memory.

The archive is never unpacked: libarchive decompresses it (gzip, xz, zstd,
bzip2 or none, detected from the content) and we walk its members in one
pass, keeping each package's raw ``desc`` (and an old database's ``depends``)
keyed by the ``name-version`` directory it sits in. Like libalpm, a missing
file is an empty database (pacman warns "database file does not exist") and a
file that does not read is an error (``DB_INVALID``, naming the file).

Performance is the point of the design (pacman answers ``-Si`` on a
15,000-package database in well under half a second):

* without a snapshot, nothing is parsed at load time: a package's ``desc`` is
  parsed the first time one of its fields is used;
* with ``snapshot_dir``, the first load parses everything once and stores a
  :mod:`~alpmd.engine.db.snapshot` that later loads read in milliseconds,
  after checking it still describes this archive's bytes (size and a SHA-256
  of the whole file, a few milliseconds).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from alpmd import TYPE_CHECKING
from alpmd.engine.config import Repo
from alpmd.engine.db.backend import DatabaseBackend, EntryKey, split_entry_name
from alpmd.engine.db.cache import CachedDatabase, PackageCache
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta, parse_sync_desc
from alpmd.engine.log import LogCallback, LogLevel, python_log
from alpmd.engine.package import Loaded, Origin, Part

if TYPE_CHECKING:
    from typing import Any

    from alpmd.engine.db.snapshot import Snapshot
    from alpmd.engine.formats.files import FileList

# libarchive (alpmd.engine.larchive), the snapshot module (hashlib) and Python's
# logging are imported when first needed: a command that registers sync databases
# without reading them (every -Q) should not pay for loading them.

__all__ = ["SyncArchiveBackend", "SyncDatabase", "read_db_archive"]


#: Largest member accepted from a database archive (a ``files`` list of a huge package
#: is a few megabytes; anything beyond this is a broken or hostile archive).
MAX_MEMBER_SIZE = 64 * 1024 * 1024
#: All members together may unpack to this many times the archive's size (real
#: databases: about 10), or to MAX_UNPACKED_FLOOR: a small compression bomb of many
#: members just under MAX_MEMBER_SIZE must not fill the memory.
UNPACK_RATIO = 100
MAX_UNPACKED_FLOOR = 256 * 1024 * 1024
#: ... and never to more than this (a 128 MiB download, pacman's limit, at UNPACK_RATIO
#: would still be 12 GiB).
MAX_UNPACKED = 4 * 1024 * 1024 * 1024

# -- libarchive (bound in alpmd.engine.larchive) ---------------------------------------
# Only tar is accepted (format_all would also read mtree, which opens host files),
# and only the built-in decompressors (never an external program).



def read_db_archive(data: bytes, label: str) -> list[tuple[str, bytes]]:
    """``(path, content)`` of every regular file in a database archive held in memory.

    Raises ``AlpmError(DB_INVALID)`` naming ``label`` when the data is not a
    (compressed) tar archive or is damaged anywhere in the stream.
    """
    import ctypes

    from alpmd.engine import larchive as la

    out: list[tuple[str, bytes]] = []
    archive = la.read_new()
    if not archive:
        raise AlpmError(ErrorCode.MEMORY, "archive_read_new failed")
    entry = ctypes.c_void_p(la.entry_new())
    eof, warn, ifmt, ifreg = la.ARCHIVE_EOF, la.ARCHIVE_WARN, la.AE_IFMT, la.AE_IFREG
    try:
        for support in la.support_filters:
            support(archive)
        la.support_format_tar(archive)
        la.support_format_empty(archive)
        src = ctypes.c_char_p(data)
        if la.read_open_memory(archive, src, len(data)) < warn:
            raise _invalid(label, archive, None)
        # The hot loop: about two C calls per directory and five per file.
        next_header = la.next_header2
        filetype = la.entry_filetype
        utf8_or_raw = la.utf8_or_raw
        pathname = la.entry_pathname_utf8
        pathname_raw = la.entry_pathname
        size_of = la.entry_size
        read = la.read_data
        append = out.append
        buf = bytearray(64 * 1024)
        view = memoryview(buf)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        last: str | None = None
        budget = limit = min(MAX_UNPACKED, max(MAX_UNPACKED_FLOOR, UNPACK_RATIO * len(data)))
        while True:
            ret = next_header(archive, entry)
            if ret == eof:
                break
            if ret < warn:
                raise _invalid(label, archive, last)
            if filetype(entry) & ifmt != ifreg:
                continue
            raw = utf8_or_raw(entry, pathname_raw, pathname) or b""
            last = raw.decode("utf-8", "surrogateescape")
            size = size_of(entry)
            if size > MAX_MEMBER_SIZE:
                raise AlpmError(ErrorCode.DB_INVALID,
                                f"could not read database {label}: member {last} is "
                                f"{size} bytes", path=label, entry=last)
            budget -= size
            if budget < 0:
                raise AlpmError(ErrorCode.DB_INVALID,
                                f"could not read database {label}: it unpacks to more than "
                                f"{limit} bytes",
                                path=label, entry=last)
            if size > len(buf):
                view.release()
                buf = bytearray(size)
                view = memoryview(buf)
                addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
            got = read(archive, addr, size) if size > 0 else 0
            if got < 0 or got != size:
                raise _invalid(label, archive, last) if got < 0 else AlpmError(
                    ErrorCode.DB_INVALID, f"could not read database {label}: member {last} "
                    f"is truncated", path=label, entry=last)
            append((last, view[:size].tobytes()))
    finally:
        la.entry_free(entry)
        la.read_free(archive)
    return out


def _invalid(label: str, archive: int, last: str | None) -> AlpmError:
    from alpmd.engine.larchive import error_string

    raw = error_string(archive)
    why = raw.decode("utf-8", "replace") if raw else "unrecognized archive format"
    where = f" (after entry {last})" if last else ""
    return AlpmError(ErrorCode.DB_INVALID, f"could not read database {label}{where}: {why}",
                     path=label, entry=last)


# -- the backend -----------------------------------------------------------------------

_DESC, _FILES, _SCRIPTLET = Part.DESC.value, Part.FILES.value, Part.SCRIPTLET.value


@dataclass
class _Raw:
    """One package's entry as found in the archive, not parsed yet."""

    version: str
    desc: bytes | None = None
    depends: bytes | None = None


def _read_file(path: str) -> tuple[os.stat_result, bytes] | None:
    """The file's status and whole content; ``None`` when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        code = ErrorCode.BADPERMS if isinstance(exc, PermissionError) else ErrorCode.DB_OPEN
        raise AlpmError(code, f"could not open database {path}: {exc.strerror}",
                        path=path) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AlpmError(ErrorCode.DB_OPEN,
                            f"could not open database {path}: not a regular file", path=path)
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, max(st.st_size + 1, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
        return st, b"".join(chunks)
    except OSError as exc:
        raise AlpmError(ErrorCode.DB_OPEN, f"could not read database {path}: {exc.strerror}",
                        path=path) from exc
    finally:
        os.close(fd)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _can_write_under(directory: str) -> bool:
    """Whether ``directory`` (or its nearest existing ancestor) is writable by us."""
    while directory and not os.path.isdir(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return os.access(directory or ".", os.W_OK)


class SyncArchiveBackend(DatabaseBackend):
    """A repository database archive as a read-only backend.

    :meth:`open` reads the archive (or its snapshot) once; :meth:`scan` and
    :meth:`read` then answer from memory. ``snapshot_path`` enables the
    snapshot (see the module documentation).
    """

    writable = False

    def __init__(self, path: str, *, files_path: str | None = None,
                 snapshot_path: str | None = None, log: LogCallback | None = None,
                 treename: str | None = None) -> None:
        self.path = path
        self.label = path
        self.files_path = files_path
        self.snapshot_path = snapshot_path
        self.treename = treename or os.path.basename(path)
        self._log_cb = log
        self.exists = False
        self.opened = False
        #: How the last :meth:`open` got its data: "missing", "snapshot" or "archive".
        self.loaded_from = ""
        self._snapshot: Snapshot | None = None
        self._raw: dict[str, _Raw] = {}
        self._files: dict[str, bytes] | None = None
        #: (level, message) said while reading the archive, replayed from the snapshot
        self._notes: list[tuple[int, str]] = []

    def _log(self, level: LogLevel, message: str) -> None:
        python_log(level, message, "alpmd.engine.db")
        if self._log_cb is not None:
            self._log_cb(level, message)

    # -- loading ---------------------------------------------------------------------

    def open(self) -> None:
        """Read the database (a missing file is an empty database, ``exists`` False)."""
        self._snapshot = None
        self._raw = {}
        self._files = None
        self._notes = []
        got = _read_file(self.path)
        self.opened = True
        if got is None:
            self.exists = False
            self.loaded_from = "missing"
            self._log(LogLevel.WARNING, f"database file for '{self.treename}' does not exist "
                                        "(use '-Sy' to download)")
            return
        self.exists = True
        st, data = got
        if self.snapshot_path is None:
            self._raw = self._collect(data)
            self.loaded_from = "archive"
            return
        from alpmd.engine.db.snapshot import (
            Snapshot,
            SnapshotError,
            SourceId,
            load_snapshot,
            save_snapshot,
        )

        source = SourceId.of(st, data)
        try:
            self._snapshot = load_snapshot(self.snapshot_path, source)
            self.loaded_from = "snapshot"
            for level, message in self._snapshot.notes:
                self._log(LogLevel(level), message)
            return
        except FileNotFoundError:
            pass
        except (OSError, SnapshotError) as exc:
            stale = isinstance(exc, SnapshotError) and exc.stale
            level = LogLevel.DEBUG if stale else LogLevel.WARNING
            self._log(level, f"ignoring snapshot {self.snapshot_path} of database "
                             f"'{self.treename}': {exc}; rebuilding it")
        raw = self._collect(data)
        if not _can_write_under(os.path.dirname(self.snapshot_path)):
            # Building a snapshot parses every entry: only worth it when it can be kept.
            self._raw = raw
            self.loaded_from = "archive"
            return
        metas = [self._parse(name, r) for name, r in sorted(raw.items())]
        snap = Snapshot.build(source, metas, self._notes)
        try:
            save_snapshot(self.snapshot_path, snap)
        except OSError as exc:
            # Unprivileged queries cannot write root's snapshots: say so quietly.
            quiet = exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
            self._log(LogLevel.DEBUG if quiet else LogLevel.WARNING,
                      f"could not write snapshot {self.snapshot_path}: {exc.strerror or exc}")
        self._snapshot = snap
        self.loaded_from = "archive"

    def _note(self, level: LogLevel, message: str) -> None:
        """Say what loading found; kept in the snapshot, so every load says it, as pacman."""
        self._notes.append((int(level), message))
        self._log(level, message)

    def _collect(self, data: bytes) -> dict[str, _Raw]:
        """Group the archive's members by package, as libalpm's ``sync_db_populate`` does.

        As libalpm: any file names the package of its first path component (a file
        at the top, ``name-version``, makes an empty package), and the part after
        the last slash says what it is; a ``desc`` naming another package is
        reported, the directory's name and version win.
        """
        from alpmd.engine.db.local import identity_errors

        raw: dict[str, _Raw] = {}
        dirs: dict[str, str] = {}  # "name-version" -> name, to spot a second version
        for path, content in read_db_archive(data, self.path):
            dirname, slash, rest = path.partition("/")
            name = dirs.get(dirname)
            if name is None:
                key = split_entry_name(dirname)
                if key is None:
                    # libalpm's words, then ours (the database is refused, not read as empty)
                    self._log(LogLevel.ERROR, f"invalid name for database entry '{path}'")
                    self._log(LogLevel.ERROR, f"could not parse package description file "
                                              f"'{path}' from db '{self.treename}'")
                    raise AlpmError(ErrorCode.DB_INVALID,
                                    f"invalid name for database entry '{path}' in {self.path}",
                                    path=self.path, entry=path)
                if key.name in raw:
                    self._note(LogLevel.ERROR, f"{self.treename} database is inconsistent: "
                                               f"duplicated entry '{dirname}' ignored")
                    dirs[dirname] = ""
                    continue
                name = dirs[dirname] = key.name
                raw[name] = _Raw(key.version)
            if not name:
                continue  # a duplicated entry's other files
            if not slash:
                self._note(LogLevel.WARNING, f"unknown database file: {path}")
                continue
            entry = raw[name]
            fname = rest.rpartition("/")[2]
            if fname == "desc":
                entry.desc = content
                for message in identity_errors(content, EntryKey(name, entry.version),
                                               self.treename):
                    self._note(LogLevel.ERROR, message)
            elif fname == "depends":
                entry.depends = content
            elif fname not in ("files", "deltas"):
                # libalpm makes the package and says so at debug level only
                python_log(LogLevel.DEBUG, f"unknown database file: {path}", "alpmd.engine.db")
        return raw

    def _parse(self, name: str, raw: _Raw) -> PkgMeta:
        """The metadata of one entry; the directory's name and version win, as in libalpm."""
        label = f"{self.path}: {name}-{raw.version}"
        if raw.desc is None and raw.depends is None:
            return PkgMeta(name, raw.version)  # a directory without metadata: libalpm's too
        try:
            meta = parse_sync_desc(_text(raw.desc or b""),
                                   _text(raw.depends) if raw.depends is not None else None,
                                   (name, raw.version))
        except AlpmError as exc:
            # libalpm's words, then ours (the database is refused, not read as empty)
            why = exc.details.get("filename")
            if why:
                self._log(LogLevel.ERROR, f"{self.treename} database is inconsistent: filename "
                                          f"of package {name} is {why}")
            member = "desc" if raw.desc is not None else "depends"
            self._log(LogLevel.ERROR, f"could not parse package description file "
                                      f"'{name}-{raw.version}/{member}' from db "
                                      f"'{self.treename}'")
            raise AlpmError(ErrorCode.DB_INVALID,
                            f"could not parse package description of {label}: {exc.message}",
                            path=self.path, entry=f"{name}-{raw.version}") from exc
        meta.name, meta.version = name, raw.version  # a mismatch was noted by _collect
        return meta

    # -- the backend interface -------------------------------------------------------

    def versions(self) -> dict[str, str]:
        """Name → version of every package, straight from the loaded data (no keys built)."""
        if self._snapshot is not None:
            return dict(zip(self._snapshot.names, self._snapshot.versions, strict=True))
        return {name: r.version for name, r in self._raw.items()}

    def columns(self, fields: Sequence[str]) -> tuple[list[str], dict[str, list[Any]]] | None:
        """Fields of every package straight from the snapshot's columns (no row decoded)."""
        snap = self._snapshot
        if snap is None:
            return None
        from alpmd.engine.db.snapshot import COLUMNS, SnapshotError

        if any(f not in COLUMNS for f in fields):
            return None
        try:
            return snap.names, {f: snap.column(f) for f in fields}
        except SnapshotError as exc:
            raise AlpmError(ErrorCode.DB_INVALID,
                            f"snapshot {self.snapshot_path}: {exc}") from exc

    def group_index(self) -> dict[str, list[str]] | None:
        """The snapshot's group → package names index, when there is one."""
        return self._snapshot.groups if self._snapshot is not None else None

    def scan(self) -> Iterator[EntryKey]:
        for name, version in self.versions().items():
            yield EntryKey(name, version)

    def read(self, key: EntryKey, parts: Part) -> Loaded:
        # Plain ints: enum flag operators cost microseconds, and this runs per package.
        want = parts.value
        got = Loaded()
        if want & _DESC:
            got.meta = self._meta(key)
        if want & _FILES:
            got.files = self._filelist(key)
        if want & _SCRIPTLET:
            got.has_scriptlet = False
        return got

    def _meta(self, key: EntryKey) -> PkgMeta:
        snap = self._snapshot
        if snap is not None:
            i = snap.index_of(key.name)
            if i is None or snap.versions[i] != key.version:
                raise AlpmError(ErrorCode.PKG_NOT_FOUND,
                                f"{key.dirname} is not in database {self.path}")
            from alpmd.engine.db.snapshot import SnapshotError

            try:
                return snap.meta(i)
            except SnapshotError as exc:
                raise AlpmError(ErrorCode.DB_INVALID,
                                f"snapshot {self.snapshot_path}: {exc}") from exc
        raw = self._raw.get(key.name)
        if raw is None or raw.version != key.version:
            raise AlpmError(ErrorCode.PKG_NOT_FOUND,
                            f"{key.dirname} is not in database {self.path}")
        return self._parse(key.name, raw)

    def _filelist(self, key: EntryKey) -> FileList:
        """The package's files from the ``.files`` database (read whole, once)."""
        from alpmd.engine.formats.files import FileList, parse_files

        if self._files is None:
            self._files = self._load_files()
        text = self._files.get(key.dirname)
        if text is None:
            return FileList()
        try:
            return parse_files(_text(text))
        except AlpmError as exc:
            raise AlpmError(ErrorCode.DB_INVALID,
                            f"could not parse the file list of {key.dirname} in "
                            f"{self.files_path}: {exc.message}", path=self.files_path) from exc

    def _load_files(self) -> dict[str, bytes]:
        if self.files_path is None:
            return {}
        got = _read_file(self.files_path)
        if got is None:
            return {}
        files: dict[str, bytes] = {}
        for path, content in read_db_archive(got[1], self.files_path):
            dirname, _, fname = path.partition("/")
            if fname == "files":
                files[dirname] = content
        return files


# -- the database ------------------------------------------------------------------------


class SyncDatabase(CachedDatabase):
    """One repository: its packages (``Origin.SYNCDB``) and groups, loaded on first use.

    Queries never raise for a missing database file (it reads as empty, and
    :attr:`exists` says so, as pacman only warns); :meth:`populate` raises
    ``DB_NOT_FOUND`` for callers that need the database. A damaged archive
    raises ``DB_INVALID`` from any query.
    """

    origin = Origin.SYNCDB

    def __init__(self, name: str, path: str, *, files_path: str | None = None,
                 snapshot_dir: str | None = None, log: LogCallback | None = None,
                 backend: DatabaseBackend | None = None) -> None:
        #: The pacman.conf section (servers, signature level, usage), set by the handle.
        self.repo: Repo | None = None
        self.name = name
        self.path = path
        self.files_path = files_path
        self.snapshot_dir = snapshot_dir
        #: Where the parsed form of the database is kept (None: no snapshots).
        self.snapshot_path = (os.path.join(snapshot_dir, f"{name}.snapshot")
                              if snapshot_dir is not None else None)
        self.backend: DatabaseBackend = backend if backend is not None else SyncArchiveBackend(
            path, files_path=files_path, snapshot_path=self.snapshot_path, log=log,
            treename=name)
        self._cache: PackageCache | None = None
        #: False after a load failed (a damaged archive), like libalpm's DB_STATUS_INVALID.
        self.valid = True

    def __repr__(self) -> str:
        return f"<SyncDatabase {self.name} {self.path}>"

    def _populate(self) -> PackageCache:
        if self._cache is None:
            try:
                self.backend.open()
            except AlpmError:
                self.valid = False
                raise
            self.valid = True
            backend = self.backend
            index = backend.group_index()
            self._cache = PackageCache(backend.versions(), self._make,
                                       (lambda: index) if index is not None else None)
        return self._cache

    def populate(self) -> None:
        """Load now; ``DB_NOT_FOUND`` when the file is missing, ``DB_INVALID`` when damaged."""
        self._populate()
        if not self.backend.exists:
            raise AlpmError(ErrorCode.DB_NOT_FOUND,
                            f"database file for '{self.name}' does not exist ({self.path})",
                            path=self.path)

    @property
    def exists(self) -> bool:
        """Whether the database file is there (loads the database)."""
        self._populate()
        return self.backend.exists

    @property
    def loaded_from(self) -> str:
        """How the last load got its data: "missing", "snapshot" or "archive" (diagnostics)."""
        return str(getattr(self.backend, "loaded_from", ""))

    def invalidate(self) -> None:
        """Forget everything loaded (after the file was replaced, e.g. by ``-Sy``)."""
        self._cache = None
