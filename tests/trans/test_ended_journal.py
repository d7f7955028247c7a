"""An ended journal whose last flush is not done: harmless in its boot, redone after a reboot.

A commit ends its journal (an unflushed ``end`` line) and hands the last flush and
the deletion to a settler that outlives it (``alpm``: a detached process; the
daemon: a thread). A settler killed before it finished leaves the journal: in the
same boot the next commit or repair flushes the file systems and deletes it, after
a reboot the steps no ``synced`` line covers are redone from their package files.
Whoever deletes a journal holds its lock, so a settler never deletes a newer one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from alpmd.engine.db.stores import Store
from alpmd.engine.events import TransFlag
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle
from alpmd.engine.journal import (
    FinalFlush,
    Journal,
    boot_id,
    journal_path,
    read_journal,
    settle_finished,
    wait_settled,
)
from alpmd.engine.trans import Transaction
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.trans.harness import alpm_inprocess
from tests.trans.test_journal import _reboot

ROOT = Path(__file__).resolve().parents[2]


def _pkg(tmp_path: Path, name: str) -> Path:
    files = [FileSpec(f"usr/share/{name}/f{i}", f"{name} {i}\n".encode()) for i in range(3)]
    return build_package(tmp_path / "pkgs", PkgMeta(name, "1.0-1"), files)


def _handle(root: Path, store: Store) -> Handle:
    return Handle(root=str(root), cachedirs=[str(root / "cache")], use_snapshots=False,
                  backend=store)


def _install(root: Path, pkg: Path, store: Store, how: FinalFlush = FinalFlush.WAIT) -> None:
    h = _handle(root, store)
    try:
        with Transaction(h, TransFlag.NONE) as t:
            t.final_flush = how
            t.add_file(str(pkg))
            t.prepare()
            t.commit()
    finally:
        h.release()


def _killed_settler(root: Path, pkg: Path, *, flush_failed: bool = False) -> None:
    """The journal a commit of ``pkg`` leaves when its settler is killed before its flush
    (``flush_failed``: when its flush failed): the step done, ``end`` written, no
    ``synced`` line, nobody holding its lock."""
    dbpath = str(root / "var/lib/pacman")
    j = Journal(dbpath)
    j.begin()
    seq = j.plan("add", "foo", new="1.0-1", file=str(pkg))
    j.flush()
    j.start(seq)
    j.done(seq)
    ended = j.end([str(root), dbpath])
    assert ended is not None
    if flush_failed:
        ended.flush_failed()  # what Ended.settle does when sync_filesystems raised
    os.close(ended.fd)  # killed: the open file and its lock go with the process


def test_same_boot_the_next_commit_settles_an_ended_journal(tmp_path: Path,
                                                            backend: Store) -> None:
    root = tmp_path / "root"
    (root / "var/lib/pacman").mkdir(parents=True)
    foo, bar = _pkg(tmp_path, "foo"), _pkg(tmp_path, "bar")
    _install(root, foo, backend)
    _killed_settler(root, foo)
    dbpath = str(root / "var/lib/pacman")
    state = read_journal(dbpath)
    assert state is not None and state.ended and state.boot == boot_id()
    assert state.synced == 0 and state.pending == [] and state.finished
    h = _handle(root, backend)
    try:  # reading it (no lock) finds nothing to repair
        report = Transaction.recover(h, repair=False)
        assert report.journal is None and report.pending == [] and report.clean
    finally:
        h.release()
    assert os.path.exists(journal_path(dbpath))
    _install(root, bar, backend)  # proceeds (no "repair it first") and deletes it
    assert not os.path.exists(journal_path(dbpath))
    h = _handle(root, backend)
    try:
        assert h.localdb.versions == {"foo": "1.0-1", "bar": "1.0-1"}
    finally:
        h.release()


def test_commits_in_a_row_with_a_settling_thread(tmp_path: Path, backend: Store) -> None:
    """The daemon's way: each commit leaves its last flush to a thread; the next one waits
    for it if it must (the journal's lock), never stops on it."""
    root = tmp_path / "root"
    (root / "var/lib/pacman").mkdir(parents=True)
    dbpath = str(root / "var/lib/pacman")
    names = [f"t{i}" for i in range(4)]
    for name in names:
        _install(root, _pkg(tmp_path, name), backend, FinalFlush.THREAD)
    wait_settled(dbpath)
    assert not os.path.exists(journal_path(dbpath))
    h = _handle(root, backend)
    try:
        assert h.localdb.versions == dict.fromkeys(names, "1.0-1")
    finally:
        h.release()


def _redone_by_repair(root: Path, backend: Store) -> None:
    """Repair installs foo again from its package file, and the journal goes."""
    h = _handle(root, backend)
    try:
        report = Transaction.recover(h)
        assert report.repaired and not report.unresolved, report
        assert h.localdb.versions == {"foo": "1.0-1"}
    finally:
        h.release()
    assert (root / "usr/share/foo/f2").read_text() == "foo 2\n"
    assert not os.path.exists(journal_path(str(root / "var/lib/pacman")))


def test_repair_settles_an_ended_journal_and_finds_nothing_to_repair(tmp_path: Path) -> None:
    root = PacmanRoot(tmp_path / "root")
    foo = _pkg(tmp_path, "foo")
    code, _, err = alpm_inprocess(["-U", "--noconfirm", *root.args(), str(foo)])
    assert code == 0, err
    wait_settled(str(root.dbpath))
    _killed_settler(root.root, foo)
    code, out, err = alpm_inprocess(["--repair", *root.args()])
    assert code == 0, err
    assert "nothing to repair" in out, out
    assert not os.path.exists(journal_path(str(root.dbpath)))


def test_after_a_reboot_the_unflushed_steps_of_an_ended_journal_are_redone(
        tmp_path: Path, backend: Store) -> None:
    """The power cut lost what the commit wrote (no entry, no files): repair installs it
    again from the package file the journal names."""
    root = tmp_path / "root"
    (root / "var/lib/pacman").mkdir(parents=True)
    foo = _pkg(tmp_path, "foo")
    _killed_settler(root, foo)
    dbpath = str(root / "var/lib/pacman")
    _reboot(Path(dbpath))
    state = read_journal(dbpath)
    assert state is not None and state.ended and not state.finished
    assert [s.name for s in state.pending] == ["foo"]
    _redone_by_repair(root, backend)


def test_a_settler_never_deletes_a_newer_journal(tmp_path: Path) -> None:
    dbpath = str(tmp_path)
    j = Journal(dbpath, durable=False)
    j.begin()
    ended = j.end([dbpath])
    assert ended is not None
    # What a settler sees if the journal it holds was replaced under the same name.
    os.unlink(journal_path(dbpath))
    newer = Journal(dbpath, durable=False)
    newer.begin()
    newer.plan("add", "bar", new="1.0-1")
    newer.flush()
    ended.settle()
    state = read_journal(dbpath)
    assert state is not None and [s.name for s in state.steps] == ["bar"]
    newer.close()


def test_a_discard_waits_for_the_settler(tmp_path: Path) -> None:
    """The next commit (database lock held) settles an ended journal only once its settler
    let go of it: then there is nothing left for the settler to delete by mistake."""
    dbpath = str(tmp_path)
    j = Journal(dbpath, durable=False)
    j.begin()
    seq = j.plan("add", "foo", new="1.0-1")
    j.start(seq)
    j.done(seq)
    ended = j.end([dbpath])
    assert ended is not None
    left: list[object] = []
    waiter = threading.Thread(target=lambda: left.append(
        settle_finished(dbpath, [dbpath], durable=False)))
    waiter.start()
    assert os.path.exists(journal_path(dbpath))
    ended.settle()  # the settler finishes while the other waits for the lock
    waiter.join(60)
    assert not waiter.is_alive() and left == [None]
    assert not os.path.exists(journal_path(dbpath))


def test_alpm_U_leaves_the_last_flush_to_a_detached_process(tmp_path: Path) -> None:
    """``alpm -U`` with its output to pipes returns (bounded wait); the flush and the
    journal's deletion are done by a process of its own session whose standard streams
    are /dev/null, and the journal is gone once it let go."""
    assert shutil.which("strace"), "strace is needed (Makefile APT_PACKAGES)"
    pkgs = [_pkg(tmp_path, f"p{i}") for i in range(4)]
    root = PacmanRoot(tmp_path / "root")
    with tempfile.NamedTemporaryFile(prefix="alpmd-strace-") as log:
        done = subprocess.run(
            ["strace", "-f", "-o", log.name, "-e", "trace=execve,setsid,dup2,syncfs,unlink,unlinkat",
             sys.executable, "-m", "alpmd.cli.alpm", "-U", "--noconfirm", *root.args(),
             *map(str, pkgs)], cwd=ROOT, capture_output=True, text=True, timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C"})
        assert done.returncode == 0, done.stdout + done.stderr
        calls: dict[int, list[str]] = {}
        for line in Path(log.name).read_text().splitlines():
            m = re.match(r"(\d+) +(\w+)\((.*)", line)
            if m:
                calls.setdefault(int(m.group(1)), []).append(f"{m.group(2)}({m.group(3)}")
    wait_settled(str(root.dbpath))
    assert not os.path.exists(journal_path(str(root.dbpath)))
    assert sorted(p.name for p in (root.dbpath / "local").iterdir() if p.is_dir()) == \
        [f"p{i}-1.0-1" for i in range(4)]
    main = next(iter(calls))  # the first process traced (its execve) is the command
    assert not any(c.startswith("syncfs") for c in calls[main]), calls[main]
    settlers = [pid for pid, cs in calls.items() if any(c.startswith("syncfs") for c in cs)]
    assert len(settlers) == 1, calls
    mine = calls[settlers[0]]
    # stdout and stderr point to /dev/null before the flush; it deletes the journal
    assert any(c.startswith("dup2(") and ", 1)" in c for c in mine), mine
    assert any(c.startswith("dup2(") and ", 2)" in c for c in mine), mine
    assert any("alpmd-journal" in c for c in mine if c.startswith("unlink")), mine
    assert any(c.startswith("setsid") for cs in calls.values() for c in cs), calls


def test_after_a_failed_flush_the_steps_are_redone_in_the_same_boot(
        tmp_path: Path, backend: Store) -> None:
    """The settler's syncfs failed (a write-back error): it says so in the journal. A later
    flush would not report that error again (the kernel tells it once per open file), so
    the next commit must not just flush and delete the journal: the steps no ``synced``
    line covers are redone from their package files, in this very boot."""
    root = tmp_path / "root"
    dbpath = str(root / "var/lib/pacman")
    (root / "var/lib/pacman").mkdir(parents=True)
    _killed_settler(root, _pkg(tmp_path, "foo"), flush_failed=True)
    state = read_journal(dbpath)
    assert state is not None and state.ended and state.flush_failed
    assert state.boot == boot_id() and not state.finished
    assert [s.name for s in state.pending] == ["foo"]
    assert settle_finished(dbpath, [str(root), dbpath]) is not None  # kept for repair
    assert os.path.exists(journal_path(dbpath))
    _redone_by_repair(root, backend)
