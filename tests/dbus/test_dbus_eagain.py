"""The EAGAIN fix: a full socket buffer must mean "wait", never "disconnect"."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from dbus_fast import Message, MessageType
from dbus_fast.annotations import DBusSignature
from dbus_fast.service import ServiceInterface, dbus_method, dbus_signal

from alpmd.dbus.bus import connect
from alpmd.testing.dbusenv import DBusEnv

ROW = "x" * 100
Rows = Annotated[list[list[Any]], DBusSignature("a(sus)")]
Str = Annotated[str, DBusSignature("s")]
U = Annotated[int, DBusSignature("u")]


class Flood(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.alpm.Test1")

    @dbus_signal()
    def Tick(self, n: U) -> U:
        return n

    @dbus_method()
    def Rows(self, n: U) -> Rows:
        return [[f"pkg{i}", i, ROW] for i in range(n)]

    @dbus_method()
    def Burst(self, n: U) -> U:
        for i in range(n):
            self.Tick(i)
        return n


def test_signal_burst_and_concurrent_big_replies(bus_env: DBusEnv, arun: Any) -> None:
    async def go() -> tuple[int, int, bool]:
        server = await connect(bus_env.address)
        client = await connect(bus_env.address)
        try:
            server.export("/t", Flood())
            await server.request_name("org.alpm.Test")
            got = 0
            done = asyncio.Event()

            def on_msg(msg: Message) -> bool:
                nonlocal got
                if msg.message_type is MessageType.SIGNAL and msg.member == "Tick":
                    got += 1
                    if got == 10_000:
                        done.set()
                return False
            client.add_message_handler(on_msg)
            await client.call(Message(destination="org.freedesktop.DBus",
                                      path="/org/freedesktop/DBus",
                                      interface="org.freedesktop.DBus", member="AddMatch",
                                      signature="s",
                                      body=[f"type='signal',sender='{server.unique_name}'"]))
            # The burst from inside the server (no await between the sends).
            server_iface = server._path_exports["/t"]["org.alpm.Test1"]
            for i in range(10_000):
                server_iface.Tick(i)
            await asyncio.wait_for(done.wait(), 60)

            async def rows() -> int:
                reply = await client.call(Message(destination="org.alpm.Test", path="/t",
                                                  interface="org.alpm.Test1", member="Rows",
                                                  signature="u", body=[1000]))
                assert reply.message_type is MessageType.METHOD_RETURN, reply.body
                return len(reply.body[0])
            sizes = await asyncio.gather(*(rows() for _ in range(128)))
            return got, sum(sizes), server.connected and client.connected
        finally:
            server.disconnect()
            client.disconnect()
    got, rows, connected = arun(go(), timeout=120)
    assert got == 10_000
    assert rows == 128 * 1000
    assert connected
