"""Who may do what: the caller's uid from the bus, the decision from polkit.

Checked before the daemon keeps anything of the caller's (descriptors, file
copies) and again for what a resolved plan really does (a downgrade or a
removal needs its own action, whatever the options said).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from alpmd.dbus import bus as busmod
from alpmd.dbus import errors, polkit

#: Which polkit action each kind needs at Run time.
ACTIONS = {"refresh": "org.alpm.refresh", "sysupgrade": "org.alpm.sysupgrade",
           "install": "org.alpm.install", "install-files": "org.alpm.install-file",
           "remove": "org.alpm.remove", "set-reason": "org.alpm.set-reason",
           "clean-cache": "org.alpm.clean-cache", "trust-key": "org.alpm.trust-key",
           "convert-database": "org.alpm.convert-database"}
#: What a plan row's action needs besides its kind's action.
PLAN_ACTIONS = {"downgrade": "org.alpm.downgrade", "remove": "org.alpm.remove"}
#: Reading other users' transactions and history in full (administrators).
VIEW_FOREIGN = "org.alpm.view-foreign"


def plan_actions(kind: str, rows: Iterable[str]) -> list[str]:
    """The actions a plan's rows (their ``action`` values) need beyond ``kind``'s."""
    own = ACTIONS.get(kind)
    out: list[str] = []
    for action in rows:
        need = PLAN_ACTIONS.get(action)
        if need is not None and need != own and need not in out:
            out.append(need)
    return out


#: departed bus names remembered (a call of one arrives at most a few round trips late)
DEPARTED = 4096


class Authority:
    """polkit's answers for bus callers."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.uids: dict[str, int] = {}
        #: names that have left the bus, the newest last (the bus never gives a unique
        #: name twice): a call of one handled late (held until its uid was known, or
        #: answered by the bus just before it left) is refused, not given a transaction
        #: that nobody will drop; the oldest are forgotten past :data:`DEPARTED`
        self.departed: dict[str, None] = {}
        self._asking: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        bus.add_message_handler(self._prefetch)

    def _prefetch(self, msg: Message) -> bool:
        """Learn a new caller's uid as soon as it calls anything: property reads (answered
        at once, without a chance to ask the bus) then know whose they are."""
        sender = msg.sender
        if (msg.message_type is MessageType.METHOD_CALL and sender
                and sender not in self.uids and sender not in self._asking):
            self._asking.add(sender)
            task = asyncio.ensure_future(self._learn(sender))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return False

    async def _learn(self, sender: str) -> None:
        try:
            await self.uid(sender)
        except Exception:
            pass
        finally:
            self._asking.discard(sender)

    async def uid(self, sender: str) -> int:
        """The caller's uid (from the bus daemon; NotAuthorized once it has left)."""
        known = self.uids.get(sender)
        if known is not None:
            return known
        self.still_here(sender)
        try:
            uid = await busmod.caller_uid(self.bus, sender)
        except LookupError as exc:
            raise errors.code_text(errors.NOT_AUTHORIZED, "not-authorized",
                                   f"the caller has left the bus ({exc})") from None
        self.still_here(sender)  # (it may have left while the bus answered)
        self.uids[sender] = uid
        return uid

    def still_here(self, sender: str) -> None:
        """NotAuthorized when ``sender`` has left the bus."""
        if sender in self.departed:
            raise errors.code_text(errors.NOT_AUTHORIZED, "not-authorized",
                                   "the caller has left the bus")

    def forget(self, sender: str) -> None:
        """``sender`` left the bus."""
        self.uids.pop(sender, None)
        self._asking.discard(sender)
        self.departed[sender] = None
        if len(self.departed) > DEPARTED:
            del self.departed[next(iter(self.departed))]

    async def check(self, sender: str, action: str, details: Mapping[str, str], *,
                    interactive: bool = False) -> None:
        """Return when ``sender`` may do ``action``; NotAuthorized otherwise."""
        if not sender:  # a call from inside the daemon
            return
        uid = await self.uid(sender)
        await polkit.check(self.bus, sender, uid, action, details, interactive=interactive)

    async def may_view_foreign(self, sender: str) -> bool:
        """Root, or whoever polkit lets read other users' transactions (no prompt)."""
        if not sender:
            return True
        try:
            await self.check(sender, VIEW_FOREIGN, {}, interactive=False)
        except Exception:
            return False
        return True
