"""Twin roots for the commit tests: real pacman on one, our file-system functions on the other."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from alpmd.engine.archive import load_package_file
from alpmd.engine.conflict import FileConflict, find_file_conflicts
from alpmd.engine.db.stores import Store
from alpmd.engine.events import Event, TransFlag
from alpmd.engine.extract import extract_package
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle, Options
from alpmd.engine.package import Package
from alpmd.engine.remove import remove_package_files
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package
from alpmd.testing.rootfs import shell_root as make_shell_root

#: Paths that are pacman's own bookkeeping, not package payload.
IGNORED = ("var/lib/pacman", "var/cache", "var/log", "etc/pacman.conf", "etc/pacman.d", "tmp",
           "bin", "lib", "lib64", "usr/bin/dash", "usr/lib/x86_64-linux-gnu", "hooklog", "scriptlog",
           "outside")


def mkpkg(outdir: Path, name: str, version: str, files: list[FileSpec], *,
          backup: tuple[str, ...] = (), install: str | None = None,
          extra: tuple[tuple[str, bytes], ...] = ()) -> Path:
    out = outdir / f"{name}-{version}"
    return build_package(out, PkgMeta(name, version), files, backup=backup, install=install,
                         extra_members=extra, compression="none")


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under ``root`` with its type, mode, owner and content (or link target)."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if any(rel == i or rel.startswith(i + "/") for i in IGNORED):
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", oct(st.st_mode & 0o7777), st.st_uid, st.st_gid)
            else:
                data = Path(full).read_bytes()
                out[rel] = ("file", oct(st.st_mode & 0o7777), st.st_uid, st.st_gid,
                            hashlib.md5(data).hexdigest(), int(st.st_mtime))
    return out


@dataclass
class OurRoot:
    """A root driven by our functions in libalpm's order, recording the local db like trans.py."""

    root: Path
    noupgrade: list[str] = field(default_factory=list)
    noextract: list[str] = field(default_factory=list)
    overwrite: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: The local database store (``None``: alpmd.conf's choice, files by default).
    backend: Store | None = None

    def __post_init__(self) -> None:
        self.pr = PacmanRoot(self.root)

    def handle(self, hookdirs: list[str] | None = None) -> Handle:
        opts = Options(root=str(self.root), noupgrade=list(self.noupgrade),
                       noextract=list(self.noextract), overwrite_files=list(self.overwrite),
                       hookdirs=hookdirs or [], use_snapshots=False, backend=self.backend)
        return Handle(opts)

    def upgrade(self, *paths: Path, flags: TransFlag = TransFlag.NONE,
                remove: tuple[str, ...] = ()) -> list[FileConflict]:
        """``pacman -U paths`` (removing ``remove``): conflicts found, or all done."""
        h = self.handle()
        try:
            pkgs = [load_package_file(p) for p in paths]
            removing = [pkg for n in remove if (pkg := h.localdb.get(n)) is not None]
            skip: set[str] = set()
            conflicts = find_file_conflicts(h, pkgs, removing, flags=flags, skip_remove=skip)
            if conflicts:
                return conflicts
            for old in removing:
                remove_package_files(h, old, flags=flags, event=self.events.append, skip=skip)
                h.localdb.remove(old.name)
            for new in pkgs:
                old = h.localdb.get(new.name)
                if old is not None:
                    remove_package_files(h, old, new=new, flags=flags, event=self.events.append,
                                         skip=skip)
                fl = extract_package(h, new, old, flags=flags, event=self.events.append)
                h.localdb.add(new.meta, fl)
            return []
        finally:
            h.release()

    def remove(self, *names: str, flags: TransFlag = TransFlag.NONE) -> None:
        h = self.handle()
        try:
            for name in names:
                old = h.localdb.get(name)
                assert old is not None
                remove_package_files(h, old, flags=flags, event=self.events.append)
                h.localdb.remove(name)
        finally:
            h.release()

    def installed(self, name: str) -> Package | None:
        h = self.handle()
        try:
            return h.localdb.get(name)
        finally:
            h.release()


def shell_root(root: Path) -> None:
    """Put a working ``/bin/sh`` (the host's, with its libraries) into ``root``; skip if impossible."""
    why = make_shell_root(root)
    if why is not None:
        pytest.skip(why)
