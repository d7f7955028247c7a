"""Crash safety: SIGKILL a commit at random moments, then check and repair the root.

A forked child upgrades eight packages (1.0 → 2.0, each with version-exclusive
files); the parent kills it after a random delay within the commit's measured
duration. The child's commit leaves its last flush to a detached process, as
``alpm -U`` does, so kills also land around that hand-off. Each time: the database loads; every package is recorded at 1.0 or
2.0 with its desc and files readable; a lock left behind is reported by
:meth:`Transaction.recover` (and removed only because we ask); after repair no
journal or lock remains and every package's files on disk are exactly those
of the version the database records.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from alpmd.engine.db.stores import Store, stores_present
from alpmd.engine.events import TransFlag
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle
from alpmd.engine.journal import FinalFlush, journal_path
from alpmd.engine.trans import Transaction
from alpmd.testing.pkgbuild import FileSpec, build_package

pytestmark = pytest.mark.slow

NAMES = [f"p{i}" for i in range(8)]
RUNS = 50


def _files(name: str, major: int) -> list[FileSpec]:
    out = [FileSpec(f"usr/share/{name}/data", f"{name} {major}\n".encode())]
    out += [FileSpec(f"usr/share/{name}/v{major}/f{i}", f"{name} {major} {i}\n".encode() * 64)
            for i in range(25)]
    return out


def _handle(root: Path, store: Store) -> Handle:
    return Handle(root=str(root), cachedirs=[str(root / "cache")], use_snapshots=False,
                  backend=store)


def _install(root: Path, paths: list[Path], store: Store,
             how: FinalFlush = FinalFlush.WAIT) -> None:
    h = _handle(root, store)
    try:
        with Transaction(h, TransFlag.NONE) as t:
            t.final_flush = how
            for p in paths:
                t.add_file(str(p))
            t.prepare()
            t.commit()
    finally:
        h.release()


def _expected(root: Path, name: str, version: str) -> None:
    major = int(version.split(".")[0])
    other = 2 if major == 1 else 1
    base = root / "usr/share" / name
    assert (base / "data").read_text() == f"{name} {major}\n"
    for i in range(25):
        f = base / f"v{major}/f{i}"
        assert f.read_text() == f"{name} {major} {i}\n" * 64, f
    assert not (base / f"v{other}").exists(), f"{name}: files of {other}.0 left behind"


def test_sigkill_during_commit_is_recoverable(tmp_path: Path, backend: Store) -> None:
    pkgdir = tmp_path / "pkgs"
    old = [build_package(pkgdir, PkgMeta(n, "1.0-1"), _files(n, 1)) for n in NAMES]
    new = [build_package(pkgdir, PkgMeta(n, "2.0-1"), _files(n, 2)) for n in NAMES]
    template = tmp_path / "template"
    (template / "var/lib/pacman").mkdir(parents=True)
    _install(template, old, backend)
    assert stores_present(str(template / "var/lib/pacman")) == [backend]

    # How long an uninterrupted upgrade takes, to spread the kills over it.
    probe = tmp_path / "probe"
    shutil.copytree(template, probe, symlinks=True)
    t0 = time.monotonic()
    _install(probe, new, backend)
    duration = time.monotonic() - t0
    for n in NAMES:
        _expected(probe, n, "2.0-1")

    rng = random.Random(20240601)
    outcomes = {"old": 0, "new": 0, "locked": 0, "journal": 0}
    deadline = time.monotonic() + 90
    for run in range(RUNS):
        assert time.monotonic() < deadline, "crash test exceeded its time budget"
        root = tmp_path / f"run{run}"
        shutil.copytree(template, root, symlinks=True)
        delay = rng.uniform(0, duration * 1.1)
        pid = os.fork()
        if pid == 0:  # the child: run the commit until killed
            try:
                _install(root, new, backend, FinalFlush.PROCESS)
            finally:
                os._exit(0)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

        h = _handle(root, backend)
        try:
            versions = h.localdb.versions
            assert sorted(versions) == NAMES
            for n in NAMES:
                assert versions[n] in ("1.0-1", "2.0-1")
                pkg = h.localdb.get(n)
                assert pkg is not None and pkg.meta.name == n and pkg.files
                outcomes["new" if versions[n] == "2.0-1" else "old"] += 1
            lock_left = os.path.exists(h.lockfile)
            journal_left = os.path.exists(journal_path(h.dbpath))
            outcomes["locked"] += lock_left
            outcomes["journal"] += journal_left

            report = Transaction.recover(h, repair=False)
            assert report.stale_lock == (h.lockfile if lock_left else None)
            assert os.path.exists(h.lockfile) == lock_left, "reporting must not unlock"

            report = Transaction.recover(h, remove_stale_lock=True)
            assert not report.unresolved, report
            assert not os.path.exists(h.lockfile)
            assert not os.path.exists(journal_path(h.dbpath))
        finally:
            h.release()
        h = _handle(root, backend)
        try:
            for n in NAMES:
                v = h.localdb.versions[n]
                _expected(root, n, v)
                assert h.localdb.stored_versions(n) == [v]
            assert not h.localdb.check()
        finally:
            h.release()
        shutil.rmtree(root)
    # The kills must have landed inside commits, not only before or after them.
    assert outcomes["journal"] > 0, outcomes
