"""Descriptors a client sends of files the daemon keeps open are kept (parked) only while
closing them could cost the daemon its SQLite locks: they must not pile up without bound.
(An unprivileged flood of descriptors of a file the daemon never lets go of would fill its
descriptor table: then it opens nothing, its store included.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

from alpmd.dbus import fds
from tests.dbus.dbus_e2e import Client, v
from tests.security.secworld import World
from tests.security.test_security_sqlite_locks import RESOLVE, _locks

POKE = {"signal": True, "iface": "org.alpm.Manager1", "member": "Poke"}
ROUNDS = 6
BATCH = 40  # messages of 8 descriptors each round: 320, five times fds.PARK_LIMIT



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


def test_a_flood_while_a_transaction_holds_the_store(sqlite_world: World) -> None:
    """An administrator's transaction waits for an answer (its handle has the store open,
    so the daemon cannot let go of it): a user's descriptors of the store's files are kept
    — the daemon's locks stay — the transaction then commits what was asked, the store
    stays sound, and once it is over the kept descriptors are closed."""
    w = sqlite_world
    store = w.root.root.dbpath / "local.sqlite"
    shm = Path(f"{store}-shm")
    assert "error" not in w.hostile([RESOLVE])[0]
    before = w.fd_count()

    async def go() -> tuple[Any, list[Any], list[Any]]:
        c = await Client.open(w.env.address)
        try:
            path = await c.manager("Install", "asa{sv}", ["editor"],
                                   {"no-sysupgrade": v("b", True)})
            await c.tx(path, "Run")
            q = await c.wait_signal(lambda m: m.path == path and m.member == "QuestionAsked")
            qid, _kind, _text, choices, _details = q.body
            locks = _locks(w.proc.pid, shm)
            assert locks, "the daemon holds no lock on its store (the scenario needs one)"
            flood = [{**POKE, "fds": [{"open": str(f)}] * 8} for f in (store, shm)] * BATCH
            sent = await asyncio.to_thread(w.hostile, [*flood, RESOLVE])
            assert "error" not in sent[-1], sent[-1]
            # kept (the transaction's connection has the files open), locks untouched
            assert w.fd_count() > before + fds.PARK_LIMIT
            assert _locks(w.proc.pid, shm) == locks
            assert await c.prop(path, "State") == "waiting-answer"
            await c.tx(path, "Answer", "uv", qid, v("u", choices.index("prov-b-1.0-1")))
            res = await c.finished(path)
            installed = await c.query("Resolve", "asa{sv}", ["editor", "prov-b"], {})
            return res, installed, choices
        finally:
            c.close()
    res, installed, choices = asyncio.run(asyncio.wait_for(go(), 60))
    assert res[0] == "success", res
    assert sorted(row.split(";")[0] for row in installed) == ["editor", "prov-b"], installed
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert sorted(conn.execute("SELECT name FROM pkg")) == [
            ("editor",), ("prov-b",), ("tool",)]
    # the transaction is over: the next messages close what was kept (a hang guard)
    deadline = time.monotonic() + 30
    while w.fd_count() >= before + fds.PARK_LIMIT:
        assert time.monotonic() < deadline, (before, w.fd_count())
        assert "error" not in w.hostile([RESOLVE])[0]
        time.sleep(0.05)
    # the kept ones go while the daemon reopens its store (a moment without its locks)
    while not _locks(w.proc.pid, shm):
        assert time.monotonic() < deadline, "the daemon did not take its store back"
        time.sleep(0.05)
    w.healthy()
