"""libarchive's C functions, bound once with ctypes for the engine's two readers.

Package files (:mod:`alpmd.engine.archive`) and sync databases
(:mod:`alpmd.engine.db.sync`) walk archives member by member; libarchive-c's entry
objects cost several Python calls per property, so both talk to the library
directly through this handle of our own (setting argtypes here never touches
libarchive-c's function objects, and return codes come back raw). Callers hold the
pointers they pass often (archives, entries, disk writers) as ``ctypes.c_void_p``
objects, which ctypes passes as they are: a plain int is converted again on every
call (a lookup in ctypes' format table).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

from alpmd import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

#: Decompressors libarchive has built in; the external-program ones (lrzip, lzop,
#: grzip) are left out so that reading a file never spawns a process.
FILTERS = ("gzip", "bzip2", "xz", "lzma", "zstd", "compress", "lz4", "lzip")

ARCHIVE_OK = 0
ARCHIVE_EOF = 1
ARCHIVE_WARN = -20

AE_IFMT = 0o170000
AE_IFREG = 0o100000
AE_IFDIR = 0o040000
AE_IFLNK = 0o120000

#: The soname every libarchive 3 ships; loading it directly skips libarchive-c's
#: ``ctypes.util.find_library``, which runs ``ldconfig -p`` (tens of milliseconds on
#: every command's start-up).
SONAME = "libarchive.so.13"


def _load() -> ctypes.CDLL:
    """The library: ``$LIBARCHIVE`` (as libarchive-c honours it), the soname, else discovery."""
    for name in (os.environ.get("LIBARCHIVE"), SONAME):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                pass
    from libarchive import ffi  # its import searches with find_library

    return ctypes.CDLL(ffi.libarchive_path)


LIB = _load()
#: The same library, for the functions that only read or set an entry's fields in memory:
#: their calls keep the GIL (``CDLL`` releases and takes it again around every call, a
#: fifth of a short call's cost, tens of thousands of times in a large ``-U``). Never
#: for a call that reads, inflates or writes: other threads would wait for it.
HELD = ctypes.PyDLL(LIB._name, handle=LIB._handle)
_vp = ctypes.c_void_p


def _bind(name: str, argtypes: list[Any], restype: Any, lib: ctypes.CDLL = LIB) -> Callable[..., Any]:
    func = getattr(lib, name)
    func.argtypes = argtypes
    func.restype = restype
    bound: Callable[..., Any] = func
    return bound


read_new = _bind("archive_read_new", [], _vp)
read_free = _bind("archive_read_free", [_vp], ctypes.c_int)
support_format_tar = _bind("archive_read_support_format_tar", [_vp], ctypes.c_int)
support_format_empty = _bind("archive_read_support_format_empty", [_vp], ctypes.c_int)
#: One "support filter" function per available decompressor in :data:`FILTERS`.
support_filters = [
    _bind(f"archive_read_support_filter_{name}", [_vp], ctypes.c_int)
    for name in FILTERS
    if hasattr(LIB, f"archive_read_support_filter_{name}")
]
read_open_fd = _bind("archive_read_open_fd", [_vp, ctypes.c_int, ctypes.c_size_t], ctypes.c_int)
read_open_memory = _bind("archive_read_open_memory", [_vp, _vp, ctypes.c_size_t], ctypes.c_int)
next_header2 = _bind("archive_read_next_header2", [_vp, _vp], ctypes.c_int)
read_data = _bind("archive_read_data", [_vp, _vp, ctypes.c_size_t], ctypes.c_ssize_t)
#: Its out-parameters go as ``c_void_p`` addresses: a ``byref`` through ``POINTER``
#: argument types costs ctypes a failed attribute lookup per argument and call.
read_data_block = _bind("archive_read_data_block", [_vp, _vp, _vp, _vp], ctypes.c_int)
#: Bytes through filter ``n``: 0 is what the tar reader got (inflated), -1 the raw file.
filter_bytes = _bind("archive_filter_bytes", [_vp, ctypes.c_int], ctypes.c_int64, HELD)
filter_count = _bind("archive_filter_count", [_vp], ctypes.c_int, HELD)
error_string = _bind("archive_error_string", [_vp], ctypes.c_char_p, HELD)
entry_new = _bind("archive_entry_new", [], _vp)
entry_free = _bind("archive_entry_free", [_vp], None)
entry_pathname_utf8 = _bind("archive_entry_pathname_utf8", [_vp], ctypes.c_char_p, HELD)
entry_pathname = _bind("archive_entry_pathname", [_vp], ctypes.c_char_p, HELD)
entry_symlink_utf8 = _bind("archive_entry_symlink_utf8", [_vp], ctypes.c_char_p, HELD)
entry_symlink = _bind("archive_entry_symlink", [_vp], ctypes.c_char_p, HELD)
entry_hardlink_utf8 = _bind("archive_entry_hardlink_utf8", [_vp], ctypes.c_char_p, HELD)
entry_hardlink = _bind("archive_entry_hardlink", [_vp], ctypes.c_char_p, HELD)
entry_filetype = _bind("archive_entry_filetype", [_vp], ctypes.c_uint, HELD)
entry_size = _bind("archive_entry_size", [_vp], ctypes.c_int64, HELD)
entry_size_is_set = _bind("archive_entry_size_is_set", [_vp], ctypes.c_int, HELD)
write_disk_new = _bind("archive_write_disk_new", [], _vp)
write_disk_set_options = _bind("archive_write_disk_set_options", [_vp, ctypes.c_int], ctypes.c_int)
write_free = _bind("archive_write_free", [_vp], ctypes.c_int)
read_extract2 = _bind("archive_read_extract2", [_vp, _vp, _vp], ctypes.c_int)
read_data_skip = _bind("archive_read_data_skip", [_vp], ctypes.c_int)
entry_set_pathname = _bind("archive_entry_set_pathname", [_vp, ctypes.c_char_p], None, HELD)
entry_mode = _bind("archive_entry_mode", [_vp], ctypes.c_uint, HELD)


def utf8_or_raw(entry_p: ctypes.c_void_p, raw: Callable[[ctypes.c_void_p], bytes | None],
                utf8: Callable[[ctypes.c_void_p], bytes | None]) -> bytes | None:
    """A name of the current entry (``raw``: ``archive_entry_pathname``, ``_symlink``
    or ``_hardlink``; ``utf8``: its ``_utf8`` twin) in UTF-8 when libarchive can give it,
    else as stored.

    The stored form comes first: when it is ASCII it is the UTF-8 form already, and
    asking for ``_utf8`` would make libarchive open an iconv conversion and free it
    again on every call (half the cost of reading a small entry's header).
    """
    name = raw(entry_p)
    if name is None or not name.isascii():
        name = utf8(entry_p) or name
    return name
