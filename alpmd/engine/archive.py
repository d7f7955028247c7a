"""Reading package archives (``.pkg.tar[.zst|.xz|.gz|.bz2|...]``) without extracting them.

libalpm's ``_alpm_pkg_load_internal`` walks the archive once: ``.PKGINFO`` gives
the metadata, ``.INSTALL`` the scriptlet, and (for a full load) every other
entry not starting with ``.`` goes into the sorted file list. We do the same,
with two differences that matter for untrusted files:

* only tar is accepted (libarchive's ``format_all`` would also take mtree,
  which reads files from the host, zip, cpio...), and the compression is
  detected from the content, never from the name;
* every entry is checked as it streams past: absolute paths, ``..`` or empty
  components, duplicates, devices, hard links to anything but an earlier file
  of the same archive, entries below a symlink of the same archive, and
  metadata members larger than :data:`MAX_METADATA_SIZE` are rejected with
  ``AlpmError(PKG_INVALID, entry=<name>)`` before anything is extracted;
* what a walk may cost is bounded whoever supplied the file (decompression
  bombs): metadata members of :data:`MAX_METADATA_SIZE` at most, at most
  :data:`MAX_ENTRIES` entries, their names kept in :data:`MAX_NAME_BYTES`, and
  past :data:`INFLATE_FREE` bytes of tar
  stream no more than :data:`MAX_INFLATE_RATIO` times the compressed bytes
  read; a walk over the limits stops at once with ``AlpmError(ARCHIVE_LIMIT)``.

The file list comes from the archive itself, not from ``.MTREE`` (libalpm's
"cheap way"): what is listed is then exactly what extraction would write, and
a full load verifies the whole compressed stream.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import errno
import marshal
import os
import signal
import stat
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from alpmd import TYPE_CHECKING
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import Backup, PkgMeta, metadata_problem
from alpmd.engine.formats.files import FileList, sort_paths
from alpmd.engine.formats.pkginfo import parse_pkginfo
from alpmd.engine.larchive import (
    AE_IFDIR as _AE_IFDIR,
)
from alpmd.engine.larchive import (
    AE_IFLNK as _AE_IFLNK,
)
from alpmd.engine.larchive import (
    AE_IFMT as _AE_IFMT,
)
from alpmd.engine.larchive import (
    AE_IFREG as _AE_IFREG,
)
from alpmd.engine.larchive import (
    ARCHIVE_EOF as _ARCHIVE_EOF,
)
from alpmd.engine.larchive import (
    ARCHIVE_OK as _ARCHIVE_OK,
)
from alpmd.engine.larchive import (
    ARCHIVE_WARN as _ARCHIVE_WARN,
)
from alpmd.engine.larchive import (
    entry_filetype as _entry_filetype,
)
from alpmd.engine.larchive import (
    entry_free as _entry_free,
)
from alpmd.engine.larchive import (
    entry_hardlink as _entry_hardlink,
)
from alpmd.engine.larchive import (
    entry_hardlink_utf8 as _entry_hardlink_utf8,
)
from alpmd.engine.larchive import (
    entry_new as _entry_new,
)
from alpmd.engine.larchive import (
    entry_pathname as _entry_pathname,
)
from alpmd.engine.larchive import (
    entry_pathname_utf8 as _entry_pathname_utf8,
)
from alpmd.engine.larchive import (
    entry_size as _entry_size,
)
from alpmd.engine.larchive import (
    entry_size_is_set as _entry_size_is_set,
)
from alpmd.engine.larchive import (
    entry_symlink as _entry_symlink,
)
from alpmd.engine.larchive import (
    entry_symlink_utf8 as _entry_symlink_utf8,
)
from alpmd.engine.larchive import (
    error_string as _error_string,
)
from alpmd.engine.larchive import (
    filter_bytes as _filter_bytes,
)
from alpmd.engine.larchive import (
    filter_count as _filter_count,
)
from alpmd.engine.larchive import (
    next_header2 as _next_header2,
)
from alpmd.engine.larchive import (
    read_data as _read_data,
)
from alpmd.engine.larchive import (
    read_data_block as _read_data_block,
)
from alpmd.engine.larchive import (
    read_free as _read_free,
)
from alpmd.engine.larchive import (
    read_new as _read_new,
)
from alpmd.engine.larchive import (
    read_open_fd as _read_open_fd,
)
from alpmd.engine.larchive import (
    read_open_memory as _read_open_memory,
)
from alpmd.engine.larchive import (
    support_filters as _support_filters,
)
from alpmd.engine.larchive import (
    support_format_empty as _support_format_empty,
)
from alpmd.engine.larchive import (
    support_format_tar as _support_format_tar,
)
from alpmd.engine.larchive import (
    utf8_or_raw as _utf8_or_raw,
)
from alpmd.engine.package import Loaded, Origin, Package, Part
from alpmd.i18n import N_

if TYPE_CHECKING:
    from alpmd.engine.formats.buildinfo import BuildInfo

__all__ = [
    "INFLATE_FREE",
    "MAX_ENTRIES",
    "MAX_NAME_BYTES",
    "MAX_INFLATE_RATIO",
    "MAX_METADATA_SIZE",
    "METADATA_MEMBERS",
    "ArchiveReadError",
    "EntryKind",
    "PackageArchive",
    "archive_reader",
    "iter_archive_members",
    "iter_entries",
    "load_package_file",
    "load_package_files",
    "member_kind",
    "member_name",
    "open_regular_file",
    "read_package_archive",
    "skip_member",
]

#: Largest accepted ``.PKGINFO``/``.BUILDINFO``/``.MTREE``/``.INSTALL``; real ones are
#: kilobytes (the ``.MTREE`` of a 200,000-file package is about 3 MiB, gzipped).
MAX_METADATA_SIZE = 8 * 1024 * 1024

#: Most entries one archive may have (the largest Arch packages have ~200,000).
MAX_ENTRIES = 2_000_000

#: Tar stream bytes read before the inflation ratio is watched (real packages
#: compress 2-20 times; only long runs of zeros go beyond 1:100).
INFLATE_FREE = 256 * 1024 * 1024
MAX_INFLATE_RATIO = 100

#: Most memory the names a walk keeps may take: every entry's path (for duplicates and the
#: file list) and every proper ancestor of one (to refuse entries below a symlink), each
#: counted as its characters plus :data:`NAME_COST`. Before, paths of 2,000 levels, each
#: under a directory of its own, made a 9 KB package cost 1.6 GB (each new level kept a
#: longer copy of the path), and long names under the inflation ratio were bounded only
#: by the file's size times 100. A real package's names take a few tens of MiB at most
#: (200,000 paths of 100 characters: 32 MiB counted).
MAX_NAME_BYTES = 128 * 1024 * 1024
#: what one kept name costs besides its characters (the string object and its slot)
NAME_COST = 64

#: The dot-members we read; any other name starting with ``.`` is skipped, like libalpm.
METADATA_MEMBERS = frozenset({".PKGINFO", ".BUILDINFO", ".MTREE", ".INSTALL"})

_READ_BLOCK = 64 * 1024

#: What a header or data read may return and still be used: ``ARCHIVE_RETRY``
#: (a damaged header libarchive would resync past) is an error, as in libalpm.
_ARCHIVE_USABLE = frozenset({_ARCHIVE_OK, _ARCHIVE_WARN})


class EntryKind(enum.Enum):
    """What an archive member is; devices, fifos and sockets are ``OTHER``."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "link"
    HARDLINK = "hardlink"
    OTHER = "other"




def _decode(raw: bytes) -> str:
    """Archive names are bytes; undecodable ones survive as surrogates (like ``os.fsdecode``)."""
    return raw.decode("utf-8", "surrogateescape")


def member_name(entry_p: ctypes.c_void_p) -> str | None:
    """The current member's path as stored (``None`` when the header has none)."""
    raw = _utf8_or_raw(entry_p, _entry_pathname, _entry_pathname_utf8)
    return None if raw is None else _decode(raw)


def _entry_link(entry_p: ctypes.c_void_p, hard: bool) -> str | None:
    if hard:
        raw = _utf8_or_raw(entry_p, _entry_hardlink, _entry_hardlink_utf8)
    else:
        raw = _utf8_or_raw(entry_p, _entry_symlink, _entry_symlink_utf8)
    return None if raw is None else _decode(raw)


def member_kind(entry_p: ctypes.c_void_p) -> EntryKind:
    """What the current member is; hard links are told apart from the file they name."""
    if _entry_hardlink(entry_p) is not None:
        return EntryKind.HARDLINK
    ftype = int(_entry_filetype(entry_p)) & _AE_IFMT
    if ftype == _AE_IFREG:
        return EntryKind.FILE
    if ftype == _AE_IFDIR:
        return EntryKind.DIR
    if ftype == _AE_IFLNK:
        return EntryKind.SYMLINK
    return EntryKind.OTHER


def _archive_message(archive_p: ctypes.c_void_p) -> str:
    raw = _error_string(archive_p)
    return _decode(raw) if raw else "unknown libarchive error"


# -- opening -------------------------------------------------------------------------


class ArchiveReadError(Exception):
    """A libarchive failure while walking; callers turn it into an AlpmError with their context.

    ``opening`` tells a file libarchive could not open as an archive at all
    from one that broke on the way (libalpm's ``PKG_OPEN`` and ``LIBARCHIVE``).
    """

    def __init__(self, message: str, entry: str | None, *, opening: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.entry = entry
        self.opening = opening


def open_regular_file(path: str, not_found: ErrorCode) -> tuple[int, os.stat_result]:
    """Open a regular file for reading, never blocking on a fifo or a device."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            code = not_found
        elif exc.errno in (errno.EACCES, errno.EPERM):
            code = ErrorCode.BADPERMS
        else:
            code = ErrorCode.PKG_OPEN
        raise AlpmError(code, f"could not open {path}: {exc.strerror}", path=path) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AlpmError(ErrorCode.PKG_OPEN, f"could not open {path}: not a regular file",
                            path=path)
        os.set_blocking(fd, True)
    except OSError as exc:
        os.close(fd)
        raise AlpmError(ErrorCode.PKG_OPEN, f"could not open {path}: {exc.strerror}",
                        path=path) from exc
    except AlpmError:
        os.close(fd)
        raise
    return fd, st


@contextmanager
def archive_reader(source: int | bytes) -> Iterator[ctypes.c_void_p]:
    """A libarchive read handle (tar only, built-in decompressors) on an fd or a buffer."""
    handle = _read_new()
    if not handle:
        raise AlpmError(ErrorCode.MEMORY, "archive_read_new failed")
    archive_p = ctypes.c_void_p(handle)
    try:
        for support in _support_filters:
            support(archive_p)  # ARCHIVE_WARN (no library for it) is harmless
        _support_format_tar(archive_p)
        _support_format_empty(archive_p)  # an empty file is an archive without entries
        if isinstance(source, int):
            ret = _read_open_fd(archive_p, source, _READ_BLOCK)
        else:
            ret = _read_open_memory(archive_p, ctypes.c_char_p(source), len(source))
        if ret < _ARCHIVE_WARN:
            raise ArchiveReadError(_archive_message(archive_p), None, opening=True)
        yield archive_p
    finally:
        _read_free(archive_p)


def _check_inflation(archive_p: ctypes.c_void_p, label: str) -> None:
    """Stop a walk whose tar stream has grown past the ratio allowed (a decompression bomb)."""
    out = int(_filter_bytes(archive_p, 0))
    if out > INFLATE_FREE:
        raw = max(int(_filter_bytes(archive_p, -1)), 1)
        if out > MAX_INFLATE_RATIO * raw:
            raise AlpmError(ErrorCode.ARCHIVE_LIMIT,
                            f"{label}: refusing to read on: {raw} compressed bytes inflated to "
                            f"more than {out} (over {MAX_INFLATE_RATIO} times, a "
                            "decompression bomb?)", path=label)


def skip_member(archive_p: ctypes.c_void_p, label: str = "archive") -> None:
    """Pass over the rest of the current member, watching the inflation as it goes.

    Use this, never libarchive's ``archive_read_data_skip``: that one inflates
    gigabytes in one call, and leaves the handle in a state where the walk of
    :func:`iter_entries` can no longer check the member. Nothing to do for an
    uncompressed stream (nothing inflates; libarchive seeks) or a member
    already read.
    """
    if int(_filter_count(archive_p)) < 2:
        return
    _skip_blocks(archive_p, label, _BlockRefs())


class _BlockRefs:
    """The out-parameters of ``archive_read_data_block``, made once per walk, not per member,
    and the inflated bytes skipped since the inflation ratio was last looked at."""

    __slots__ = ("buf", "offset", "pending", "refs", "size")

    def __init__(self) -> None:
        self.buf = ctypes.c_void_p()
        self.size = ctypes.c_size_t()
        self.offset = ctypes.c_int64()
        self.refs = (ctypes.c_void_p(ctypes.addressof(self.buf)),
                     ctypes.c_void_p(ctypes.addressof(self.size)),
                     ctypes.c_void_p(ctypes.addressof(self.offset)))
        self.pending = 0


#: Inflated bytes skipped between two looks at the inflation ratio, and headers read
#: between two looks: each look is a libarchive call, and the ratio only matters past
#: :data:`INFLATE_FREE` (256 MiB), so looking once a MiB or 64 members is as early.
_LOOK_BYTES = 1 << 20
_LOOK_MEMBERS = 64


def _skip_blocks(archive_p: ctypes.c_void_p, label: str, blocks: _BlockRefs) -> None:
    """Read the current member's remaining blocks (a compressed stream), checking inflation."""
    buf_ref, size_ref, offset_ref = blocks.refs
    size = blocks.size
    while True:
        ret = _read_data_block(archive_p, buf_ref, size_ref, offset_ref)
        if ret == _ARCHIVE_EOF:
            return
        if ret not in _ARCHIVE_USABLE:
            raise ArchiveReadError(_archive_message(archive_p), None)
        blocks.pending += size.value
        if blocks.pending > _LOOK_BYTES:
            blocks.pending = 0
            if _filter_bytes(archive_p, 0) > INFLATE_FREE:  # else the ratio cannot be over
                _check_inflation(archive_p, label)


class Consumed:
    """Set by a walk's caller once it has read the current member's data to its end
    (``archive_read_extract2`` does): the walk then has nothing of it left to skip."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = False


def iter_entries(archive_p: ctypes.c_void_p, label: str = "archive",
                 consumed: Consumed | None = None) -> Iterator[ctypes.c_void_p]:
    """Yield the entry pointer of each member; a bad header raises :class:`ArchiveReadError`.

    A member's data may be read (``archive_read_data``, ``archive_read_extract2``)
    or skipped with :func:`skip_member` before the next one; whatever is left of
    it is skipped here, the same way, unless the caller said (``consumed``) it
    read all of it. The walk is bounded (:data:`MAX_ENTRIES`,
    :data:`MAX_INFLATE_RATIO`): past the limits it raises ``AlpmError(ARCHIVE_LIMIT)``
    naming ``label``.
    """
    made = _entry_new()
    if not made:
        raise AlpmError(ErrorCode.MEMORY, "archive_entry_new failed")
    entry_p = ctypes.c_void_p(made)
    count = 0
    blocks: _BlockRefs | None = None  # set once a header was read: a compressed stream
    try:
        while True:
            if count == 1 and int(_filter_count(archive_p)) >= 2:
                blocks = _BlockRefs()
            if consumed is not None and consumed.done:
                consumed.done = False
            elif blocks is not None:
                _skip_blocks(archive_p, label, blocks)
            ret = _next_header2(archive_p, entry_p)
            if ret == _ARCHIVE_EOF:
                return
            if ret not in _ARCHIVE_USABLE:
                raise ArchiveReadError(_archive_message(archive_p), None)
            count += 1
            if count > MAX_ENTRIES:
                raise AlpmError(ErrorCode.ARCHIVE_LIMIT,
                                f"{label}: more than {MAX_ENTRIES} entries", path=label)
            if count % _LOOK_MEMBERS == 1 and _filter_bytes(archive_p, 0) > INFLATE_FREE:
                _check_inflation(archive_p, label)
            yield entry_p
    finally:
        _entry_free(entry_p)


def _read_member(archive_p: ctypes.c_void_p, entry_p: ctypes.c_void_p, cap: int, name: str, label: str) -> bytes:
    """Read the current member whole, in as few calls as its declared size allows.

    Stops (raises) as soon as more than ``cap`` bytes come out, whatever the
    header claimed, so a lying or huge member never gets slurped.
    """
    declared = int(_entry_size(entry_p)) if _entry_size_is_set(entry_p) else -1
    if declared > cap:
        raise _too_big(label, name, cap)
    size = min(cap + 1, declared + 1 if declared >= 0 else _READ_BLOCK)
    buf = ctypes.create_string_buffer(max(size, 1))
    total = 0
    while True:
        if total == len(buf):
            if total > cap:
                raise _too_big(label, name, cap)
            bigger = ctypes.create_string_buffer(min(cap + 1, 2 * len(buf)))
            ctypes.memmove(bigger, buf, total)
            buf = bigger
        got = int(_read_data(archive_p, ctypes.addressof(buf) + total, len(buf) - total))
        if got < 0:
            raise ArchiveReadError(_archive_message(archive_p), name)
        if got == 0:
            break
        total += got
    if total > cap:
        raise _too_big(label, name, cap)
    return buf.raw[:total]


def _too_big(label: str, name: str, cap: int) -> AlpmError:
    return AlpmError(ErrorCode.ARCHIVE_LIMIT,
                     f"{label}: entry {name!r} is larger than the limit of {cap} bytes",
                     entry=name, path=label)


# -- the generic walker (sync databases) -------------------------------------------


def iter_archive_members(
    source: bytes | str | os.PathLike[str],
    *,
    max_member_size: int,
    error_code: ErrorCode = ErrorCode.PKG_INVALID,
) -> Iterator[tuple[str, bytes | None, EntryKind]]:
    """Yield ``(name, content, kind)`` for each member of a tar archive, compressed or not.

    ``source`` is the archive itself (bytes) or a path. Regular files come with
    their whole content (each read in one go), everything else with ``None``.
    Names are as stored (no validation: nothing is extracted). A corrupt stream
    raises ``AlpmError(error_code)`` naming the entry, and so does a missing
    file; a member larger than ``max_member_size`` or a walk over the limits
    raises ``AlpmError(ARCHIVE_LIMIT)``.
    """
    fd = -1
    handle: int | bytes
    if isinstance(source, bytes):
        handle = source
        label = "archive"
    else:
        label = os.fspath(source)
        fd, _st = open_regular_file(label, error_code)
        handle = fd
    last: str | None = None
    try:
        with archive_reader(handle) as archive_p:
            for entry_p in iter_entries(archive_p, label):
                name = member_name(entry_p) or ""
                last = name
                kind = member_kind(entry_p)
                data = None
                if kind is EntryKind.FILE:
                    data = _read_member(archive_p, entry_p, max_member_size, name, label)
                yield name, data, kind
    except ArchiveReadError as fail:
        entry = fail.entry
        where = f"entry {entry}" if entry is not None else (
            f"after entry {last}" if last is not None else "archive start")
        raise AlpmError(error_code, f"invalid archive ({where}): {fail.message}",
                        entry=entry if entry is not None else last) from None
    finally:
        if fd >= 0:
            os.close(fd)


# -- package files -------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class PackageArchive:
    """Everything a package file says about itself, read without extracting it."""

    path: str
    meta: PkgMeta
    backup: list[str] = field(default_factory=list)
    #: Files and backups, sorted like libalpm; ``None`` after a metadata-only read.
    files: FileList | None = None
    #: The raw ``.MTREE`` member (gzip-compressed, as makepkg writes it).
    mtree: bytes | None = None
    #: The raw ``.BUILDINFO`` member; see :meth:`buildinfo`.
    buildinfo_raw: bytes | None = None
    #: The ``.INSTALL`` scriptlet.
    scriptlet: bytes | None = None
    #: Whether every member was seen: a metadata-only read stops after the first
    #: file, so an ``.INSTALL`` or ``.MTREE`` placed after the files is not known yet.
    complete: bool = True

    @property
    def has_scriptlet(self) -> bool:
        return self.scriptlet is not None

    def buildinfo(self) -> BuildInfo | None:
        """The parsed ``.BUILDINFO``, or ``None`` when the package has none.

        Parsed on demand: pacman ignores ``.BUILDINFO``, so a broken one must not
        stop a package from loading; asking for it raises ``PKG_INVALID``.
        """
        if self.buildinfo_raw is None:
            return None
        from alpmd.engine.formats.buildinfo import parse_buildinfo

        try:
            return parse_buildinfo(self.buildinfo_raw.decode("utf-8"))
        except (ValueError, AlpmError) as exc:
            raise AlpmError(ErrorCode.PKG_INVALID,
                            f"invalid package {self.path}: .BUILDINFO: {exc}",
                            entry=".BUILDINFO", path=self.path) from exc


class _Walk:
    """The checks and bookkeeping of one pass over a package archive."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.seen: set[str] = set()
        self.files_seen: set[str] = set()
        self.symlinks: set[str] = set()
        self.parents: set[str] = set()  # every proper ancestor of the entries so far
        self.name_bytes = 0  # what the names kept cost (bounded by MAX_NAME_BYTES)
        self.files: list[str] = []

    def invalid(self, name: str, why: str) -> AlpmError:
        return AlpmError(ErrorCode.PKG_INVALID,
                         f"invalid package {self.label}: entry {name!r}: {why}",
                         entry=name, path=self.label)

    def check_path(self, name: str, what: str = "path", entry: str | None = None) -> str:
        """The path without a trailing slash, or PKG_INVALID (naming ``entry``) if it could escape."""
        stripped = name[:-1] if name.endswith("/") and len(name) > 1 else name
        if stripped and stripped[0] != "/" and stripped[0] != "." and stripped[-1] != "/" \
                and "//" not in stripped and "/." not in stripped:
            return stripped  # no empty component, and none that starts with a dot
        parts = stripped.split("/")
        problem = None
        if not name:
            problem = f"empty {what}"
        elif name.startswith("/"):
            problem = f"absolute {what}"
        elif ".." in parts:
            problem = f"'..' component in {what}"
        elif stripped != "." and ("" in parts or "." in parts):
            problem = f"empty or '.' component in {what}"
        if problem is not None:
            if entry is not None:
                raise self.invalid(entry, f"{problem} {name!r}")
            raise self.invalid(name, problem)
        return stripped

    def check_ancestors(self, name: str, path: str, kind: EntryKind) -> None:
        """Refuse what extraction would write through a symlink of this same archive.

        An entry below one of its symlinks, or a symlink (or file) put over a
        directory that earlier entries live in, would both send later writes
        (or hard links) wherever the link points.
        """
        if kind is not EntryKind.DIR and path in self.parents:
            raise self.invalid(name, "replaces a directory that earlier entries are in")
        slash = path.rfind("/")
        if slash == -1 or path[:slash] in self.parents:
            # No ancestors, or the parent was checked with all its ancestors for an
            # earlier entry, and none of them can have become a symlink since (above).
            return
        pos = path.find("/")
        while pos != -1:
            prefix = path[:pos]
            if prefix in self.symlinks:
                raise self.invalid(name, f"lies below the symlink {prefix!r}")
            if prefix not in self.parents:
                self.keep(name, pos)
                self.parents.add(prefix)
            pos = path.find("/", pos + 1)

    def keep(self, name: str, length: int) -> None:
        """Count a kept name of ``length`` characters; ARCHIVE_LIMIT past MAX_NAME_BYTES."""
        self.name_bytes += length + NAME_COST
        if self.name_bytes > MAX_NAME_BYTES:
            raise AlpmError(ErrorCode.ARCHIVE_LIMIT,
                            f"{self.label}: its paths and the directories they imply take "
                            f"more than {MAX_NAME_BYTES} bytes", entry=name, path=self.label)

    def add(self, name: str, path: str, kind: EntryKind, entry_p: ctypes.c_void_p) -> None:
        """Validate one non-metadata entry and record it for the file list."""
        if kind is EntryKind.OTHER:
            raise self.invalid(name, "device, fifo or socket entries are not allowed")
        if path in self.seen:
            raise self.invalid(name, "duplicate entry")
        self.check_ancestors(name, path, kind)
        self.keep(name, 2 * len(path) if kind is EntryKind.DIR else len(path))
        self.seen.add(path)
        if kind is EntryKind.SYMLINK:
            target = _entry_link(entry_p, hard=False)
            if not target:
                raise self.invalid(name, "symlink without a target")
            self.symlinks.add(path)
        elif kind is EntryKind.HARDLINK:
            target = _entry_link(entry_p, hard=True) or ""
            tpath = self.check_path(target, "hard link target", entry=name)
            if tpath not in self.files_seen:
                raise self.invalid(name, f"hard link to {target!r}, which is not an earlier "
                                         "file of this package")
        if path.startswith("."):
            return  # like libalpm: dot entries are neither listed nor extracted
        if kind is EntryKind.FILE or kind is EntryKind.HARDLINK:
            self.files_seen.add(path)
        self.files.append(path + "/" if kind is EntryKind.DIR else path)


def _read_package(fd: int, label: str,
                  full: bool) -> tuple[dict[str, bytes], list[str], bool]:
    """One pass over the archive on ``fd``: the metadata members, (full) the file list,
    and whether the whole archive was read (a metadata-only pass stops early)."""
    complete = True
    walk = _Walk(label)
    meta: dict[str, bytes] = {}
    last: str | None = None
    try:
        with archive_reader(fd) as archive_p:
            for entry_p in iter_entries(archive_p, label):
                raw = _utf8_or_raw(entry_p, _entry_pathname, _entry_pathname_utf8)
                name = "" if raw is None else raw.decode("utf-8", "surrogateescape")
                last = name
                path = walk.check_path(name)
                kind = member_kind(entry_p)
                if path in METADATA_MEMBERS:
                    if path in meta:
                        raise walk.invalid(name, "duplicate metadata entry")
                    if kind is not EntryKind.FILE:
                        raise walk.invalid(name, "metadata entry is not a regular file")
                    meta[path] = _read_member(archive_p, entry_p, MAX_METADATA_SIZE, name,
                                              label)
                    walk.seen.add(path)
                    continue
                if not full and ".PKGINFO" in meta and not path.startswith("."):
                    complete = False  # makepkg puts every dot member first; others may not
                    break
                walk.add(name, path, kind, entry_p)
    except ArchiveReadError as fail:
        entry = fail.entry if fail.entry is not None else last
        where = f"entry {fail.entry!r}" if fail.entry is not None else (
            f"after entry {last!r}" if last is not None else "start of archive")
        # libalpm: PKG_OPEN when the file is no archive, LIBARCHIVE when reading it broke.
        code = ErrorCode.PKG_OPEN if fail.opening else ErrorCode.LIBARCHIVE
        # (libalpm's log line when libarchive cannot open it; its read errors word
        # differently, pacman reading in other blocks, and are not imitated)
        log = ("could not open file {file}: " + fail.message.replace("{", "{{").replace("}", "}}")
               if fail.opening else None)
        raise AlpmError(code, f"error while reading package {label} ({where}): {fail.message}",
                        entry=entry, path=label, log=log) from None
    sort_paths(walk.files)
    return meta, walk.files, complete


def read_package_archive(path: str | os.PathLike[str], *, full: bool = True) -> PackageArchive:
    """Read a package file: metadata, scriptlet, mtree, buildinfo and (full) the file list.

    Raises ``AlpmError``, with libalpm's codes: PKG_NOT_FOUND (no such file),
    BADPERMS, PKG_OPEN (not a regular file, or not an archive libarchive can
    open), LIBARCHIVE (the stream breaks: truncated, damaged), PKG_INVALID (bad
    or missing metadata, or hostile entries; ``entry`` names the member at
    fault), ARCHIVE_LIMIT (over the reading limits).
    """
    label = os.fspath(path)
    return _archive_from(label, _walk_package_file(label, full), full)


#: What one pass over a package file gives: its metadata members, its file list,
#: whether every member was seen, and the file's size. Only built-in types, so that
#: a reading child process can hand it over with :mod:`marshal`.
_Walked = tuple[dict[str, bytes], list[str], bool, int]


def _walk_package_file(label: str, full: bool) -> _Walked:
    fd, st = open_regular_file(label, ErrorCode.PKG_NOT_FOUND)
    try:
        members, files, complete = _read_package(fd, label, full)
    finally:
        os.close(fd)
    return members, files, complete, st.st_size


def _archive_from(label: str, walked: _Walked, full: bool) -> PackageArchive:
    """The :class:`PackageArchive` of a walked package file (its ``.PKGINFO`` checked)."""
    members, files, complete, size = walked

    # ``log``: what libalpm logs before refusing such a file (its name as ``{file}``)
    def invalid(why: str, log: str | None = None) -> AlpmError:
        return AlpmError(ErrorCode.PKG_INVALID, f"invalid package {label}: .PKGINFO: {why}",
                         entry=".PKGINFO", path=label, log=log)

    raw = members.get(".PKGINFO")
    if raw is None:
        raise AlpmError(ErrorCode.PKG_INVALID, f"missing package metadata (.PKGINFO) in {label}",
                        entry=".PKGINFO", path=label, log=N_("missing package metadata in {file}"))
    try:
        # bytes as libalpm keeps them (a latin-1 description installs); names are checked below
        info = parse_pkginfo(raw.decode("utf-8", "surrogateescape"))
    except AlpmError as exc:
        missing = exc.details.get("missing")
        raise invalid(str(exc), N_("missing package name in {file}") if missing == "pkgname"
                      else N_("missing package version in {file}") if missing == "pkgver"
                      else N_("could not parse package description file in {file}")) from None
    except ValueError as exc:
        raise invalid(str(exc)) from None
    meta = info.meta
    if "-" not in meta.version:
        raise invalid(f"invalid package version {meta.version!r} (no pkgrel)",
                      N_("invalid package version in {file}"))
    problem = metadata_problem(meta.name, meta.version)
    if problem is not None:
        raise invalid(f"invalid metadata for package {meta.name}-{meta.version} ({problem})")
    meta.csize = size
    meta.filename = os.path.basename(label)
    backup = list(info.backup)
    filelist = None
    if full:
        filelist = FileList(files=files, backup=[Backup(p, "") for p in backup])
    return PackageArchive(
        path=label,
        meta=meta,
        backup=backup,
        files=filelist,
        mtree=members.get(".MTREE"),
        buildinfo_raw=members.get(".BUILDINFO"),
        scriptlet=members.get(".INSTALL"),
        complete=complete,
    )


def load_package_file(path: str | os.PathLike[str], *, full: bool = True) -> Package:
    """A :class:`Package` (``Origin.FILE``) for a package file, like ``alpm_pkg_load``.

    With ``full=False`` only the metadata members are read; the file list (and,
    when the read stopped before the end, the scriptlet and mtree, which may
    come after the files) are read from the file again when first asked for.
    """
    return _package_of(read_package_archive(path, full=full))


def _package_of(archive: PackageArchive) -> Package:
    label = archive.path
    whole: list[PackageArchive] = []  # the full read, once it was needed

    def loader(pkg: Package, parts: Part) -> Loaded:
        if not whole and ((Part.FILES in parts and archive.files is None) or (
                not archive.complete and parts & (Part.SCRIPTLET | Part.MTREE))):
            whole.append(read_package_archive(label, full=True))
        src = whole[0] if whole else archive
        return Loaded(files=src.files, mtree=src.mtree, scriptlet=src.scriptlet,
                      has_scriptlet=src.has_scriptlet if src.complete else None)

    return Package(archive.meta.name, archive.meta.version, Origin.FILE, path=label,
                   meta=archive.meta, files=archive.files, loader=loader)


#: Fewest package files per process worth a fork (a fork and the hand-over cost
#: about as much as reading a few small packages).
_FORK_MIN = 8


def load_package_files(paths: Sequence[str], *,
                       workers: int = 1) -> Generator[Package, None, None]:
    """:func:`load_package_file` (``full=True``) of each path, in order.

    With ``workers`` > 1, forked child processes walk the later files (what
    costs: every member's header, decompressed) while this one walks the
    first ones, and hand over what they read through a pipe (:mod:`marshal`,
    built-in types only); the ``.PKGINFO`` is parsed here. A file a child could
    not read is read again here, so the first bad file in order raises its own
    error, as in the serial case. Only when this process runs no other thread
    (a fork copies one thread only) and the files are many enough.
    """
    workers = min(workers, len(paths) // _FORK_MIN)
    if workers < 2 or threading.active_count() > 1:
        for path in paths:
            yield load_package_file(path, full=True)
        return
    share = -(-len(paths) // workers)
    children = [_Reader(paths[i:i + share]) for i in range(share, len(paths), share)]
    try:
        for path in paths[:share]:
            yield load_package_file(path, full=True)
        for child in children:
            walked = child.collect()
            for i, path in enumerate(child.paths):
                label = os.fspath(path)
                got = walked[i] if i < len(walked) else None
                yield _package_of(_archive_from(label, got, True) if got is not None
                                  else read_package_archive(label, full=True))
    finally:
        for child in children:
            child.stop()


class _Reader:
    """A forked child walking some package files; :meth:`collect` takes what it read."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = paths
        rfd, wfd = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: read, write, and leave without running any cleanup
            try:
                os.close(rfd)
                out: list[_Walked] = []
                for path in paths:
                    try:
                        out.append(_walk_package_file(os.fspath(path), True))
                    except Exception:
                        break  # the parent reads it again, for its error
                data = marshal.dumps(out)
                view = memoryview(data)
                while view:
                    view = view[os.write(wfd, view):]
            finally:
                os._exit(0)
        os.close(wfd)
        self.rfd = rfd

    def collect(self) -> list[_Walked]:
        """What the child read, in order (shorter, or empty, if it stopped or died)."""
        chunks = []
        while chunk := os.read(self.rfd, 1 << 20):
            chunks.append(chunk)
        self.stop()
        try:
            walked: list[_Walked] = marshal.loads(b"".join(chunks))
        except (EOFError, ValueError, TypeError):
            return []
        return walked

    def stop(self) -> None:
        """Close the pipe and reap the child (killed first if it is still reading)."""
        if self.rfd >= 0:
            os.close(self.rfd)
            self.rfd = -1
        if self.pid > 0:
            pid, self.pid = self.pid, 0
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
