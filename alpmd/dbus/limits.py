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
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from dbus_fast import Message, MessageType
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
    #: heavy calls running at once per bus client (and per uid but root's) / in total
    #: (more are refused)
    heavy_per_client: int = 2
    heavy_total: int = 4
    targets: int = 10_000
    target_length: int = 512
    #: an answer's size on the wire (bytes): the bus drops a connection that sends a message
    #: over its own limit (dbus-daemon: 32 MiB), and the daemon would leave the bus with it
    reply_bytes: int = 16 << 20
    #: SetHints ``answers``: their size on the wire (bytes; they are kept with the transaction)
    answers_bytes: int = 64 << 10
    #: the event loop's time a user's queries may take (see :class:`LoopShare`): this share
    #: of it on average, after a burst of this many seconds
    loop_share: float = 0.25
    loop_burst: float = 2.0


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


def limit_exceeded(message: str) -> Exception:
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


#: the one bucket of the callers whose uid is not known yet (see :class:`LoopShare`)
_UNKNOWN = -1


class LoopShare:
    """Each user's share of the event loop, where queries are answered one after another.

    A client may send many calls without waiting for the answers (the bus holds 128 per
    connection, and a user may have 256 connections): 400 GetPackages of 0.3 s each kept
    every other client waiting for three minutes. What each query costs on the loop is
    charged to its user (:meth:`charge`); a user owing more than ``loop_burst`` seconds
    has its calls refused (:meth:`gate`, before they are dispatched, at the cost of an
    error reply) until its debt, paid back at ``loop_share`` seconds per second, is below
    that again. Callers whose uid is not known yet (their first calls) share one bucket;
    root is never refused. Transaction1's methods are let through (a client in debt can
    still answer or cancel its own transaction)."""

    def __init__(self, limits: Limits, uid_of: Callable[[str], int | None]) -> None:
        self.limits = limits
        self.uid_of = uid_of
        #: per uid: (debt in seconds, when it was last brought up to date)
        self.debts: dict[int, tuple[float, float]] = {}

    def _key(self, sender: str) -> int | None:
        """The bucket of ``sender``; None for root and the daemon's own calls."""
        if not sender:
            return None
        uid = self.uid_of(sender)
        if uid == 0:
            return None
        return _UNKNOWN if uid is None else uid

    def _debt(self, key: int, now: float) -> float:
        debt, when = self.debts.get(key, (0.0, now))
        return max(0.0, debt - (now - when) * self.limits.loop_share)

    def charge(self, sender: str, seconds: float) -> None:
        key = self._key(sender)
        if key is None:
            return
        now = time.monotonic()
        self.debts[key] = (self._debt(key, now) + seconds, now)
        if len(self.debts) > 4096:  # (users long paid up)
            self.debts = {k: v for k, v in self.debts.items() if self._debt(k, now) > 0}

    def check(self, sender: str) -> None:
        """LimitExceeded when ``sender``'s user owes more than its burst."""
        key = self._key(sender)
        if key is None or key not in self.debts:
            return
        debt = self._debt(key, time.monotonic())
        if debt > self.limits.loop_burst:
            wait = (debt - self.limits.loop_burst) / self.limits.loop_share
            raise limit_exceeded(f"this user's queries took more than its share of the "
                                 f"daemon's time; try again in {wait:.1f} s")

    def gate(self, msg: Message) -> bool:
        """A message handler (before dispatch): refuse a call of a user in debt."""
        if msg.message_type is MessageType.METHOD_CALL \
                and msg.interface != "org.alpm.Transaction1":
            self.check(msg.sender or "")
        return False

    def metered(self, sender: str) -> _Meter:
        """``with share.metered(sender):`` charges the block's time to ``sender``."""
        return _Meter(self, sender)


class _Meter:
    def __init__(self, share: LoopShare, sender: str) -> None:
        self.share = share
        self.sender = sender
        self.start = 0.0

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        self.share.charge(self.sender, time.perf_counter() - self.start)


class Workers:
    """A small thread pool for heavy calls: per-client and total admission, and a deadline.

    A call over its deadline is answered ``Timeout`` at once; its thread finishes on its
    own (the engine bounds what it reads), holding its slot until then, so a client
    cannot pile up more stuck work than its share. A user's clients share one client's
    share (``uid_of`` tells a client's uid): one user opening many connections cannot
    take every slot from the others.
    """

    def __init__(self, limits: Limits = LIMITS,
                 uid_of: Callable[[str], Awaitable[int]] | None = None) -> None:
        self.limits = limits
        self.uid_of = uid_of
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=limits.heavy_total, thread_name_prefix="alpmd-heavy")
        self.running: collections.Counter[str] = collections.Counter()
        self.by_uid: collections.Counter[int] = collections.Counter()
        self.total = 0

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
        if self.total >= self.limits.heavy_total:
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
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self.pool, fn)

        def release(_: object) -> None:
            self.total -= 1
            self.running[client] -= 1
            if self.running[client] <= 0:
                del self.running[client]
            if uid > 0:
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
