"""Descriptors a client sends of files the daemon keeps open are kept (parked) only while
closing them could cost the daemon its SQLite locks: they must not pile up without bound.
(An unprivileged flood of descriptors of a file the daemon never lets go of would fill its
descriptor table: then it opens nothing, its store included.)"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpmd.dbus import fds
from tests.security.secworld import World, build_world
from tests.security.test_security_sqlite_locks import RESOLVE, _locks, _sqlite_store

POKE = {"signal": True, "iface": "org.alpm.Manager1", "member": "Poke"}
ROUNDS = 6
BATCH = 40  # messages of 8 descriptors each round: 320, five times fds.PARK_LIMIT


@pytest.fixture
def sqlite_world(user: str) -> Iterator[World]:
    """The root in a directory every user may enter (as /var/lib/pacman is)."""
    where = Path(tempfile.mkdtemp(prefix="alpmd-sqlite-"))
    where.chmod(0o755)
    try:
        yield from build_world(where, user, prepare=_sqlite_store)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_descriptors_of_the_daemon_log_do_not_pile_up(sqlite_world: World) -> None:
    """The daemon's standard error (here a world-readable log file, as with any service
    manager that appends its output to a file) is written for its whole life and never
    locked: a client's descriptors of it are closed at once, round after round."""
    w = sqlite_world
    assert "error" not in w.hostile([RESOLVE])[0]
    err = Path(os.readlink(f"/proc/{w.proc.pid}/fd/2"))
    # the scenario: the daemon writes a regular file every user may open
    assert err == w.log and stat.S_ISREG(os.stat(err).st_mode)
    assert os.stat(err).st_mode & 0o004
    before = w.fd_count()
    for _ in range(ROUNDS):
        sent = w.hostile([{**POKE, "fds": [{"open": str(err)}] * 8}] * BATCH + [RESOLVE])
        assert sent[:-1] == [{"sent": True}] * BATCH and "error" not in sent[-1], sent[-3:]
        # (the answer came after every signal was taken in: none of them is kept)
        assert w.fd_count() < before + fds.PARK_LIMIT, (before, w.fd_count())
    w.healthy()


def test_descriptors_of_the_store_still_keep_its_locks(sqlite_world: World) -> None:
    """The same flood of descriptors of the store's ``-shm`` (read and written by SQLite,
    locked): the daemon's locks stay, and the kept descriptors are let go of in bounds."""
    w = sqlite_world
    shm = Path(f"{w.root.root.dbpath / 'local.sqlite'}-shm")
    assert "error" not in w.hostile([RESOLVE])[0]
    locks = _locks(w.proc.pid, shm)
    assert locks
    for _ in range(2):
        sent = w.hostile([{**POKE, "fds": [{"open": str(shm)}] * 8}] * BATCH + [RESOLVE])
        assert "error" not in sent[-1], sent[-1]
        assert _locks(w.proc.pid, shm), "the daemon lost its locks on its store"
    w.healthy()
