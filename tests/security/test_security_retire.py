"""A query handle replaced by a reload while workers still read it is released once the
last of them is done — however many there were. (A handle never released keeps its
tables and its store's descriptors for the daemon's whole life: each reload during two
slow searches, which any user may keep running, would leak one.)"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import select
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dbus_fast import Message
from dbus_fast.aio import MessageBus

from tests.dbus.dbus_e2e import Pkg
from tests.security.secworld import INSTALLED, World, as_user, manager_property, sqlite_worlds
from tests.security.test_security_sqlite_locks import LONG, RESOLVE, SLOW

DEADLINE = 6  # seconds each slow search runs (the daemon's search deadline)


@pytest.fixture
def slow_world(user: str) -> Iterator[World]:
    yield from sqlite_worlds(user, installed=[*INSTALLED, Pkg(LONG)],
                             daemon_args=("--limit", f"search_deadline={DEADLINE}"))


def _store_fds(w: World, *, own: bool = False) -> int:
    """The daemon's descriptors of its local store's main file; ``own``: only those open
    for writing too, as its SQLite connections open it (not a read-only one a client sent,
    in passing)."""
    store = str(w.root.root.dbpath / "local.sqlite")
    out = 0
    for name in os.listdir(f"/proc/{w.proc.pid}/fd"):
        try:
            if os.readlink(f"/proc/{w.proc.pid}/fd/{name}") != store:
                continue
            with open(f"/proc/{w.proc.pid}/fdinfo/{name}", encoding="ascii") as fh:
                flags = int(next(ln for ln in fh if ln.startswith("flags:")).split()[1], 8)
        except OSError:
            continue
        out += not own or flags & os.O_ACCMODE == os.O_RDWR
    return out


def _two_slow_searches(address: str, started: int) -> list[Any]:
    """As the unprivileged user: two slow searches (the client's whole share of workers),
    ``started`` told once a third is refused (both run); their answers."""
    async def go() -> list[Any]:
        bus = await MessageBus(bus_address=address).connect()

        async def search() -> list[Any]:
            reply = await bus.call(Message(destination="org.alpm", path="/org/alpm",
                                           interface="org.alpm.Query1", member="Search",
                                           signature="asa{sv}", body=SLOW))
            return [reply.error_name, reply.body]
        calls = [asyncio.ensure_future(search()) for _ in range(3)]
        done, slow = await asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED)
        assert [d.result()[0] for d in done] == ["org.alpm.Error.LimitExceeded"], done
        await asyncio.sleep(0.5)  # (their threads take the query handle)
        os.write(started, b"started")
        got = await asyncio.gather(*slow)
        bus.disconnect()
        return got
    return asyncio.run(asyncio.wait_for(go(), 60))


def test_a_handle_replaced_under_two_workers_is_released(slow_world: World) -> None:
    w = slow_world
    assert "error" not in w.hostile([RESOLVE])[0]
    assert _store_fds(w) == 1
    r, wr = os.pipe()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(as_user, w.user,
                              lambda: _two_slow_searches(w.env.address, wr))
            while not select.select([r], [], [], 1)[0]:
                assert not fut.done(), fut.result()
            assert os.read(r, 16) == b"started"
            # the repositories' directory moves: the daemon reloads, replacing the query
            # handle both searches are reading
            os.utime(w.root.root.dbpath / "sync")
            deadline = time.monotonic() + 60
            while _store_fds(w) < 2:  # the new handle opened its store beside the old one
                assert time.monotonic() < deadline, "the daemon never reloaded"
                time.sleep(0.05)
            got = fut.result()
    finally:
        os.close(r)
        os.close(wr)
    assert [g[0] for g in got] == ["org.alpm.Error.Timeout"] * 2, got
    # both searches are over: the old handle is released. (SQLite does not close the
    # descriptor of a file one connection closes while another has it open — that would
    # drop the other's locks — but keeps it, and a connection opened next takes it over.)
    # A second reload opens a third handle's store and releases the second's: released,
    # the first left one descriptor that the third takes over (two in all); never
    # released, it keeps its own beside the third's and the second's kept one (three).
    generation = int(manager_property(w, "Generation"))
    os.utime(w.root.root.dbpath / "sync", (time.time() + 5, time.time() + 5))
    deadline = time.monotonic() + 30  # (a hang guard: reloading and releasing are threads)
    while not (int(manager_property(w, "Generation")) > generation
               and _store_fds(w, own=True) == 2):
        assert time.monotonic() < deadline, (
            f"{_store_fds(w, own=True)} connections' descriptors of the store")
        time.sleep(0.05)
    assert "error" not in w.hostile([RESOLVE])[0]
    w.healthy()
