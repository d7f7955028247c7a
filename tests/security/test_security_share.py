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


def _in_debt_then_own_transaction(address: str) -> list[str]:
    """A transaction made, then 100 GetPackages pipelined (the user now owes more than its
    share), then on the transaction: SetHints, Run (each refused while in debt) and Cancel
    (never refused). The error names ("" for a return) of those three."""
    async def go() -> list[str]:
        bus = await connect(address)

        def call(path: str, iface: str, member: str, sig: str = "",
                 body: list[Any] | None = None) -> Any:
            return bus.call(Message(destination="org.alpm", path=path, interface=iface,
                                    member=member, signature=sig, body=body or []))
        try:
            made = await call("/org/alpm", "org.alpm.Manager1", "Install", "asa{sv}",
                              [["tool"], {}])
            path = made.body[0]
            flood = [call("/org/alpm", "org.alpm.Query1", "GetPackages", "asas", [IDS, []])
                     for _ in range(100)]
            own = [call(path, "org.alpm.Transaction1", "SetHints", "a{sv}", [{}]),
                   call(path, "org.alpm.Transaction1", "Run"),
                   call(path, "org.alpm.Transaction1", "Cancel")]
            replies = await asyncio.gather(*flood, *own)
            return [r.error_name or "" for r in replies[-3:]]
        finally:
            bus.disconnect()
    return asyncio.run(asyncio.wait_for(go(), 900))


def test_a_client_in_debt_may_only_answer_or_cancel(world: World) -> None:
    """Transaction1 is spared the share only where a client must end what it began
    (Answer, Cancel): its SetHints and Run wait like its other calls. Before, every
    Transaction1 method was spared, and any of them (Simulate, GetLog, SetHints) was a way
    round the share."""
    got = as_user(world.user, lambda: _in_debt_then_own_transaction(world.env.address))
    assert got == ["org.alpm.Error.LimitExceeded", "org.alpm.Error.LimitExceeded", ""], got
    world.healthy()
