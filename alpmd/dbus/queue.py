"""The writer queue: one change at a time, first come first served.

Identical refresh/upgrade requests queued together are merged: the later ones
follow the first and finish with its result. A cancelled leader hands its
place to its first follower.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING

from alpmd.dbus import limits

if TYPE_CHECKING:
    from alpmd.dbus.transaction import TransactionObject

MERGEABLE = ("refresh", "sysupgrade")


class WriterQueue:
    """FIFO of authorised transactions and who follows whom."""

    def __init__(self, caps: limits.Limits = limits.LIMITS) -> None:
        self.caps = caps
        self.items: collections.deque[TransactionObject] = collections.deque()
        self.followers: dict[int, list[TransactionObject]] = {}
        self._wakeup = asyncio.Event()

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def waiting(self) -> list[TransactionObject]:
        """Everything queued, followers included."""
        out = list(self.items)
        for group in self.followers.values():
            out.extend(group)
        return out

    def check_room(self, sender: str) -> None:
        """LimitExceeded when ``sender`` may not queue one more (before authorising it)."""
        limits.check_queue(self.waiting(), sender, self.caps)

    def push(self, t: TransactionObject) -> None:
        if t.kind in MERGEABLE:
            for other in self.items:
                if other.kind == t.kind and other.opts == t.opts and other.state == "queued":
                    self.followers.setdefault(other.n, []).append(t)
                    t.set_state("queued")
                    t.add_log("info", "daemon", f"merged with transaction {other.n}")
                    return
        t.set_state("queued")
        self.items.append(t)
        self._wakeup.set()

    async def pop(self) -> TransactionObject:
        while not self.items:
            self._wakeup.clear()
            await self._wakeup.wait()
        return self.items.popleft()

    def remove(self, t: TransactionObject) -> None:
        """Take ``t`` out; a cancelled leader hands its place to its followers."""
        followers = self.followers.pop(t.n, [])
        if t in self.items:
            idx = self.items.index(t)
            if followers:
                self.items[idx] = self._promote(followers)
            else:
                del self.items[idx]
        for group in self.followers.values():
            if t in group:
                group.remove(t)

    def _promote(self, followers: list[TransactionObject]) -> TransactionObject:
        """The first follower leads the rest (its leader was cancelled: theirs was not)."""
        lead, rest = followers[0], followers[1:]
        if rest:
            self.followers[lead.n] = rest
        lead.add_log("info", "daemon", "the transaction it was merged with was cancelled; "
                     "running it on its own")
        return lead

    def finished(self, t: TransactionObject) -> list[TransactionObject]:
        """``t`` is done: the followers that share its result (a cancelled leader's
        followers are queued again, first, and none is returned)."""
        followers = self.followers.pop(t.n, [])
        if followers and t.result == "cancelled":
            self.items.appendleft(self._promote(followers))
            self._wakeup.set()
            return []
        return followers
