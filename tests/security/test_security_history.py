"""A long history read by one user's pipelined GetHistory calls (attack round 5; the test
failed on the daemon before its fix)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.signature import Variant

from alpmd.dbus.bus import connect
from tests.dbus.dbus_e2e import E2ERoot
from tests.security.secworld import World, as_user, build_world

#: pacman.log's transactions, and the packages each upgraded (a few years of -Syu)
TRANSACTIONS = 1000
PACKAGES = 100


def _long_log(e: E2ERoot) -> None:
    """A pacman.log the daemon imports at start: TRANSACTIONS upgrades of PACKAGES each."""
    lines = []
    for t in range(TRANSACTIONS):
        when = f"[2024-01-01T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}+0000]"
        lines.append(f"{when} [PACMAN] Running 'pacman -Syu'\n")
        lines.append(f"{when} [ALPM] transaction started\n")
        lines.extend(f"{when} [ALPM] upgraded package-{p}-{t} (1.0-1 -> 2.0-1)\n"
                     for p in range(PACKAGES))
        lines.append(f"{when} [ALPM] transaction completed\n")
    e.root.logfile.parent.mkdir(parents=True, exist_ok=True)
    e.root.logfile.write_text("".join(lines))


@pytest.fixture
def history_world(tmp_path: Path, user: str) -> Iterator[World]:
    yield from build_world(tmp_path, user, prepare=_long_log)


def _pages(address: str, calls: int) -> list[list[object]]:
    """``calls`` GetHistory of 1,000 rows, all sent before any answer is read: per answer,
    its error name ("" for a return) and its rows' change counts."""
    async def go() -> list[list[object]]:
        bus = await connect(address)
        try:
            replies = await asyncio.gather(*(bus.call(Message(
                destination="org.alpm", path="/org/alpm", interface="org.alpm.Manager1",
                member="GetHistory", signature="a{sv}", body=[{"limit": Variant("u", 1000)}]))
                for _ in range(calls)))
        finally:
            bus.disconnect()
        return [[r.error_name or "", []] if r.message_type is MessageType.ERROR
                else ["", [len(row["changes"].value) for row in r.body[0]]] for r in replies]
    return asyncio.run(asyncio.wait_for(go(), 900))


def test_pipelined_history_pages_are_the_users_share(history_world: World) -> None:
    """40 GetHistory calls of 1,000 rows (each 0.7 s of reading and building) sent at once.
    Before: each was read in a thread of its own and built on the event loop, charged to
    nobody: all 40 were answered one after another and a root client waited 14 s. Now a
    page is read in the heavy-call pool: the user's calls past its share are refused and
    the others are answered meanwhile."""
    world = history_world
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(as_user, world.user, lambda: _pages(world.env.address, 40))
        probes = 0
        while not fut.done():
            world.probe()
            probes += 1
        got: list[list[object]] = fut.result()
    assert probes and len(got) == 40
    assert {name for name, _ in got} == {"", "org.alpm.Error.LimitExceeded"}, got
    # the pages answered are whole: the newest 1,000 transactions with every change
    answered = [rows for name, rows in got if name == ""]
    assert answered and all(rows == [PACKAGES] * 1000 for rows in answered)
    world.healthy()
