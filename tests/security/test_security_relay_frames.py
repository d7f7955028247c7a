"""The bus relay on its own, between a bus peer written here (a unix socket that speaks
the authentication and sends frames) and this process as the daemon: descriptors stay
with their message, one of a SQLite file this process opens arrives as /dev/null, and
what is not D-Bus ends the relay as a failure the daemon sees (its connection closes)."""

from __future__ import annotations

import array
import asyncio
import os
import socket
import sqlite3
import stat
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpmd.dbus.relay import Relay, RelayError, _Gate
from alpmd.engine.db import sqlitefiles


def _frame(body: bytes, nfds: int) -> bytes:
    """A little-endian method call with a UNIX_FDS header field and ``body``."""
    fields = struct.pack("<BBBBI", 9, 1, ord("u"), 0, nfds)  # (code 9, signature "u")
    fields += b"\0" * (-len(fields) & 7)
    return struct.pack("<BBBBIII", ord("l"), 1, 0, 1, len(body), 7, 8) + fields + body


class _Peer:
    """The bus: accepts the relay, answers its authentication, then sends what it is
    told (bytes with descriptors) and reads what comes."""

    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.conn: socket.socket | None = None
        self.heard = bytearray()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        self.conn = conn
        buf = b""
        while b"BEGIN\r\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
            while b"\r\n" in buf and not buf.startswith(b"BEGIN"):
                line, buf = buf.split(b"\r\n", 1)
                if line.lstrip(b"\0").startswith(b"AUTH"):
                    conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
                elif line.startswith(b"NEGOTIATE_UNIX_FD"):
                    conn.sendall(b"AGREE_UNIX_FD\r\n")
        self.heard += buf.split(b"BEGIN\r\n", 1)[1]
        self.ready.set()

    def send(self, data: bytes, fds: list[int]) -> None:
        assert self.conn is not None
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        self.conn.sendmsg([data], anc)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def _recv_exactly(sock: socket.socket, size: int) -> tuple[bytes, list[int]]:
    data = b""
    fds: list[int] = []
    while len(data) < size:
        got, anc, _flags, _addr = sock.recvmsg(size - len(data), socket.CMSG_SPACE(64 * 4))
        assert got, "the relay closed the connection"
        data += got
        for _level, _kind, raw in anc:
            fds.extend(array.array("i", raw[:len(raw) - len(raw) % 4]))
    return data, fds


def daemon_end(relay: Relay) -> socket.socket:
    """The daemon's end of ``relay``, authenticated (descriptors agreed), before BEGIN."""
    daemon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    daemon.connect(relay.address[len("unix:path="):])
    daemon.sendall(b"\0AUTH EXTERNAL 30\r\n")
    assert daemon.recv(64).startswith(b"OK ")
    daemon.sendall(b"NEGOTIATE_UNIX_FD\r\n")
    assert daemon.recv(64) == b"AGREE_UNIX_FD\r\n"
    return daemon


@pytest.fixture
def relayed(tmp_path: Path) -> Iterator[tuple[Relay, _Peer, socket.socket]]:
    peer = _Peer(str(tmp_path / "bus"))

    async def start() -> Relay:
        return await Relay.start(f"unix:path={tmp_path / 'bus'}")
    relay = asyncio.run(start())
    daemon = daemon_end(relay)
    daemon.sendall(b"BEGIN\r\nhello")
    assert peer.ready.wait(30), "the relay never passed the authentication on"
    try:
        yield relay, peer, daemon
    finally:
        daemon.close()
        peer.close()
        assert relay.join(10), "the relay did not stop with the daemon's end"


def test_descriptors_ride_with_their_message(tmp_path: Path,
                                             relayed: tuple[Relay, _Peer, socket.socket]) -> None:
    relay, peer, daemon = relayed
    db = tmp_path / "store.sqlite"
    sqlitefiles.note(db)
    sqlite3.connect(db).close()  # (the file exists: this process "opens it with SQLite")
    other = tmp_path / "package"
    other.write_bytes(b"x" * 100)
    first = _frame(b"A" * 40, 0)
    second = _frame(b"B" * 24, 2)
    mine = [os.open(db, os.O_RDONLY), os.open(other, os.O_RDONLY)]
    try:
        # (as a bus writes: a message's descriptors with its first byte) all of it before
        # the daemon reads: the relay has both messages at hand, yet keeps them apart
        peer.send(first[:20], [])
        peer.send(first[20:], [])
        peer.send(second, mine)
    finally:
        for fd in mine:
            os.close(fd)
    got, fds = _recv_exactly(daemon, len(first))
    assert got == first and fds == [], "descriptors came with the message before theirs"
    got, fds = _recv_exactly(daemon, len(second))
    try:
        assert got == second and len(fds) == 2
        dev_null, package = (os.fstat(fd) for fd in fds)
        assert stat.S_ISCHR(dev_null.st_mode)
        assert dev_null.st_rdev == os.stat(os.devnull).st_rdev
        assert (package.st_dev, package.st_ino) == (os.stat(other).st_dev,
                                                    os.stat(other).st_ino)
    finally:
        for fd in fds:
            os.close(fd)
    assert relay.failure is None
    # the other way: what the daemon writes reaches the bus
    daemon.sendall(b"world")
    assert peer.conn is not None
    peer.conn.settimeout(30)
    while len(peer.heard) < len(b"helloworld"):
        chunk = peer.conn.recv(64)
        assert chunk, bytes(peer.heard)
        peer.heard += chunk
    assert bytes(peer.heard) == b"helloworld"


def test_what_is_not_dbus_fails_the_relay(relayed: tuple[Relay, _Peer, socket.socket]) -> None:
    relay, peer, daemon = relayed
    peer.send(b"X" * 16, [])
    daemon.settimeout(30)
    assert daemon.recv(64) == b"", "the daemon's connection stayed open"
    assert relay.join(30)
    assert isinstance(relay.failure, RelayError), relay.failure


def test_a_read_of_several_messages_splits_at_the_last_one() -> None:
    """Several messages in one read: the read's descriptors (the last message's) go on
    from where that message begins, wherever the read starts and ends."""
    gate = _Gate(None)
    gate.begun = True
    first, second, third = _frame(b"A" * 40, 0), _frame(b"B" * 3, 1), _frame(b"", 0)

    def took(data: bytes, fds: list[int]) -> list[tuple[bytes, list[int]]]:
        chunks, replies = gate.took(data, fds)
        assert replies == []
        return [(bytes(c.data), c.fds) for c in chunks]
    assert took(first[:10], []) == []  # (held until its header is read)
    assert took(first[10:] + second, [7]) == [(first, []), (second, [7])]
    assert took(third + first[:30], [8]) == [(third, []), (first[:30], [8])]  # (ends inside)
    assert took(first[30:], []) == [(first[30:], [])]
    assert (gate.left, bytes(gate.head)) == (0, b"")
    with pytest.raises(RelayError):
        gate.took(b"X" * 16, [])
