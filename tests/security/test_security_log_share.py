"""A transaction's log read again and again by its own client: the event loop's work is
the caller's share (attack round 5; the test failed on the daemon before its fix)."""

from __future__ import annotations

import asyncio
import concurrent.futures

from dbus_fast import Message, MessageType

from alpmd.dbus.bus import connect
from tests.security.secworld import World, as_user

#: Simulate calls made (each logs at least one warning: tool would be downgraded) and
#: log reads sent
SIMULATES = 5000
#: GetLog calls sent at once (the bus keeps at most 128 calls of one client waiting), and
#: how many times
READS = 120
ROUNDS = 4


def _fill_then_read(address: str) -> list[object]:
    """A transaction whose log has a line or more per Simulate, then ROUNDS times
    READS GetLog calls sent at once: the first answer's line count and every answer's error name ("" for a
    return)."""
    async def go() -> list[object]:
        bus = await connect(address)

        async def call(path: str, iface: str, member: str, sig: str = "",
                       body: list[object] | None = None) -> Message:
            return await bus.call(Message(destination="org.alpm", path=path, interface=iface,
                                          member=member, signature=sig, body=body or []))
        try:
            made = await call("/org/alpm", "org.alpm.Manager1", "Install", "asa{sv}",
                              [["tool"], {}])
            path = made.body[0]
            for _ in range(SIMULATES // 2):  # two at a time: the heavy calls a client may run
                done = await asyncio.gather(*(call(path, "org.alpm.Transaction1", "Simulate")
                                              for _ in range(2)))
                assert all(r.message_type is MessageType.METHOD_RETURN for r in done)
            # the Simulates may have left the user owing the loop (more so on a busy
            # machine): one read at a time until one is answered, so the rounds start
            # paid up (bounded by the deadline below)
            while True:
                first = await call(path, "org.alpm.Transaction1", "GetLog")
                if first.message_type is MessageType.METHOD_RETURN:
                    break
                assert first.error_name == "org.alpm.Error.LimitExceeded", first.body
                await asyncio.sleep(0.5)
            replies = [first]
            for _ in range(ROUNDS):
                replies += await asyncio.gather(*(call(path, "org.alpm.Transaction1", "GetLog")
                                                  for _ in range(READS)))
        finally:
            bus.disconnect()
        return [len(first.body[0]), [r.error_name or "" for r in replies]]
    return asyncio.run(asyncio.wait_for(go(), 600))


def test_pipelined_log_reads_are_the_callers_share(world: World) -> None:
    """4 x 120 GetLog of a log of 10,000 lines, sent at once by the transaction's own client.
    Before: Transaction1's calls were never refused, and GetLog's work (its own task, after
    the share's accounting) was charged to nobody: every read was answered, one after
    another, while other clients waited. Now the reads past the user's share are refused
    and the others are answered meanwhile."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(as_user, world.user, lambda: _fill_then_read(world.env.address))
        probes = 0
        while not fut.done():
            world.probe()
            probes += 1
        lines, names = fut.result()
    assert probes and lines >= SIMULATES
    assert set(names) == {"", "org.alpm.Error.LimitExceeded"}, set(names)
    world.healthy()
