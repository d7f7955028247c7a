"""What one client (and everybody together) may hold in the daemon at once.

Every bus client talks to a root daemon; none may grow it without bound or
keep the others waiting. Each limit is checked where the thing is created
(:func:`check_new_transaction`, :func:`check_queue`) and answered with
``org.alpm.Error.LimitExceeded``. Heavy work (reading a client's package
file, a regular-expression search, a plan) runs off the event loop under a
deadline (:class:`Workers`).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from dbus_fast import DBusError, Message, MessageType
from dbus_fast.signature import Variant

from alpmd.dbus import errors

R = TypeVar("R")


@dataclass(frozen=True)
class Limits:
    """The caps (per bus client, per uid, and in total)."""

    #: transaction objects alive (setup … kept after finishing) per bus client / per uid / all
    transactions_per_client: int = 32
    transactions_per_uid: int = 64
    transactions_total: int = 1024
    #: transactions waiting in the writer queue per bus client / all
    queued_per_client: int = 8
    queued_total: int = 256
    #: package files: per call, per file (bytes), and copies kept at once (bytes)
    files_per_call: int = 64
    file_bytes: int = 2 << 30
    inspect_bytes: int = 512 << 20
    file_bytes_total: int = 8 << 30
    #: the longest a transaction waits for an answer (seconds); a client's hint is capped
    question_timeout: float = 600.0
    #: deadlines of work done for one call (seconds)
    inspect_deadline: float = 60.0
    simulate_deadline: float = 120.0
    search_deadline: float = 20.0
    #: reading a repository tree for one call (List, History, Check; seconds)
    repository_deadline: float = 600.0
    #: heavy calls running at once per bus client (and per uid but root's) / of all users
    #: but root together (more are refused) / more for root only (users' calls holding
    #: every other slot, up to ``repository_deadline`` each, never keep root waiting)
    heavy_per_client: int = 2
    heavy_total: int = 4
    heavy_root: int = 2
    targets: int = 10_000
    target_length: int = 512
    #: the targets of one transaction together (characters): they are kept as long as the
    #: transaction, and a user may hold 64 of them
    targets_length: int = 1 << 20
    #: an answer's size on the wire (bytes): the bus drops a connection that sends a message
    #: over its own limit (dbus-daemon: 32 MiB), and the daemon would leave the bus with it
    reply_bytes: int = 16 << 20
    #: SetHints ``answers``: their size on the wire (bytes; they are kept with the transaction)
    answers_bytes: int = 64 << 10
    #: the event loop's time a user's calls may take (see :class:`LoopShare`): this share
    #: of it on average, after a burst of this many seconds
    loop_share: float = 0.25
    loop_burst: float = 2.0
    #: a message of a caller but root (bytes on the wire; see :class:`Ledger`): the largest
    #: arguments the methods take fit (Owns' 1 Mi characters of paths, 10,000 targets of
    #: 1 Mi characters in all: about 1.1 MiB when ASCII), the bus's 32 MiB do not
    message_bytes: int = 4 << 20
    #: what decoding a message costs the event loop, charged per byte before it is read
    #: (nanoseconds; the worst shapes measured, ``aas`` or ``av`` of empty items, take 40–60)
    decode_ns: float = 100.0
    #: messages this small pass even when their user is in debt (its calls to a
    #: transaction, which LoopShare lets through; each costs the loop about what a refusal does)
    small_message: int = 4 << 10
    #: the burst of decoding (seconds, as charged) of all callers whose uid is not known
    #: yet together: what they send is held, decoded, until it is (about 5 MB of the
    #: costliest shapes, 120 MiB in the daemon); a user's own is ``loop_burst``
    unknown_burst: float = 0.5


LIMITS = Limits()


def parse(settings: Iterable[str]) -> Limits:
    """``NAME=VALUE`` settings over the defaults (ValueError for an unknown name)."""
    known = {f.name: f for f in dataclasses.fields(Limits)}
    changes: dict[str, int | float] = {}
    for item in settings:
        name, _, value = item.partition("=")
        default = dataclasses.asdict(LIMITS).get(name.strip())
        if name.strip() not in known or default is None:
            raise ValueError(f"unknown limit {name!r} (known: {', '.join(known)})")
        changes[name.strip()] = type(default)(value)
    return dataclasses.replace(LIMITS, **changes)  # type: ignore[arg-type]


class Owned(Protocol):
    @property
    def sender(self) -> str: ...
    @property
    def uid(self) -> int: ...
    @property
    def state(self) -> str: ...


def limit_exceeded(message: str) -> DBusError:
    return errors.code_text(errors.LIMIT_EXCEEDED, "limit-exceeded", message)


def check_new_transaction(live: Iterable[Owned], sender: str, uid: int,
                          limits: Limits = LIMITS) -> None:
    """LimitExceeded when ``sender`` (of ``uid``) may not create one more transaction."""
    total = by_client = by_uid = 0
    for t in live:
        total += 1
        if sender and t.sender == sender:
            by_client += 1
        if uid > 0 and t.uid == uid:
            by_uid += 1
    if total >= limits.transactions_total:
        raise limit_exceeded(f"the daemon holds {total} transactions already; try later")
    if by_client >= limits.transactions_per_client:
        raise limit_exceeded(f"this client holds {by_client} transactions already "
                             f"(at most {limits.transactions_per_client})")
    if by_uid >= limits.transactions_per_uid:
        raise limit_exceeded(f"this user holds {by_uid} transactions already "
                             f"(at most {limits.transactions_per_uid})")


def check_queue(queued: Iterable[Owned], sender: str, limits: Limits = LIMITS) -> None:
    """LimitExceeded when ``sender`` may not queue one more transaction."""
    total = mine = 0
    for t in queued:
        total += 1
        if sender and t.sender == sender:
            mine += 1
    if total >= limits.queued_total:
        raise limit_exceeded(f"{total} transactions are queued already; try later")
    if mine >= limits.queued_per_client:
        raise limit_exceeded(f"this client has {mine} transactions queued already "
                             f"(at most {limits.queued_per_client})")


def wire_size(value: object) -> int:
    """About how many bytes ``value`` takes in a D-Bus message (never less): strings with
    their length, terminator and padding, containers with their headers, variants with
    their signature. Linear in the value; used to refuse an answer before it is sent."""
    if isinstance(value, str):
        return 9 + (len(value) if value.isascii() else 4 * len(value))
    if isinstance(value, (bytes, bytearray)):
        return 8 + len(value)
    if isinstance(value, Variant):
        return 4 + len(value.signature) + wire_size(value.value)
    if isinstance(value, dict):
        return 8 + sum(8 + wire_size(k) + wire_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return 8 + sum(wire_size(v) for v in value)
    return 8


class ReplyBudget:
    """An answer's size, counted while it is built: LimitExceeded as soon as it would pass
    ``limit`` bytes (before the rest is built, and long before the bus would see it)."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.used = 0

    def add(self, value: object) -> None:
        self.used += wire_size(value)
        if self.used > self.limit:
            raise limit_exceeded(f"{self.what} would be larger than {self.limit} bytes; "
                                 "ask for less at a time")


def bounded_reply(value: R, limit: int, what: str) -> R:
    """``value``, or LimitExceeded when it is too large to send (see :class:`ReplyBudget`)."""
    ReplyBudget(limit, what).add(value)
    return value


#: the :class:`Ledger`'s account of callers whose uid is not known yet
UNKNOWN = -1
#: senders whose messages the relay never checks: the bus itself (and, in a message
#: without a sender, nobody but the bus)
BUS_NAMES = frozenset({"", "org.freedesktop.DBus"})


class Ledger:
    """What each user owes of the event loop's time (seconds), shared by the loop
    (:class:`LoopShare`) and the bus relay's thread (:meth:`admit`), hence the lock.

    The relay calls :meth:`admit` for every method call and signal, before the daemon reads
    a byte of it: dbus-fast decodes a whole message before any handler sees it, and
    decoding 4 MiB of nested empty arrays took a quarter of a second and 80 MiB. So a
    message of a caller but root is refused when larger than ``message_bytes``; otherwise
    what decoding it costs (``decode_ns`` per byte) is charged to its user, or to the one
    account (:data:`UNKNOWN`) of all callers whose uid the daemon does not know yet (what
    they send is held, decoded, until it is known). It is refused, unless small
    (``small_message``), while its user owes more than ``loop_burst`` (as its calls are)
    or when its decoding not yet paid back would pass ``loop_burst`` (``unknown_burst``
    for the callers not known yet). So a user (all its connections together) makes the
    loop decode at most ``loop_burst`` seconds' worth at once (as charged: about 20 MB
    of the costliest shapes, measured at half that), the callers not known yet
    ``unknown_burst``, then ``loop_share`` of the loop's time on average (shared with its
    calls); the daemon decodes one message at a time. ``uid_of`` tells a sender's uid as the daemon knows it (a dict's ``get``:
    safe to call from the relay's thread).
    """

    def __init__(self, limits: Limits,
                 uid_of: Callable[[str], int | None] = lambda _sender: None) -> None:
        self.limits = limits
        self.uid_of = uid_of
        self._lock = threading.Lock()
        #: per account: (all it owes, what of it is decoding, when brought up to date)
        self._debts: dict[int, tuple[float, float, float]] = {}

    def _owed(self, key: int, now: float) -> tuple[float, float]:
        """What ``key`` owes in all and for decoding, each paid back at ``loop_share``."""
        debt, decoding, when = self._debts.get(key, (0.0, 0.0, now))
        paid = (now - when) * self.limits.loop_share
        return max(0.0, debt - paid), max(0.0, decoding - paid)

    def owed(self, key: int) -> float:
        """What account ``key`` owes now (seconds)."""
        with self._lock:
            return self._owed(key, time.monotonic())[0]

    def charge(self, key: int, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            self._add(key, seconds, 0.0, time.monotonic())

    def _add(self, key: int, seconds: float, decoding: float, now: float) -> None:
        debt, decoded = self._owed(key, now)
        self._debts[key] = (debt + seconds, decoded + decoding, now)
        if len(self._debts) > 4096:  # (users long paid up)
            self._debts = {k: v for k, v in self._debts.items() if self._owed(k, now)[0] > 0}

    def admit(self, sender: str, size: int) -> DBusError | None:
        """None when a message of ``size`` bytes from ``sender`` may be read by the daemon
        (what decoding it costs is charged); else why not (the relay drops it and
        answers a method call with this error)."""
        if sender in BUS_NAMES:
            return None
        uid = self.uid_of(sender)
        if uid == 0:
            return None
        caps = self.limits
        if size > caps.message_bytes:
            return limit_exceeded(f"a message of {size} bytes; the daemon reads at most "
                                  f"{caps.message_bytes} from a caller")
        key = UNKNOWN if uid is None else uid
        cost = size * caps.decode_ns * 1e-9
        with self._lock:
            now = time.monotonic()
            debt, decoding = self._owed(key, now)
            burst = caps.unknown_burst if key == UNKNOWN else caps.loop_burst
            over = max(debt - caps.loop_burst, decoding + cost - burst)
            if size > caps.small_message and over > 0:
                whose = "new callers'" if key == UNKNOWN else "this user's"
                return limit_exceeded(
                    f"{whose} messages and calls took more than their share of the daemon's "
                    f"time; try again in {over / caps.loop_share:.1f} s (messages of at "
                    f"most {caps.small_message} bytes still pass)")
            self._add(key, cost, cost, now)
        return None


#: Transaction1 methods never refused for a debt (a client must be able to end what it began)
SPARED = frozenset({"Answer", "Cancel"})


class LoopShare:
    """Each user's share of the event loop, where calls are handled one after another.

    A client may send many calls without waiting for the answers (the bus holds 128 per
    connection, and a user may have 256 connections): 400 GetPackages of 0.3 s each kept
    every other client waiting for three minutes. The event loop's CPU time from one call
    arriving to the next, or to the end of the batch of messages read together, is charged
    to the caller's user (:meth:`gate`); work a call's task does later on the loop is
    charged where it is done (:meth:`metered`). A user owing more than ``loop_burst``
    seconds has its calls refused (before they are dispatched, at the cost of an error
    reply) until its debt, paid back at ``loop_share`` seconds per second, is below that
    again. Root is never refused, nor are Transaction1's Answer and Cancel (a client in debt can
    still answer or cancel its own transaction), though what they cost is charged.
    Decoding a message happens before any handler sees it: it is charged, by size,
    before the daemon reads the message, in the bus relay's thread, into the same debts
    (:class:`Ledger`), and a message its user cannot afford never reaches the loop.

    A new client's calls wait until its uid is known (one round trip to the bus, which
    comes back only after what the client had already sent): otherwise every call a
    client sent at once would be handled before anybody knew whose it was. Calls carrying
    descriptors are never held (their descriptors belong to the message as it is first
    handled; such a call may overtake its client's held ones); they run in the worker
    pool, bounded there.
    """

    def __init__(self, limits: Limits, uid_of: Callable[[str], int | None],
                 learn: Callable[[str], Awaitable[int]],
                 replay: Callable[[Message], None], ledger: Ledger | None = None) -> None:
        self.limits = limits
        self.uid_of = uid_of
        self.learn = learn
        self.replay = replay
        #: each user's debt (the relay charges decoding into it too)
        self.ledger = ledger if ledger is not None else Ledger(limits, uid_of)
        #: the calls of clients whose uid is being asked for, in order
        self.held: dict[str, list[Message]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: the call being handled: its sender and the loop's CPU time when it arrived
        self._current: str | None = None
        self._mark = 0.0
        self._settling = False

    def _key(self, sender: str) -> int | None:
        """The uid to charge for ``sender``; None for root, the daemon's own calls and
        callers not known yet."""
        uid = self.uid_of(sender) if sender else None
        return None if uid is None or uid == 0 else uid

    def charge(self, sender: str, seconds: float) -> None:
        key = self._key(sender)
        if key is not None:
            self.ledger.charge(key, seconds)

    def check(self, sender: str) -> None:
        """LimitExceeded when ``sender``'s user owes more than its burst."""
        key = self._key(sender)
        if key is None:
            return
        debt = self.ledger.owed(key)
        if debt > self.limits.loop_burst:
            wait = (debt - self.limits.loop_burst) / self.limits.loop_share
            raise limit_exceeded(f"this user's calls took more than its share of the "
                                 f"daemon's time; try again in {wait:.1f} s")

    def _settle(self) -> None:
        """Charge the call being handled what the loop spent on it so far."""
        now = time.thread_time()
        if self._current is not None:
            self.charge(self._current, now - self._mark)
        self._current = None

    def _settled(self) -> None:
        self._settling = False
        self._settle()

    def gate(self, msg: Message) -> bool:
        """A message handler (before dispatch): charge the previous call; hold this one
        until its sender's uid is known; refuse it when that user is in debt."""
        self._settle()
        if msg.message_type is not MessageType.METHOD_CALL or not msg.sender:
            return False
        sender = msg.sender
        own = msg.interface == "org.alpm.Transaction1"
        # (a client in debt may still answer or cancel its transaction: charged, not refused;
        # its other calls on it — Run, Simulate, SetHints, GetLog — wait like any other)
        spared = own and msg.member in SPARED
        if not own and "h" not in msg.signature and (sender in self.held
                                                     or self.uid_of(sender) is None):
            self._hold(sender, msg)
            return True
        self._current = sender
        self._mark = time.thread_time()
        if not self._settling:  # (after this batch of messages)
            self._settling = True
            asyncio.get_running_loop().call_soon(self._settled)
        if not spared:
            self.check(sender)
        return False

    def _hold(self, sender: str, msg: Message) -> None:
        waiting = self.held.get(sender)
        if waiting is not None:
            waiting.append(msg)
            return
        self.held[sender] = [msg]
        task = asyncio.ensure_future(self._release(sender))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release(self, sender: str) -> None:
        """Once ``sender``'s uid is known, its held calls are handled (through every
        message handler again, this gate included), in the order they came."""
        try:
            await self.learn(sender)
        except Exception:  # (gone from the bus: nobody is left to answer)
            self.held.pop(sender, None)
            return
        for msg in self.held.pop(sender, []):
            try:
                self.replay(msg)
            except Exception:  # (the library answers a handler's errors itself)
                logging.getLogger("alpmd").exception("a held call could not be handled")

    def metered(self, sender: str) -> _Meter:
        """``with share.metered(sender):`` charges the block's CPU time to ``sender``."""
        return _Meter(self, sender)


class _Meter:
    def __init__(self, share: LoopShare, sender: str) -> None:
        self.share = share
        self.sender = sender
        self.start = 0.0

    def __enter__(self) -> None:
        self.start = time.thread_time()

    def __exit__(self, *_: object) -> None:
        self.share.charge(self.sender, time.thread_time() - self.start)


class Workers:
    """A small thread pool for heavy calls: per-client and total admission, and a deadline.

    A call over its deadline is answered ``Timeout`` at once; its thread finishes on its
    own (the engine bounds what it reads), holding its slot until then, so a client
    cannot pile up more stuck work than its share. A user's clients share one client's
    share (``uid_of`` tells a client's uid): one user opening many connections cannot
    take every slot from the others. Users together take at most ``heavy_total`` slots;
    ``heavy_root`` more are root's (and the daemon's own work's), so two users running
    slow checks cannot keep the administrator's Simulate waiting.
    """

    def __init__(self, limits: Limits = LIMITS,
                 uid_of: Callable[[str], Awaitable[int]] | None = None) -> None:
        self.limits = limits
        self.uid_of = uid_of
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=limits.heavy_total + limits.heavy_root, thread_name_prefix="alpmd-heavy")
        self.running: collections.Counter[str] = collections.Counter()
        self.by_uid: collections.Counter[int] = collections.Counter()
        self.total = 0
        #: of which users' (all but root's)
        self.users = 0

    async def run(self, client: str, deadline: float, fn: Callable[[], R], what: str,
                  refused: Callable[[], None] | None = None, uid: int | None = None) -> R:
        """``fn()`` in a worker thread; LimitExceeded (after ``refused()``) when the client or
        the daemon has no slot free, Timeout past ``deadline``. ``uid``: the client's, when
        the caller knows it already."""
        if uid is None:
            uid = 0
            try:
                if self.uid_of is not None and client:
                    uid = await self.uid_of(client)
            except BaseException:
                if refused is not None:
                    refused()
                raise
        why = ""
        if uid > 0 and self.users >= self.limits.heavy_total:
            why = f"the daemon is busy with {self.users} users' heavy calls; try later"
        elif self.total >= self.limits.heavy_total + self.limits.heavy_root:
            why = f"the daemon is busy with {self.total} heavy calls; try later"
        elif self.running[client] >= self.limits.heavy_per_client:
            why = (f"this client has {self.running[client]} heavy calls running "
                   f"(at most {self.limits.heavy_per_client})")
        elif uid > 0 and self.by_uid[uid] >= self.limits.heavy_per_client:
            why = (f"this user's clients have {self.by_uid[uid]} heavy calls running "
                   f"(at most {self.limits.heavy_per_client})")
        if why:
            if refused is not None:
                refused()
            raise limit_exceeded(why)
        self.total += 1
        self.running[client] += 1
        if uid > 0:
            self.by_uid[uid] += 1
            self.users += 1
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self.pool, fn)

        def release(_: object) -> None:
            self.total -= 1
            self.running[client] -= 1
            if self.running[client] <= 0:
                del self.running[client]
            if uid > 0:
                self.users -= 1
                self.by_uid[uid] -= 1
                if self.by_uid[uid] <= 0:
                    del self.by_uid[uid]
        fut.add_done_callback(release)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), deadline)
        except TimeoutError:
            fut.add_done_callback(_consume)
            raise errors.code_text(errors.TIMEOUT, "timeout",
                                   f"{what} took longer than {deadline:g} s") from None


def _consume(fut: asyncio.Future[R]) -> None:
    """Read a late result or error, so nothing is logged as 'never retrieved'."""
    if not fut.cancelled():
        fut.exception()
