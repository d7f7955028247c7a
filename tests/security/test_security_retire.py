"""A query handle replaced by a reload while workers still read it is released once the
last of them is done — however many there were. (A handle never released keeps its
tables and its store's descriptors for the daemon's whole life: each reload during two
slow searches, which any user may keep running, would leak one.)"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import select
import time
from collections.abc import Iterator
from typing import Any

import pytest
from dbus_fast import Message
from dbus_fast.aio import MessageBus

from tests.dbus.dbus_e2e import Pkg
from tests.security.secworld import INSTALLED, World, as_user, sqlite_worlds
from tests.security.test_security_sqlite_locks import LONG, RESOLVE, SLOW

DEADLINE = 6  # seconds each slow search runs (the daemon's search deadline)


@pytest.fixture
def slow_world(user: str) -> Iterator[World]:
    yield from sqlite_worlds(user, installed=[*INSTALLED, Pkg(LONG)],
                             daemon_args=("--limit", f"search_deadline={DEADLINE}"))


def _store_fds(w: World, suffix: str = "") -> int:
    """The daemon's descriptors of its local store's main file (``suffix``: of its -wal:
    SQLite opens one for each connection and closes it with the connection, while it may
    keep the main file's open after a close, to reuse)."""
    store = str(w.root.root.dbpath / "local.sqlite") + suffix
    out = 0
    for name in os.listdir(f"/proc/{w.proc.pid}/fd"):
        with contextlib.suppress(OSError):
            out += os.readlink(f"/proc/{w.proc.pid}/fd/{name}") == store
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
            # the new handle opened its store beside the old one (a connection each)
            while _store_fds(w) < 2 or _store_fds(w, "-wal") < 2:
                assert time.monotonic() < deadline, "the daemon never reloaded"
                time.sleep(0.05)
            got = fut.result()
    finally:
        os.close(r)
        os.close(wr)
    assert [g[0] for g in got] == ["org.alpm.Error.Timeout"] * 2, got
    # both searches are over: the old handle is released, its store connection closed
    # (a hang guard: the last worker releases it, in its thread, after its answer went)
    deadline = time.monotonic() + 30
    while _store_fds(w, "-wal") != 1:
        assert time.monotonic() < deadline, (
            f"{_store_fds(w, '-wal')} store connections open, one handle in use")
        time.sleep(0.05)
    assert "error" not in w.hostile([RESOLVE])[0]
    w.healthy()
