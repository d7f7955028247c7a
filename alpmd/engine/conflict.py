"""File conflicts of a transaction, decided as libalpm's ``_alpm_db_find_fileconflicts``.

Two checks: every target against every other target (a path both ship, unless
both ship it as a directory), and every target against the file system (a
path that exists on disk and is not accounted for: owned by the old version of
the same package, by a package being removed, by an installed package whose
new version moves it, a directory whose contents all belong to packages going
away, an unowned file the new package lists in its backup array, or a file the
``--overwrite`` globs allow).

Also home of :func:`fnmatch_patterns`, libalpm's glob list matching (last
match wins, ``!`` negates) shared by NoExtract, NoUpgrade, overwrite and hooks.
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alpmd import TYPE_CHECKING
from alpmd.engine.events import Progress as ProgressReport
from alpmd.engine.events import ProgressCallback, ProgressKind, TransFlag
from alpmd.engine.handle import Handle
from alpmd.engine.package import Package

if TYPE_CHECKING:
    from typing import Literal

__all__ = ["FileConflict", "find_file_conflicts", "fnmatch", "fnmatch_patterns"]

try:  # glibc's soname first: find_library runs an ``ldconfig -p`` subprocess
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    import ctypes.util

    _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_fnmatch = _libc.fnmatch
_fnmatch.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
_fnmatch.restype = ctypes.c_int


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def fnmatch(pattern: str, string: str) -> bool:
    """The C library's ``fnmatch(pattern, string, 0)``: ``*`` crosses ``/``, ``\\`` escapes."""
    return bool(_fnmatch(_b(pattern), _b(string), 0) == 0)


def fnmatch_patterns(patterns: Sequence[str], string: str) -> int:
    """libalpm's ``_alpm_fnmatch_patterns``: 0 matched, 1 matched a ``!`` pattern, -1 none.

    Patterns are tried from the last; the first that matches decides, so later
    ones override earlier ones. A leading ``\\`` escapes a literal ``!``.
    """
    for pattern in reversed(patterns):
        inverted = pattern.startswith("!")
        if inverted or pattern.startswith("\\"):
            pattern = pattern[1:]
        if fnmatch(pattern, string):
            return 1 if inverted else 0
    return -1


@dataclass(frozen=True)
class FileConflict:
    """``target`` would install ``file`` (absolute, under the root), which ``other`` has too.

    ``kind`` is ``"target"`` when ``other`` is another package of the transaction,
    ``"filesystem"`` when the file exists on disk (``other`` is its installed
    owner, or None when no package owns it).
    """

    target: str
    kind: Literal["target", "filesystem"]
    file: str
    other: str | None


def _strip(path: str) -> str:
    return path[:-1] if path.endswith("/") else path


def _intersection(a: Iterable[str], b: Iterable[str]) -> list[str]:
    """Paths of ``a`` that ``b`` has too (trailing ``/`` ignored), unless both are directories."""
    bmap = {_strip(p): p for p in b}
    out = []
    for p in a:
        q = bmap.get(_strip(p))
        if q is not None and not (p.endswith("/") and q.endswith("/")):
            out.append(p)
    return out


def _lstat_nofollow(path: str) -> os.stat_result | None:
    """libalpm's ``llstat``: lstat, a trailing slash never following a symlink."""
    try:
        return os.lstat(path[:-1] if path.endswith("/") and len(path) > 1 else path)
    except OSError:
        return None


def _dir_belongs_to(root: str, dirpath: str, owned: list[set[str]]) -> bool:
    """True when every entry under ``dirpath`` (relative, ending in ``/``) is owned by one of them."""
    try:
        names = os.listdir(root + dirpath)
    except OSError:
        return False
    for name in names:
        try:
            st = os.lstat(root + dirpath + name)
        except OSError:
            return False
        is_dir = stat.S_ISDIR(st.st_mode)
        path = dirpath + name + ("/" if is_dir else "")
        if not any(path in files for files in owned):
            return False
        if is_dir and not _dir_belongs_to(root, path, owned):
            return False
    return True


def _skip_inside(paths: list[str], j: int, prefix: str) -> int:
    """Index of the first path from ``j`` on not under ``prefix`` (resolved with the directory)."""
    while j < len(paths) and paths[j].startswith(prefix):
        j += 1
    return j


def _can_overwrite(patterns: Sequence[str], path: str, rooted: str) -> bool:
    return fnmatch_patterns(patterns, path) == 0 or fnmatch_patterns(patterns, rooted) == 0


def find_file_conflicts(
    handle: Handle,
    add: Sequence[Package],
    remove: Sequence[Package],
    *,
    flags: TransFlag = TransFlag.NONE,
    skip_remove: set[str] | None = None,
    progress: ProgressCallback | None = None,
) -> list[FileConflict]:
    """Every file conflict of installing ``add`` while removing ``remove``.

    ``skip_remove``, when given, receives the paths
    that move from one package to another within the transaction: removing the
    old owner must then leave them alone (pass the set to
    :func:`alpmd.engine.remove.remove_package_files`).
    """
    if not add or TransFlag.DBONLY in flags:
        return []
    root = handle.options.root
    overwrite = handle.options.overwrite_files
    localdb = handle.localdb
    local_files: dict[str, set[str]] = {}

    def files_of(pkg: Package) -> set[str]:
        key = f"{pkg.name}\0{pkg.version}\0{id(pkg)}"
        got = local_files.get(key)
        if got is None:
            got = local_files[key] = set(pkg.files)
        return got

    remove_sets = [files_of(p) for p in remove]
    owner_index: dict[str, list[Package]] = {}

    def owners_of(path: str) -> list[Package]:
        """Installed packages listing ``path`` (index built on first use, in db order)."""
        if not owner_index:
            for pkg in localdb.packages:
                for f in files_of(pkg):
                    owner_index.setdefault(f, []).append(pkg)
            owner_index.setdefault("\0", [])
        return owner_index.get(path, [])
    conflicts: list[FileConflict] = []
    total = len(add)
    # Which targets list each path (trailing "/" ignored), so CHECK 1 compares only
    # the pairs that share one: every pair costs O(n^2) on a large -U or -Su.
    any_kind: dict[str, list[int]] = {}
    not_dir: dict[str, set[int]] = {}
    for k, pkg in enumerate(add):
        for f in pkg.files:
            if f[-1:] == "/":
                f = f[:-1]
            else:
                not_dir.setdefault(f, set()).add(k)
            lst = any_kind.setdefault(f, [])
            if not lst or lst[-1] != k:
                lst.append(k)
    # The pairs (a < b) that share a path one of them lists as no directory.
    partners: dict[int, set[int]] = {}
    for key, lst in any_kind.items():
        if len(lst) > 1 and key in not_dir:
            nd = not_dir[key]
            for a in lst:
                for b in (lst if a in nd else nd):
                    if b > a:
                        partners.setdefault(a, set()).add(b)
    for current, p1 in enumerate(add):
        if progress is not None:
            progress(ProgressReport(ProgressKind.CONFLICTS, "", current * 100 // total, total,
                                    current))
        p1_files = p1.files
        # CHECK 1: target against target (a pair conflicts on a shared path unless both
        # list it as a directory)
        for k in sorted(partners.get(current, ())):
            p2 = add[k]
            p2_files = p2.files
            p2_set = set(p2_files)
            for path in _intersection(p1_files, p2_files):
                if _can_overwrite(overwrite, path, root + path) and path in p2_set:
                    continue
                conflicts.append(FileConflict(p1.name, "target", root + path, p2.name))

        # CHECK 2: target against the file system
        dbpkg = localdb.get(p1.name)
        db_set = files_of(dbpkg) if dbpkg is not None else set()
        newfiles = [f for f in p1_files if f not in db_set]
        backups = {b.path for b in p1.backup}
        j = 0
        while j < len(newfiles):
            filestr = newfiles[j]
            j += 1
            st = _lstat_nofollow(root + filestr)
            if st is None:
                if filestr.endswith("/"):  # nothing can be below a missing directory
                    j = _skip_inside(newfiles, j, filestr)
                continue
            is_dir = filestr.endswith("/")
            relative = filestr
            resolved = False

            if is_dir:
                if stat.S_ISDIR(st.st_mode):
                    continue
                relative = filestr[:-1]
                if relative in db_set:  # a file of the old version becomes a directory
                    resolved = True
                    j = _skip_inside(newfiles, j, filestr)
            if not resolved:
                for files in remove_sets:
                    if relative in files:
                        resolved = True
                        if is_dir:
                            j = _skip_inside(newfiles, j, filestr)
                        break
            if not resolved:
                for p2 in add:
                    if p2 is p1:
                        continue
                    localp2 = localdb.get(p2.name)
                    if localp2 is not None and relative in files_of(localp2):
                        if skip_remove is not None:
                            skip_remove.add(relative)
                        resolved = True
                        if is_dir:
                            j = _skip_inside(newfiles, j, filestr)
                        break
            if not resolved and stat.S_ISDIR(st.st_mode):
                dirpath = relative + "/"
                owners = owners_of(dirpath)
                if owners:
                    going = {p.name for p in remove}
                    if dbpkg is not None:
                        going.add(dbpkg.name)
                    if all(p.name in going for p in owners):
                        resolved = _dir_belongs_to(root, dirpath,
                                                   [files_of(p) for p in owners])
            if not resolved and relative in backups:
                if not owners_of(relative):
                    resolved = True  # unowned, and the new package keeps it as a backup file
            if not resolved and not stat.S_ISDIR(st.st_mode) and _can_overwrite(
                    overwrite, filestr, root + relative):
                resolved = True
            if not resolved:
                found = owners_of(relative)
                conflicts.append(FileConflict(p1.name, "filesystem", root + relative,
                                              found[0].name if found else None))
    if progress is not None:
        progress(ProgressReport(ProgressKind.CONFLICTS, "", 100, total, total))
    return conflicts
