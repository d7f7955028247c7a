"""Build real package archives in memory-speed, the way makepkg lays them out.

:func:`build_package` writes ``.BUILDINFO``, ``.INSTALL``, ``.MTREE`` (gzip,
computed from the files like makepkg's ``bsdtar --format=mtree``) and
``.PKGINFO`` first, then the payload in makepkg's order (C-sorted, each
directory before its contents), into ``name-version-arch.pkg.tar.<ext>``.
Debian's pacman installs the result, and ``pacman -Qkk`` finds nothing altered.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import libarchive
from libarchive import ffi
from libarchive.entry import ArchiveEntry, FileType

from alpmd.engine.formats.buildinfo import BuildInfo, write_buildinfo
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.formats.mtree import MtreeEntry, write_mtree
from alpmd.engine.formats.pkginfo import PkgInfo, write_pkginfo

__all__ = ["COMPRESSIONS", "DEFAULT_MTIME", "FileSpec", "build_package", "package_filename"]

DEFAULT_MTIME = 1_600_000_000

#: extension -> (libarchive filter, writer options): fast levels, tests build hundreds.
COMPRESSIONS: dict[str, tuple[str | None, str]] = {
    "zst": ("zstd", "zstd:compression-level=1"),
    "xz": ("xz", "xz:compression-level=0"),
    "gz": ("gzip", "gzip:compression-level=1"),
    "bz2": ("bzip2", "bzip2:compression-level=1"),
    "none": (None, ""),
}

_LIB = ctypes.CDLL(ffi.libarchive_path)
_set_symlink = _LIB.archive_entry_update_symlink_utf8
_set_symlink.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_set_symlink.restype = ctypes.c_int


@dataclass
class FileSpec:
    """One payload entry. Directories left at the file default mode 0o644 get 0o755."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    kind: Literal["file", "dir", "link"] = "file"
    target: str | None = None
    mtime: int = DEFAULT_MTIME
    uid: int = 0
    gid: int = 0


@dataclass
class _Member:
    """One archive member to write: path, type, mode and content."""

    path: str
    kind: Literal["file", "dir", "link"]
    mode: int
    data: bytes = b""
    target: str | None = None
    mtime: int = DEFAULT_MTIME
    uid: int = 0
    gid: int = 0


def package_filename(meta: PkgMeta, compression: str = "zst") -> str:
    """``name-version-arch.pkg.tar.<ext>``, as makepkg names it."""
    ext = "" if compression == "none" else f".{compression}"
    return f"{meta.name}-{meta.version}-{meta.arch or 'any'}.pkg.tar{ext}"


def _payload(files: Sequence[FileSpec]) -> list[_Member]:
    """The payload with its parent directories, in makepkg's (pre-order, C-sorted) order."""
    members: dict[str, _Member] = {}
    for spec in files:
        path = spec.path.strip("/")
        if not path or ".." in path.split("/"):
            raise ValueError(f"bad payload path {spec.path!r} (use extra_members for hostile ones)")
        if spec.kind == "link" and spec.target is None:
            raise ValueError(f"symlink {spec.path!r} needs a target")
        mode = spec.mode & 0o7777
        if spec.kind == "dir" and mode == 0o644:
            mode = 0o755
        elif spec.kind == "link":
            mode = 0o777
        members[path] = _Member(path, spec.kind, mode, spec.data if spec.kind == "file" else b"",
                                spec.target, spec.mtime, spec.uid, spec.gid)
    for path in list(members):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in members:
                members[parent] = _Member(parent, "dir", 0o755)
    return sorted(members.values(), key=lambda m: [p.encode() for p in m.path.split("/")])


def _mtree_entry(m: _Member) -> MtreeEntry:
    return MtreeEntry(
        path=m.path,
        type=m.kind,
        mode=m.mode,
        uid=m.uid,
        gid=m.gid,
        size=len(m.data) if m.kind == "file" else None,
        time=m.mtime,
        md5=hashlib.md5(m.data).hexdigest() if m.kind == "file" else None,
        sha256=hashlib.sha256(m.data).hexdigest() if m.kind == "file" else None,
        link=m.target if m.kind == "link" else None,
    )


def _buildinfo(meta: PkgMeta) -> str:
    info = BuildInfo(
        format=2,
        pkgname=meta.name,
        pkgbase=meta.base or meta.name,
        pkgver=meta.version,
        pkgarch=meta.arch or "any",
        pkgbuild_sha256sum=hashlib.sha256(meta.name.encode()).hexdigest(),
        packager=meta.packager or "Unknown Packager",
        builddate=meta.builddate or DEFAULT_MTIME,
        builddir="/build",
        startdir="/startdir",
        buildtool="alpmd-testing",
        buildtoolver="1",
        buildenv=["!distcc", "color", "!ccache", "check", "!sign"],
        options=["strip", "docs", "!libtool", "!staticlibs", "emptydirs", "zipman"],
        installed=[],
    )
    return write_buildinfo(info)


_FILETYPES = {"file": int(FileType.REGULAR_FILE), "dir": int(FileType.DIRECTORY),
              "link": int(FileType.SYMBOLINK_LINK)}


def _write_member(archive_p: int, entry_p: int, m: _Member) -> None:
    """One member through a reused ``archive_entry`` (no per-entry Python objects: fast)."""
    ffi.entry_clear(entry_p)
    ffi.entry_update_pathname_utf8(entry_p, m.path.encode("utf-8", "surrogateescape"))
    ffi.entry_set_filetype(entry_p, _FILETYPES[m.kind])
    ffi.entry_set_perm(entry_p, m.mode)
    ffi.entry_set_size(entry_p, len(m.data))
    ffi.entry_set_uid(entry_p, m.uid)
    ffi.entry_set_gid(entry_p, m.gid)
    ffi.entry_set_mtime(entry_p, m.mtime, 0)
    if m.uid == 0:
        ffi.entry_update_uname_utf8(entry_p, b"root")
    if m.gid == 0:
        ffi.entry_update_gname_utf8(entry_p, b"root")
    if m.kind == "link":
        _set_symlink(entry_p, (m.target or "").encode("utf-8", "surrogateescape"))
    ffi.write_header(archive_p, entry_p)
    if m.data:
        ffi.write_data(archive_p, m.data, len(m.data))
    ffi.write_finish_entry(archive_p)


def build_package(
    outdir: Path,
    meta: PkgMeta,
    files: Sequence[FileSpec] = (),
    *,
    backup: Sequence[str] = (),
    install: str | None = None,
    compression: str = "zst",
    with_mtree: bool = True,
    with_buildinfo: bool = True,
    extra_members: Sequence[tuple[str, bytes]] = (),
) -> Path:
    """Write a package file into ``outdir`` and return its path.

    ``meta`` is copied, never changed; ``arch`` defaults to ``any``, ``builddate``
    to :data:`DEFAULT_MTIME`, ``packager`` to makepkg's ``Unknown Packager``, and
    ``isize`` (``.PKGINFO`` ``size``) to the total size of the file data.
    ``extra_members`` are raw regular files appended as given (no checks, not
    in the mtree): the way to build duplicate or hostile entries.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}; one of {sorted(COMPRESSIONS)}")
    payload = _payload(files)
    meta = dataclasses.replace(
        meta,
        arch=meta.arch or "any",
        builddate=meta.builddate if meta.builddate is not None else DEFAULT_MTIME,
        packager=meta.packager or "Unknown Packager",
        isize=meta.isize if meta.isize is not None
        else sum(len(m.data) for m in payload if m.kind == "file"),
    )
    pkginfo = write_pkginfo(PkgInfo(meta=meta, backup=list(backup))).encode()

    metadata: list[_Member] = []
    if with_buildinfo:
        metadata.append(_Member(".BUILDINFO", "file", 0o644, _buildinfo(meta).encode()))
    if install is not None:
        metadata.append(_Member(".INSTALL", "file", 0o644, install.encode()))
    pkginfo_member = _Member(".PKGINFO", "file", 0o644, pkginfo)
    if with_mtree:
        listed = [*metadata, pkginfo_member, *payload]
        mtree = write_mtree([_mtree_entry(m) for m in listed], compress=True)
        metadata.append(_Member(".MTREE", "file", 0o644, mtree))
    metadata.append(pkginfo_member)

    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / package_filename(meta, compression)
    filter_name, options = COMPRESSIONS[compression]
    extra = [_Member(name, "file", 0o644, data) for name, data in extra_members]
    entry = ArchiveEntry()
    with libarchive.file_writer(str(out), "pax_restricted", filter_name,
                                options=options) as writer:
        for m in (*metadata, *payload, *extra):
            _write_member(writer._pointer, entry._entry_p, m)
    return out


def sync_meta(path: Path) -> PkgMeta:
    """The sync-database entry repo-add would write for a built package file.

    Its .PKGINFO fields plus the file name, compressed size and checksums, so a
    test repository can serve the file from a ``file://`` or loopback server.
    """
    import hashlib

    from alpmd.engine.archive import read_package_archive

    meta = read_package_archive(path, full=False).meta
    data = Path(path).read_bytes()
    meta.csize = len(data)
    meta.filename = Path(path).name
    meta.sha256sum = hashlib.sha256(data).hexdigest()
    meta.md5sum = hashlib.md5(data).hexdigest()
    return meta

