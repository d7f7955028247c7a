"""The heavy-call pool: users together never hold every slot. Two users' slow calls (a
Check with checksums may run for up to 10 minutes) used to take all four, and root's
Simulate was refused until they ended (attack round 5)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from dbus_fast.errors import DBusError

from alpmd.dbus import errors
from alpmd.dbus.limits import LIMITS, Workers

UIDS = {":1.1": 1000, ":1.2": 1000, ":1.3": 1001, ":1.4": 1001, ":1.5": 1002,
        ":1.9": 0, "": 0}


async def _uid(client: str) -> int:
    return UIDS[client]


def test_users_leave_root_its_own_slots() -> None:
    async def go() -> None:
        workers = Workers(LIMITS, _uid)
        release = threading.Event()

        def slow() -> str:
            release.wait(60)
            return "slow"
        try:
            users = [asyncio.ensure_future(workers.run(c, 60, slow, "a check"))
                     for c in (":1.1", ":1.2", ":1.3", ":1.4")]
            await asyncio.sleep(0.1)
            assert workers.users == LIMITS.heavy_total == 4
            # a third user is refused: users together have their four
            with pytest.raises(DBusError) as got:
                await workers.run(":1.5", 60, lambda: "x", "a check")
            assert got.value.type == errors.LIMIT_EXCEEDED
            assert "users' heavy calls" in str(got.value)
            # root (a client, and the daemon's own work) still runs at once
            assert await workers.run(":1.9", 60, lambda: "root's", "a simulation") == "root's"
            assert await workers.run("", 60, lambda: "ours", "the update list") == "ours"
            # root's own slots are bounded too
            roots = [asyncio.ensure_future(workers.run(c, 60, slow, "a simulation"))
                     for c in (":1.9", "")]
            await asyncio.sleep(0.1)
            with pytest.raises(DBusError) as got:
                await workers.run(":1.9", 60, lambda: "x", "a simulation")
            assert got.value.type == errors.LIMIT_EXCEEDED
            release.set()
            assert await asyncio.gather(*users, *roots) == ["slow"] * 6
            assert workers.users == workers.total == 0
        finally:
            release.set()
            workers.pool.shutdown(wait=True)
    asyncio.run(asyncio.wait_for(go(), 120))
