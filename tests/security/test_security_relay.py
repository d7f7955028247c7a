"""Descriptors a client sends are taken in by the bus relay, in a descriptor table of its
own: one of a SQLite file the daemon opens is closed there (closing it in the daemon's
table would drop the daemon's locks on that file) and reaches the daemon as /dev/null.
Nothing is kept: however many a user sends, and whenever — a transaction holding the
store included — the daemon's descriptor table stays as it was. (Before the relay the
daemon kept such descriptors while its store was open: 1,000 messages of 8 took it from 12
descriptors to 8,012, each message then walking that table on the event loop.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

from tests.dbus.dbus_e2e import Client, v
from tests.security.secworld import World, named
from tests.security.test_security_sqlite_locks import RESOLVE, Q, _locks

POKE = {"signal": True, "iface": "org.alpm.Manager1", "member": "Poke"}
ROUNDS = 6
BATCH = 40  # messages of 8 descriptors each
#: descriptors the daemon may have beside its idle ones after a flood (none is kept: a
#: little room for a descriptor in passing, e.g. a worker's)
SLACK = 4


def _tables(w: World) -> list[int]:
    """How many descriptors each of the daemon's threads has in its table (the relay's
    own table among them)."""
    out = []
    for tid in os.listdir(f"/proc/{w.proc.pid}/task"):
        with contextlib.suppress(FileNotFoundError):
            out.append(len(os.listdir(f"/proc/{w.proc.pid}/task/{tid}/fd")))
    return out


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
        assert w.fds_within(before + SLACK) <= before + SLACK, (before, w.fd_count())
    w.healthy()


def test_descriptors_of_the_store_still_keep_its_locks(sqlite_world: World) -> None:
    """The same flood of descriptors of the store's ``-shm`` (read and written by SQLite,
    locked): the daemon's locks stay, and nothing is kept."""
    w = sqlite_world
    shm = Path(f"{w.root.root.dbpath / 'local.sqlite'}-shm")
    assert "error" not in w.hostile([RESOLVE])[0]
    locks = _locks(w.proc.pid, shm)
    assert locks
    before = w.fd_count()
    for _ in range(2):
        sent = w.hostile([{**POKE, "fds": [{"open": str(shm)}] * 8}] * BATCH + [RESOLVE])
        assert "error" not in sent[-1], sent[-1]
        assert _locks(w.proc.pid, shm) == locks, "the daemon lost its locks on its store"
        assert w.fds_within(before + SLACK) <= before + SLACK, (before, w.fd_count())
    w.healthy()


def test_a_flood_while_a_transaction_holds_the_store(sqlite_world: World) -> None:
    """An administrator's transaction waits for an answer, its handle holding the store: a
    user floods the daemon with descriptors of the store's files (signals, and calls that
    take a descriptor). The daemon's descriptor table stays as it was, its locks stay, the
    calls are refused as given no regular file, other clients' queries are answered, and the
    transaction then commits what was asked into a sound store."""
    w = sqlite_world
    store = w.root.root.dbpath / "local.sqlite"
    shm = Path(f"{store}-shm")
    assert "error" not in w.hostile([RESOLVE])[0]
    idle = w.fd_count()

    async def go() -> tuple[Any, list[Any], list[Any], list[Any]]:
        c = await Client.open(w.env.address)
        try:
            path = await c.manager("Install", "asa{sv}", ["editor"],
                                   {"no-sysupgrade": v("b", True)})
            await c.tx(path, "Run")
            q = await c.wait_signal(lambda m: m.path == path and m.member == "QuestionAsked")
            qid, _kind, _text, choices, _details = q.body
            locks = _locks(w.proc.pid, shm)
            assert locks, "the daemon holds no lock on its store (the scenario needs one)"
            running = w.fd_count()  # (the transaction's own store connection among them)
            tables = _tables(w)
            # (the relay's table: its sockets and the standard streams)
            assert min(tables) <= 8, tables
            flood = [{**POKE, "fds": [{"open": str(f)}] * 8}
                     for f in (store, shm, f"{store}-wal")] * BATCH
            flood += [{**Q, "body": [0], "fds": [{"open": str(store)}]}] * BATCH
            for _ in range(3):
                sent = await asyncio.to_thread(w.hostile, [*flood, RESOLVE])
                assert "error" not in sent[-1], sent[-1]
                # nothing kept, locks untouched, the other client answered
                assert w.fds_within(running + SLACK) <= running + SLACK, (
                    idle, running, w.fd_count())
                assert max(_tables(w)) <= max(tables) + SLACK and min(_tables(w)) <= 8
                assert _locks(w.proc.pid, shm) == locks
                refused = {r.get("text") for r in sent if "sent" not in r and "ok" not in r}
                assert refused == {"wrong-args: the descriptor is not a regular file"}, refused
                assert [named(r) for r in sent if "text" in r] == [
                    "org.alpm.Error.InvalidArgs"] * BATCH
                assert await c.query("Resolve", "asa{sv}", ["tool"], {}) == [
                    "tool;2.0-1;any;local"]
            assert await c.prop(path, "State") == "waiting-answer"
            await c.tx(path, "Answer", "uv", qid, v("u", choices.index("prov-b-1.0-1")))
            res = await c.finished(path)
            installed = await c.query("Resolve", "asa{sv}", ["editor", "prov-b"], {})
            return res, installed, choices, locks
        finally:
            c.close()
    res, installed, _choices, _locks_held = asyncio.run(asyncio.wait_for(go(), 300))
    assert res[0] == "success", res
    assert sorted(row.split(";")[0] for row in installed) == ["editor", "prov-b"], installed
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert sorted(conn.execute("SELECT name FROM pkg")) == [
            ("editor",), ("prov-b",), ("tool",)]
    assert _locks(w.proc.pid, shm), "the daemon holds no lock on its store after the commit"
    assert w.fds_within(idle + SLACK) <= idle + SLACK, (idle, w.fd_count())
    w.healthy()


def _soft_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-file limit in /proc/PID/limits")


def test_the_relay_holds_its_descriptors_out_of_the_daemons_reach(sqlite_world: World) -> None:
    """The collector may run another thread's finalizer in the relay's thread: an object of
    the daemon's left open would close its number in the relay's table. The relay keeps
    what it holds (its sockets; descriptors in passing) in the upper half of the numbers,
    where none of the daemon's (dense, from 0) is, so such a close lands on nothing."""
    w = sqlite_world
    assert "error" not in w.hostile([RESOLVE])[0]
    task = Path(f"/proc/{w.proc.pid}/task")
    relay = [t for t in task.iterdir() if (t / "comm").read_text().strip() == "alpmd-bus-relay"]
    assert len(relay) == 1, [(t / "comm").read_text() for t in task.iterdir()]
    floor = max(64, _soft_nofile(w.proc.pid) // 2)
    held = sorted(int(n) for n in os.listdir(relay[0] / "fd"))
    assert [n for n in held if n > 2], held  # (its two sockets at least)
    assert all(n <= 2 or n >= floor for n in held), (floor, held)
    daemon = sorted(int(n) for n in os.listdir(f"/proc/{w.proc.pid}/fd"))
    assert max(daemon) < floor, (floor, daemon[-5:])
    w.healthy()
