"""A package's ``.CHANGELOG`` lands in the local database as pacman puts it there.

libalpm extracts ``.CHANGELOG`` (like ``.INSTALL``) into the package's database
entry and ``-Qc`` prints it. Twin roots: the real pacman installs on one, ``alpm``
on the other; the entries and the ``-Qc`` output must be the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alpmd.engine.formats.desc import PkgMeta
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.trans.harness import run_alpm

pytestmark = pytest.mark.oracle

#: Larger than one read block (64 KiB), so it is read in several pieces.
CHANGELOG = b"2024-01-02  Someone <a@b.c>\n\n\t* 1.0-1 :\n\tFirst release; bytes \xc3\xa9 kept.\n" * 2000
INSTALL = "post_install() {\n  :\n}\n"


def test_upgrade_writes_changelog_like_pacman(tmp_path: Path) -> None:
    pkgs = tmp_path / "pkgs"
    with_log = build_package(pkgs, PkgMeta("clog", "1.0-1", desc="has a changelog"),
                             [FileSpec("usr/share/clog/data", b"x\n")], install=INSTALL,
                             extra_members=[(".CHANGELOG", CHANGELOG)])
    without = build_package(pkgs, PkgMeta("plain", "1.0-1", desc="has none"),
                            [FileSpec("usr/share/plain/data", b"y\n")])
    a = PacmanRoot(tmp_path / "a")
    b = PacmanRoot(tmp_path / "b")
    r = a.pacman("-U", str(with_log), str(without))
    assert r.returncode == 0, r.stderr
    code, _out, err = run_alpm(b, ["-U", str(with_log), str(without)])
    assert code == 0, err

    entry_a = a.dbpath / "local/clog-1.0-1"
    entry_b = b.dbpath / "local/clog-1.0-1"
    # pacman did what the scenario is about: it kept the changelog and the scriptlet.
    assert (entry_a / "changelog").read_bytes() == CHANGELOG
    assert (entry_b / "changelog").read_bytes() == CHANGELOG
    assert (entry_b / "install").read_bytes() == (entry_a / "install").read_bytes()
    assert not (a.dbpath / "local/plain-1.0-1/changelog").exists()
    assert not (b.dbpath / "local/plain-1.0-1/changelog").exists()

    for args in (["-Qc", "clog"], ["-Qc", "plain"]):
        want = a.pacman(*args)
        code, out, err = run_alpm(b, args)
        assert (code, out, err) == (want.returncode, want.stdout, want.stderr), args
    assert "First release" in a.pacman("-Qc", "clog").stdout
