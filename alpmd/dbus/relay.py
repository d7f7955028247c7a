"""The daemon's bus socket, read by a thread with a descriptor table of its own.

Closing a descriptor drops the POSIX locks its process holds on the file — on Linux the
locks owned by the descriptor table it is closed in (``current->files``). SQLite locks
that way, and a client may send the daemon a descriptor of any SQLite file it can read
(the local store, its ``-wal`` and ``-shm``, a repository tree's tracking database). So
the daemon's MessageBus does not read the bus: it talks, over a unix socket in a private
directory, to this relay thread, which has made itself a table of its own
(``unshare(CLONE_FILES)``) and moves bytes both ways between that socket and the bus.
Every descriptor from the bus lands in the relay's table first: one of a file the daemon
opens with SQLite (:mod:`alpmd.engine.db.sqlitefiles`) is closed there — where closing it
never touches the daemon's locks — and ``/dev/null`` goes on in its place (a method
refuses it as not a regular file); any other goes on, and the daemon may close it as
it likes (:mod:`alpmd.dbus.fds`).

A message's descriptors stay with its bytes (dbus-fast gives a message the descriptors
that arrive while it reads that message, and reads one message at a time): the relay
follows where the bus's messages begin and sends a read's descriptors with the bytes of
the message they came with, from its start (:class:`_Gate`).

No byte of a message reaches the daemon before the relay has read its header (the fixed
part and the header fields, at most :data:`MAX_FIELDS` bytes) and asked ``admit``
(:meth:`alpmd.dbus.limits.Ledger.admit`) about each method call and signal: dbus-fast
decodes a whole message before any handler sees it, which for 32 MiB of nested empty
arrays took the event loop seconds and the daemon half a gigabyte, so what a caller
sends is charged to its user's share of the loop before it is read, and a message over
the cap or the share is dropped here, its descriptors closed, a method call answered
``LimitExceeded`` by the relay itself, put into the daemon's stream to the bus between
two of its messages (:class:`_Framer`). Each way it holds at most :data:`BUFFER` bytes
and :data:`MAX_FDS` descriptors, then stops reading until the other side takes them (the
socket buffers and the bus push back, as without the relay); its own replies may add
another :data:`BUFFER` to the way to the bus, past which it stops reading the bus. The relay failing ends the daemon's bus connection and is fatal
(:attr:`Relay.failure`: the daemon exits non-zero); the daemon closing its end ends the
relay. The thread never logs nor touches the event loop: objects made in the other
threads name descriptors of the other table. (Python may run another thread's finalizer
here — the cyclic collector runs in whichever thread allocates — so an object left to the
collector instead of closed would close a number of this table. So the relay keeps
everything it holds out of the main table's reach, in the upper half of the process's
descriptor numbers (:func:`_out_of_reach`), where a finalizer's number, from a table
that is dense and far smaller, does not land; were one to, the relay fails, visibly,
and the daemon's descriptor leaks; no lock of the daemon's is ever dropped.)
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import ctypes
import fcntl
import os
import resource
import select
import shutil
import socket
import stat
import struct
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from dbus_fast import DBusError, Message, MessageType
from dbus_fast._private.address import get_system_bus_address, parse_address

from alpmd.engine.db import sqlitefiles

CLONE_FILES = 0x400
PR_SET_NAME = 15
#: bytes (and descriptors) one way holds before it stops reading
BUFFER = 1 << 20
MAX_FDS = 1024
READ = 256 << 10
#: D-Bus's largest message and most descriptors in one
MAX_MESSAGE = 1 << 27
MAX_MESSAGE_FDS = 253
HEADER = 16
#: a message's header fields the relay reads before letting it through (bytes; the bus's
#: own are a few hundred)
MAX_FIELDS = 64 << 10
METHOD_CALL, SIGNAL = 1, 4
NO_REPLY_EXPECTED = 1
SENDER = 7
#: the serials of the relay's own replies (the daemon's MessageBus counts up from 1)
REPLY_SERIALS = 1 << 31
MAX_AUTH = 16 << 10
#: seconds the daemon's MessageBus has to connect, and a stopping relay to hand on the rest
CONNECT_TIMEOUT = 30.0
DRAIN_TIMEOUT = 2.0
_IN, _OUT, _GONE = select.POLLIN, select.POLLOUT, select.POLLHUP | select.POLLERR


class RelayError(Exception):
    """The relay could not start, or the bus sent what is not D-Bus."""


def _unshare_files() -> None:
    """A descriptor table of this thread's own; the thread named for ``top -H`` and /proc."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_FILES) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_FILES): {os.strerror(err)}")
    libc.prctl(PR_SET_NAME, b"alpmd-bus-relay")  # (15 bytes: the kernel's limit)


def _floor() -> int:
    """The lowest number :func:`_out_of_reach` moves a descriptor to: the upper half of
    what the process may open."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY or soft > 1 << 20:
        soft = 1 << 20
    return max(64, soft // 2)


def _out_of_reach(fd: int, floor: int) -> int:
    """``fd`` under a number at or above ``floor`` (the old one closed); as it was when
    none is free up there."""
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    except OSError:
        return fd
    os.close(fd)
    return high


def _own(fds: list[int], floor: int) -> list[int]:
    """Close, in this thread's table, each descriptor of a file the daemon opens with
    SQLite, and put /dev/null in its place."""
    files: set[tuple[int, int]] | None = None
    out: list[int] = []
    for fd in fds:
        try:
            st = os.fstat(fd)
        except OSError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            if files is None:
                files = sqlitefiles.files()
            if (st.st_dev, st.st_ino) in files:
                os.close(fd)
                fd = _out_of_reach(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), floor)
        out.append(fd)
    return out


def _send(sock: socket.socket, data: bytes | bytearray, fds: list[int]) -> int:
    if not fds:
        return sock.send(data)
    return sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])


@dataclass
class _Chunk:
    """Bytes to hand on, and the descriptors that go with the first of them."""

    data: bytearray
    fds: list[int] = field(default_factory=list)


@dataclass
class _Way:
    """Bytes read from one side waiting for the other; descriptors ride on the first byte
    of their chunk (the first byte of a read that carried them)."""

    chunks: deque[_Chunk] = field(default_factory=deque)
    size: int = 0
    nfds: int = 0

    def full(self) -> bool:
        return self.size >= BUFFER or self.nfds >= MAX_FDS

    def put(self, data: bytes | bytearray, fds: list[int]) -> None:
        if not data and not fds:
            return
        if not fds and self.chunks:
            self.chunks[-1].data += data
        else:
            self.chunks.append(_Chunk(bytearray(data), fds))
        self.size += len(data)
        self.nfds += len(fds)

    def pass_on(self, sock: socket.socket, data: bytes | bytearray, fds: list[int]) -> None:
        """Hand ``data`` (with ``fds`` on its first byte) on, keeping what the socket does
        not take now (straight from the read when nothing waits before it)."""
        if not self.chunks and data:
            try:
                sent = _send(sock, data, fds)
            except (BlockingIOError, InterruptedError):
                sent = 0
            else:
                for fd in fds:
                    os.close(fd)
                fds = []
            data = data[sent:]
        self.put(data, fds)
        self.flush(sock)

    def flush(self, sock: socket.socket) -> None:
        """Write what the socket takes now."""
        while self.chunks:
            chunk = self.chunks[0]
            try:
                sent = _send(sock, chunk.data, chunk.fds)
            except (BlockingIOError, InterruptedError):
                return
            self._sent_fds(chunk)
            del chunk.data[:sent]
            self.size -= sent
            if chunk.data:
                return
            self.chunks.popleft()

    def _sent_fds(self, chunk: _Chunk) -> None:
        for fd in chunk.fds:
            os.close(fd)  # (the receiver has its own reference now)
        self.nfds -= len(chunk.fds)
        chunk.fds = []

    def drop(self) -> None:
        for chunk in self.chunks:
            self._sent_fds(chunk)
        self.chunks.clear()
        self.size = 0


class _Framer:
    """Where messages begin and end in one way's stream: the daemon's, once it has ended the
    authentication (``BEGIN``: the bus said its last line before), so that the relay's own
    replies go between two of its messages (:meth:`sent`)."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.left = 0
        self.said = bytearray()
        self.begun = False
        #: the relay's replies waiting for the daemon's message in passage to end
        self.waiting: list[bytes] = []
        self.waiting_size = 0

    def daemon_said(self, data: bytes) -> int:
        """Watch the daemon's side of the authentication for its end; how many bytes of
        ``data`` are the authentication's (the rest are messages)."""
        self.said += data
        end = self.said.find(b"BEGIN\r\n")
        if end >= 0:
            self.begun = True
            used = end + 7 - (len(self.said) - len(data))
            self.said.clear()
            return used
        if len(self.said) > MAX_AUTH:
            raise RelayError("the authentication with the bus did not end")
        return len(data)

    def _follow(self, data: bytes) -> int | None:
        """Follow ``data`` through the messages; the first place in it between two
        messages (None: there is none)."""
        cut: int | None = 0 if self.begun and not self.head and not self.left else None
        i = 0
        while self.begun and i < len(data):
            if self.left:
                step = min(self.left, len(data) - i)
                self.left -= step
                i += step
            else:
                step = min(HEADER - len(self.head), len(data) - i)
                self.head += data[i:i + step]
                i += step
                if len(self.head) == HEADER:
                    self.left = _length(self.head) - HEADER
                    self.head.clear()
            if cut is None and not self.head and not self.left:
                cut = i
        return cut

    def sent(self, data: bytes, fds: list[int]) -> list[_Chunk]:
        """A read of the daemon's as pieces for the bus, the waiting replies put at its
        first message boundary (a read's descriptors stay on its first byte: the bus hands
        them to its messages in order, by count)."""
        skip = 0
        if not self.begun:
            skip = self.daemon_said(data)
        cut = self._follow(data[skip:])
        if not self.waiting or cut is None:
            return [_Chunk(bytearray(data), fds)]
        cut += skip
        pieces = [_Chunk(bytearray(data[:cut]), fds)] if cut else []
        pieces += self._replies()
        if cut < len(data):
            pieces.append(_Chunk(bytearray(data[cut:]), [] if cut else fds))
        return pieces

    def reply(self, replies: list[bytes]) -> list[_Chunk]:
        """The relay's replies: to go to the bus now when the daemon's stream is between
        two messages, else (what is returned is empty) once its message in passage ends."""
        for data in replies:
            self.waiting.append(data)
            self.waiting_size += len(data)
        if self.begun and not self.head and not self.left:
            return self._replies()
        return []

    def _replies(self) -> list[_Chunk]:
        out = [_Chunk(bytearray(data)) for data in self.waiting]
        self.waiting.clear()
        self.waiting_size = 0
        return out


def _length(head: bytes | bytearray) -> int:
    """A message's size from its fixed header (header fields, padding and body included)."""
    order = {ord("l"): "<", ord("B"): ">"}.get(head[0])
    if order is None:
        raise RelayError(f"a message of unknown byte order {head[0]}")
    body, _serial, fields = struct.unpack(order + "III", head[4:HEADER])
    size: int = HEADER + fields + (-fields & 7) + body
    if size > MAX_MESSAGE:
        raise RelayError(f"a message of {size} bytes")
    return size


@dataclass(frozen=True)
class _Head:
    """What the relay reads of a message before letting it through."""

    kind: int
    flags: int
    serial: int
    size: int
    #: its SENDER field ("": none, as in the bus's own; None: the fields could not be read)
    sender: str | None


def _read_head(head: bytes | bytearray) -> _Head:
    """The fixed header and the header fields (all of ``head``) of a message."""
    order = "<" if head[0] == ord("l") else ">"
    _body, serial, fields = struct.unpack(order + "III", head[4:HEADER])
    return _Head(head[1], head[2], serial, _length(head),
                 _sender(head, order, HEADER + fields))


def _sender(head: bytes | bytearray, order: str, end: int) -> str | None:
    """The SENDER header field (each field: its code, a signature, a value of that type;
    the bus passes on fields of types ``s``, ``o``, ``g`` and ``u`` only)."""
    i = HEADER
    try:
        while i < end:
            i += -i & 7
            code, sig_len = head[i], head[i + 1]
            sig = bytes(head[i + 2:i + 2 + sig_len])
            i += 3 + sig_len
            if sig in (b"s", b"o"):
                i += -i & 3
                (size,) = struct.unpack(order + "I", head[i:i + 4])
                value = bytes(head[i + 4:i + 4 + size])
                i += 5 + size
            elif sig == b"g":
                value = bytes(head[i + 1:i + 1 + head[i]])
                i += 2 + head[i]
            elif sig == b"u":
                i += (-i & 3) + 4
                value = b""
            else:
                return None
            if i > end:
                return None
            if code == SENDER and sig == b"s":
                return value.decode("utf-8", "replace")
    except (IndexError, struct.error):
        return None
    return ""


#: checks a message's sender and size before the daemon reads it: None to let it through,
#: else the error to answer a method call with (see :meth:`alpmd.dbus.limits.Ledger.admit`)
Admit = Callable[[str, int], DBusError | None]


class _Gate:
    """The bus's messages on their way to the daemon, each held until its header fields
    are read (at most :data:`MAX_FIELDS` bytes) and let through, or not, as ``admit``
    says: a method call or signal (but the bus's own) ``admit`` refuses is dropped, its
    descriptors closed here, and a method call expecting a reply is answered by the relay
    (:meth:`_Framer.reply`). A message's descriptors go on with its first byte: a read
    ends with the piece of the stream that carried its descriptors (the kernel stops
    there), and the bus sends a message's descriptors with its first bytes, so a read's
    descriptors belong to the message holding its last byte."""

    def __init__(self, admit: Admit | None) -> None:
        self.admit = admit
        self.begun = False
        self.head = bytearray()
        #: bytes of the current message still to come after its head
        self.left = 0
        #: whether the current message goes on to the daemon
        self.passing = True
        #: the descriptors of the message whose head is held
        self.fds: list[int] = []
        self.serial = REPLY_SERIALS

    def took(self, data: bytes, fds: list[int]) -> tuple[list[_Chunk], list[bytes]]:
        """What of a read (``data`` and its ``fds``) goes on to the daemon, descriptors on
        the first byte of their message; the replies to send to the bus."""
        if not self.begun:
            return [_Chunk(bytearray(data), fds)], []
        out: list[_Chunk] = []
        replies: list[bytes] = []
        at: _Chunk | None = None  # the current message's piece of this read, when it goes on
        i = 0
        while i < len(data):
            if self.left:
                step = min(self.left, len(data) - i)
                if self.passing:
                    if at is None:
                        at = _Chunk(bytearray())
                        out.append(at)
                    at.data += data[i:i + step]
                i += step
                self.left -= step
                continue
            if not self.head:
                at = None  # (a message begins)
            need = HEADER if len(self.head) < HEADER else _head_length(self.head)
            step = min(need - len(self.head), len(data) - i)
            self.head += data[i:i + step]
            i += step
            if len(self.head) < HEADER:
                continue
            if len(self.head) == HEADER:
                _length(self.head)  # (RelayError: not D-Bus)
                if _head_length(self.head) > HEADER + MAX_FIELDS:
                    self._decide(None, replies)  # (dropped unread: nobody to answer)
                    continue
            if len(self.head) == _head_length(self.head):
                at = self._decide(_read_head(self.head), replies)
                if at is not None:
                    out.append(at)
        if fds:
            if self.head:
                self.fds += fds
            elif self.passing and at is not None:
                at.fds += fds
            else:
                _close(fds)
        return out, replies

    def _decide(self, head: _Head | None, replies: list[bytes]) -> _Chunk | None:
        """Let the message whose head is held through (its piece, held descriptors on it),
        or drop it (None)."""
        size = _length(self.head)
        why: DBusError | None = None
        self.passing = head is not None
        if head is not None and head.kind in (METHOD_CALL, SIGNAL) and self.admit is not None:
            # (fields it cannot read: dropped, nobody to answer)
            why = self.admit(head.sender, size) if head.sender is not None else None
            self.passing = head.sender is not None and why is None
        piece = _Chunk(bytearray(self.head), self.fds) if self.passing else None
        if piece is None:
            _close(self.fds)
            if (why is not None and head is not None and head.sender
                    and head.kind == METHOD_CALL and not head.flags & NO_REPLY_EXPECTED):
                replies.append(self._error(head, why))
        self.left = size - len(self.head)
        self.head.clear()
        self.fds = []
        return piece

    def _error(self, head: _Head, why: DBusError) -> bytes:
        self.serial = self.serial + 1 if self.serial < 0xFFFFFFFF else REPLY_SERIALS
        return bytes(Message(message_type=MessageType.ERROR, error_name=why.type,
                             reply_serial=head.serial, destination=head.sender,
                             signature="s", body=[why.text], serial=self.serial
                             )._marshall(False))


def _head_length(head: bytes | bytearray) -> int:
    """The fixed header, the header fields and their padding (``head``: the fixed
    header at least)."""
    (fields,) = struct.unpack(("<" if head[0] == ord("l") else ">") + "I", head[12:HEADER])
    return int(HEADER + fields + (-fields & 7))


def _close(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _recv(sock: socket.socket, size: int, floor: int) -> tuple[bytes, list[int]] | None:
    """Bytes and descriptors read (no bytes: the peer closed; the descriptors out of
    reach, see :func:`_out_of_reach`), None if nothing came."""
    try:
        data, anc, _flags, _addr = sock.recvmsg(
            size, socket.CMSG_SPACE(MAX_MESSAGE_FDS * 4), socket.MSG_CMSG_CLOEXEC)
    except (BlockingIOError, InterruptedError):
        return None
    fds: list[int] = []
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(raw[:len(raw) - len(raw) % got.itemsize])
            fds.extend(_out_of_reach(fd, floor) for fd in got)
    return data, fds


class Relay:
    """The thread between the daemon's MessageBus and the bus (:meth:`start`)."""

    def __init__(self, bus_fd: int, listen_fd: int, workdir: str,
                 admit: Admit | None = None) -> None:
        self.admit = admit
        self._bus_fd = bus_fd
        self._listen_fd = listen_fd
        self._workdir = workdir
        self.address = "unix:path=" + os.path.join(workdir, "bus")
        #: why the relay stopped, when not because the daemon or the bus closed
        self.failure: BaseException | None = None
        self._unshared = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alpmd-bus-relay", daemon=True)

    @classmethod
    async def start(cls, address: str | None = None, admit: Admit | None = None) -> Relay:
        """Connect to the bus (``address``, else the system bus) and start the relay, which
        lets a message through only when ``admit`` does (None: every message); its
        :attr:`address` is where the daemon's MessageBus connects (once)."""
        loop = asyncio.get_running_loop()
        bus = await _connect(loop, address or get_system_bus_address())
        workdir = tempfile.mkdtemp(prefix="alpmd-relay-")  # (0700: only we may connect)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(os.path.join(workdir, "bus"))
            listener.listen(1)
            relay = cls(bus.fileno(), listener.fileno(), workdir, admit)
            relay._thread.start()
            if not await asyncio.to_thread(relay._unshared.wait, CONNECT_TIMEOUT):
                raise RelayError("the bus relay did not start")
            if relay.failure is not None:
                raise RelayError(f"the bus relay could not start: {relay.failure}")
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        finally:
            # (the relay has its own copies of both now; these are the daemon's)
            listener.close()
            bus.close()
        return relay

    def join(self, timeout: float) -> bool:
        """Wait for the relay to stop (it does once the daemon's end is closed); whether
        it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the thread (its own descriptor table from the first line on) ----------------------

    def _run(self) -> None:
        try:
            _unshare_files()
            keep = {0, 1, 2, self._bus_fd, self._listen_fd}
            for name in os.listdir("/proc/thread-self/fd"):
                if int(name) not in keep:
                    with contextlib.suppress(OSError):
                        os.close(int(name))
        except BaseException as exc:
            self.failure = exc
            self._unshared.set()
            return
        self._unshared.set()
        floor = _floor()
        self._bus_fd = _out_of_reach(self._bus_fd, floor)
        self._listen_fd = _out_of_reach(self._listen_fd, floor)
        bus = socket.socket(fileno=self._bus_fd)
        daemon: socket.socket | None = None
        try:
            with socket.socket(fileno=self._listen_fd) as listener:
                daemon = self._accept(listener)
            daemon = socket.socket(fileno=_out_of_reach(daemon.detach(), floor))
            self._relay(daemon, bus, floor)
        except BaseException as exc:
            self.failure = exc
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)
            if daemon is not None:
                with contextlib.suppress(OSError):
                    daemon.shutdown(socket.SHUT_RDWR)
                daemon.close()
            bus.close()

    def _accept(self, listener: socket.socket) -> socket.socket:
        listener.settimeout(CONNECT_TIMEOUT)
        conn, _ = listener.accept()
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", creds)
        if pid != os.getpid() or uid != os.geteuid():
            conn.close()
            raise RelayError(f"process {pid} (uid {uid}) connected to the bus relay")
        shutil.rmtree(self._workdir, ignore_errors=True)  # (nobody else connects)
        return conn

    def _relay(self, daemon: socket.socket, bus: socket.socket, floor: int) -> None:
        daemon.setblocking(False)
        bus.setblocking(False)
        up, down = _Way(), _Way()  # (up: daemon → bus)
        poller = select.poll()
        try:
            self._pump(daemon, bus, up, down, _Framer(), _Gate(self.admit), poller, floor)
        except (BrokenPipeError, ConnectionResetError):
            return  # (one side went away while written to: as when it closes)
        finally:
            up.drop()
            down.drop()

    @staticmethod
    def _pump(daemon: socket.socket, bus: socket.socket, up: _Way, down: _Way,
              framer: _Framer, gate: _Gate, poller: select.poll, floor: int) -> None:
        while True:
            poller.register(daemon, (0 if up.full() else _IN) | (_OUT if down.chunks else 0))
            # (the relay's own replies: up to BUFFER more on their way to the bus, then the
            # bus is not read until it takes them)
            replying = up.size + framer.waiting_size >= 2 * BUFFER
            poller.register(bus, (0 if down.full() or replying else _IN)
                            | (_OUT if up.chunks else 0))
            for fd, ev in poller.poll():
                if ev & select.POLLNVAL:
                    raise RelayError("a socket of the bus relay was closed under it")
                from_daemon = fd == daemon.fileno()
                src, dst, way, back = ((daemon, bus, up, down) if from_daemon
                                       else (bus, daemon, down, up))
                if ev & _OUT:
                    back.flush(src)
                if not ev & (_IN | _GONE):
                    continue
                if way.full() or (not from_daemon and replying):
                    if ev & _GONE:
                        return
                    continue
                got = _recv(src, READ, floor)
                if got is None:
                    continue
                data, fds = got
                if not data:  # one side closed: the rest goes on, then the other's ends
                    _drain(way, dst)
                    return
                if from_daemon:
                    pieces = framer.sent(data, fds)
                    gate.begun = framer.begun
                else:
                    pieces, replies = gate.took(data, _own(fds, floor) if fds else [])
                    if replies:
                        for piece in framer.reply(replies):
                            up.pass_on(bus, piece.data, piece.fds)
                for piece in pieces:
                    way.pass_on(dst, piece.data, piece.fds)


def _drain(way: _Way, sock: socket.socket) -> None:
    """Hand on what is buffered, for a moment at most (the peer may be gone)."""
    poller = select.poll()
    poller.register(sock, _OUT)
    with contextlib.suppress(OSError):
        while way.chunks and poller.poll(int(DRAIN_TIMEOUT * 1000)):
            way.flush(sock)


async def _connect(loop: asyncio.AbstractEventLoop, address: str) -> socket.socket:
    """A socket connected to the first reachable unix address of ``address``."""
    last: Exception = RelayError(f"no unix address in {address!r}")
    for transport, options in parse_address(address):
        if transport != "unix":
            continue
        if "path" in options:
            target: str | bytes = options["path"]
        elif "abstract" in options:
            target = b"\0" + options["abstract"].encode()
        else:
            continue
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, target)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise last
