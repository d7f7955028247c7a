"""Repair after a crash: journals that outlive descriptors, writers named by PID and start
time, and ``alpm --repair``.

The crash is real: a pre_install scriptlet blocks on a FIFO after the journal
announced the step and before any file of the package is written, and the test
SIGKILLs the committing process there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from alpmd.engine.events import TransFlag
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle, lock_holder
from alpmd.engine.journal import Journal, journal_path, read_journal, staging_dir
from alpmd.engine.process import ProcessId, proc_state, start_time
from alpmd.engine.trans import Transaction
from alpmd.testing.pkgbuild import FileSpec, build_package
from alpmd.testing.rootfs import shell_root
from tests.trans.harness import alpm_inprocess, minimal_conf

BLOCK = "pre_install() {\n  read x < /block\n}\n"


def _root(tmp_path: Path, *, shell: bool = False) -> Path:
    root = tmp_path / "root"
    (root / "var/lib/pacman").mkdir(parents=True)
    if shell:
        assert shell_root(root) is None
    return root


def _handle(root: Path) -> Handle:
    return Handle(root=str(root), cachedirs=[str(root / "var/cache/pacman/pkg")],
                  use_snapshots=False)


def _pkg(tmp_path: Path, name: str, version: str, *, install: str | None = None) -> Path:
    files = [FileSpec(f"usr/share/{name}/data", f"{name} {version}\n".encode())]
    return build_package(tmp_path / "pkgs" / f"{name}-{version}", PkgMeta(name, version), files,
                         install=install)


def _install(root: Path, path: Path) -> None:
    h = _handle(root)
    try:
        with Transaction(h, TransFlag.NONE) as t:
            t.add_file(str(path))
            t.prepare()
            t.commit()
    finally:
        h.release()


@pytest.mark.timeout(120)
def test_descriptor_package_survives_a_crash_and_alpm_repair_finishes_it(tmp_path: Path) -> None:
    root = _root(tmp_path, shell=True)
    pkg = _pkg(tmp_path, "foo", "1.0-1", install=BLOCK)
    os.mkfifo(root / "block")
    dbpath = str(root / "var/lib/pacman")
    pid = os.fork()
    if pid == 0:  # the committing process
        try:
            h = _handle(root)
            fd = os.open(pkg, os.O_RDONLY)
            with Transaction(h, TransFlag.NONE) as t:
                t.add_fd(fd)
                os.close(fd)
                t.prepare()
                t.commit()
        finally:
            os._exit(3)
    try:
        for _ in range(3000):  # until the step is announced (the scriptlet then blocks)
            state = read_journal(dbpath)
            if state is not None and state.pending:
                break
            time.sleep(0.01)
        time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        pid = 0
        # the scriptlet still runs, orphaned: it must not keep the dead commit's lock
        assert (root / "var/lib/pacman/db.lck").exists()
        assert lock_holder(str(root / "var/lib/pacman/db.lck")) == "stale"
    finally:
        if pid:
            _, status = os.waitpid(pid, 0)
        with contextlib.suppress(OSError):  # let the orphaned scriptlet go
            fifo = os.open(root / "block", os.O_WRONLY | os.O_NONBLOCK)
            os.write(fifo, b"\n")
            os.close(fifo)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
    state = read_journal(dbpath)
    assert state is not None and [s.name for s in state.pending] == ["foo"]
    staged = state.pending[0].file
    assert staged is not None and not staged.startswith(("/proc/", "/dev/fd/"))
    assert os.path.dirname(staged) == staging_dir(dbpath) and os.path.isfile(staged)
    assert not (root / "usr/share/foo/data").exists()  # killed before extraction

    code, out, err = alpm_inprocess(["--repair", "--root", str(root), "--config", minimal_conf(tmp_path)])
    assert code == 0, (out, err)
    assert "foo: rolled forward to 1.0-1" in out and "database repaired" in out, out
    assert (root / "usr/share/foo/data").read_text() == "foo 1.0-1\n"
    assert not os.path.exists(journal_path(dbpath))
    assert not (root / "var/lib/pacman/db.lck").exists()
    assert not os.path.exists(staged)
    h = _handle(root)
    try:
        assert h.localdb.versions == {"foo": "1.0-1"}
    finally:
        h.release()
    # the root is usable again, and a second repair finds nothing to do
    _install(root, _pkg(tmp_path, "bar", "1.0-1"))
    assert (root / "usr/share/bar/data").exists()
    code, out, _ = alpm_inprocess(["--repair", "--root", str(root), "--config", minimal_conf(tmp_path)])
    assert code == 0 and "nothing to repair" in out


def test_descriptor_package_is_read_from_the_descriptor_and_staging_is_cleaned(
        tmp_path: Path) -> None:
    root = _root(tmp_path)
    pkg = _pkg(tmp_path, "foo", "1.0-1")
    h = _handle(root)
    try:
        with Transaction(h, TransFlag.NONE) as t:
            with open(pkg, "rb") as f:
                t.add_fd(f.fileno())
            os.unlink(pkg)  # the copy is what gets installed
            t.prepare()
            t.commit()
        assert h.localdb.versions == {"foo": "1.0-1"}
    finally:
        h.release()
    assert (root / "usr/share/foo/data").exists()
    assert not os.path.exists(staging_dir(str(root / "var/lib/pacman")))


@pytest.mark.parametrize("kind", ["directory", "fifo", "o_path"])
def test_descriptor_that_is_not_a_readable_regular_file_is_refused(tmp_path: Path,
                                                                   kind: str) -> None:
    from alpmd.engine.errors import AlpmError, ErrorCode

    root = _root(tmp_path)
    pkg = _pkg(tmp_path, "foo", "1.0-1")
    if kind == "directory":
        fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    elif kind == "fifo":
        os.mkfifo(tmp_path / "fifo")
        fd = os.open(tmp_path / "fifo", os.O_RDONLY | os.O_NONBLOCK)
    else:
        fd = os.open(pkg, os.O_PATH)
    h = _handle(root)
    try:
        with Transaction(h, TransFlag.NONE) as t, pytest.raises(AlpmError) as err:
            t.add_fd(fd)
        assert err.value.code is ErrorCode.PKG_OPEN
    finally:
        os.close(fd)
        h.release()
    staging = staging_dir(str(root / "var/lib/pacman"))
    assert not os.path.exists(staging) or not os.listdir(staging)


def test_staged_copies_of_dead_processes_are_swept_by_repair(tmp_path: Path) -> None:
    root = _root(tmp_path)
    staging = Path(staging_dir(str(root / "var/lib/pacman")))
    staging.mkdir()
    pid = _zombie()
    os.waitpid(pid, 0)  # reaped: that PID's process is gone
    dead = staging / f"pkg-{pid}-{12345}-abc.pkg"
    me = ProcessId.current()
    live = staging / f"pkg-{me.pid}-{me.start}-def.pkg"
    other = staging / "notes.txt"
    for f in (dead, live, other):
        f.write_bytes(b"x")
    h = _handle(root)
    try:
        report = Transaction.recover(h)
    finally:
        h.release()
    assert not dead.exists() and live.exists() and other.exists()
    assert report.actions == ["removed 1 staged package file of dead processes"]


# -- who wrote the journal, who holds the lock ----------------------------------------------


def _pending_journal(root: Path, pkg: Path, writer: ProcessId) -> None:
    """A journal as a commit killed right after announcing ``foo`` leaves it, by ``writer``."""
    dbpath = str(root / "var/lib/pacman")
    j = Journal(dbpath, durable=False)
    j.begin(0)
    j.intent("add", "foo", new="1.0-1", file=str(pkg))
    j.close()
    path = journal_path(dbpath)
    lines = Path(path).read_text().splitlines()
    begin = json.loads(lines[0])
    begin["pid"], begin["pid_start"] = writer.pid, writer.start
    Path(path).write_text("\n".join([json.dumps(begin), *lines[1:]]) + "\n")


def test_a_live_pid_with_another_start_time_is_not_the_writer(tmp_path: Path) -> None:
    root = _root(tmp_path)
    pkg = _pkg(tmp_path, "foo", "1.0-1")
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        real = start_time(sleeper.pid)
        assert real is not None
        # the real process: its commit is still running, nothing is touched
        _pending_journal(root, pkg, ProcessId(sleeper.pid, real))
        h = _handle(root)
        try:
            report = Transaction.recover(h)
            assert report.unresolved == [f"the transaction of process {sleeper.pid} "
                                         "is still running"]
            assert "foo" not in h.localdb.versions
            # the same PID started at another time (reused): the writer is gone, repair
            os.unlink(journal_path(h.dbpath))
            _pending_journal(root, pkg, ProcessId(sleeper.pid, real + 1))
            report = Transaction.recover(h)
            assert not report.unresolved and report.repaired, report
            h.localdb.invalidate()
            assert h.localdb.versions == {"foo": "1.0-1"}
        finally:
            h.release()
    finally:
        sleeper.kill()
        sleeper.wait()


def _zombie() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    for _ in range(500):
        if proc_state(pid) == "Z":
            return pid
        time.sleep(0.01)
    raise AssertionError(f"child {pid} did not become a zombie")


def test_an_unreaped_writer_is_gone(tmp_path: Path) -> None:
    root = _root(tmp_path)
    pkg = _pkg(tmp_path, "foo", "1.0-1")
    pid = _zombie()
    try:
        _pending_journal(root, pkg, ProcessId(pid, start_time(pid)))
        h = _handle(root)
        try:
            report = Transaction.recover(h)
            assert not report.unresolved and report.repaired, report
            h.localdb.invalidate()
            assert h.localdb.versions == {"foo": "1.0-1"}
        finally:
            h.release()
    finally:
        os.waitpid(pid, 0)


def test_lock_of_a_dead_or_zombie_holder_is_stale_and_a_live_one_is_kept(tmp_path: Path) -> None:
    root = _root(tmp_path)
    h = _handle(root)
    lockfile = h.lockfile
    r, w = os.pipe()
    holder = os.fork()
    if holder == 0:  # takes the lock as pacman does and keeps it until told to die
        os.close(w)
        os.open(lockfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o000)
        os.read(r, 1)
        os._exit(0)
    os.close(r)
    try:
        for _ in range(500):
            if lock_holder(lockfile).startswith("pid "):
                break
            time.sleep(0.01)
        assert lock_holder(lockfile).startswith(f"pid {holder} ")
        report = Transaction.recover(h, remove_stale_lock=True)
        assert os.path.exists(lockfile), "a live holder's lock must never be removed"
        os.close(w)  # the holder exits; unreaped, it is a zombie
        w = -1
        for _ in range(500):
            if proc_state(holder) == "Z":
                break
            time.sleep(0.01)
        assert proc_state(holder) == "Z"
        assert lock_holder(lockfile) == "stale"
        report = Transaction.recover(h, remove_stale_lock=True)
        assert report.repaired and not os.path.exists(lockfile), report
    finally:
        if w >= 0:
            os.close(w)
        os.waitpid(holder, 0)
        h.release()


def test_a_pipe_given_by_path_is_staged_and_installed(tmp_path: Path) -> None:
    """``alpm -U <(cat pkg)``: the path names a pipe of this process; it is read once."""
    import threading

    root = _root(tmp_path)
    data = _pkg(tmp_path, "foo", "1.0-1").read_bytes()
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(data)

    feeder = threading.Thread(target=feed)
    feeder.start()
    h = _handle(root)
    try:
        with Transaction(h, TransFlag.NONE) as t:
            t.add_file(f"/dev/fd/{r}")
            t.prepare()
            t.commit()
        assert h.localdb.versions == {"foo": "1.0-1"}
    finally:
        feeder.join()
        os.close(r)
        h.release()
    assert (root / "usr/share/foo/data").read_text() == "foo 1.0-1\n"
    assert not os.path.exists(staging_dir(str(root / "var/lib/pacman")))
