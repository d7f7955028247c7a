"""D-Bus messages written byte by byte, and a bus client that sends them as they are: a
message of 30 MiB of nested empty arrays is made once (dbus-fast would build millions of
lists to marshal it) and sent many times, its serial changed."""

from __future__ import annotations

import io
import os
import socket
import struct

from dbus_fast import Message
from dbus_fast._private.address import parse_address
from dbus_fast._private.unmarshaller import Unmarshaller

CALL, RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY = 1


def message(serial: int, body: bytes, *, kind: int = CALL, sig: str = "ay",
            sender: str | None = None, destination: str | None = None,
            path: str = "/org/alpm", interface: str = "org.alpm.Manager1",
            member: str = "Poke", flags: int = 0, nfds: int = 0, order: str = "<") -> bytes:
    """A message with ``body`` (already marshalled for ``sig``) and the header fields
    given (SENDER only when ``sender``: the bus sets it)."""
    fields = bytearray()

    def field(code: int, type_: bytes, value: str | int) -> None:
        fields.extend(b"\0" * (-len(fields) & 7))
        fields.extend(bytes([code, len(type_)]) + type_ + b"\0")
        if isinstance(value, int):
            fields.extend(b"\0" * (-len(fields) & 3) + struct.pack(order + "I", value))
        elif type_ == b"g":
            fields.extend(bytes([len(value)]) + value.encode() + b"\0")
        else:
            fields.extend(b"\0" * (-len(fields) & 3) + struct.pack(order + "I", len(value))
                          + value.encode() + b"\0")
    field(1, b"o", path)
    field(2, b"s", interface)
    field(3, b"s", member)
    if destination is not None:
        field(6, b"s", destination)
    if sender is not None:
        field(7, b"s", sender)
    if sig:
        field(8, b"g", sig)
    if nfds:
        field(9, b"u", nfds)
    fixed = struct.pack(order + "BBBBIII", ord("l" if order == "<" else "B"), kind, flags, 1,
                        len(body), serial, len(fields))
    return fixed + bytes(fields) + b"\0" * (-len(fields) & 7) + body


def ay(size: int, order: str = "<") -> bytes:
    """An ``ay`` body of ``size`` bytes in all."""
    return struct.pack(order + "I", size - 4) + b"x" * (size - 4)


def aas(size: int) -> bytes:
    """An ``aas`` body of ``size`` bytes: empty arrays, the costliest shape to decode."""
    count = (size - 4) // 4
    return struct.pack("<I", 4 * count) + b"\0" * (4 * count)


def reserial(data: bytes, serial: int) -> bytes:
    """``data`` (a little-endian message) with another serial."""
    return data[:8] + struct.pack("<I", serial) + data[12:]


def decode(data: bytes) -> list[Message]:
    """The messages of ``data`` (whole ones only)."""
    out = []
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        u = Unmarshaller(stream)  # type: ignore[arg-type]
        msg = u.unmarshall()
        assert msg is not None, "an incomplete message"
        out.append(msg)
    return out


def decode_some(buf: bytearray) -> list[Message]:
    """The whole messages at the start of ``buf``, taken off it."""
    out = []
    while True:
        size = _size(buf)
        if size is None or len(buf) < size:
            return out
        out += decode(bytes(buf[:size]))
        del buf[:size]


def _size(data: bytes | bytearray) -> int | None:
    if len(data) < 16:
        return None
    order = "<" if data[0] == ord("l") else ">"
    body, _serial, fields = struct.unpack(order + "III", data[4:16])
    return int(16 + fields + (-fields & 7) + body)


class RawClient:
    """A bus connection that sends bytes as they are (after ``Hello``) and reads whole
    messages."""

    def __init__(self, address: str) -> None:
        path = next(opts["path"] for kind, opts in parse_address(address)
                    if kind == "unix" and "path" in opts)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(600)
        self.sock.connect(path)
        self.buf = bytearray()
        uid = str(os.getuid()).encode().hex()
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\n")
        line = self.sock.recv(256)
        assert line.startswith(b"OK "), line
        self.sock.sendall(b"BEGIN\r\n" + message(
            1, b"", sig="", destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus", member="Hello"))
        hello = self.read()
        assert hello.reply_serial == 1, hello

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self) -> Message:
        """The next whole message."""
        while True:
            size = _size(self.buf)
            if size is not None and len(self.buf) >= size:
                got = decode(bytes(self.buf[:size]))[0]
                del self.buf[:size]
                return got
            chunk = self.sock.recv(1 << 16)
            assert chunk, "the bus closed the connection"
            self.buf += chunk

    def replies(self, serials: set[int]) -> dict[int, Message]:
        """The replies to ``serials`` (other messages are skipped)."""
        out: dict[int, Message] = {}
        while len(out) < len(serials):
            msg = self.read()
            if msg.reply_serial in serials:
                out[msg.reply_serial] = msg
        return out

    def close(self) -> None:
        self.sock.close()
