"""A client's descriptor of a SQLite file the daemon has open must not cost the daemon its
locks on that file (closing any descriptor of a file drops all of a process's POSIX locks
on it, and SQLite locks that way; the local store is world-readable)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import select
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from tests.dbus.dbus_e2e import Pkg
from tests.security.secworld import (
    INSTALLED,
    World,
    as_user,
    manager_property,
    named,
    send_descriptors,
    sqlite_worlds,
)

Q = {"iface": "org.alpm.Query1", "member": "InspectFile", "sig": "h"}
M = {"iface": "org.alpm.Manager1", "member": "InstallFiles", "sig": "aha{sv}"}
RESOLVE = {"iface": "org.alpm.Query1", "member": "Resolve", "sig": "asa{sv}",
           "body": [["tool"], {}]}




def _locks(pid: int, path: Path) -> list[str]:
    """The POSIX locks ``pid`` holds on ``path`` (from /proc/locks, without the ordinal
    that other processes' locks move); none when the file is gone (SQLite removes its
    ``-shm`` and ``-wal`` files when the last connection closes)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return []
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
    # (the relay closed them and sent /dev/null: refused before polkit is asked)
    assert [(named(r), r["text"]) for r in results[:3]] == [
        ("org.alpm.Error.InvalidArgs", "wrong-args: the descriptor is not a regular file")
    ] * 3, results
    assert results[3] == {"ok": [["tool;2.0-1;any;local"]]}, results[3]
    assert named(results[4]) == "org.alpm.Error.InvalidArgs", results[4]
    assert _locks(w.proc.pid, shm) == before
    assert "error" not in w.hostile([RESOLVE])[0]
    assert w.fds_within(fd_count + 2) <= fd_count + 2  # (none kept)
    w.healthy()


def test_descriptors_of_the_store_are_not_kept(sqlite_world: World) -> None:
    """Signals carrying descriptors of the store: none is kept, the locks stay as they
    were (no waiting: the daemon never has to let go of its store)."""
    w = sqlite_world
    store = w.root.root.dbpath / "local.sqlite"
    shm = Path(f"{store}-shm")
    assert "error" not in w.hostile([RESOLVE])[0]
    locks = _locks(w.proc.pid, shm)
    assert locks
    before = w.fd_count()
    sig = {"signal": True, "iface": "org.alpm.Manager1", "member": "Poke"}
    results = w.hostile([{**sig, "fds": [{"open": str(store)}] * 8}] * 40)
    assert results == [{"sent": True}] * 40, results[:3]
    assert "error" not in w.hostile([RESOLVE])[0]
    assert w.fds_within(before + 2) <= before + 2, (before, w.fd_count())
    assert _locks(w.proc.pid, shm) == locks
    w.healthy()


LONG = "a" * 48
#: a search that backtracks in every matcher: it keeps a worker busy until its deadline
SLOW = [["(a|aa)+$x"], {"scope": Variant("s", "installed")}]
#: a regular-expression search (a worker) that reads the local store (each package's reason)
EXPLICIT = [["^t.ol|^lib"], {"scope": Variant("s", "explicit")}]
FLOOD = 9  # signals of 8 descriptors


@pytest.fixture
def busy_sqlite_world(user: str) -> Iterator[World]:
    yield from sqlite_worlds(
        user, installed=[*INSTALLED, Pkg(LONG), Pkg("libone"), Pkg("libtwo")],
        daemon_args=("--limit", "search_deadline=10"))


def _flooding_client(address: str, store: str, told: int) -> dict[str, Any]:
    """As the unprivileged user: a slow search in a worker, regular searches reading the
    store beside it, and descriptors of the store sent meanwhile, twice: the second time
    with no other call after them (``told`` hears when they went)."""
    async def go() -> dict[str, Any]:
        bus = await MessageBus(bus_address=address, negotiate_unix_fd=True).connect()

        async def call(iface: str, member: str, sig: str, body: list[Any]) -> Message:
            return await bus.call(Message(destination="org.alpm", path="/org/alpm",
                                          interface=iface, member=member, signature=sig,
                                          body=body))

        def rows(reply: Message) -> Any:
            if reply.message_type is MessageType.ERROR:
                return [reply.error_name, reply.body]
            return sorted(row[1] for row in reply.body[0])

        async def flood() -> None:
            for _ in range(FLOOD):
                await send_descriptors(bus, store)
                await asyncio.sleep(0)

        async def searches() -> list[Any]:
            return [rows(await call("org.alpm.Query1", "Search", "asa{sv}", EXPLICIT))
                    for _ in range(6)]
        baseline = rows(await call("org.alpm.Query1", "Search", "asa{sv}", EXPLICIT))
        slow = asyncio.ensure_future(call("org.alpm.Query1", "Search", "asa{sv}", SLOW))
        during, _ = await asyncio.gather(searches(), flood())
        await flood()
        # a round trip: the daemon has taken every signal before this answer
        await call("org.freedesktop.DBus.Properties", "Get", "ss", ["org.alpm.Manager1",
                                                                    "State"])
        os.write(told, b"flooded")
        reply = await slow
        slow_done = time.monotonic()
        after = rows(await call("org.alpm.Query1", "Search", "asa{sv}", EXPLICIT))
        bus.disconnect()
        return {"baseline": baseline, "during": during, "after": after,
                "slow": [reply.error_name, reply.body], "slow_done": slow_done}
    return asyncio.run(asyncio.wait_for(go(), 120))


def test_store_descriptors_beside_running_queries(busy_sqlite_world: World) -> None:
    """Descriptors of the local store arrive while a slow query runs in a worker and others
    read the store: none is kept, the daemon keeps its locks and its store open (the slow
    one still running), and every query gets its full answer."""
    w = busy_sqlite_world
    store = w.root.root.dbpath / "local.sqlite"
    shm = Path(f"{store}-shm")
    assert "error" not in w.hostile([RESOLVE])[0]
    locks = _locks(w.proc.pid, shm)
    assert locks
    before = w.fd_count()
    generation = int(manager_property(w, "Generation"))
    r, wr = os.pipe()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(as_user, w.user,
                              lambda: _flooding_client(w.env.address, str(store), wr))
            assert select.select([r], [], [], 120)[0], "the client never flooded"
            assert os.read(r, 16) == b"flooded"
            # every descriptor was taken in (a round trip came after them): none is kept
            assert _locks(w.proc.pid, shm) == locks
            count = w.fd_count()
            checked = time.monotonic()
            got = fut.result()
    finally:
        os.close(r)
        os.close(wr)
    # (the slow search's worker was still running when the count was taken: a little room)
    assert count <= before + 2, (before, count)
    assert got["baseline"] == ["libone", "libtwo", "tool"], got
    assert got["during"] == [got["baseline"]] * 6 and got["after"] == got["baseline"], got
    assert got["slow"][0] == "org.alpm.Error.Timeout", got
    assert checked < got["slow_done"], "the slow query was over before the check"
    # nothing was installed: no reload, no InstalledChanged for the clients
    assert int(manager_property(w, "Generation")) == generation
    w.healthy()
