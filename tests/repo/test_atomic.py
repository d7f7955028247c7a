"""One switch for every database: a reader never sees a mix of two changes.

A reader process reads every database of two repositories over two architectures
(``REPO/os/ARCH/REPO.db`` and ``REPO.files``, the paths a mirror serves: from the file
system, symlinks followed, or over HTTP from a loopback mirror of the tree) as fast as it can, forwards and backwards in turn, while this process
releases and moves packages so that each change touches all eight files. Every
database read must come from one whole state of the tree, and the states must
follow each other in the order the changes were made: reading x86_64's ``core``
of change k and then aarch64's ``core`` of change k-1 (or ``testing`` emptied of
a package while ``core`` does not have it yet) fails the test.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alpmd.engine.db.sync import read_db_archive
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.repo import ops
from alpmd.engine.repo.tree import Tree, init_tree
from alpmd.testing.mirror import MirrorServer
from alpmd.testing.pkgbuild import FileSpec, build_package

from .conftest import ARCH, OTHER, REPO_ROOT

ROUNDS = 12
REPOS = ("core", "testing")

READER = r"""
import hashlib, json, os, sys, urllib.request
from alpmd.engine.db.sync import read_db_archive


def fetch(path):
    if path.startswith("http://"):
        with urllib.request.urlopen(path, timeout=30) as answer:
            return answer.read()
    with open(path, "rb") as db:
        return db.read()


paths, stop, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "w") as fh:
    forward = True
    while not os.path.exists(stop):
        order = range(len(paths)) if forward else range(len(paths) - 1, -1, -1)
        for i in order:
            members = read_db_archive(fetch(paths[i]), paths[i])
            names = sorted({m.partition("/")[0] for m, _data in members})
            fh.write(f"{i} {hashlib.sha256(' '.join(names).encode()).hexdigest()}\n")
        forward = not forward
"""


def _paths(tree: Tree) -> list[str]:
    return [os.path.join(tree.cfg.arch_dir(repo, arch), f"{repo}.{kind}")
            for repo in REPOS for arch in (ARCH, OTHER) for kind in ("db", "files")]


def _digest(path: str) -> str:
    with open(path, "rb") as fh:
        members = read_db_archive(fh.read(), path)
    names = sorted({m.partition("/")[0] for m, _data in members})
    return hashlib.sha256(" ".join(names).encode()).hexdigest()


def _pkg(where: Path, name: str, version: str) -> None:
    build_package(where, PkgMeta(name=name, version=version, base=name, arch="any"),
                  [FileSpec(f"usr/share/{name}/{version}", b"x")])


@pytest.mark.parametrize("over", ["files", "http"])
def test_reader_never_sees_two_changes_mixed(tmp_path: Path, over: str) -> None:
    tree = init_tree(str(tmp_path / "tree"), list(REPOS), [ARCH, OTHER])
    if over == "http":
        with MirrorServer(root=Path(tree.cfg.root)).threaded() as mirror:
            _changes_while_reading(tree, tmp_path, mirror.url)
    else:
        _changes_while_reading(tree, tmp_path, None)


def _changes_while_reading(tree: Tree, tmp_path: Path, url: str | None) -> None:
    paths = _paths(tree)
    served = [p.replace(tree.cfg.root, url) for p in paths] if url else paths
    staging = Path(tree.cfg.staging)
    # every round's packages first, so the changes follow each other closely
    work = tmp_path / "pkgs"
    for i in range(1, ROUNDS + 1):
        _pkg(work / f"r{i}" / "testing", "a", f"{i}-1")
        _pkg(work / f"r{i}" / "core", f"b{i}", "1-1")
    states = [[_digest(p) for p in paths]]
    stop, out = tmp_path / "stop", tmp_path / "reads"
    reader = subprocess.Popen([sys.executable, "-c", READER, json.dumps(served), str(stop),
                               str(out)], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                              stderr=subprocess.PIPE, text=True)
    try:
        while not out.exists() or out.stat().st_size == 0:   # the reader is reading
            assert reader.poll() is None, reader.communicate()[1]
            time.sleep(0.01)
        for i in range(1, ROUNDS + 1):
            # one change: `a` i-1 into testing and b_i into core, both architectures...
            for repo in REPOS:
                (staging / repo).mkdir(exist_ok=True)
                for f in (work / f"r{i}" / repo).iterdir():
                    os.rename(f, staging / repo / f.name)
            ops.update(tree, user="writer")
            states.append([_digest(p) for p in paths])
            # ...the next: `a` moves on to core, leaving testing
            ops.move(tree, "testing", "core", "any", ["a"], user="writer")
            states.append([_digest(p) for p in paths])
    finally:
        stop.touch()
        _out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    tree.close()
    # every change really changed each of the eight databases
    for k in range(1, len(states)):
        assert all(old != new for old, new in zip(states[k - 1], states[k], strict=True)), k
    reads = [(int(i), h) for i, h in (line.split() for line in out.read_text().splitlines())]
    # the earliest state each read can belong to, never going back in time
    k = 0
    seen = set()
    for n, (i, h) in enumerate(reads):
        later = [j for j in range(k, len(states)) if states[j][i] == h]
        assert later, (f"read {n} of {served[i]} shows a state older than one already read "
                       "(or one that never was)")
        k = later[0]
        seen.add(k)
    assert len(seen) >= 3, seen   # the reader really read while the changes happened
