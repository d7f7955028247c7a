"""Writing sync database archives laid out as repo-add lays them out.

Each package is a ``name-version/`` directory with ``desc`` (and ``files`` in the
``.files`` database); entries are sorted bytewise like repo-add's C-locale glob,
the compressions are repo-add's (``gzip -n``, ``zstd``, ``xz``, ``bzip2``).
The content of each member comes ready-made (the tracking database keeps the
text of every entry), so writing a database is one streaming pass.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from alpmd.engine.errors import AlpmError, ErrorCode

#: compression -> (libarchive filter, options); gzip without a timestamp like ``gzip -n``.
FILTERS: dict[str, tuple[str | None, str]] = {
    "gz": ("gzip", "gzip:!timestamp"),
    "zst": ("zstd", "zstd:compression-level=3"),
    "xz": ("xz", ""),
    "bz2": ("bzip2", ""),
    "none": (None, ""),
}

#: One database entry: directory name, mtime, members (name, content).
Entry = tuple[str, int, list[tuple[str, bytes]]]


def write_db_archive(path: str, compression: str, entries: Iterable[Entry]) -> None:
    """Write ``entries`` (already sorted) to ``path`` and make it durable."""
    import libarchive  # libarchive-c: imported on first write (its import searches the library)
    from libarchive import ffi
    from libarchive.entry import ArchiveEntry, FileType

    filter_name, options = FILTERS[compression]
    try:
        with libarchive.file_writer(path, "pax_restricted", filter_name,
                                    options=options) as writer:
            ap = writer._pointer
            d = ArchiveEntry(size=0, filetype=FileType.DIRECTORY, perm=0o755, uid=0, gid=0,
                             uname="root", gname="root")
            f = ArchiveEntry(filetype=FileType.REGULAR_FILE, perm=0o644, uid=0, gid=0,
                             uname="root", gname="root")
            for dirname, mtime, members in entries:
                d.pathname = dirname + "/"
                d.set_mtime(mtime)
                ffi.write_header(ap, d._entry_p)
                ffi.write_finish_entry(ap)
                for member, data in members:
                    f.pathname = f"{dirname}/{member}"
                    f.size = len(data)
                    f.set_mtime(mtime)
                    ffi.write_header(ap, f._entry_p)
                    ffi.write_data(ap, data, len(data))
                    ffi.write_finish_entry(ap)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except (OSError, libarchive.ArchiveError) as exc:
        raise AlpmError(ErrorCode.DB_WRITE, f"could not write {path}: {exc}", path=path) from exc
