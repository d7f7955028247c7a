"""Install, upgrade and remove with real pacman on one root and our functions on its twin.

Both roots get the same package files and the same edits; after each step
pacman and we must agree on success or failure, and at the end the file trees
(paths, types, modes, owners, contents, mtimes, symlink targets, .pacnew and
.pacsave) must be identical.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alpmd.engine.db.stores import Store
from alpmd.engine.events import PacnewCreated, PacsaveCreated, TransFlag
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec

from .support import OurRoot, mkpkg, tree

pytestmark = pytest.mark.oracle


class Twin:
    def __init__(self, tmp: Path, backend: Store, **options: str) -> None:
        self.pkgs = tmp / "pkgs"
        self.p = PacmanRoot(tmp / "pacman", options=dict(options))
        self.o = OurRoot(tmp / "ours", backend=backend)
        self.o.noupgrade = options.get("NoUpgrade", "").split()
        self.o.noextract = options.get("NoExtract", "").split()

    def pkg(self, name: str, version: str, files: list[FileSpec], **kw: object) -> Path:
        return mkpkg(self.pkgs, name, version, files, **kw)  # type: ignore[arg-type]

    def U(self, *paths: Path, overwrite: tuple[str, ...] = (), remove: tuple[str, ...] = ()
          ) -> bool:
        args = [str(p) for p in paths]
        for glob in overwrite:
            args += ["--overwrite", glob]
        if remove:
            # pacman: remove first, then install (what a replace/conflict sync would do)
            self.p.pacman("-Rdd", *remove, check=True)
        got = self.p.pacman("-U", *args)
        self.o.overwrite = list(overwrite)
        conflicts = self.o.upgrade(*paths, remove=remove)
        ours_ok = not conflicts
        assert (got.returncode == 0) == ours_ok, (got.stdout, got.stderr, conflicts)
        if not ours_ok:
            assert "conflicting files" in got.stderr + got.stdout
            for c in conflicts:
                theirs = c.file.replace(str(self.o.root), str(self.p.root))
                assert theirs in got.stdout + got.stderr, (c, got.stdout)
        return ours_ok

    def R(self, *names: str, nosave: bool = False) -> None:
        self.p.pacman("-R", *(["-n"] if nosave else []), *names, check=True)
        self.o.remove(*names, flags=TransFlag.NOSAVE if nosave else TransFlag.NONE)

    def write(self, rel: str, data: bytes) -> None:
        for root in (self.p.root, self.o.root):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def symlink(self, rel: str, target: str) -> None:
        for root in (self.p.root, self.o.root):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, path)

    def check(self) -> dict[str, tuple[object, ...]]:
        ours, theirs = tree(self.o.root), tree(self.p.root)
        assert ours == theirs
        # The databases agree too: same packages, versions and file lists.
        listed = self.p.pacman("-Ql")
        assert listed.returncode == 0 or not listed.stdout, listed.stderr
        pacman_db: dict[str, list[str]] = {}
        for line in listed.stdout.splitlines():
            name, _, path = line.partition(" ")
            pacman_db.setdefault(name, []).append(path.removeprefix(f"{self.p.root}/"))
        h = self.o.handle()
        try:
            assert h.store() is self.o.backend
            ours_db = {p.name: p.files for p in h.localdb.packages}
        finally:
            h.release()
        assert ours_db == pacman_db
        return ours


CONF = "etc/foo.conf"


def foo(twin: Twin, version: str, conf: bytes, extra: list[FileSpec] | None = None) -> Path:
    files = [FileSpec(CONF, conf), FileSpec("usr/bin/foo", b"#!/bin/sh\n" + conf, 0o755),
             FileSpec("usr/share/foo/data", version.encode()),
             FileSpec("usr/lib/libfoo.so", kind="link", target="libfoo.so." + version[0]),
             *(extra or [])]
    return twin.pkg("foo", version, files, backup=(CONF,))


def test_fresh_install_and_remove(tmp_path: Path, backend: Store) -> None:
    twin = Twin(tmp_path, backend)
    suid = FileSpec("usr/bin/suid", b"x", 0o4755)
    owned = FileSpec("usr/share/foo/owned", b"o", 0o640, uid=12, gid=34)
    assert twin.U(foo(twin, "1.0-1", b"a=1\n", [suid, owned]))
    t = twin.check()
    assert t[CONF][0] == "file" and t["usr/lib/libfoo.so"] == ("link", "libfoo.so.1")
    assert t["usr/bin/suid"][1] == "0o4755" and t["usr/share/foo/owned"][2:4] == (12, 34)
    twin.R("foo")
    assert not any(p.startswith("usr") for p in twin.check())


@pytest.mark.parametrize("user, new, expect", [
    (None, b"a=2\n", "replaced"),           # untouched by the user: updated
    (b"mine\n", b"a=1\n", "kept"),          # package unchanged: the user's file stays
    (b"mine\n", b"a=2\n", "pacnew"),        # both changed: .pacnew
    (b"a=2\n", b"a=2\n", "replaced"),       # user already has the new content
])
def test_upgrade_backup_files(tmp_path: Path, backend: Store, user: bytes | None, new: bytes,
                              expect: str) -> None:
    twin = Twin(tmp_path, backend)
    assert twin.U(foo(twin, "1.0-1", b"a=1\n"))
    if user is not None:
        twin.write(CONF, user)
    assert twin.U(foo(twin, "2.0-1", new))
    t = twin.check()
    content = (twin.o.root / CONF).read_bytes()
    pacnews = [e for e in twin.o.events if isinstance(e, PacnewCreated)]
    if expect == "replaced":
        assert content == new and CONF + ".pacnew" not in t and not pacnews
    elif expect == "kept":
        assert content == user and CONF + ".pacnew" not in t
    else:
        assert content == user and (twin.o.root / (CONF + ".pacnew")).read_bytes() == new
        assert pacnews and pacnews[0].file == str(twin.o.root / CONF)
    # the recorded md5 is the one of the package's file, as pacman records it
    ours = twin.o.installed("foo")
    assert ours is not None
    theirs = (twin.p.dbpath / "local/foo-2.0-1/files").read_text()
    assert f"{CONF}\t{ours.backup[0].md5}" in theirs


def test_noupgrade_and_noextract(tmp_path: Path, backend: Store) -> None:
    twin = Twin(tmp_path, backend, NoUpgrade=CONF, NoExtract="usr/share/foo/* usr/lib/libfoo.so")
    twin.p.write_config()
    assert twin.U(foo(twin, "1.0-1", b"a=1\n"))
    assert twin.U(foo(twin, "2.0-1", b"a=2\n"))
    t = twin.check()
    assert CONF + ".pacnew" in t and "usr/share/foo/data" not in t
    assert any(isinstance(e, PacnewCreated) and e.from_noupgrade for e in twin.o.events)


@pytest.mark.parametrize("nosave", [False, True])
def test_remove_modified_backup(tmp_path: Path, backend: Store, nosave: bool) -> None:
    twin = Twin(tmp_path, backend)
    assert twin.U(foo(twin, "1.0-1", b"a=1\n"))
    twin.write(CONF, b"edited\n")
    twin.R("foo", nosave=nosave)
    t = twin.check()
    assert (CONF + ".pacsave" in t) is not nosave
    assert any(isinstance(e, PacsaveCreated) for e in twin.o.events) is not nosave


def test_unmodified_backup_removed_cleanly(tmp_path: Path, backend: Store) -> None:
    twin = Twin(tmp_path, backend)
    assert twin.U(foo(twin, "1.0-1", b"a=1\n"))
    twin.R("foo")
    assert set(twin.check()) <= {"etc", "var", "var/lib"}  # only the roots' skeleton left


@pytest.mark.parametrize("overwrite, ok", [
    ((), False),
    (("usr/bin/*",), True),
    (("/usr/bin/*",), False),                     # pacman matches relative or rooted paths
    (("*", "!*bin/bar"), False),                  # a later negation wins
    (("*", "!usr/bin/bar"), True),                # ... but "*" still matches the rooted path
    (("!usr/bin/bar", "*"), True),
])
def test_conflict_with_filesystem(tmp_path: Path, backend: Store, overwrite: tuple[str, ...], ok: bool) -> None:
    twin = Twin(tmp_path, backend)
    twin.write("usr/bin/bar", b"unowned\n")
    bar = twin.pkg("bar", "1.0-1", [FileSpec("usr/bin/bar", b"packaged\n", 0o755)])
    assert twin.U(bar, overwrite=overwrite) is ok
    twin.check()


def test_conflict_with_installed_package_and_between_targets(tmp_path: Path, backend: Store) -> None:
    twin = Twin(tmp_path, backend)
    a = twin.pkg("a", "1.0-1", [FileSpec("usr/share/x", b"a")])
    b = twin.pkg("b", "1.0-1", [FileSpec("usr/share/x", b"b")])
    c = twin.pkg("c", "1.0-1", [FileSpec("usr/share/x/", kind="dir")])
    assert not twin.U(a, b)                       # between targets
    assert not twin.U(a, c)                       # file against directory
    assert twin.U(a)
    assert not twin.U(b)                          # owned by an installed package
    assert not twin.U(b, overwrite=("usr/share/y",))
    assert twin.U(b, overwrite=("usr/share/*",))  # --overwrite takes files of other packages too
    twin.check()


def test_conflicts_between_targets_in_any_order(tmp_path: Path, backend: Store) -> None:
    """A shared path conflicts unless every target sharing it lists it as a directory,
    whichever of them comes first."""
    twin = Twin(tmp_path, backend)
    dirs = [twin.pkg(f"d{i}", "1.0-1", [FileSpec("usr/share/x/", kind="dir"),
                                        FileSpec(f"usr/share/x/f{i}", b"")]) for i in range(3)]
    f = twin.pkg("f", "1.0-1", [FileSpec("usr/share/x", b"f")])
    assert not twin.U(dirs[0], dirs[1], f, dirs[2])   # the file after two directories
    assert not twin.U(f, *dirs)                       # the file first
    assert twin.U(*dirs)                              # directories only: shared
    twin.check()


def test_file_moves_between_packages(tmp_path: Path, backend: Store) -> None:
    twin = Twin(tmp_path, backend)
    a1 = twin.pkg("a", "1.0-1", [FileSpec("usr/share/moving", b"1"), FileSpec("usr/share/a", b"")])
    b1 = twin.pkg("b", "1.0-1", [FileSpec("usr/share/b", b"")])
    a2 = twin.pkg("a", "2.0-1", [FileSpec("usr/share/a", b"")])
    b2 = twin.pkg("b", "2.0-1", [FileSpec("usr/share/b", b""), FileSpec("usr/share/moving", b"2")])
    assert twin.U(a1, b1)
    assert twin.U(b2, a2)       # b takes the file before a's old version lets it go
    t = twin.check()
    assert "usr/share/moving" in t


def test_directory_and_symlink_swaps(tmp_path: Path, backend: Store) -> None:
    twin = Twin(tmp_path, backend)
    v1 = twin.pkg("s", "1.0-1", [FileSpec("usr/share/s/dir/file", b"f"),
                                 FileSpec("usr/share/s/link", kind="link", target="dir")])
    v2 = twin.pkg("s", "2.0-1", [FileSpec("usr/share/s/other/file", b"f"),
                                 FileSpec("usr/share/s/dir", kind="link", target="other"),
                                 FileSpec("usr/share/s/link/x", b"now a directory")])
    assert twin.U(v1)
    assert twin.U(v2)
    t = twin.check()
    assert t["usr/share/s/dir"] == ("link", "other") and t["usr/share/s/link"][0] == "dir"


def test_unowned_symlink_in_the_way_of_a_directory(tmp_path: Path, backend: Store) -> None:
    twin = Twin(tmp_path, backend)
    (tmp_path / "target").mkdir()
    twin.symlink("usr/share/d", str(tmp_path / "target"))
    d = twin.pkg("d", "1.0-1", [FileSpec("usr/share/d/file", b"x")])
    assert not twin.U(d)
    assert twin.U(d, overwrite=("*",))            # a symlink is a file: overwritable
    twin.check()
    assert not os.listdir(tmp_path / "target")


def test_shared_directories_kept(tmp_path: Path, backend: Store) -> None:
    twin = Twin(tmp_path, backend)
    a = twin.pkg("a", "1.0-1", [FileSpec("usr/share/common/a", b"a")])
    b = twin.pkg("b", "1.0-1", [FileSpec("usr/share/common/b", b"b")])
    assert twin.U(a, b)
    twin.write("usr/share/unowned/file", b"u")
    twin.R("a")
    t = twin.check()
    assert "usr/share/common/b" in t and "usr/share/common/a" not in t
    twin.R("b")
    t = twin.check()
    assert "usr/share/common" not in t and "usr/share/unowned/file" in t


def test_hostile_paths_below_a_symlink_out_of_the_root(tmp_path: Path, backend: Store) -> None:
    """Package paths below an on-disk symlink that leaves the root: never written through it."""
    twin = Twin(tmp_path, backend)
    outside = tmp_path / "outside"
    outside.mkdir()
    twin.symlink("usr/evil", str(outside))
    evil = twin.pkg("evil", "1.0-1", [FileSpec("usr/evil/pwned", b"gotcha")])
    assert not twin.U(evil)                       # the directory is a symlink on disk: conflict
    assert twin.U(evil, overwrite=("*",))         # forced: the symlink is replaced, not followed
    assert os.listdir(outside) == [], "pacman or we wrote through the symlink"
    assert twin.check()["usr/evil"][0] == "dir"


def test_hostile_member_not_in_mtree(tmp_path: Path, backend: Store) -> None:
    """A member pacman skips (not in .MTREE) but our archive listing keeps: stays in the root."""
    ours = OurRoot(tmp_path / "ours", backend=backend)
    outside = tmp_path / "outside"
    outside.mkdir()
    (ours.root / "usr").mkdir()
    os.symlink(outside, ours.root / "usr/evil")
    evil = mkpkg(tmp_path, "evil", "1.0-1", [FileSpec("usr/share/ok", b"ok")],
                 extra=(("usr/evil/pwned", b"gotcha"),))
    assert ours.upgrade(evil) == []
    assert os.listdir(outside) == []
    assert not (ours.root / "usr/evil").is_symlink()
    assert (ours.root / "usr/evil/pwned").read_bytes() == b"gotcha"
