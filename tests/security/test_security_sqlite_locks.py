"""A client's descriptor of a SQLite file the daemon has open must not cost the daemon its
locks on that file (closing any descriptor of a file drops all of a process's POSIX locks
on it, and SQLite locks that way; the local store is world-readable)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpmd.dbus import fds
from alpmd.engine.db.convert import convert_dbpath
from alpmd.engine.db.stores import Store
from tests.dbus.dbus_e2e import E2ERoot
from tests.security.secworld import World, build_world, named

Q = {"iface": "org.alpm.Query1", "member": "InspectFile", "sig": "h"}
M = {"iface": "org.alpm.Manager1", "member": "InstallFiles", "sig": "aha{sv}"}
RESOLVE = {"iface": "org.alpm.Query1", "member": "Resolve", "sig": "asa{sv}",
           "body": [["tool"], {}]}


def _sqlite_store(e: E2ERoot) -> None:
    convert_dbpath(str(e.root.dbpath), Store.SQLITE)
    (e.root.root / "etc" / "alpmd.conf").write_text("[options]\nBackend = sqlite\n")


@pytest.fixture
def sqlite_world(user: str) -> Iterator[World]:
    """The root in a directory every user may enter (as /var/lib/pacman is)."""
    where = Path(tempfile.mkdtemp(prefix="alpmd-sqlite-"))
    where.chmod(0o755)
    try:
        yield from build_world(where, user, prepare=_sqlite_store)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _locks(pid: int, path: Path) -> list[str]:
    """The POSIX locks ``pid`` holds on ``path`` (from /proc/locks, without the ordinal
    that other processes' locks move)."""
    st = os.stat(path)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks", encoding="ascii") as fh:
        return [line.split(":", 1)[1] for line in fh if line.split()[1] == "POSIX"
                and line.split()[4] == str(pid) and line.split()[5] == inode]


def test_descriptors_of_the_local_store_keep_the_daemon_locks(sqlite_world: World) -> None:
    w = sqlite_world
    store = w.root.root.dbpath / "local.sqlite"
    shm = Path(f"{store}-shm")
    # the daemon reads its local store: its connection holds a lock on the -shm file
    assert "error" not in w.hostile([RESOLVE])[0]
    before = _locks(w.proc.pid, shm)
    assert before, "the daemon holds no lock on its local store (the scenario needs one)"
    assert os.stat(shm).st_mode & 0o004 and os.stat(store).st_mode & 0o004  # world-readable
    fd_count = w.fd_count()
    files = [{"open": str(shm)}, {"open": str(store)}]
    calls = [{**Q, "body": [0], "fds": [f]} for f in files]          # claimed, refused
    calls += [{**M, "body": [[0, 1], {}], "fds": files}]             # claimed, refused
    calls += [{**RESOLVE, "fds": files}]                             # closed at once
    calls += [{**Q, "body": [5], "fds": files}]                      # a bad index
    results = w.hostile(calls)
    assert [named(r) for r in results[:3]] == ["org.alpm.Error.InvalidArgs"] * 2 + [
        "org.alpm.Error.NotAuthorized"], results
    assert results[3] == {"ok": [["tool;2.0-1;any;local"]]}, results[3]
    assert named(results[4]) == "org.alpm.Error.InvalidArgs", results[4]
    assert _locks(w.proc.pid, shm) == before
    assert "error" not in w.hostile([RESOLVE])[0]
    # the kept descriptors are few (at most the ones sent), not a leak per call
    assert w.fd_count() <= fd_count + 8
    w.healthy()


def test_kept_descriptors_are_bounded(sqlite_world: World) -> None:
    """Descriptors kept for their file's locks do not pile up: past a bound the daemon
    closes its idle local store (and opens it again for the next query)."""
    w = sqlite_world
    store = w.root.root.dbpath / "local.sqlite"
    shm = Path(f"{store}-shm")
    assert "error" not in w.hostile([RESOLVE])[0]
    assert _locks(w.proc.pid, shm)
    before = w.fd_count()
    sig = {"signal": True, "iface": "org.alpm.Manager1", "member": "Poke"}
    results = w.hostile([{**sig, "fds": [{"open": str(store)}] * 8}] * 40)
    assert results == [{"sent": True}] * 40, results[:3]
    assert "error" not in w.hostile([RESOLVE])[0]
    assert w.fd_count() < before + 2 * fds.PARK_LIMIT, (before, w.fd_count())
    assert _locks(w.proc.pid, shm)  # the store is open (and locked) again
    w.healthy()
