"""A packager's staged file as ``alpm-repo`` copies it (``add``, ``update``, ``import``,
often run by root or a release job over a staging directory packagers write): the copy
is of what the file holds when opened, and only if the tree has room for it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpmd.engine.repo.config import state_dir_of
from alpmd.engine.repo.tree import init_tree
from tests.repo.conftest import ARCH, alpm_repo

#: the tree's file system: a small tmpfs of its own
ROOM = 16 * 1024 * 1024


@pytest.fixture
def small_tree(tmp_path: Path) -> Iterator[Path]:
    """A tree (no signatures required) alone on a 16 MiB file system."""
    where = tmp_path / "small"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={ROOM}", "tmpfs", str(where)],
                   check=True, capture_output=True)
    try:
        init_tree(str(where / "tree"), ["core", "extra"], [ARCH]).close()
        yield where / "tree"
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True, capture_output=True)


def _used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_a_sparse_staged_file_is_refused_before_it_fills_the_tree(
        small_tree: Path, tmp_path: Path) -> None:
    """A 1 GiB file of nothing takes no room in the staging directory. Before: the copy
    wrote zeros until the tree's file system was full (``disk-full``, every other writer
    of that file system failing meanwhile); a file some process keeps appending to was
    copied for as long as it grew. Now its size when opened is compared with the room
    first (``disk-space``), and nothing is written."""
    big = tmp_path / "big-1-1-any.pkg.tar.zst"
    with open(big, "wb") as fh:
        fh.truncate(1 << 30)
    assert os.stat(big).st_blocks == 0          # it really takes no room where it is
    before = _used(small_tree)
    r = alpm_repo(small_tree, "add", "extra", "any", str(big))
    assert r.returncode != 0, r.stdout + r.stderr
    assert "disk-space" in r.stderr or "do not fit" in r.stderr, r.stderr
    assert "no space left" not in r.stderr, r.stderr
    state = Path(state_dir_of(str(small_tree)))
    assert not [p for p in state.iterdir() if p.name.startswith("incoming-")]
    assert _used(small_tree) - before < ROOM // 4
    assert alpm_repo(small_tree, "check").returncode == 0    # the tree is as it was
