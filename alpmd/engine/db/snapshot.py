"""A parsed, fast-to-load copy of a sync database, kept next to the database files.

Decompressing and parsing a 15,000-package sync database costs Python about half
a second; pacman answers ``-Si`` in less than that. The snapshot holds what the
parse produced, laid out so that loading it allocates almost nothing:

* an index (``marshal``): names, versions, a group index, and the byte offset
  of every package's row in
* one blob of independently marshalled rows (a :class:`PkgMeta` as a plain
  tuple), decoded one package at a time when somebody asks for it, followed by
* a few columns (:data:`COLUMNS`: desc, groups, provides...), one marshalled list
  each, decoded whole when a question about every package (a search, the
  resolver's provider index) needs that field: no row is decoded for it.

Loading is then reading two files and hashing one, plus unmarshalling ~30,000
short strings: no per-package Python work until a package is used.

A snapshot records which archive it was built from (size, mtime, inode and the
SHA-256 of the whole file) and which layout it uses. Hashing the archive costs a
few milliseconds and is done on every load, so the content decides: a database
rewritten in place with the same size and time is noticed, and one downloaded
again unchanged (new inode, new mtime) does not force a rebuild. A snapshot
that does not match, fails its CRC or does not decode is ignored and rebuilt. Writes go through a temporary
file and a rename, so readers see the old snapshot or the new one. There is no
fsync: the snapshot is a cache, and a torn one fails its CRC and is rebuilt.
"""

from __future__ import annotations

import array
import dataclasses
import gc
import hashlib
import marshal
import operator
import os
import struct
import sys
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from alpmd.engine.formats.desc import PkgMeta, Reason

__all__ = [
    "SCHEMA",
    "Snapshot",
    "SnapshotError",
    "SourceId",
    "load_snapshot",
    "meta_to_row",
    "row_to_meta",
    "save_snapshot",
]

#: Bumped whenever the layout changes; the PkgMeta field names are checked too.
#: 2: column sections after the rows. 3: the notes (messages) of the parse.
SCHEMA = 3

#: Fields also stored column-wise (one marshalled list per field, in name order), for
#: questions about every package: search (name, desc, provides, groups), providers
#: and replacers for the resolver, reverse dependencies. Decoded on first use.
COLUMNS = ("desc", "groups", "provides", "replaces", "depends", "optdepends")

_MAGIC = b"ALPMDSNP"
_HEADER = struct.Struct("<8sIIQQ")  # magic, schema, crc32(index + blob), len(index), len(blob)
_FIELDS = tuple(f.name for f in dataclasses.fields(PkgMeta))
_REASON = _FIELDS.index("reason")
_get_fields = operator.attrgetter(*_FIELDS)
#: Everything the row layout depends on; a snapshot with another tag is rebuilt.
_LAYOUT = (SCHEMA, _FIELDS, COLUMNS, sys.byteorder, marshal.version)

Row = tuple[Any, ...]


class SnapshotError(Exception):
    """A snapshot that cannot be used (unreadable, corrupt, stale, other layout).

    ``stale`` tells an outdated snapshot (expected after every sync) from a damaged one.
    """

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale


@dataclass(frozen=True)
class SourceId:
    """Identifies one state of a database archive."""

    size: int
    mtime_ns: int
    ino: int
    sha256: str

    @classmethod
    def of(cls, st: os.stat_result, data: bytes) -> SourceId:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, hashlib.sha256(data).hexdigest())

    def as_tuple(self) -> tuple[int, int, int, str]:
        return (self.size, self.mtime_ns, self.ino, self.sha256)

    def same_content(self, other: object) -> bool:
        """Whether ``other`` (an :meth:`as_tuple`) names a file with the same bytes."""
        return (type(other) is tuple and len(other) == 4
                and (other[0], other[3]) == (self.size, self.sha256))


def meta_to_row(meta: PkgMeta) -> Row:
    """A PkgMeta as a plain tuple in field order (the reason as a plain int)."""
    row: Row = _get_fields(meta)
    return (*row[:_REASON], int(row[_REASON]), *row[_REASON + 1:])


def row_to_meta(row: Row) -> PkgMeta:
    """The PkgMeta of a row (fresh lists: the caller may change them)."""
    meta = PkgMeta(*row)
    meta.reason = Reason(row[_REASON])
    return meta


def _frozen(value: Any) -> Any:
    """Lists as tuples: smaller to store, and the empty one is shared."""
    return tuple(value) if type(value) is list else value


@contextmanager
def _no_gc() -> Iterator[None]:
    """Unmarshalling creates many containers; collecting meanwhile finds nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Snapshot:
    """The loaded form: names and versions at once, rows decoded on demand."""

    __slots__ = ("source", "names", "versions", "groups", "_offsets", "_blob", "_index",
                 "_columns", "_decoded", "notes")

    def __init__(self, source: SourceId, names: list[str], versions: list[str],
                 groups: dict[str, list[str]], offsets: array.array[int],
                 blob: memoryview, columns: dict[str, tuple[int, int]],
                 notes: list[tuple[int, str]]) -> None:
        self.source = source
        #: (log level, message) pairs the parse said, to say again on every load as pacman
        #: does (it reads the archive each time)
        self.notes = notes
        self.names = names
        self.versions = versions
        self.groups = groups
        self._offsets = offsets
        self._blob = blob
        self._index: dict[str, int] | None = None
        #: Field -> (start, end) of its marshalled column in the blob, after the rows.
        self._columns = columns
        self._decoded: dict[str, list[Any]] = {}

    @classmethod
    def build(cls, source: SourceId, metas: Sequence[PkgMeta],
              notes: Sequence[tuple[int, str]] = ()) -> Snapshot:
        """A snapshot of ``metas`` (already sorted by name, names unique) and the
        ``notes`` their parse gave."""
        names: list[str] = []
        versions: list[str] = []
        groups: dict[str, list[str]] = {}
        offsets = array.array("Q", [0])
        parts: list[bytes] = []
        pos = 0
        for meta in metas:
            names.append(meta.name)
            versions.append(meta.version)
            for group in meta.groups:
                members = groups.setdefault(group, [])
                if not members or members[-1] != meta.name:
                    members.append(meta.name)
            data = marshal.dumps(meta_to_row(meta))
            parts.append(data)
            pos += len(data)
            offsets.append(pos)
        columns: dict[str, tuple[int, int]] = {}
        for name in COLUMNS:
            get = operator.attrgetter(name)
            data = marshal.dumps([_frozen(get(meta)) for meta in metas])
            parts.append(data)
            columns[name] = (pos, pos + len(data))
            pos += len(data)
        return cls(source, names, versions, groups, offsets, memoryview(b"".join(parts)),
                   columns, list(notes))

    def __len__(self) -> int:
        return len(self.names)

    def index_of(self, name: str) -> int | None:
        if self._index is None:
            self._index = dict(zip(self.names, range(len(self.names)), strict=True))
        return self._index.get(name)

    def row(self, i: int) -> Row:
        """Decode the ``i``-th row; a damaged row raises :class:`SnapshotError`."""
        try:
            row = marshal.loads(self._blob[self._offsets[i]:self._offsets[i + 1]])
        except (EOFError, ValueError, TypeError) as exc:
            raise SnapshotError(f"row {i} does not decode: {exc}") from exc
        if type(row) is not tuple or len(row) != len(_FIELDS):
            raise SnapshotError(f"row {i} has the wrong shape")
        return row

    def meta(self, i: int) -> PkgMeta:
        return row_to_meta(self.row(i))

    def column(self, name: str) -> list[Any]:
        """One field of every package in name order (lists as tuples); shared, read-only.

        A column that does not decode raises :class:`SnapshotError`.
        """
        got = self._decoded.get(name)
        if got is None:
            start, end = self._columns[name]
            try:
                with _no_gc():
                    got = marshal.loads(self._blob[start:end])
            except (EOFError, ValueError, TypeError) as exc:
                raise SnapshotError(f"column {name} does not decode: {exc}") from exc
            if type(got) is not list or len(got) != len(self.names):
                raise SnapshotError(f"column {name} has the wrong shape")
            self._decoded[name] = got
        return got

    def serialize(self) -> bytes:
        """The file contents: header, index, blob."""
        index = marshal.dumps((_LAYOUT, self.source.as_tuple(), self.names, self.versions,
                               self.groups, self._offsets.tobytes(), self._columns,
                               self.notes))
        blob = self._blob
        crc = zlib.crc32(blob, zlib.crc32(index))
        return b"".join((_HEADER.pack(_MAGIC, SCHEMA, crc, len(index), len(blob)), index,
                         blob))


def save_snapshot(path: str, snap: Snapshot) -> None:
    """Write ``snap`` to ``path`` atomically (temporary file in the same directory, rename)."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(snap.serialize())
            os.fchmod(out.fileno(), 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_snapshot(path: str, source: SourceId) -> Snapshot:
    """The snapshot at ``path`` if it was built from ``source`` by this layout.

    Raises :class:`SnapshotError` saying why not (``FileNotFoundError`` when
    there is none), so the caller can rebuild and explain.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < _HEADER.size:
        raise SnapshotError("truncated header")
    magic, schema, crc, index_len, blob_len = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise SnapshotError("not a snapshot file")
    if schema != SCHEMA:
        # An older schema is expected once after an upgrade of alpmd: rebuilt quietly.
        raise SnapshotError(f"schema {schema}, this version uses {SCHEMA}",
                            stale=schema < SCHEMA)
    if len(data) != _HEADER.size + index_len + blob_len:
        raise SnapshotError("truncated or padded file")
    view = memoryview(data)
    index_view = view[_HEADER.size:_HEADER.size + index_len]
    blob = view[_HEADER.size + index_len:]
    if zlib.crc32(blob, zlib.crc32(index_view)) != crc:
        raise SnapshotError("checksum mismatch")
    try:
        with _no_gc():
            loaded = marshal.loads(index_view)
        layout = loaded[0]
    except (EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise SnapshotError(f"index does not decode: {exc}") from exc
    if layout != _LAYOUT or len(loaded) != 8:
        raise SnapshotError("made by another layout version")
    _, src, names, versions, groups, raw_offsets, columns, notes = loaded
    if not source.same_content(src):
        raise SnapshotError("stale: the database file changed", stale=True)
    offsets = array.array("Q")
    try:
        offsets.frombytes(raw_offsets)
    except (TypeError, ValueError) as exc:
        raise SnapshotError("bad offsets") from exc
    if not (type(names) is list and type(versions) is list and type(groups) is dict
            and len(names) == len(versions) == len(offsets) - 1
            and type(columns) is dict and set(columns) == set(COLUMNS)
            and type(notes) is list
            and all(type(n) is tuple and len(n) == 2 and type(n[0]) is int
                    and type(n[1]) is str for n in notes)
            and offsets[-1] == min((r[0] for r in columns.values()), default=blob_len)
            and all(type(r) is tuple and len(r) == 2 and offsets[-1] <= r[0] <= r[1] <= blob_len
                    for r in columns.values())):
        raise SnapshotError("inconsistent index")
    return Snapshot(source, names, versions, groups, offsets, blob, columns, notes)
