"""Descriptors a client passes (``h`` / ``ah``): checked, copied, closed — never reopened.

dbus-fast hands a method the raw index of an ``h`` argument when the message
carries no descriptors, never closes descriptors nobody asked for, and fails
on some bodies when it swaps indexes for descriptors itself. So the bus's
pre-dispatch handler (:func:`intake`) takes the descriptors off every method
call (methods always see indexes) and records them; a method taking
``h``/``ah`` :func:`claim`s the ones its indexes name (an index out of range
is ``InvalidArgs``), every other method call's descriptors are closed at once,
and the unclaimed rest is closed shortly after.

A claimed descriptor must be a readable regular file the client opened itself
(not ``O_PATH``, not write-only, no directory, FIFO, socket or device). Its
bytes are copied, through that descriptor only, into a root-owned private file
(:func:`snapshot`): the engine reads the copy, so the client can neither swap
the file after authorisation nor make root open something it could not read.

Closing a descriptor drops the POSIX locks the process holds on its file (SQLite locks
that way), and a client may send a descriptor of a SQLite file the daemon has open. None
of those reaches this module: the bus relay (:mod:`alpmd.dbus.relay`) takes every
descriptor in, in a descriptor table of its own, and hands on ``/dev/null`` in place of one
of the daemon's SQLite files. Every descriptor here may be closed at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import io
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from dbus_fast import Message, MessageType

from alpmd.dbus import errors

#: (interface, member) → in-signature of the methods that take descriptors.
FD_METHODS: dict[tuple[str, str], str] = {
    ("org.alpm.Query1", "InspectFile"): "h",
    ("org.alpm.Manager1", "InstallFiles"): "aha{sv}",
    ("org.alpm.Repository1", "Add"): "ssa(shah)a{sv}",
}
#: Descriptors not claimed by their method call are closed after this many seconds.
SWEEP_AFTER = 2.0
COPY_CHUNK = 1 << 20

#: The descriptors the method call being handled really carried (not yet claimed).
RECEIVED: contextvars.ContextVar[tuple[int, ...]] = contextvars.ContextVar(
    "alpmd_fds", default=())
_unclaimed: set[int] = set()
#: Descriptors claimed and not yet closed, per client (a call may hold them while polkit
#: decides): capped so that no client, nor all together, can exhaust the daemon's table.
HELD_PER_CLIENT = 64
HELD_TOTAL = 256
_held: dict[str, int] = {}


def _sweep(fds: Sequence[int]) -> None:
    left = [fd for fd in fds if fd in _unclaimed]
    _unclaimed.difference_update(left)
    close_all(left)


def _takes_fds(msg: Message) -> bool:
    for (iface, member), sig in FD_METHODS.items():
        if msg.member == member and msg.interface in (iface, None) and msg.signature == sig:
            return True
    return False


def intake(msg: Message) -> None:
    """Pre-dispatch: remember a call's descriptors, or close them if its method takes none
    (or the message is a signal: anybody may send one to the daemon, nothing takes its
    descriptors)."""
    if msg.message_type in (MessageType.METHOD_RETURN, MessageType.ERROR):
        return  # replies (logind's inhibitor): their receivers own them
    fds = tuple(msg.unix_fds)
    msg.unix_fds = []
    call = msg.message_type is MessageType.METHOD_CALL
    if call and fds and _takes_fds(msg):
        RECEIVED.set(fds)
        _unclaimed.update(fds)
        asyncio.get_running_loop().call_later(SWEEP_AFTER, _sweep, fds)
        return
    close_all(fds)
    if call:
        RECEIVED.set(())


def claim(indexes: Sequence[object], client: str = "") -> list[int]:
    """The descriptors ``indexes`` name, now ours to close (with :func:`release`);
    InvalidArgs unless each one names a descriptor this call really carried (each once),
    LimitExceeded past the caps on descriptors held. The call's other descriptors are
    closed."""
    received = RECEIVED.get()
    RECEIVED.set(())
    # (one already swept, were the call handled late, is not ours any more: -1)
    mine = [fd if fd in _unclaimed else -1 for fd in received]
    for fd in mine:
        _unclaimed.discard(fd)
    wanted: list[int] = []
    bad = False
    for i in indexes:
        if (not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(mine)
                or mine[i] < 0 or mine[i] in wanted):
            bad = True
            break
        wanted.append(mine[i])
    if bad:
        close_all([fd for fd in mine if fd >= 0])
        raise errors.invalid("a file descriptor argument does not name a descriptor sent "
                             "with the call")
    close_all([fd for fd in mine if fd >= 0 and fd not in wanted])
    held = _held.get(client, 0)
    if held + len(wanted) > HELD_PER_CLIENT or sum(_held.values()) + len(wanted) > HELD_TOTAL:
        close_all(wanted)
        raise errors.code_text(errors.LIMIT_EXCEEDED, "limit-exceeded",
                               "too many file descriptors held for this client; try later")
    _held[client] = held + len(wanted)
    return wanted


def release(client: str, fds: Sequence[int]) -> None:
    """Close descriptors :func:`claim` gave ``client``."""
    close_all(fds)
    left = _held.get(client, 0) - len(fds)
    if left > 0:
        _held[client] = left
    else:
        _held.pop(client, None)


def close_all(fds: Sequence[int]) -> None:
    """Close received descriptors (none is one of the daemon's SQLite files: the relay saw
    to that)."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


@dataclass(frozen=True)
class FileInfo:
    """What a passed descriptor was found to be (a readable regular file of this size)."""

    size: int


def check_readable(fd: int) -> FileInfo:
    """InvalidArgs unless ``fd`` is a regular file the client opened for reading."""
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        st = os.fstat(fd)
    except OSError as exc:
        raise errors.invalid(f"unusable file descriptor ({exc.strerror})") from None
    if flags & os.O_PATH:
        raise errors.invalid("the descriptor was opened with O_PATH (not for reading)")
    if flags & os.O_ACCMODE not in (os.O_RDONLY, os.O_RDWR):
        raise errors.invalid("the descriptor is not open for reading")
    if not stat.S_ISREG(st.st_mode):
        raise errors.invalid("the descriptor is not a regular file")
    return FileInfo(size=st.st_size)


def snapshot(fd: int, dest: str, cap: int) -> int:
    """Copy what ``fd`` holds (from offset 0, at most ``cap`` bytes) into a new file ``dest``
    (mode 0600); the byte count. ``OverflowError`` when the file is larger than ``cap``.
    Reads only through ``fd`` (positional reads: the client's offset is untouched)."""
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                  0o600)
    done = 0
    try:
        while True:
            chunk = os.pread(fd, min(COPY_CHUNK, cap + 1 - done), done)
            if not chunk:
                break
            done += len(chunk)
            if done > cap:
                raise OverflowError(f"the file is larger than {cap} bytes")
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]
    except BaseException:
        os.close(out)
        os.unlink(dest)
        raise
    os.close(out)
    return done


class _Positional(io.RawIOBase):
    """A claimed descriptor read from offset 0 with positional reads (the client's offset
    is untouched), at most ``cap`` bytes (``OverflowError`` past it). Closing it leaves
    the descriptor open: its owner closes it (:func:`release`)."""

    def __init__(self, fd: int, cap: int) -> None:
        super().__init__()
        self.fd = fd
        self.cap = cap
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self.cap + 1 - self.pos)
        chunk = os.pread(self.fd, max(want, 1), self.pos)
        self.pos += len(chunk)
        if self.pos > self.cap:
            raise OverflowError(f"the file is larger than {self.cap} bytes")
        buffer[:len(chunk)] = chunk
        return len(chunk)


def reader(fd: int, cap: int) -> BinaryIO:
    """A file object over a claimed descriptor, for engine functions that copy streams
    (the bytes still come through the client's descriptor only, never a path)."""
    return io.BufferedReader(_Positional(fd, cap), COPY_CHUNK)
