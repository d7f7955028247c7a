"""A caller that has left the bus gets nothing started for it: its calls handled late (held
until its uid was known, or answered by the bus just before it left) are refused, so no
transaction is made that nobody would drop (it counted against the user's transactions)."""

from __future__ import annotations

import asyncio

import pytest
from dbus_fast.errors import DBusError

from alpmd.dbus import bus as busmod
from alpmd.dbus import errors
from alpmd.dbus.authority import DEPARTED, Authority
from alpmd.testing.dbusenv import DBusEnv, have_tools

pytestmark = pytest.mark.skipif(have_tools() is not None, reason=f"no private bus: {have_tools()}")


def test_a_departed_caller_is_refused_even_with_its_uid_known() -> None:
    with DBusEnv() as env:
        async def go() -> None:
            daemon = await busmod.connect(env.address, system=False)
            client = await busmod.connect(env.address, system=False)
            try:
                auth = Authority(daemon)
                name = str(client.unique_name)
                # its uid asked for; the bus answers, but the client's departure is handled
                # first (both came in one read)
                asking = asyncio.ensure_future(auth.uid(name))
                await asyncio.sleep(0)
                auth.forget(name)
                with pytest.raises(DBusError) as got:
                    await asking
                assert got.value.type == errors.NOT_AUTHORIZED
                assert name not in auth.uids
                with pytest.raises(DBusError):
                    await auth.uid(name)
                with pytest.raises(DBusError):
                    auth.still_here(name)
                # remembered within a bound
                for i in range(DEPARTED + 10):
                    auth.forget(f":9.{i}")
                assert len(auth.departed) == DEPARTED and name not in auth.departed
            finally:
                client.disconnect()
                daemon.disconnect()
        asyncio.run(asyncio.wait_for(go(), 60))
