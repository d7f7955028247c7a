"""Unit tests of the commit's file-system functions (no pacman needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alpmd.engine.archive import load_package_file
from alpmd.engine.conflict import find_file_conflicts, fnmatch, fnmatch_patterns
from alpmd.engine.diskspace import MountPoint, check_diskspace, mount_points
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import Progress, TransFlag
from alpmd.engine.extract import extract_package, inside_root
from alpmd.engine.formats.hook import parse_hook
from alpmd.engine.hooks import TransactionInfo, matches
from alpmd.testing.pkgbuild import FileSpec

from .support import OurRoot, mkpkg


def test_fnmatch_patterns_last_match_wins() -> None:
    assert fnmatch("usr/*", "usr/lib/x") and not fnmatch("usr/?", "usr/ab")
    assert fnmatch("a\\*", "a*") and not fnmatch("a\\*", "ab")
    assert fnmatch_patterns(["usr/*", "!usr/lib/*"], "usr/lib/x") == 1
    assert fnmatch_patterns(["!usr/lib/*", "usr/*"], "usr/lib/x") == 0
    assert fnmatch_patterns(["etc/*"], "usr/x") == -1
    assert fnmatch_patterns(["\\!weird"], "!weird") == 0


def test_extraction_independent_of_cwd_and_leaves_no_temporaries(tmp_path: Path) -> None:
    ours = OurRoot(tmp_path / "root")
    path = mkpkg(tmp_path, "p", "1-1", [FileSpec(f"usr/share/p/f{i}", b"x" * i) for i in range(20)]
                 + [FileSpec("usr/share/p/l", kind="link", target="f1")])
    before = os.getcwd()
    os.chdir("/")
    try:
        progress: list[Progress] = []
        h = ours.handle()
        try:
            extract_package(h, load_package_file(path), None, progress=progress.append)
        finally:
            h.release()
        assert os.getcwd() == "/"
        assert progress and progress[-1].percent == 100
    finally:
        os.chdir(before)
    names = sorted(os.listdir(ours.root / "usr/share/p"))
    assert names == sorted([f"f{i}" for i in range(20)] + ["l"])  # no .alpmd-*.tmp left
    assert not (Path("/") / "usr/share/p/f1").exists()


def test_inside_root_restores_the_directory_on_error(tmp_path: Path) -> None:
    before = os.getcwd()
    with pytest.raises(RuntimeError), inside_root(str(tmp_path)):
        assert os.getcwd() == str(tmp_path)
        raise RuntimeError
    assert os.getcwd() == before


def test_dbonly_writes_nothing(tmp_path: Path) -> None:
    ours = OurRoot(tmp_path / "root")
    path = mkpkg(tmp_path, "p", "1-1", [FileSpec("etc/p.conf", b"c")], backup=("etc/p.conf",))
    h = ours.handle()
    try:
        fl = extract_package(h, load_package_file(path), None, flags=TransFlag.DBONLY)
        assert fl.files == ["etc/", "etc/p.conf"] and not (ours.root / "etc/p.conf").exists()
        assert find_file_conflicts(h, [load_package_file(path)], [],
                                   flags=TransFlag.DBONLY) == []
    finally:
        h.release()


def test_moved_file_goes_to_skip_remove(tmp_path: Path) -> None:
    ours = OurRoot(tmp_path / "root")
    a1 = mkpkg(tmp_path, "a", "1-1", [FileSpec("usr/share/m", b"1")])
    b1 = mkpkg(tmp_path, "b", "1-1", [FileSpec("usr/share/b", b"")])
    b2 = mkpkg(tmp_path, "b", "2-1", [FileSpec("usr/share/m", b"2")])
    a2 = mkpkg(tmp_path, "a", "2-1", [FileSpec("usr/share/a", b"")])
    assert ours.upgrade(a1, b1) == []
    h = ours.handle()
    try:
        skip: set[str] = set()
        got = find_file_conflicts(h, [load_package_file(b2), load_package_file(a2)], [],
                                  skip_remove=skip)
        assert got == [] and skip == {"usr/share/m"}
        got = find_file_conflicts(h, [load_package_file(b2)], [])
        assert [(c.target, c.kind, c.other) for c in got] == [("b", "filesystem", "a")]
        assert got[0].file == str(ours.root / "usr/share/m")
    finally:
        h.release()


def test_diskspace_accounting(tmp_path: Path) -> None:
    ours = OurRoot(tmp_path / "root")
    small = mkpkg(tmp_path, "s", "1-1", [FileSpec("usr/share/s", b"x" * 10000)])
    h = ours.handle()
    root = h.options.root
    try:
        def mp(bavail: int, ro: bool = False) -> MountPoint:
            return MountPoint(root, 4096, 1000, bavail, ro)
        pkg = load_package_file(small)
        # 10000 bytes = 3 blocks, metadata members a few more; cushion = 1000/20+1 = 51 blocks
        check_diskspace(h, [pkg], [], points=[mp(100)])
        with pytest.raises(AlpmError) as info:
            check_diskspace(h, [pkg], [], points=[mp(53)])
        assert info.value.code is ErrorCode.DISK_SPACE and "too full" in str(info.value)
        with pytest.raises(AlpmError) as info:
            check_diskspace(h, [pkg], [], points=[mp(10**6, ro=True)])
        assert "read only" in str(info.value)
        # another mount point with a longer prefix takes the files under it
        other = MountPoint(root + "usr/", 4096, 1000, 0, False)
        with pytest.raises(AlpmError):
            check_diskspace(h, [pkg], [], points=[other, mp(10**6)])
    finally:
        h.release()
    assert any(m.mount_dir == "/" for m in mount_points())


def test_hook_matching_sets() -> None:
    from alpmd.engine.formats.files import FileList
    from alpmd.engine.package import Origin, Package

    def pkg(name: str, files: list[str]) -> Package:
        return Package(name, "1-1", Origin.FILE, files=FileList(files))

    hook = parse_hook("[Trigger]\nType = Path\nOperation = Upgrade\nTarget = usr/*\n"
                      "[Action]\nWhen = PostTransaction\nExec = /x\nNeedsTargets\n")
    new, old = pkg("a", ["usr/", "usr/a", "usr/b"]), pkg("a", ["usr/", "usr/a", "usr/c"])
    assert matches(hook, TransactionInfo(upgraded=[(new, old)])) == ["usr/", "usr/a"]
    assert matches(hook, TransactionInfo(installed=[new])) is None
    hook.triggers[0].targets.append("!usr/a")
    assert matches(hook, TransactionInfo(upgraded=[(new, old)])) == ["usr/"]
    assert matches(hook, TransactionInfo(upgraded=[(new, old)]), noextract=["usr/*"]) is None
