"""A caller's messages cost the daemon's event loop only what its user's share allows,
decoding included. dbus-fast decodes a whole message before any handler sees it, and the
bus lets through up to 32 MiB: 30 MiB of empty arrays (``aas``) took the loop seconds and
the daemon some 600 MiB each, and pipelined ones took it past 2 GB. Now the bus relay
reads each message's header first: a caller's message over ``message_bytes`` is refused
there, and the others are charged by size to their user's share (Ledger), so a user in
debt gets only small messages through. Refused calls are answered LimitExceeded by the
relay without the daemon reading them."""

from __future__ import annotations

import concurrent.futures

from dbus_fast import Message, MessageType

from alpmd.dbus.limits import LIMITS
from alpmd.dbus.query import PATHS_LENGTH
from tests.security import rawbus
from tests.security.secworld import World, as_user

LIMIT_EXCEEDED = "org.alpm.Error.LimitExceeded"
HUGE = 30 << 20            # (the bus's own limit: 32 MiB)
NEAR = LIMITS.message_bytes - 4096
#: what the daemon's peak memory (VmHWM) may grow by under the flood below: the daemon
#: decodes one message at a time, at most ``message_bytes`` (about 24 bytes of Python
#: objects per byte of nested empty arrays: 100 MiB), and new callers' messages held,
#: decoded, until their uid is known are within ``unknown_burst``'s worth (one at the cap);
#: with room for the allocator's slack. (Before: 6 × 30 MiB took it past 2 GB.)
GROWTH = 400 << 20


def _hwm(w: World) -> int:
    """The daemon's peak resident memory so far (bytes)."""
    with open(f"/proc/{w.proc.pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _call(serial: int, body: bytes, sig: str, member: str = "Owns") -> bytes:
    return rawbus.message(serial, body, sig=sig, destination="org.alpm",
                          interface="org.alpm.Query1", member=member)


def _flood(address: str, huge: int, near: int) -> list[list[str]]:
    """``huge`` calls of 30 MiB of empty arrays, then ``near`` of just under the cap, all
    sent before any answer is read; the error names answered to each (in order; "" for a
    return)."""
    client = rawbus.RawClient(address)
    try:
        out: list[list[str]] = []
        serial = 10
        for count, size in ((huge, HUGE), (near, NEAR)):
            data = _call(0, rawbus.aas(size), "aas")
            serials = list(range(serial, serial + count))
            serial += count
            for n in serials:
                client.send(rawbus.reserial(data, n))
            got = client.replies(set(serials))
            out.append([got[n].error_name or "" for n in serials])
        return out
    finally:
        client.close()


def test_huge_and_nested_messages_do_not_stall_nor_grow_the_daemon(world: World) -> None:
    """An unprivileged client pipelines 6 calls of 30 MiB of nested empty arrays and 24 of
    just under the cap. Before: the daemon decoded each (seconds of the loop apiece, a
    root client's probe waiting behind them) and its peak memory grew by gigabytes. Now
    the 30 MiB ones never reach it, of the others only what the user's share pays for
    does (the rest are refused by the relay), every call is answered, a root client is
    answered meanwhile, and the peak memory grows by less than GROWTH."""
    before = _hwm(world)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(as_user, world.user, lambda: _flood(world.env.address, 6, 24))
        probes = 0
        while not fut.done():
            world.probe()
            probes += 1
        huge, near = fut.result()
    assert probes
    assert huge == [LIMIT_EXCEEDED] * 6, huge
    # the ones admitted reached the daemon (no Owns takes an aas); the rest
    # were refused as over the user's share
    assert set(near) <= {LIMIT_EXCEEDED, "org.freedesktop.DBus.Error.UnknownMethod"}, set(near)
    assert LIMIT_EXCEEDED in near, near
    assert near[0] != LIMIT_EXCEEDED, "a first message under the cap was refused"
    grown = _hwm(world) - before
    assert grown < GROWTH, f"the daemon's peak memory grew by {grown >> 20} MiB"
    world.healthy()


def _largest(address: str) -> list[str]:
    """On a new connection: Owns with PATHS_LENGTH characters of paths (10,000 of them),
    Install with the most targets the limits allow, then a message one byte over
    the cap; each answer's error name ("" for a return)."""
    import asyncio

    from alpmd.dbus.bus import connect

    paths = ["/usr/share/" + "p" * (PATHS_LENGTH // 10_000 - 12) + f"{i:0>1}"[-1:]
             for i in range(10_000)]
    assert sum(map(len, paths)) <= PATHS_LENGTH
    per = LIMITS.targets_length // LIMITS.targets
    targets = [f"t{i}".ljust(per, "x") for i in range(LIMITS.targets)]

    async def go() -> list[str]:
        bus = await connect(address)
        try:
            out = []
            for iface, member, sig, body in (
                    ("org.alpm.Query1", "Owns", "as", [paths]),
                    ("org.alpm.Manager1", "Install", "asa{sv}", [targets, {}])):
                reply = await bus.call(Message(destination="org.alpm", path="/org/alpm",
                                               interface=iface, member=member,
                                               signature=sig, body=body))
                out.append(reply.error_name or "" if reply.message_type is MessageType.ERROR
                           else "")
            return out
        finally:
            bus.disconnect()
    out = asyncio.run(asyncio.wait_for(go(), 300))
    client = rawbus.RawClient(address)
    try:
        head = len(_call(7, b"", "ay"))
        over = _call(7, rawbus.ay(LIMITS.message_bytes + 1 - head), "ay")
        assert len(over) == LIMITS.message_bytes + 1
        client.send(over)
        out.append(client.replies({7})[7].error_name or "")
    finally:
        client.close()
    return out


def test_the_largest_legitimate_calls_still_pass(world: World) -> None:
    """Owns with 1 Mi characters of paths and Install with 10,000 targets of 1 Mi
    characters in all (about 1.1 MiB each on the wire) are answered as before, from a new
    connection (its first call is charged to the callers not known yet); a message one
    byte over the cap is not read."""
    owns, install, over = as_user(world.user, lambda: _largest(world.env.address))
    assert (owns, install) == ("", ""), (owns, install)
    assert over == LIMIT_EXCEEDED
    world.healthy()
