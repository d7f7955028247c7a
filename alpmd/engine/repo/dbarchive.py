"""Writing sync database archives laid out as repo-add lays them out, incrementally.

Each package is a ``name-version/`` directory with ``desc`` (and ``files`` in the
``.files`` database), entries sorted bytewise like repo-add's C-locale glob, in
the compression repo-add would use. The archive is written as a sequence of
independently compressed *chunks* of about :data:`CHUNK` entries, followed by a
last member holding tar's end-of-archive blocks: gzip, zstd, xz and bzip2 all
define a file of concatenated members/frames/streams as the concatenation of
their contents, so readers (libarchive, hence pacman; ``gzip -t``, ``zstd -t``...)
see one ordinary tar archive. A change then recompresses only the chunks whose
range of entries changed and copies the others' compressed bytes from the
current file: adding one package to a 15,000-package database touches one
chunk instead of recompressing everything as repo-add does.
"""

from __future__ import annotations

import bisect
import bz2
import lzma
import os
import tarfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from alpmd.engine.errors import AlpmError, ErrorCode

#: Entries per chunk: small enough that one change recompresses little, large enough
#: that compression still sees enough repetition.
CHUNK = 128

#: One database entry: directory name, mtime, members (name, content).
Entry = tuple[str, int, list[tuple[str, bytes]]]

_END = b"\0" * 1024
_BLOCK = 512


@dataclass(frozen=True)
class Chunk:
    """Where one compressed run of entries lies in a database file."""

    first: str      # directory name of its first entry
    offset: int
    length: int
    count: int


def _gzip(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)   # gzip -6, no name, no timestamp (gzip -n)
    return c.compress(data) + c.flush()


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gz": _gzip,
    "zst": _zstd,
    "xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ),
    "bz2": lambda data: bz2.compress(data, 9),
    "none": lambda data: data,
}


def key(dirname: str) -> bytes:
    """The sort key of an entry directory (repo-add's glob in the C locale)."""
    return dirname.encode("utf-8", "surrogateescape")


def _header(name: str, kind: bytes, size: int, mode: int, mtime: int) -> bytes:
    """One tar header: plain ustar when it fits (almost always), else tarfile's pax."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= 100 and raw.isascii() and size < 8**11 and 0 <= mtime < 8**11:
        head = bytearray(512)
        head[0:len(raw)] = raw
        head[100:148] = b"%07o\0%07o\0%07o\0%011o\0%011o\0" % (mode, 0, 0, size, mtime)
        head[148:156] = b"        "
        head[156:157] = kind
        head[257:265] = b"ustar\x0000"
        head[265:269] = b"root"
        head[297:301] = b"root"
        head[148:156] = b"%06o\0 " % sum(head)
        return bytes(head)
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.mtime = mtime
    info.uname = info.gname = "root"
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_entries(entries: Iterable[Entry]) -> bytes:
    """The tar blocks of ``entries`` (no end-of-archive marker)."""
    out = bytearray()
    for dirname, mtime, members in entries:
        out += _header(dirname + "/", tarfile.DIRTYPE, 0, 0o755, mtime)
        for member, data in members:
            out += _header(f"{dirname}/{member}", tarfile.REGTYPE, len(data), 0o644, mtime)
            out += data
            out += b"\0" * (-len(data) % _BLOCK)
    return bytes(out)


def write_db_archive(path: str, compression: str, entries: Iterable[Entry]) -> list[Chunk]:
    """Write every entry (already sorted) to ``path``; the chunks written."""
    return write_db_incremental(path, compression, None, None, set(),
                                lambda lo, hi: list(entries))


def write_db_incremental(path: str, compression: str, old_path: str | None,
                         old: Sequence[Chunk] | None, changed: set[str],
                         load: Callable[[str | None, str | None], list[Entry]]) -> list[Chunk]:
    """Write a database whose entries differ from ``old_path``'s in ``changed`` only.

    ``old`` is the chunk index of ``old_path`` (None: write everything anew);
    ``changed`` the directory names added or removed since; ``load(lo, hi)``
    returns the sorted entries with ``lo <= dirname < hi`` (None: unbounded).
    The file is fsynced; returns its chunk index.
    """
    compress = _COMPRESS[compression]
    chunks: list[Chunk] = []
    try:
        with open(path, "wb") as out:
            offset = 0

            def emit(entries: list[Entry], grown: bool = False) -> None:
                """Compress entries as chunks of CHUNK; a grown chunk splits at 2 * CHUNK."""
                nonlocal offset
                if grown and len(entries) <= 2 * CHUNK:
                    parts = 1 if entries else 0
                else:
                    parts = -(-len(entries) // CHUNK)
                for i in range(parts):
                    piece = entries[len(entries) * i // parts:len(entries) * (i + 1) // parts]
                    data = compress(tar_entries(piece))
                    out.write(data)
                    chunks.append(Chunk(piece[0][0], offset, len(data), len(piece)))
                    offset += len(data)

            if not old or old_path is None:
                emit(load(None, None))
            else:
                firsts = [key(c.first) for c in old]
                dirty = {max(0, bisect.bisect_right(firsts, key(d)) - 1) for d in changed}
                with open(old_path, "rb") as src:
                    for i, c in enumerate(old):
                        if i in dirty:
                            lo = None if i == 0 else c.first
                            hi = old[i + 1].first if i + 1 < len(old) else None
                            emit(load(lo, hi), grown=True)
                            continue
                        src.seek(c.offset)
                        data = src.read(c.length)
                        if len(data) != c.length:
                            raise AlpmError(ErrorCode.DB_INVALID,
                                            f"{old_path} is shorter than its chunk index",
                                            path=old_path)
                        out.write(data)
                        chunks.append(Chunk(c.first, offset, c.length, c.count))
                        offset += c.length
            out.write(compress(_END))
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise AlpmError(ErrorCode.DB_WRITE, f"could not write {path}: {exc}", path=path) from exc
    return chunks
