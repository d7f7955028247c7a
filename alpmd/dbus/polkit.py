"""Authorisation through polkit's CheckAuthorization with a system-bus-name subject.

The subject is the caller's unique bus name, so polkit itself resolves its
process and user (no race on a pid we would pass). Root is authorised without
asking (it could run pacman anyway; the refresh timer calls as root).
"""

from __future__ import annotations

from collections.abc import Mapping

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.signature import Variant

from alpmd.dbus import errors

ALLOW_USER_INTERACTION = 1


async def check(bus: MessageBus, sender: str, uid: int, action: str,
                details: Mapping[str, str], *, interactive: bool) -> None:
    """Return when ``sender`` may do ``action``; raise NotAuthorized otherwise."""
    if uid == 0:
        return
    subject = ["system-bus-name", {"name": Variant("s", sender)}]
    msg = Message(destination="org.freedesktop.PolicyKit1",
                  path="/org/freedesktop/PolicyKit1/Authority",
                  interface="org.freedesktop.PolicyKit1.Authority",
                  member="CheckAuthorization", signature="(sa{sv})sa{ss}us",
                  body=[subject, action, dict(details),
                        ALLOW_USER_INTERACTION if interactive else 0, ""])
    reply = await bus.call(msg)
    if reply.message_type is MessageType.ERROR:
        raise errors.code_text(errors.NOT_AUTHORIZED, "not-authorized",
                               f"polkit could not check {action}: {reply.error_name}")
    authorized, challenge, _details = reply.body[0]
    if not authorized:
        why = "authentication required" if challenge else "refused by policy"
        raise errors.code_text(errors.NOT_AUTHORIZED, "not-authorized",
                               f"not authorized for {action} ({why})")
