"""A hostile client: run as an unprivileged user, it sends the calls a JSON script lists.

:func:`run` (or ``python hostile.py ADDRESS`` with the script on stdin) takes
``{"calls": [...], "repeat": n, "linger": s}`` and gives one result per call: ``{"ok": ...}`` or ``{"error": name, "text":
...}`` (or ``{"timeout": true}``). Each call is ``{"path", "iface", "member", "sig",
"body", "fds"}``; a body value ``{"v": [sig, value]}`` is a Variant, and each fd spec
is one of ``{"open": path, "flags": ["O_RDONLY", "O_PATH", ...]}``, ``{"fifo": path}``,
``{"socket": true}``, ``{"closed": true}``, ``{"pipe": "r"}``; ``{"ref": i}`` (as a
path or a value) is what call ``i`` returned. The calls share one bus
connection (the same client), which is closed at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import sys
from typing import Any

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.signature import Variant

FLAGS = {name: getattr(os, name) for name in ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_PATH",
                                              "O_NONBLOCK", "O_DIRECTORY", "O_NOFOLLOW")}


def decode(value: Any, done: list[dict[str, Any]] | None = None) -> Any:
    """JSON → D-Bus values; ``{"ref": i}`` is the first value call ``i`` returned."""
    if isinstance(value, dict):
        if set(value) == {"v"}:
            sig, inner = value["v"]
            return Variant(sig, decode(inner, done))
        if set(value) == {"ref"}:
            got = (done or [])[value["ref"]].get("ok") or ["/org/alpm/transaction/0"]
            return got[0]
        return {k: decode(v, done) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, done) for v in value]
    return value


def encode(value: Any) -> Any:
    if isinstance(value, Variant):
        return {"v": [value.signature, encode(value.value)]}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def open_fd(spec: dict[str, Any], keep: list[Any]) -> int:
    if "open" in spec:
        flags = 0
        for name in spec.get("flags", ["O_RDONLY"]):
            flags |= FLAGS[name]
        return os.open(spec["open"], flags)
    if "fifo" in spec:
        return os.open(spec["fifo"], os.O_RDONLY | os.O_NONBLOCK)
    if "socket" in spec:  # (the caller closes the sent end: detached, so that no socket
        a, b = socket.socketpair()  # object closes its number again once it is reused)
        keep.append(b)
        return a.detach()
    if "pipe" in spec:
        r, w = os.pipe()
        sent, other = (r, w) if spec["pipe"] == "r" else (w, r)
        keep.append(other)  # (closed at the end, not leaked)
        return sent
    if "closed" in spec:  # a number nothing here opens (the highest free one: the lowest
        fd = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1  # would be the next one's)
        while is_open(fd):
            fd -= 1
        return fd
    raise ValueError(spec)


async def run(address: str, script: dict[str, Any]) -> list[dict[str, Any]]:
    """Send the script's calls on one connection; their results."""
    bus = await MessageBus(bus_address=address, negotiate_unix_fd=True).connect()
    heard: list[list[Any]] = []
    if script.get("watch"):
        def listen(msg: Message) -> bool:
            if msg.message_type is MessageType.SIGNAL and msg.path.startswith("/org/alpm/"):
                changed: list[Any] = []
                if msg.member == "PropertiesChanged":
                    changed = list(msg.body[1])
                elif msg.member == "InterfacesAdded":
                    props = msg.body[1].get("org.alpm.Transaction1", {})
                    changed = [[k, encode(x.value)] for k, x in props.items()
                               if k in ("Targets", "Options", "Sender", "Plan")]
                heard.append([msg.path, msg.member, changed])
            return False
        bus.add_message_handler(listen)
        await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                               interface="org.freedesktop.DBus", member="AddMatch",
                               signature="s", body=["type='signal',sender='org.alpm'"]))
        if script.get("ready"):
            with open(script["ready"], "w") as fh:
                fh.write("ready")
    keep: list[Any] = []
    out: list[dict[str, Any]] = []
    fresh = False
    for _ in range(int(script.get("repeat", 1))):
        for call in script["calls"]:
            # (a paced client: what the user's share of the daemon's time lets through)
            await asyncio.sleep(float(call.get("pause", 0)))
            # (connect before opening the call's descriptors, and close only this client's
            # own afterwards: a descriptor's number reused by a connection, or the reverse,
            # sent the bus socket away or wrote the calls into a socketpair, and the client hung)
            if fresh or not bus.connected:
                fresh = False
                if bus.connected:  # (a timed-out call's message may still be queued in
                    bus.disconnect()  # it, naming descriptors since closed and reused)
                bus = await MessageBus(bus_address=address, negotiate_unix_fd=True).connect()
            try:
                fds = [open_fd(s, keep) for s in call.get("fds", [])]
            except OSError as exc:
                out.append({"send-error": f"open: {exc}"})
                continue
            good = [fd for fd in fds if fd >= 0]
            # (the descriptors to close afterwards: this client's own, not a closed one's number)
            mine = [fd for fd, s in zip(fds, call.get("fds", []), strict=True) if "closed" not in s]
            if call.get("signal"):  # a unicast signal to the daemon (no reply comes)
                try:
                    await bus.send(Message(
                        destination="org.alpm", path=decode(call.get("path", "/org/alpm"), out),
                        interface=call["iface"], member=call["member"],
                        message_type=MessageType.SIGNAL, signature=call.get("sig", ""),
                        body=decode(call.get("body", []), out), unix_fds=good))
                    # a round trip: the signal went out before this returns
                    await bus.call(Message(destination="org.freedesktop.DBus",
                                           path="/org/freedesktop/DBus",
                                           interface="org.freedesktop.DBus", member="GetId"))
                    out.append({"sent": True})
                finally:
                    for fd in mine:
                        os.close(fd)
                continue
            try:
                msg = Message(destination="org.alpm",
                              path=decode(call.get("path", "/org/alpm"), out),
                              interface=call.get("iface"), member=call["member"],
                              signature=call.get("sig", ""),
                              body=decode(call.get("body", []), out), unix_fds=good)
                reply = await asyncio.wait_for(bus.call(msg), call.get("timeout", 60))
            except TimeoutError:
                out.append({"timeout": True})
                fresh = True  # (the bus drops a client that sends too many descriptors)
                continue
            except Exception as exc:  # a send failure (a closed fd...): the daemon is fine
                out.append({"send-error": type(exc).__name__})
                if any(s.get("closed") for s in call.get("fds", [])):
                    fresh = True  # the library dropped the connection
                continue
            finally:
                for fd in mine:
                    os.close(fd)
            if reply.message_type is MessageType.ERROR:
                out.append({"error": reply.error_name,
                            "text": reply.body[0] if reply.body else ""})
            else:
                out.append({"ok": encode(reply.body)})
    await asyncio.sleep(float(script.get("linger", 0)))
    if bus.connected:
        bus.disconnect()
    for kept in keep:
        if isinstance(kept, int):
            os.close(kept)
        else:
            kept.close()
    if script.get("watch"):
        out.append({"signals": heard})
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1], json.load(sys.stdin)))))
