"""Connecting to the bus: the EAGAIN fix, the caller's name, and its uid.

The daemon's connection goes through the relay thread (:func:`connect_daemon`,
:mod:`~alpmd.dbus.relay`), which takes every descriptor a client sends in first.

dbus-fast treats ``BlockingIOError`` from ``send`` (a full socket buffer, as
when a burst of signals or many large replies outrun the bus) as a fatal error
and drops the connection (dbus-next issue 153). :class:`_PatientWriter` keeps
the unsent rest of the message and waits for the socket to become writable
again. Method handlers are not told who called them; a message handler that
runs before dispatch puts the sender in :data:`CALLER` (the handler's task
copies the context, so each call sees its own sender).

The bus drops a connection that sends a message over its limit (dbus-daemon: 32 MiB),
and the daemon would leave the bus with it. The daemon's writer has a ``cap``: an answer
(or error) that marshals larger is replaced by ``LimitExceeded`` and a larger signal is
not sent. The daemon's own methods count their answers while they build them; this is
for what the library answers by itself from the properties (``GetManagedObjects``,
``GetAll``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

import dbus_fast.aio.message_bus as _aio_bus
from dbus_fast import BusType, InvalidMessageError, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.signature import Variant

from alpmd.dbus import errors, fds
from alpmd.dbus.relay import Admit, Relay

#: The unique bus name of the client whose method call is being handled.
CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("alpmd_caller", default="")


def utf8_text(text: str) -> str:
    """``text`` as D-Bus can carry it (UTF-8 without NUL): what was read from bytes that
    are not UTF-8 (a package's latin-1 description, a file name; kept as surrogate escapes,
    as Python reads such bytes) becomes U+FFFD, and so does a NUL (a scriptlet's output)."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace").replace("\0", "\ufffd")


def _utf8(value: Any) -> Any:
    if isinstance(value, str):
        return utf8_text(value)
    if isinstance(value, Variant):
        return Variant(value.signature, _utf8(value.value))
    if isinstance(value, list | tuple):
        return type(value)(_utf8(v) for v in value)
    if isinstance(value, dict):
        return {_utf8(k): _utf8(v) for k, v in value.items()}
    return value


def utf8_message(msg: Message) -> Message:
    """``msg`` with every string of its body made UTF-8 (:func:`utf8_text`): a message
    that does not marshal for one package's text would otherwise fail the whole answer
    (or be an internal error) for every client that asks."""
    return Message(destination=msg.destination, path=msg.path, interface=msg.interface,
                   member=msg.member, message_type=msg.message_type, flags=msg.flags,
                   error_name=msg.error_name, reply_serial=msg.reply_serial,
                   sender=msg.sender, unix_fds=msg.unix_fds, signature=msg.signature,
                   body=_utf8(msg.body), serial=msg.serial)


class _PatientWriter(_aio_bus._MessageWriter):
    """The library's writer, except that a full socket buffer means "wait", not "disconnect",
    and (with a ``cap``) no answer or signal larger than ``cap`` bytes is sent."""

    #: the largest answer or signal sent, in bytes (None: any; the daemon's is set)
    cap: int | None = None

    def buffer_message(self, msg: Message, future: asyncio.Future[Any] | None = None) -> None:
        try:
            super().buffer_message(msg, future)
        except (UnicodeEncodeError, InvalidMessageError):  # (the latter: a NUL in a string)
            msg = utf8_message(msg)
            super().buffer_message(msg, future)
        if self.cap is None or msg.message_type is MessageType.METHOD_CALL:
            return
        size = len(self.messages[-1][0])
        if size <= self.cap:
            return
        self.messages.pop()
        logging.getLogger("alpmd").warning("not sent: a %s of %d bytes to %s (at most %d)",
                                           msg.message_type.name.lower(), size,
                                           msg.destination or "everybody", self.cap)
        if msg.message_type is MessageType.SIGNAL:
            if future is not None and not future.done():
                future.set_result(None)
            return
        super().buffer_message(Message(
            message_type=MessageType.ERROR, error_name=errors.LIMIT_EXCEEDED,
            reply_serial=msg.reply_serial, destination=msg.destination, serial=msg.serial,
            signature="s", body=[f"limit-exceeded: the answer would take {size} bytes, more "
                                 f"than {self.cap}; ask for less at a time"]), future)

    def write_callback(self, remove_writer: bool = True) -> None:
        sock: Any = self.sock
        fd: Any = self.fd
        loop: Any = self.loop
        done: Any = _aio_bus._future_set_result
        failed: Any = _aio_bus._future_set_exception
        try:
            while True:
                if self.buf is None:
                    if not self.messages:
                        if remove_writer:
                            loop.remove_writer(fd)
                        return
                    buf, unix_fds, fut = self.messages.popleft()
                    self.unix_fds = unix_fds
                    self.buf = memoryview(buf)
                    self.offset = 0
                    self.fut = fut
                try:
                    if self.unix_fds and self.negotiate_unix_fd:
                        import array
                        import socket
                        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                array.array("i", self.unix_fds))]
                        self.offset += sock.sendmsg([self.buf[self.offset:]], anc)
                        self.unix_fds = None
                    else:
                        self.offset += sock.send(self.buf[self.offset:])
                except (BlockingIOError, InterruptedError):
                    # Keep the writer registered; the loop calls us again when writable.
                    loop.add_writer(fd, self.write_callback)
                    return
                if self.offset < len(self.buf):
                    loop.add_writer(fd, self.write_callback)
                    return
                self.buf = None
                done(self.fut, None)
        except Exception as exc:
            if self.bus._user_disconnect:
                done(self.fut, None)
            else:
                failed(self.fut, exc)
            self.bus._finalize(exc)


def install_eagain_fix() -> None:
    """Make every asyncio MessageBus made from now on in this process use the patient writer."""
    _aio_bus._MessageWriter = _PatientWriter  # type: ignore[misc]


def _remember_caller(msg: Message) -> bool:
    if msg.message_type is MessageType.METHOD_CALL:
        CALLER.set(msg.sender or "")
    fds.intake(msg)
    return False


async def connect(address: str | None = None, *, system: bool = True) -> MessageBus:
    """A client's bus (``address`` wins; else DBUS_SYSTEM_BUS_ADDRESS or the system bus)."""
    install_eagain_fix()
    kwargs: dict[str, Any] = {"negotiate_unix_fd": True}
    if address:
        kwargs["bus_address"] = address
    else:
        kwargs["bus_type"] = BusType.SYSTEM if system else BusType.SESSION
    return await MessageBus(**kwargs).connect()


async def connect_daemon(address: str | None = None, admit: Admit | None = None, *,
                         cap: int | None = None) -> tuple[MessageBus, Relay]:
    """The daemon's bus (``address`` wins; else the system bus), through a relay thread that
    takes in every descriptor a client sends and lets a message through only when ``admit``
    does (see :mod:`~alpmd.dbus.relay`); no answer or signal larger than ``cap`` bytes
    leaves it."""
    install_eagain_fix()
    relay = await Relay.start(address, admit)
    try:
        bus = await MessageBus(bus_address=relay.address, negotiate_unix_fd=True).connect()
    except BaseException:
        await asyncio.to_thread(relay.join, 1.0)
        raise
    writer = bus._writer
    if isinstance(writer, _PatientWriter):
        writer.cap = cap
    bus.add_message_handler(_remember_caller)
    return bus, relay


async def caller_uid(bus: MessageBus, sender: str) -> int:
    """The uid of a bus client, from the bus daemon (never from the client's word)."""
    reply = await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                   interface="org.freedesktop.DBus",
                                   member="GetConnectionUnixUser", signature="s", body=[sender]))
    if reply.message_type is MessageType.ERROR:
        raise LookupError(f"{sender}: {reply.error_name}")
    return int(reply.body[0])


async def caller_pid(bus: MessageBus, sender: str) -> int:
    reply = await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                   interface="org.freedesktop.DBus",
                                   member="GetConnectionUnixProcessID", signature="s",
                                   body=[sender]))
    if reply.message_type is MessageType.ERROR:
        return 0
    return int(reply.body[0])
