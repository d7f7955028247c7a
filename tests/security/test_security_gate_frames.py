"""The bus relay's admission on crafted byte streams: each message of the bus is held until
its header fields are read, then let through or dropped as the check says; a refused
method call is answered by the relay itself, between two of the daemon's messages; a
message's descriptors go on with it, or are closed with it, however the reads cut it."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbus_fast import DBusError, Message, MessageType
from dbus_fast._private.unmarshaller import Unmarshaller

from alpmd.dbus import limits
from alpmd.dbus.relay import Relay, _Gate
from tests.security import rawbus
from tests.security.hostile import is_open
from tests.security.rawbus import CALL, NO_REPLY, RETURN, SIGNAL
from tests.security.test_security_relay_frames import _Peer, _recv_exactly, daemon_end

LIMIT = 1000  # the test's check: larger messages of ":1.66" are refused


def _message(kind: int, sender: str | None, serial: int, body: int, *, flags: int = 0,
             nfds: int = 0, order: str = "<") -> bytes:
    """A call or signal of ``body`` bytes (an ``ay``)."""
    return rawbus.message(serial, rawbus.ay(body, order), kind=kind, sender=sender,
                          flags=flags, nfds=nfds, order=order)


def _admit(seen: list[tuple[str, int]]) -> limits.Admit:
    def admit(sender: str, size: int) -> DBusError | None:
        seen.append((sender, size))
        if sender == ":1.66" and size > LIMIT:
            return limits.limit_exceeded(f"{size} bytes")
        return None
    return admit


def test_crafted_messages_are_well_formed() -> None:
    """(The builder below makes what dbus-fast reads: the sender where the bus puts it.)"""
    got = rawbus.decode(_message(CALL, ":1.66", 9, 40, order=">") + _message(SIGNAL, None, 3, 8))
    assert [(m.sender, m.serial, m.body) for m in got] == [(":1.66", 9, [b"x" * 36]),
                                                           (None, 3, [b"x" * 4])]


def _pipes(n: int) -> list[int]:
    """``n`` descriptors (read ends of pipes) to send along."""
    out = []
    for _ in range(n):
        r, w = os.pipe()
        os.close(w)
        out.append(r)
    return out


@pytest.mark.parametrize("cut", [1, 7, 16, 33, 100, 4096])
def test_the_gate_follows_messages_cut_anywhere(cut: int) -> None:
    """A stream of messages read ``cut`` bytes at a time (a read carrying descriptors ends
    inside their message, as the kernel does): what passes is exactly the admitted
    messages, each with its own descriptors on its first byte; the refused ones' are
    closed; only refused method calls expecting a reply get one."""
    seen: list[tuple[str, int]] = []
    gate = _Gate(_admit(seen))
    gate.begun = True
    stream = [  # (message, descriptors, goes on)
        (_message(CALL, ":1.5", 1, 3000, nfds=2), 2, True),
        (_message(CALL, ":1.66", 2, 2000, nfds=3), 3, False),     # answered
        (_message(CALL, ":1.66", 3, 200, nfds=1), 1, True),       # small: passes
        (_message(SIGNAL, ":1.66", 4, 5000, nfds=1), 1, False),   # dropped, no answer
        (_message(CALL, ":1.66", 5, 1500, flags=NO_REPLY), 0, False),  # no answer wanted
        (_message(SIGNAL, "org.freedesktop.DBus", 6, 9000), 0, True),  # the bus's own
        (_message(RETURN, ":1.66", 7, 3000), 0, True),            # replies are not checked
        (_message(CALL, ":1.66", 8, 1200, order=">"), 0, False),  # big-endian, answered
        (_message(CALL, None, 9, 3000), 0, True),                 # no sender: the bus
    ]
    passed: list[tuple[bytes, list[int]]] = []  # (bytes, descriptors on the first)
    replies: list[bytes] = []
    sent_fds: list[list[int]] = []
    for data, nfds, goes in stream:
        fds = _pipes(nfds)
        sent_fds.append(fds)
        for at in range(0, len(data), cut):
            piece = data[at:at + cut]
            # descriptors come with the read that holds the message's first byte
            chunks, answers = gate.took(piece, fds if at == 0 else [])
            replies += answers
            for chunk in chunks:
                passed.append((bytes(chunk.data), chunk.fds))
        if not goes:  # (checked before their numbers are used again)
            assert not any(is_open(fd) for fd in fds), "a refused message's descriptor was kept"
    wanted = b"".join(data for data, _n, goes in stream if goes)
    assert b"".join(p[0] for p in passed) == wanted
    # each passing message's descriptors ride on its first byte, nowhere else
    offset = 0
    riding = {}
    for data, fds in passed:
        if fds:
            riding[offset] = fds
        offset += len(data)
    starts = {}
    offset = 0
    for (data, _n, goes), fds in zip(stream, sent_fds, strict=True):
        if goes:
            if fds:
                starts[offset] = fds
            offset += len(data)
    assert riding == starts
    for fds in starts.values():
        for fd in fds:
            os.close(fd)
    answered = rawbus.decode(b"".join(replies))
    assert [(m.message_type, m.error_name, m.reply_serial, m.destination)
            for m in answered] == [
        (MessageType.ERROR, "org.alpm.Error.LimitExceeded", 2, ":1.66"),
        (MessageType.ERROR, "org.alpm.Error.LimitExceeded", 8, ":1.66")]
    assert answered[0].body == [f"limit-exceeded: {len(stream[1][0])} bytes"]
    # checked: every call and signal, with its whole size (the bus's own too: the check
    # lets them by); not the replies
    assert seen == [(m.sender or "", len(data)) for (data, _n, _g), m in zip(
        stream, rawbus.decode(b"".join(data for data, _n, _g in stream)), strict=True)
        if m.message_type is not MessageType.METHOD_RETURN]
    assert len(seen) == 8


def test_unreadable_or_huge_headers_are_dropped() -> None:
    """Header fields of a type the bus never sends, or longer than the relay reads: the
    message is dropped whole (there is nobody to answer), the next one passes."""
    gate = _Gate(_admit([]))
    gate.begun = True
    odd = bytearray(_message(CALL, ":1.5", 1, 40))
    odd[17:19] = b"\x01v"  # (the first field's signature: a variant)
    huge = struct.pack("<BBBBIII", ord("l"), CALL, 0, 1, 8, 2, 1 << 20) + b"\0" * ((1 << 20) + 8)
    after = _message(CALL, ":1.5", 3, 40)
    chunks, replies = gate.took(bytes(odd) + huge + after, [])
    assert b"".join(c.data for c in chunks) == after and replies == []


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[Relay, _Peer, socket.socket]]:
    """A relay with the test's check between a bus written here and this process."""
    peer = _Peer(str(tmp_path / "bus"))

    async def start() -> Relay:
        return await Relay.start(f"unix:path={tmp_path / 'bus'}", _admit([]))
    relay = asyncio.run(start())
    daemon = daemon_end(relay)
    try:
        yield relay, peer, daemon
    finally:
        daemon.close()
        peer.close()
        assert relay.join(10), "the relay did not stop with the daemon's end"


def test_a_refusal_waits_for_the_daemons_message_to_end(
        gated: tuple[Relay, _Peer, socket.socket]) -> None:
    """The relay answers a refused call on the daemon's connection to the bus, never inside
    one of the daemon's own messages: the answer waits for the one in passage to end.
    The daemon reads only the admitted call, with its descriptor."""
    relay, peer, daemon = gated
    own = _message(SIGNAL, None, 1, 64)
    # BEGIN and the first bytes of the daemon's message in one write
    daemon.sendall(b"BEGIN\r\n" + own[:20])
    assert peer.ready.wait(30)
    refused = _message(CALL, ":1.66", 41, 50_000)
    admitted = _message(CALL, ":1.5", 42, 300, nfds=1)
    fds = _pipes(1)
    peer.send(refused[:10], [])
    peer.send(refused[10:], [])
    peer.send(admitted, fds)
    os.close(fds[0])
    got, got_fds = _recv_exactly(daemon, len(admitted))
    assert got == admitted and len(got_fds) == 1
    os.close(got_fds[0])
    daemon.sendall(own[20:])
    assert peer.conn is not None
    peer.conn.settimeout(30)
    heard = bytearray(peer.heard)
    while True:
        decoded = _decode_some(bytes(heard))
        if len(decoded) >= 2:
            break
        chunk = peer.conn.recv(4096)
        assert chunk, bytes(heard)
        heard += chunk
    first, second = decoded[:2]
    assert first.message_type is MessageType.SIGNAL and first.serial == 1
    assert (second.message_type, second.reply_serial, second.destination,
            second.error_name) == (MessageType.ERROR, 41, ":1.66",
                                   "org.alpm.Error.LimitExceeded")
    assert relay.failure is None


def _decode_some(data: bytes) -> list[Message]:
    """The whole messages at the start of ``data``."""
    out = []
    stream = io.BytesIO(data)
    while True:
        u = Unmarshaller(stream)  # type: ignore[arg-type]
        try:
            msg = u.unmarshall()
        except Exception:
            return out
        if msg is None:
            return out
        out.append(msg)


def test_the_ledger_admits_by_size_and_share() -> None:
    """Root and the bus pass whatever the size; a caller's message over the cap never; a
    user's connections share one decoding burst, the callers not known yet another; a
    user in debt (its calls included) gets only small messages through."""
    caps = dataclasses.replace(limits.LIMITS, loop_share=1e-9)  # (nothing paid back here)
    uids = {":1.1": 1000, ":1.2": 1000, ":1.3": 0}
    ledger = limits.Ledger(caps, uids.get)
    small = caps.small_message
    per_second = int(1 / (caps.decode_ns * 1e-9))  # (bytes)
    half = int(caps.unknown_burst * per_second) // 2
    assert small < half < caps.message_bytes
    assert ledger.admit(":1.3", 30 << 20) is None
    assert ledger.admit("org.freedesktop.DBus", 30 << 20) is None
    over = ledger.admit(":1.1", caps.message_bytes + 1)
    assert over is not None and over.type == "org.alpm.Error.LimitExceeded"
    budget = int(caps.loop_burst * per_second)  # (a user's, all its connections')
    for _ in range(budget // half):
        assert ledger.admit(":1.1", half) is None
        assert ledger.admit(":1.2", 0) is None
    assert ledger.admit(":1.2", small + 1) is not None
    assert ledger.admit(":1.1", small) is None
    assert ledger.admit(":1.9", half) is None and ledger.admit(":1.10", half) is None
    assert ledger.admit(":1.11", small + 1) is not None
    uids[":1.4"] = 2000
    assert ledger.admit(":1.4", half) is None
    ledger.charge(2000, caps.loop_burst)
    assert ledger.admit(":1.4", small + 1) is not None
    assert ledger.admit(":1.4", small) is None
    assert ledger.owed(2000) > caps.loop_burst


def test_refusals_are_all_answered_when_the_bus_reads_late(
        gated: tuple[Relay, _Peer, socket.socket]) -> None:
    """The bus takes nothing for a while: the daemon's messages fill the way to it, and
    refused calls keep coming. Every refusal is answered once the bus reads again (none is
    left out), after the daemon's messages it had read, each between two of them."""
    relay, peer, daemon = gated
    own = [rawbus.message(n, rawbus.ay(256 << 10), kind=SIGNAL) for n in range(1, 13)]
    daemon.sendall(b"BEGIN\r\n")
    assert peer.ready.wait(30)
    writer = threading.Thread(target=daemon.sendall, args=(b"".join(own),))
    writer.start()
    refused = [_message(CALL, ":1.66", 100 + n, 5000) for n in range(64)]
    for data in refused:
        peer.send(data, [])
    assert peer.conn is not None
    peer.conn.settimeout(30)
    heard = bytearray(peer.heard)
    got: list[Message] = []
    while len(got) < len(own) + len(refused):
        chunk = peer.conn.recv(1 << 16)
        assert chunk, f"the relay closed after {len(got)} messages"
        heard += chunk
        got += rawbus.decode_some(heard)
    writer.join(30)
    assert [m.serial for m in got if m.message_type is MessageType.SIGNAL] == list(range(1, 13))
    assert [m.reply_serial for m in got if m.message_type is MessageType.ERROR] == [
        100 + n for n in range(64)]
    assert relay.failure is None
