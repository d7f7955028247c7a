"""The on-disk layout: database generations behind one ``current`` link, the tree of the
earlier layout taken over, and the tracking database kept to itself."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.repo import ops
from alpmd.engine.repo.tracking import TRACKING_NAME, Tracking
from alpmd.engine.repo.tree import Tree, open_tree
from alpmd.engine.repo.txn import current_generation, generation_dirs

from .conftest import ARCH, Packager, alpm_repo, read_db


def _gens(tree: Tree) -> list[str]:
    return sorted(generation_dirs(tree.cfg).values())


def test_generations_switch_and_old_ones_go(plain_tree: Tree, tmp_path: Path) -> None:
    t = plain_tree
    packager = Packager(tmp_path / "pkgs")
    d = Path(t.cfg.arch_dir("core", ARCH))
    assert os.readlink(d / "core.db") == "core.db.tar.gz"
    assert os.readlink(d / "core.db.tar.gz") == f"../../../pool/db/current/core/{ARCH}/core.db.tar.gz"
    first = current_generation(t.cfg)
    assert first is not None and _gens(t) == [first]
    ops.add(t, "core", ARCH, [str(packager.pkg("foo"))], user="t")
    second = current_generation(t.cfg)
    assert second is not None and second > first and _gens(t) == [first, second]
    gen = Path(t.cfg.generations)
    # the databases the change did not touch are the same files in both generations
    assert os.path.samefile(gen / first / "extra" / ARCH / "extra.db.tar.gz",
                            gen / second / "extra" / ARCH / "extra.db.tar.gz")
    assert not os.path.samefile(gen / first / "core" / ARCH / "core.db.tar.gz",
                                gen / second / "core" / ARCH / "core.db.tar.gz")
    ops.add(t, "extra", ARCH, [str(packager.pkg("bar"))], user="t")
    third = current_generation(t.cfg)
    assert third is not None and _gens(t) == [second, third]   # the one before stays
    assert sorted(read_db(d / "core.db")) == ["foo-1.0-1"]
    # what an interrupted clean-up would leave: check notes it, cleanup removes it
    shutil.copytree(gen / second, gen / "00000001")
    assert "1 old database generations" in " ".join(map(str, ops.check(t).notes))
    ops.cleanup(t)
    assert _gens(t) == [second, third]
    # current and the tracking database disagree: a problem that --repair fixes
    os.symlink(second, gen / "current.x")
    os.replace(gen / "current.x", gen / "current")
    assert any("names generation" in str(p) for p in ops.check(t).problems)
    assert ops.check(t, repair=True).ok
    assert sorted(read_db(d / "core.db")) == ["foo-1.0-1"]


def test_tree_of_the_earlier_layout_is_taken_over(plain_tree: Tree, tmp_path: Path) -> None:
    """Databases as regular files in the architecture's directory, no generations."""
    t = plain_tree
    packager = Packager(tmp_path / "pkgs")
    ops.add(t, "core", ARCH, [str(packager.pkg("foo"))], user="t")
    d = Path(t.cfg.arch_dir("core", ARCH))
    for repo in ("core", "extra"):
        for kind in ("db", "files"):
            p = Path(t.cfg.arch_dir(repo, ARCH)) / f"{repo}.{kind}.tar.gz"
            data = p.read_bytes()
            p.unlink()
            p.write_bytes(data)
    shutil.rmtree(t.cfg.generations)
    root = t.cfg.root
    t.close()
    old = open_tree(root)
    try:
        ops.add(old, "core", ARCH, [str(packager.pkg("bar"))], user="t")
        assert sorted(read_db(d / "core.db")) == ["bar-1.0-1", "foo-1.0-1"]
        assert os.path.islink(d / "core.db.tar.gz") and os.path.islink(d / "core.files.tar.gz")
        assert ops.check(old, verify=True).ok
    finally:
        old.close()
    # the command line works on it too (another process, the same tree)
    proc = alpm_repo(root, "ls", "core")
    assert proc.returncode == 0 and proc.stdout.split()[2::4] == ["bar", "foo"]


def test_tracking_file_is_never_opened_as_a_package_or_database(plain_tree: Tree,
                                                                tmp_path: Path) -> None:
    """A hard link to the tracking database under a package's name, its descriptor, or its
    path given to import: refused before anything opens it (closing a descriptor of it
    would drop the process's SQLite locks)."""
    t = plain_tree
    tracking = Path(t.cfg.state_dir) / TRACKING_NAME
    fake = tmp_path / f"evil-1.0-1-{ARCH}.pkg.tar.zst"
    os.link(tracking, fake)
    for attempt in (lambda: ops.add(t, "core", ARCH, [str(fake)], user="t"),
                    lambda: ops.import_db(t, "core", ARCH, str(tracking), user="t")):
        with pytest.raises(AlpmError) as exc:
            attempt()
        assert exc.value.code is ErrorCode.WRONG_ARGS and "tracking database" in str(exc.value)
    with open(tracking, "rb") as fh, pytest.raises(AlpmError) as exc:
        ops.add_streams(t, "core", ARCH, [(fake.name, fh, None)], user="t")
    assert exc.value.code is ErrorCode.WRONG_ARGS
    assert ops.check(t).ok


def _other_program(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE unrelated (x)")


def _newer_schema(path: Path) -> None:
    Tracking(str(path.parent)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=99")


@pytest.mark.parametrize(("make", "code"), [
    (_other_program, ErrorCode.DB_INVALID),
    (_newer_schema, ErrorCode.DB_VERSION),
    (lambda path: path.write_bytes(b"not a database at all" * 100), ErrorCode.DB_INVALID),
])
def test_tracking_refuses_other_files(tmp_path: Path, make: Callable[[Path], None],
                                      code: ErrorCode) -> None:
    make(tmp_path / TRACKING_NAME)
    with pytest.raises(AlpmError) as exc:
        Tracking(str(tmp_path))
    assert exc.value.code is code


def test_tracking_made_before_the_mark_is_adopted(plain_tree: Tree, tmp_path: Path) -> None:
    t = plain_tree
    ops.add(t, "core", ARCH, [str(Packager(tmp_path / "pkgs").pkg("foo"))], user="t")
    root = t.cfg.root
    t.close()
    with sqlite3.connect(Path(t.cfg.state_dir) / TRACKING_NAME) as conn:
        conn.execute("PRAGMA application_id=0")
        conn.execute("PRAGMA user_version=0")
    again = open_tree(root)
    try:
        assert [r.name for r in ops.ls(again)] == ["foo"]
        assert ops.check(again).ok
    finally:
        again.close()
    with sqlite3.connect(Path(t.cfg.state_dir) / TRACKING_NAME) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
