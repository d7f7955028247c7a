"""pacman's ``-F`` (files.c): which packages of the files databases hold a path or a
file name, and the file list of one package.

Apart from :mod:`alpmd.engine.query` so that a ``-Q`` (which never asks) does not
build these types at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alpmd import TYPE_CHECKING
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.package import Package

if TYPE_CHECKING:
    from alpmd.engine.db.sync import SyncDatabase
    from alpmd.engine.regex import PosixRegex

__all__ = ["FileMatch", "files_list", "files_search"]


@dataclass
class FileMatch:
    """One package of one database and the matching paths in it."""

    db: SyncDatabase
    pkg: Package
    paths: list[str]


def files_search(dbs: Sequence[SyncDatabase], target: str, *, regex: bool,
                 deadline: float | None = None) -> list[FileMatch]:
    """pacman's ``-F``: a target with a slash is a path (exact, or a regex on whole
    paths with ``-x``); otherwise it is matched against file names.

    ``deadline`` bounds a regex search as in :func:`search`."""
    from alpmd.engine.regex import compile_posix

    exact = "/" in target
    if exact:
        while len(target) > 1 and target.startswith("/"):
            target = target[1:]
    reg: PosixRegex | None = compile_posix(target, bounded=deadline is not None) \
        if regex else None
    out: list[FileMatch] = []
    for db in dbs:
        for pkg in db.packages:
            files = pkg.files
            matched: list[str] = []
            if exact:
                if reg is not None:
                    matched = [f for f in files if reg.search(f, deadline)]
                elif target in files:
                    matched = [target]
            else:
                for f in files:
                    cut = f.rfind("/")
                    if cut < 0 or cut + 1 >= len(f):
                        continue
                    base = f[cut + 1:]
                    if (reg.search(base, deadline) if reg is not None else base == target):
                        matched.append(f)
            if matched:
                out.append(FileMatch(db, pkg, matched))
    return out


def files_list(dbs: Sequence[SyncDatabase], target: str) -> FileMatch:
    """``-Fl [repo/]name``: the first package of that name; PKG_NOT_FOUND otherwise."""
    repo: str | None = None
    name = target
    if "/" in target:
        repo, _, name = target.partition("/")
        if not name:
            raise AlpmError(ErrorCode.PKG_INVALID_NAME, f"invalid package: '{target}'")
    for db in dbs:
        if repo is not None and db.name != repo:
            continue
        pkg = db.get(name)
        if pkg is not None:
            return FileMatch(db, pkg, list(pkg.files))
    raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"package '{target}' was not found")
