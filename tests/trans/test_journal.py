"""The journal's promise with batched flushes: exact after a kill, conservative after a reboot.

A commit announces its steps in one flushed ``plan`` and then writes ``start``
and ``done`` without flushing; a ``synced`` line follows each ``syncfs`` of a
batch. Read in the boot that wrote it, the journal names the steps started and
not finished; read after a reboot (another boot id), every step not finished
before the last ``synced`` line. And a real ``alpm -U`` of many packages makes
a handful of flushes, not several per package (``test_ended_journal.py``: the last one
is left to a detached settler).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.journal import Journal, boot_id, journal_path, read_journal
from alpmd.engine.trans import SYNC_SECONDS
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package

ROOT = Path(__file__).resolve().parents[2]


def _journal(dbpath: Path) -> Journal:
    """Five steps: 1-2 finished and synced, 3 finished after the sync, 4 started, 5 not."""
    j = Journal(str(dbpath), durable=False)
    j.begin()
    seqs = [j.plan("add", f"p{i}", new="1.0-1", file=f"/pkgs/p{i}.pkg.tar.zst")
            for i in range(1, 6)]
    j.flush()
    for seq in seqs[:2]:
        j.start(seq)
        j.done(seq)
    j.checkpoint(seqs[1], [str(dbpath)])
    j.start(seqs[2])
    j.done(seqs[2])
    j.start(seqs[3])
    j.close()  # killed here: the journal stays
    return j


def _reboot(dbpath: Path) -> None:
    """Rewrite the journal as if another boot had written it (its first line names the boot)."""
    path = Path(journal_path(str(dbpath)))
    lines = path.read_text().splitlines()
    begin = json.loads(lines[0])
    assert begin["t"] == "begin" and begin["boot"] == boot_id()
    begin["boot"] = "00000000-0000-0000-0000-000000000000"
    path.write_text("\n".join([json.dumps(begin), *lines[1:]]) + "\n")


def test_same_boot_pending_is_the_started_unfinished_step(tmp_path: Path) -> None:
    assert boot_id()
    _journal(tmp_path)
    state = read_journal(str(tmp_path))
    assert state is not None and state.boot == boot_id()
    assert [s.name for s in state.steps] == ["p1", "p2", "p3", "p4", "p5"]
    assert [s.name for s in state.pending] == ["p4"]
    assert state.synced == 2
    assert not state.steps[4].started and state.steps[4].file == "/pkgs/p5.pkg.tar.zst"


def test_after_a_reboot_every_unsynced_step_is_pending(tmp_path: Path) -> None:
    _journal(tmp_path)
    _reboot(tmp_path)
    state = read_journal(str(tmp_path))
    assert state is not None and state.boot != boot_id()
    # p3 finished after the last flush of the file systems: its effects may be lost
    assert [s.name for s in state.pending] == ["p3", "p4", "p5"]


def test_a_commit_that_stops_drops_its_unstarted_steps(tmp_path: Path) -> None:
    """A clean failure in step 2 of 3: even after a reboot, repair finishes step 2 only
    (not the step the commit never began)."""
    j = Journal(str(tmp_path), durable=False)
    j.begin()
    seqs = [j.plan("add", f"p{i}", new="1.0-1") for i in range(1, 4)]
    j.flush()
    j.start(seqs[0])
    j.done(seqs[0])
    j.start(seqs[1])
    j.abandon([str(tmp_path)])
    j.close()
    state = read_journal(str(tmp_path))
    assert state is not None and [s.name for s in state.steps] == ["p1", "p2"]
    assert [s.name for s in state.pending] == ["p2"]
    _reboot(tmp_path)
    state = read_journal(str(tmp_path))
    assert state is not None and [s.name for s in state.pending] == ["p2"]


def test_a_journal_without_boot_reads_as_before(tmp_path: Path) -> None:
    """Journals of older versions (an ``intent`` line per step, no boot) keep their meaning."""
    path = Path(journal_path(str(tmp_path)))
    path.write_text("\n".join(json.dumps(r) for r in [
        {"t": "begin", "pid": 1, "time": 0, "flags": 0},
        {"t": "intent", "n": 1, "action": "add", "name": "a", "new": "1.0-1"},
        {"t": "done", "n": 1},
        {"t": "intent", "n": 2, "action": "remove", "name": "b", "old": "1.0-1"},
    ]) + "\n")
    state = read_journal(str(tmp_path))
    assert state is not None and state.boot is None
    assert [s.name for s in state.pending] == ["b"]


def _syscalls(argv: list[str]) -> tuple[dict[str, int], float]:
    """``strace -c -f`` counts of a run (its detached settler included) and how long it took."""
    with tempfile.NamedTemporaryFile(prefix="alpmd-strace-") as out:
        t0 = time.monotonic()
        done = subprocess.run(["strace", "-f", "-c", "-o", out.name, *argv], cwd=ROOT,
                              capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C"})
        took = time.monotonic() - t0
        assert done.returncode == 0, done.stdout + done.stderr
        counts: dict[str, int] = {}
        for line in Path(out.name).read_text().splitlines():
            cols = line.split()
            if len(cols) >= 5 and cols[0][0].isdigit() and cols[3].isdigit():
                counts[cols[-1]] = int(cols[3])
        return counts, took


def test_a_commit_flushes_by_time_not_per_package(tmp_path: Path) -> None:
    assert shutil.which("strace"), "strace is needed (Makefile APT_PACKAGES)"
    count = 40
    pkgs = [build_package(tmp_path / "pkgs", PkgMeta(f"b{i:02d}", "1.0-1"),
                          [FileSpec(f"usr/share/b{i:02d}/f{j}", b"x" * 100) for j in range(5)])
            for i in range(count)]
    root = PacmanRoot(tmp_path / "root")
    counts, took = _syscalls([sys.executable, "-m", "alpmd.cli.alpm", "-U", "--noconfirm",
                              *root.args(), *map(str, pkgs)])
    installed = sorted(p.name for p in (root.dbpath / "local").iterdir() if p.is_dir())
    assert installed == [f"b{i:02d}-1.0-1" for i in range(count)]
    # strace followed the detached settler to its end: it deleted the journal
    assert not os.path.exists(journal_path(str(root.dbpath)))
    flushes = counts.get("fsync", 0) + counts.get("fdatasync", 0)
    # the journal's directory entry and its plan; the settler's synced line and deletion
    # (+ the new database's version file)
    assert flushes <= 6, counts
    # the settler's syncfs, and one per SYNC_SECONDS of a long commit, per file system
    assert 1 <= counts.get("syncfs", 0) <= 2 * (took // SYNC_SECONDS + 1), counts
