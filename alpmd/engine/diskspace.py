"""Disk space check of a transaction (CheckSpace), as libalpm's diskspace.c.

Mount points come from ``/proc/self/mountinfo`` (``statvfs`` of each); every
file is charged to the mount point with the longest prefix of its path. For
each added package in order, the sizes of the files it replaces (its installed
version) and those of the packages being removed are credited, its archive's
regular files charged (rounded up to whole blocks; metadata members count
against the database directory), and the running peak kept per mount point.
A mount point fails when written to while read-only, or when the peak plus a
cushion (the smaller of 5% of the file system and 20 MiB) exceeds the blocks
available to unprivileged users.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from alpmd.engine.archive import (
    ArchiveReadError,
    EntryKind,
    archive_reader,
    iter_entries,
    member_kind,
    member_name,
    open_regular_file,
)
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import Progress, ProgressCallback, ProgressKind
from alpmd.engine.handle import Handle
from alpmd.engine.larchive import entry_size as _entry_size
from alpmd.engine.log import LogLevel
from alpmd.engine.package import Package

__all__ = ["MountPoint", "check_diskspace", "mount_points"]

_USED_INSTALL = 1
_USED_REMOVE = 2


@dataclass
class MountPoint:
    """One mounted file system: its free blocks, and what a transaction will use of it."""

    mount_dir: str          # ends with "/"
    bsize: int
    blocks: int
    bavail: int
    read_only: bool
    blocks_needed: int = 0
    max_blocks_needed: int = 0
    used: int = 0


def _unescape(field: str) -> str:
    """mountinfo escapes blanks, tabs, newlines and backslashes as ``\\ooo``."""
    out = bytearray()
    raw = field.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and i + 4 <= len(raw) and raw[i + 1:i + 4].isdigit():
            out.append(int(raw[i + 1:i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "surrogateescape")


def mount_points(mountinfo: str = "/proc/self/mountinfo") -> list[MountPoint]:
    """Every mount point we can ``statvfs``, longest path first (so the first prefix wins)."""
    points: dict[str, MountPoint] = {}
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise AlpmError(ErrorCode.SYSTEM, f"could not read {mountinfo}: {exc.strerror}") from exc
    for line in lines:
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        mdir = _unescape(fields[4])
        try:
            st = os.statvfs(mdir)
        except OSError:
            continue
        key = mdir if mdir.endswith("/") else mdir + "/"
        points[key] = MountPoint(key, st.f_bsize or 4096, st.f_blocks, st.f_bavail,
                                 bool(st.f_flag & os.ST_RDONLY))
    return sorted(points.values(), key=lambda m: m.mount_dir, reverse=True)


def _match(points: Sequence[MountPoint], path: str) -> MountPoint | None:
    for mp in points:
        if path.startswith(mp.mount_dir) or path + "/" == mp.mount_dir:
            return mp
    return None


def _blocks(size: int, bsize: int) -> int:
    return (size + bsize - 1) // bsize


def _removed(handle: Handle, points: Sequence[MountPoint], pkg: Package) -> None:
    root = handle.options.root
    for name in pkg.files:
        path = root + name
        try:
            st = os.lstat(path[:-1] if path.endswith("/") else path)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            continue
        mp = _match(points, path)
        if mp is None:
            handle.log(LogLevel.WARNING, f"could not determine mount point for file {name}")
            continue
        mp.blocks_needed -= _blocks(st.st_size, mp.bsize)
        mp.used |= _USED_REMOVE


def _installed(handle: Handle, points: Sequence[MountPoint], pkg: Package) -> None:
    root = handle.options.root
    if pkg.path is None:  # not downloaded yet: its installed size, charged to the root
        mp = _match(points, root)
        if mp is not None and pkg.isize:
            mp.blocks_needed += _blocks(pkg.isize, mp.bsize)
            mp.used |= _USED_INSTALL
        return
    fd, _st = open_regular_file(pkg.path, ErrorCode.PKG_NOT_FOUND)
    try:
        with archive_reader(fd) as archive_p:
            for entry_p in iter_entries(archive_p):
                kind = member_kind(entry_p)
                if kind in (EntryKind.DIR, EntryKind.SYMLINK):
                    continue
                name = member_name(entry_p) or ""
                path = handle.dbpath if name.startswith(".") else root + name
                mp = _match(points, path)
                if mp is None:
                    handle.log(LogLevel.WARNING,
                               f"could not determine mount point for file {name}")
                    continue
                mp.blocks_needed += _blocks(max(int(_entry_size(entry_p)), 0), mp.bsize)
                mp.used |= _USED_INSTALL
    except ArchiveReadError as fail:
        raise AlpmError(ErrorCode.PKG_INVALID, f"could not read {pkg.path}: {fail.message}",
                        path=pkg.path) from None
    finally:
        os.close(fd)


def _cushion(mp: MountPoint) -> int:
    fivepc = mp.blocks // 20 + 1
    twentymb = 20 * 1024 * 1024 // mp.bsize + 1
    return min(fivepc, twentymb)


def check_diskspace(
    handle: Handle,
    add: Sequence[Package],
    remove: Sequence[Package],
    *,
    progress: ProgressCallback | None = None,
    points: list[MountPoint] | None = None,
) -> None:
    """Raise ``AlpmError(DISK_SPACE)`` when the transaction would not fit (see module doc).

    ``points`` replaces the system's mount table (tests).
    """
    mps = points if points is not None else mount_points()
    total = len(add) + len(remove)
    current = 0

    def report() -> None:
        if progress is not None and total:
            progress(Progress(ProgressKind.DISKSPACE, "", current * 100 // total, total, current))

    for pkg in remove:
        report()
        _removed(handle, mps, pkg)
        current += 1
    localdb = handle.localdb
    for pkg in add:
        report()
        old = localdb.get(pkg.name)
        if old is not None:
            _removed(handle, mps, old)
        _installed(handle, mps, pkg)
        for mp in mps:
            mp.max_blocks_needed = max(mp.max_blocks_needed, mp.blocks_needed)
        current += 1
    if progress is not None:
        progress(Progress(ProgressKind.DISKSPACE, "", 100, total, total))
    problems = []
    for mp in mps:
        where = mp.mount_dir.rstrip("/") or "/"
        if mp.used and mp.read_only:
            problems.append(f"Partition {where} is mounted read only")
        elif mp.used & _USED_INSTALL:
            needed = mp.max_blocks_needed + _cushion(mp)
            if needed >= 0 and needed > mp.bavail:
                problems.append(f"Partition {where} too full: {needed} blocks needed, "
                                f"{mp.bavail} blocks free")
    for message in problems:
        handle.log(LogLevel.ERROR, message)
    if problems:
        raise AlpmError(ErrorCode.DISK_SPACE, "; ".join(problems), partitions=problems)
