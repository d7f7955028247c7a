"""Cleaning the package cache (``-Sc``, ``-Scc``, paccache's keep-N) and unused sync dbs.

Like pacman, a file is judged by the package it holds (its ``.PKGINFO``), not
by its name; files that do not read as packages are left alone by ``-Sc``.
Signatures (``.sig``) go with their package. ``.part`` files (interrupted
downloads, which :mod:`alpmd.engine.download` resumes) are kept by ``-Sc`` and
removed by ``-Scc``. The front end asks the user; these calls just do it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

from alpmd.engine.archive import load_package_file
from alpmd.engine.errors import AlpmError
from alpmd.engine.handle import Handle
from alpmd.engine.version import vercmp

__all__ = ["CleanResult", "clean_cache", "clean_sync_dbs"]

_DB_SUFFIXES = (".db.sig", ".files.sig", ".db", ".files")


@dataclass
class CleanResult:
    """What a clean removed (or would remove with ``dry_run``), kept, and freed."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    freed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Cached:
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


def clean_cache(handle: Handle, *, keep_installed: bool = True, keep_current: bool = False,
                keep_versions: int | None = None, all: bool = False,
                dry_run: bool = False) -> CleanResult:
    """Clean every CacheDir.

    * ``all`` (``-Scc``): remove every file;
    * otherwise (``-Sc``, CleanMethod): remove package files whose version is not
      installed (``keep_installed``, KeepInstalled) nor in a sync database
      (``keep_current``, KeepCurrent);
    * ``keep_versions=N`` (``paccache -rk N``): per package name, remove the
      versions beyond the N newest, still sparing the installed one when
      ``keep_installed``.
    """
    result = CleanResult()
    files: list[str] = []
    for d in handle.options.cachedirs:
        try:
            names = sorted(os.listdir(d))
        except OSError as exc:
            result.errors.append(f"could not access cache directory {d}: "
                                 f"{exc.strerror or exc}")
            continue
        files += [os.path.join(d, n) for n in names if os.path.isfile(os.path.join(d, n))]
    if all:
        for path in files:
            _remove(path, result, dry_run)
        return result
    packages: list[_Cached] = []
    for path in files:
        if path.endswith((".sig", ".part")):
            continue
        try:
            pkg = load_package_file(path, full=False)
        except AlpmError:
            continue                        # not a package: not ours to judge
        packages.append(_Cached(path, pkg.name, pkg.version))
    installed = handle.localdb.versions if keep_installed else {}
    current: set[tuple[str, str]] = set()
    if keep_current:
        for db in handle.syncdbs:
            current.update(db.versions.items())
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
        spared = (installed.get(c.name) == c.version if keep_installed else False) or \
            (c.name, c.version) in current
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
