"""Cleaning the package cache (``-Sc``, ``-Scc``, paccache's keep-N) and unused sync dbs.

Like pacman, a file is judged by the package it holds (its ``.PKGINFO``), not
by its name; files that do not read as packages are left alone by ``-Sc``
(``.part`` files, interrupted downloads that :mod:`alpmd.engine.download`
resumes, among them) and removed by ``-Scc``. Signatures (``.sig``) go with
their package. The front end asks the user; these calls just do it.
"""

from __future__ import annotations

import fnmatch
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from alpmd.engine.archive import load_package_file
from alpmd.engine.errors import AlpmError
from alpmd.engine.handle import Handle
from alpmd.engine.version import vercmp

__all__ = ["CLEAN_SKIP", "CleanResult", "clean_cache", "clean_sync_dbs"]

_DB_SUFFIXES = (".db.sig", ".files.sig", ".db", ".files")


@dataclass
class CleanResult:
    """What a clean removed (or would remove with ``dry_run``), kept, and freed."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    freed: int = 0
    errors: list[str] = field(default_factory=list)
    #: files that did not load as packages (kept), with why
    unreadable: list[tuple[str, AlpmError]] = field(default_factory=list)
    #: cache directories that could not be read, with why
    unreadable_dirs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Cached:
    """A package file found in a cache directory, by the name and version it carries."""

    path: str
    name: str
    version: str


def _remove(path: str, result: CleanResult, dry_run: bool) -> None:
    try:
        size = os.lstat(path).st_size
        if not dry_run:
            os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        result.errors.append(f"could not remove {path}: {exc.strerror or exc}")
        return
    result.removed.append(path)
    result.freed += size


#: what ``-Sc`` never judges (pacman's glob_skips): signatures go with their package
CLEAN_SKIP = ("*.sig", "*.db*", "*.files*", "*.src.tar.*")


def clean_cache(handle: Handle, *, keep_installed: bool = True, keep_current: bool = False,
                keep_versions: int | None = None, all: bool = False,
                dry_run: bool = False, dirs: Sequence[str] | None = None) -> CleanResult:
    """Clean the cache directories ``dirs`` (default: every CacheDir).

    * ``all`` (``-Scc``): remove every file;
    * otherwise (``-Sc``, CleanMethod): remove package files whose version is not
      installed (``keep_installed``, KeepInstalled) nor in a sync database
      (``keep_current``, KeepCurrent), compared with vercmp as pacman does; files
      matching :data:`CLEAN_SKIP` are not looked at, files that do not load as
      packages are kept and listed in ``unreadable``;
    * ``keep_versions=N`` (``paccache -rk N``): per package name, remove the
      versions beyond the N newest, still sparing the installed one when
      ``keep_installed``.
    """
    result = CleanResult()
    files: list[str] = []
    for d in handle.options.cachedirs if dirs is None else dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError as exc:
            result.errors.append(f"could not access cache directory {d}")
            result.unreadable_dirs.append((d, exc.strerror or str(exc)))
            continue
        files += [os.path.join(d, n) for n in names if os.path.isfile(os.path.join(d, n))]
    if all:
        for path in files:
            _remove(path, result, dry_run)
        return result
    packages: list[_Cached] = []
    for path in files:
        if any(fnmatch.fnmatchcase(os.path.basename(path), g) for g in CLEAN_SKIP):
            continue
        try:
            pkg = load_package_file(path, full=False)
        except AlpmError as exc:
            result.unreadable.append((path, exc))   # not a package: not ours to judge
            continue
        packages.append(_Cached(path, pkg.name, pkg.version))
    installed = handle.localdb.versions if keep_installed else {}
    current: dict[str, list[str]] = {}
    if keep_current:
        for db in handle.syncdbs:
            for name, version in db.versions.items():
                current.setdefault(name, []).append(version)
    doomed: set[str] = set()
    if keep_versions is not None:
        by_name: dict[str, list[_Cached]] = {}
        for c in packages:
            by_name.setdefault(c.name, []).append(c)
        def newer(a: _Cached, b: _Cached) -> int:
            return vercmp(b.version, a.version)

        for group in by_name.values():
            group.sort(key=functools.cmp_to_key(newer))
            doomed.update(c.path for c in group[max(keep_versions, 0):])
    else:
        doomed = {c.path for c in packages}
    for c in packages:
        have = installed.get(c.name)
        spared = (have is not None and vercmp(c.version, have) == 0) or \
            any(vercmp(c.version, v) == 0 for v in current.get(c.name, ()))
        if c.path in doomed and not spared:
            _remove(c.path, result, dry_run)
            _remove(c.path + ".sig", result, dry_run)
        else:
            result.kept.append(c.path)
    return result


def clean_sync_dbs(handle: Handle, *, dry_run: bool = False) -> CleanResult:
    """Remove databases of repositories no longer configured (``-Sc``'s second part)."""
    result = CleanResult()
    sync = os.path.join(handle.dbpath, "sync")
    registered = {db.name for db in handle.syncdbs}
    try:
        names = sorted(os.listdir(sync))
    except OSError:
        return result
    for entry in names:
        path = os.path.join(sync, entry)
        if not os.path.isfile(path):
            continue
        base = entry
        if entry.startswith(".") and entry.endswith(".validators"):   # download's sidecars
            base = entry[1:-len(".validators")]
        suffix = next((s for s in _DB_SUFFIXES if base.endswith(s)), None)
        if suffix is None:
            continue
        if base[: -len(suffix)] in registered:
            result.kept.append(path)
        else:
            _remove(path, result, dry_run)
    return result
