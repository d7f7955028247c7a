"""Twin fixtures for the resolver tests: one root read by pacman and by our engine."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alpmd.engine.db.local import LocalDatabase
from alpmd.engine.formats.desc import PkgMeta, Reason
from alpmd.engine.handle import Handle, Options
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.repogen import write_sync_db


def P(name: str, version: str = "1.0-1", **fields: Any) -> PkgMeta:
    """A package's metadata with everything pacman insists on in a sync database."""
    fields.setdefault("arch", "any")
    fields.setdefault("filename", f"{name}-{version}-any.pkg.tar.zst")
    fields.setdefault("csize", 100)
    fields.setdefault("isize", 100)
    return PkgMeta(name, version, **fields)


def L(name: str, version: str = "1.0-1", *, dep: bool = False, **fields: Any) -> PkgMeta:
    """An installed package (reason DEPEND with ``dep=True``)."""
    fields.setdefault("arch", "any")
    return PkgMeta(name, version, reason=Reason.DEPEND if dep else Reason.EXPLICIT, **fields)


@dataclass
class World:
    """Sync repositories (in order) and installed packages, written to a root."""

    repos: dict[str, list[PkgMeta]] = field(default_factory=dict)
    local: list[PkgMeta] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)


def build(tmp: Path, world: World) -> tuple[PacmanRoot, Handle]:
    root = PacmanRoot(tmp / "root", options=dict(world.options))
    for name, metas in world.repos.items():
        db = write_sync_db(metas, tmp / "repos" / f"{name}.db")
        root.add_repo(name, db)
    ldb = LocalDatabase(str(root.dbpath) + "/", durable=False)
    for m in world.local:
        ldb.add(m, None)
    opts = Options(root=str(root.root), dbpath=str(root.dbpath), use_snapshots=False)
    for key, value in world.options.items():
        if key == "IgnorePkg":
            opts.ignorepkg = value.split()
        elif key == "IgnoreGroup":
            opts.ignoregroup = value.split()
        elif key == "HoldPkg":
            opts.holdpkg = value.split()
    handle = Handle(opts)
    for name in world.repos:
        handle.register_syncdb(name)
    return root, handle


_MISS = re.compile(r":: unable to satisfy dependency '([^']*)' required by (\S+)")
_BREAK = re.compile(r":: (?:removing|installing) (\S+)(?: \([^)]*\))? breaks dependency "
                    r"'([^']*)' required by (\S+)")


def pacman_misses(text: str) -> set[tuple[str, str]]:
    """(dependency, needed by) pairs pacman reports."""
    out = {(m.group(1), m.group(2)) for m in _MISS.finditer(text)}
    out |= {(m.group(2), m.group(3)) for m in _BREAK.finditer(text)}
    return out


def printed(stdout: str, fields: int) -> list[tuple[str, ...]]:
    """The ``--print-format`` lines of pacman's output."""
    out = []
    for line in stdout.splitlines():
        parts = tuple(line.split())
        if len(parts) == fields and not line.startswith((":", "warning", "error")):
            out.append(parts)
    return out


_PACKAGES = re.compile(r"^Packages \(\d+\)\s+(.*?)\n\n", re.S | re.M)


def packages_line(stdout: str) -> tuple[set[str], set[str]]:
    """From pacman's ``Packages (n) ...`` summary: names added and names removed."""
    m = _PACKAGES.search(stdout)
    if m is None:
        return set(), set()
    add: set[str] = set()
    rem: set[str] = set()
    items = m.group(1).split()
    for i, item in enumerate(items):
        if item == "[removal]":
            continue
        name = item.rsplit("-", 2)[0]
        if i + 1 < len(items) and items[i + 1] == "[removal]":
            rem.add(name)
        else:
            add.add(name)
    return add, rem


# pacman 6's question types (the --ask bitmask)
ASK_INSTALL_IGNORED = 1
ASK_REPLACE = 2
ASK_CONFLICT = 4
ASK_REMOVE_PKGS = 16
ASK_SELECT_PROVIDER = 32
