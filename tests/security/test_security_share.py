"""One user's queries may take only a share of the event loop: a client may send many calls
without waiting for their answers, and the daemon answers them one after another."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from dbus_fast import Message, MessageType

from alpmd.dbus.bus import connect
from tests.security.secworld import World, as_user, named

IDS = ["tool;2.0-1;x86_64;local"] * 5_000   # one call: about 0.15 s on the event loop


def _pipelined(address: str, connections: int, calls: int) -> list[str]:
    """``calls`` GetPackages on each of ``connections``, all sent before any answer is
    read; each answer's error name ("" for a return)."""
    async def one() -> list[str]:
        bus = await connect(address)
        try:
            replies = await asyncio.gather(*(bus.call(Message(
                destination="org.alpm", path="/org/alpm", interface="org.alpm.Query1",
                member="GetPackages", signature="asas", body=[IDS, []]))
                for _ in range(calls)))
            return [r.error_name or "" if r.message_type is MessageType.ERROR else ""
                    for r in replies]
        finally:
            bus.disconnect()

    async def go() -> list[str]:
        got = await asyncio.gather(*(one() for _ in range(connections)))
        return [x for g in got for x in g]
    return asyncio.run(asyncio.wait_for(go(), 900))


def test_pipelined_queries_do_not_starve_other_clients(world: World) -> None:
    """400 GetPackages from 4 connections, sent at once. Before: the event loop answered
    them for a minute or more (three minutes with 10,000 ids each), and a root client
    waited for all of them (its probe gave up after secworld's hang bound). Now the user
    is refused once its calls took more than its share, and the others are answered
    meanwhile."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(as_user, world.user, lambda: _pipelined(world.env.address, 4, 100))
        probes = 0
        while not fut.done():
            world.probe()
            probes += 1
        got: list[str] = fut.result()
    assert probes and len(got) == 400
    assert set(got) == {"", "org.alpm.Error.LimitExceeded"}, set(got)
    world.healthy()


def test_searches_of_many_words_are_answered(world: World) -> None:
    """More than two plain words (each a pass over every package) are matched in the
    worker pool: the same rows as before, repeated words counted once."""
    def search(terms: list[str]) -> dict[str, Any]:
        return {"iface": "org.alpm.Query1", "member": "Search", "sig": "asa{sv}",
                "body": [terms, {"scope": {"v": ["s", "installed"]}}]}
    results = world.hostile([search(["tool"]), search(["tool", "e2e", "package"]),
                             search(["e"] * 64), search(["tool", "nothing-matches", "e"]),
                             search([f"x{i}" for i in range(65)])])
    assert [r[1] for r in results[0]["ok"][0]] == ["tool"]
    assert results[1] == results[0]
    assert [r[1] for r in results[2]["ok"][0]] == ["tool"]
    assert results[3] == {"ok": [[]]}
    assert named(results[4]) == "org.alpm.Error.InvalidArgs"
    world.healthy()
