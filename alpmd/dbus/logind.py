"""Shutdown inhibition through logind while a commit runs, where logind exists.

``org.freedesktop.login1.Manager.Inhibit`` hands back a file descriptor; the lock
lasts until it is closed. The call goes over a short-lived connection to the real
system bus (where logind lives even when the daemon serves a private test bus).
Without logind (containers, test machines) nothing happens and nothing waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

log = logging.getLogger("alpmd")
SYSTEM_BUS = "/run/dbus/system_bus_socket"
LOGIND_RUNTIME = "/run/systemd/inhibit"


def available() -> bool:
    """logind runs here: systemd is PID 1 and the system bus socket exists."""
    try:
        with open("/proc/1/comm", encoding="ascii") as fh:
            pid1 = fh.read().strip()
    except OSError:
        return False
    return pid1 == "systemd" and os.path.exists(SYSTEM_BUS)


async def inhibit(what: str, who: str, why: str, *, timeout: float = 2.0) -> int | None:
    """A ``block`` inhibitor lock: its fd, or ``None`` without logind (never raises)."""
    if not available():
        return None
    try:
        return await asyncio.wait_for(_inhibit(what, who, why), timeout)
    except Exception as exc:  # logind must never stop a commit
        log.debug("logind inhibit failed: %s", exc)
        return None


def release(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


async def _inhibit(what: str, who: str, why: str) -> int | None:
    from dbus_fast import Message, MessageType
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_address=f"unix:path={SYSTEM_BUS}", negotiate_unix_fd=True).connect()
    try:
        reply = await bus.call(Message(
            destination="org.freedesktop.login1", path="/org/freedesktop/login1",
            interface="org.freedesktop.login1.Manager", member="Inhibit", signature="ssss",
            body=[what, who, why, "block"]))
        if reply is None or reply.message_type is not MessageType.METHOD_RETURN \
                or not reply.unix_fds:
            for fd in (reply.unix_fds if reply is not None else []):
                release(fd)
            return None
        keep: int = reply.unix_fds[0]
        for fd in reply.unix_fds[1:]:
            release(fd)
        return keep
    finally:
        bus.disconnect()
