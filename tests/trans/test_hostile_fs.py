"""A full disk and a read-only root: named errors, the truth about what was done, repair.

Real file systems: a 2 MiB tmpfs (full after a few packages) and the same
tmpfs remounted read-only. Needs root (mount); the mounts are undone in the
fixture's teardown.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import TransFlag
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle
from alpmd.engine.journal import journal_path, read_journal
from alpmd.engine.trans import Transaction
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.trans.harness import alpm_inprocess, minimal_conf


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs holding a root with an empty database."""
    assert os.geteuid() == 0, "mounting a tmpfs needs root"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    try:
        (mnt / "var/lib/pacman").mkdir(parents=True)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def _remount(mnt: Path, opts: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{opts}", str(mnt)], check=True)


def _handle(root: Path) -> Handle:
    return Handle(root=str(root), cachedirs=[str(root / "var/cache/pacman/pkg")],
                  use_snapshots=False)


def _pkgs(tmp_path: Path) -> tuple[list[Path], Path]:
    out = tmp_path / "pkgs"
    small = [build_package(out, PkgMeta(f"s{i}", "1.0-1"),
                           [FileSpec(f"usr/share/s{i}/data", f"s{i}\n".encode() * 20)])
             for i in range(3)]
    big = build_package(out, PkgMeta("big", "1.0-1"),
                        [FileSpec("usr/share/big/blob", os.urandom(3 << 20))])
    return small, big


def _commit(root: Path, add: list[Path], remove: list[str] | None = None) -> None:
    h = _handle(root)
    try:
        with Transaction(h, TransFlag.NONE) as t:
            for p in add:
                t.add_file(str(p))
            for name in remove or []:
                t.add_remove_target(name)
            t.prepare()
            t.commit()
    finally:
        h.release()


def _versions(root: Path) -> dict[str, str]:
    h = _handle(root)
    try:
        return dict(h.localdb.versions)
    finally:
        h.release()


@pytest.mark.timeout(300)
def test_full_disk_is_named_says_what_was_done_and_repair_finishes(small_fs: Path,
                                                                   tmp_path: Path) -> None:
    small, big = _pkgs(tmp_path)
    with pytest.raises(AlpmError) as err:
        _commit(small_fs, [*small, big])
    exc = err.value
    assert exc.code is ErrorCode.DISK_FULL, exc
    assert exc.details["completed"] == ["s0", "s1", "s2"]
    assert exc.details["unfinished"] == "big"
    assert "alpm --repair" in exc.message
    assert _versions(small_fs) == {"s0": "1.0-1", "s1": "1.0-1", "s2": "1.0-1"}
    dbpath = str(small_fs / "var/lib/pacman")
    state = read_journal(dbpath)
    assert state is not None and [s.name for s in state.pending] == ["big"]
    assert not (small_fs / "var/lib/pacman/db.lck").exists()

    # repair while the disk is still full: a named error, nothing claimed
    code, out, errout = alpm_inprocess(["--repair", "--root", str(small_fs), "--config", minimal_conf(tmp_path)])
    assert code == 1 and "no space left on device" in (out + errout).lower(), (out, errout)
    # with room again, repair finishes the package the journal names
    _remount(small_fs, "size=16m")
    code, out, errout = alpm_inprocess(["--repair", "--root", str(small_fs), "--config", minimal_conf(tmp_path)])
    assert code == 0, (out, errout)
    assert "big: rolled forward to 1.0-1" in out
    assert os.path.getsize(small_fs / "usr/share/big/blob") == 3 << 20
    assert _versions(small_fs)["big"] == "1.0-1"
    assert not os.path.exists(journal_path(dbpath))


@pytest.mark.timeout(300)
def test_command_line_tells_the_truth_after_a_full_disk(small_fs: Path, tmp_path: Path) -> None:
    small, big = _pkgs(tmp_path)
    code, out, errout = alpm_inprocess(["-U", "--noconfirm", "--root", str(small_fs), "--config",
                              minimal_conf(tmp_path), *map(str, small), str(big)])
    assert code == 1
    assert "no packages were upgraded" not in out, out
    assert "Errors occurred after 3 packages were changed: s0 s1 s2." in out, out
    assert "no space left on device" in errout.lower() or "no space left" in out.lower()
    assert "alpm --repair" in out + errout


@pytest.mark.timeout(300)
def test_read_only_root_is_named_and_changes_nothing(small_fs: Path, tmp_path: Path) -> None:
    small, _big = _pkgs(tmp_path)
    _commit(small_fs, small[:2])
    _remount(small_fs, "ro")
    try:
        for add, remove in (([small[2]], []), ([], ["s0"])):  # install, then remove
            with pytest.raises(AlpmError) as err:
                _commit(small_fs, add, remove)
            assert err.value.code is ErrorCode.READ_ONLY, err.value
        assert _versions(small_fs) == {"s0": "1.0-1", "s1": "1.0-1"}
    finally:
        _remount(small_fs, "rw")
    # writable again: everything works, nothing was left behind
    assert read_journal(str(small_fs / "var/lib/pacman")) is None
    _commit(small_fs, [small[2]], [])
    _commit(small_fs, [], ["s0"])
    assert _versions(small_fs) == {"s1": "1.0-1", "s2": "1.0-1"}


@pytest.mark.timeout(300)
def test_read_only_payload_directory_with_a_writable_database(tmp_path: Path) -> None:
    """The database can be written but the files cannot (a read-only /usr): the
    package's step ends at once with READ_ONLY, is not recorded as installed, and
    repair finishes it once /usr is writable."""
    root = tmp_path / "root"
    (root / "var/lib/pacman").mkdir(parents=True)
    usr = root / "usr"
    usr.mkdir()
    small, _big = _pkgs(tmp_path)
    _commit(root, [small[0]])
    subprocess.run(["mount", "--bind", str(usr), str(usr)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(usr)], check=True)
        with pytest.raises(AlpmError) as err:
            _commit(root, [small[1]])
        assert err.value.code is ErrorCode.READ_ONLY, err.value
        assert err.value.details["unfinished"] == "s1"
        assert _versions(root) == {"s0": "1.0-1"}
    finally:
        subprocess.run(["umount", str(usr)], check=True)
    code, out, errout = alpm_inprocess(["--repair", "--root", str(root), "--config", minimal_conf(tmp_path)])
    assert code == 0 and "s1: rolled forward to 1.0-1" in out, (out, errout)
    assert _versions(root) == {"s0": "1.0-1", "s1": "1.0-1"}
    assert (root / "usr/share/s1/data").exists()
