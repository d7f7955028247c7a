"""A hostile package author: archive members and .PKGINFO fields never reach outside the root.

Each package is written by hand with :mod:`tarfile` (our own builder refuses such
paths) and installed with ``alpm -U --root``; a victim file beside the root must
keep its content and no file may appear next to it.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from alpmd.testing.oracle import PacmanRoot
from tests.trans.harness import run_alpm

Member = tuple[tarfile.TarInfo, bytes | None]


def _file(path: str, data: bytes = b"pwned\n") -> Member:
    ti = tarfile.TarInfo(path)
    ti.size, ti.mode = len(data), 0o644
    return ti, data


def _dir(path: str) -> Member:
    ti = tarfile.TarInfo(path)
    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    return ti, None


def _link(path: str, target: str, kind: bytes = tarfile.SYMTYPE, data: bytes = b"") -> Member:
    ti = tarfile.TarInfo(path)
    ti.type, ti.linkname, ti.size = kind, target, len(data)
    return ti, data or None


def _dev(path: str) -> Member:
    ti = tarfile.TarInfo(path)
    ti.type, ti.devmajor, ti.devminor, ti.mode = tarfile.CHRTYPE, 1, 3, 0o666
    return ti, None


def _package(out: Path, name: str, members: list[Member], *, version: str = "1-1",
             backup: list[str] | None = None) -> Path:
    path = out / f"{name}-{version}-x86_64.pkg.tar.gz"
    info = (f"pkgname = {name}\npkgbase = {name}\npkgver = {version}\narch = x86_64\n"
            f"size = 10\n" + "".join(f"backup = {b}\n" for b in backup or []))
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        meta = tarfile.TarInfo(".PKGINFO")
        meta.size = len(info.encode())
        tar.addfile(meta, io.BytesIO(info.encode()))
        for ti, data in members:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return path


@pytest.fixture
def world(tmp_path: Path) -> tuple[PacmanRoot, Path]:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("precious\n")
    return PacmanRoot(tmp_path / "root"), outside


def _untouched(outside: Path) -> None:
    assert (outside / "victim").read_text() == "precious\n"
    assert sorted(os.listdir(outside)) == ["victim"]


CASES: dict[str, Callable[[Path], list[Member]]] = {
    "dotdot": lambda o: [_file("../outside/victim")],
    "dotdot-inside": lambda o: [_dir("usr/"), _file("usr/../../outside/victim")],
    "absolute": lambda o: [_file(str(o / "victim"))],
    "write-through-symlink": lambda o: [_dir("usr/"), _link("usr/x", str(o)),
                                        _file("usr/x/victim")],
    "write-through-relative-symlink": lambda o: [_dir("usr/"), _link("usr/x", "../../outside"),
                                                 _file("usr/x/new")],
    "hardlink-absolute": lambda o: [_dir("usr/"), _link("usr/h", str(o / "victim"),
                                                        tarfile.LNKTYPE, b"pwned\n")],
    "hardlink-dotdot": lambda o: [_dir("usr/"), _link("usr/h", "../outside/victim",
                                                      tarfile.LNKTYPE, b"pwned\n")],
    "hardlink-via-symlink": lambda o: [_dir("usr/"), _link("usr/s", str(o / "victim")),
                                       _link("usr/h", "usr/s", tarfile.LNKTYPE, b"pwned\n")],
    "device-node": lambda o: [_dir("dev/"), _dev("dev/null2")],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_escaping_members_refuse_the_package(world: tuple[PacmanRoot, Path], tmp_path: Path,
                                             case: str) -> None:
    root, outside = world
    pkg = _package(tmp_path, "evil", CASES[case](outside))
    code, out, err = run_alpm(root, ["-U", "--noconfirm", str(pkg)])
    assert code == 1, out + err
    assert "invalid or corrupted package" in err, out + err
    _untouched(outside)
    assert not os.listdir(root.dbpath / "local") or os.listdir(root.dbpath / "local") == [
        "ALPM_DB_VERSION"]
    assert not (root.root / "usr").exists() and not (root.root / "dev").exists()


def test_control_package_installs(world: tuple[PacmanRoot, Path], tmp_path: Path) -> None:
    """The hand-made format itself is fine: the refusals above are about the members."""
    root, outside = world
    pkg = _package(tmp_path, "good", [_dir("usr/"), _file("usr/ok")])
    code, out, err = run_alpm(root, ["-U", "--noconfirm", str(pkg)])
    assert code == 0, out + err
    assert (root.root / "usr/ok").read_bytes() == b"pwned\n"
    _untouched(outside)


def test_backup_entries_outside_the_root_are_never_touched(world: tuple[PacmanRoot, Path],
                                                          tmp_path: Path) -> None:
    """``backup = ../../victim`` (or absolute) through install, -Qii, upgrade and removal:
    no .pacnew/.pacsave beside the victim, its content intact."""
    root, outside = world
    rel = os.path.relpath(outside / "victim", root.root)
    backup = [rel, str(outside / "victim"), "usr/../" + rel]
    v1 = _package(tmp_path, "cfg", [_dir("usr/"), _file("usr/a", b"1")], backup=backup)
    v2 = _package(tmp_path, "cfg", [_dir("usr/"), _file("usr/a", b"2")], version="2-1",
                  backup=backup)
    for args in (["-U", "--noconfirm", str(v1)], ["-Qii", "cfg"],
                 ["-U", "--noconfirm", str(v2)], ["-R", "--noconfirm", "cfg"]):
        code, out, err = run_alpm(root, args)
        assert code == 0, (args, out + err)
        _untouched(outside)
    assert not (root.root / "usr/a").exists()


def _with_install(path: Path, script: str) -> Path:
    """The package at ``path`` with an ``.INSTALL`` scriptlet added (rewritten in place)."""
    with tarfile.open(path, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
                   for m in tar.getmembers()]
    ti = tarfile.TarInfo(".INSTALL")
    ti.size = len(script.encode())
    members.insert(1, (ti, script.encode()))
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for m, data in members:
            tar.addfile(m, io.BytesIO(data) if data is not None else None)
    return path


def test_scriptlet_is_never_staged_through_a_tmp_symlink_out_of_the_root(
        world: tuple[PacmanRoot, Path], tmp_path: Path) -> None:
    """A package makes the root's ``tmp`` a symlink to a host directory; the next package's
    scriptlet must not be written there (pacman's mkdtemp in root/tmp would be)."""
    from tests.commit.support import shell_root

    root, outside = world
    shell_root(root.root)
    link = _package(tmp_path, "tmplink", [_link("tmp", str(outside))])
    code, out, err = run_alpm(root, ["-U", "--noconfirm", "--overwrite", "*", str(link)])
    assert code == 0, out + err
    assert (root.root / "tmp").is_symlink()
    os.utime(outside, (0, 0))
    sc = _with_install(_package(tmp_path, "sc", [_dir("usr/"), _file("usr/sc")]),
                       "post_install() {\n  echo hello from scriptlet\n}\n")
    code, out, err = run_alpm(root, ["-U", "--noconfirm", str(sc)])
    assert code == 0, out + err
    assert (root.root / "usr/sc").exists()
    _untouched(outside)
    assert os.stat(outside).st_mtime == 0       # no alpm_* directory came and went
    assert "resolves outside the root" in out + err
