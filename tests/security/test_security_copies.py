"""Package files a client passed, copied for a transaction whose client leaves during the
copy (attack round 5; the test failed on the daemon before its fix)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType

from alpmd.dbus.bus import connect
from tests.security.secworld import World, as_user, build_world, manager_property

#: install-file is granted (an administrator's client); everything else is refused
INSTALL_FILES = """\
polkit.addRule(function(action, subject) {
    if (action.id == "org.alpm.install-file") { return polkit.Result.YES; }
    if (action.id.indexOf("org.alpm.") == 0) { return polkit.Result.NO; }
});
"""
#: the package file passed: large enough that its copy outlasts a round trip many times
SIZE = 256 << 20


@pytest.fixture
def files_world(tmp_path: Path, user: str) -> Iterator[World]:
    # room for one copy at a time: one that is never given back refuses the next
    yield from build_world(tmp_path, user, rules=INSTALL_FILES,
                           daemon_args=["--limit", f"file_bytes_total={SIZE * 3 // 2}"])


def _leave_during_the_copy(address: str, path: str) -> str:
    """InstallFiles of ``path``; the client leaves as soon as its transaction is announced
    (the object is made before the copy starts); the transaction's path."""
    async def go() -> str:
        bus = await connect(address)
        announced: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def heard(msg: Message) -> bool:
            if (msg.message_type is MessageType.SIGNAL and msg.member == "InterfacesAdded"
                    and not announced.done()):
                announced.set_result(msg.body[0])
            return False
        bus.add_message_handler(heard)
        await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                               interface="org.freedesktop.DBus", member="AddMatch",
                               signature="s", body=["type='signal',sender='org.alpm',"
                                                    "member='InterfacesAdded'"]))
        fd = os.open(path, os.O_RDONLY)
        try:
            await bus.send(Message(destination="org.alpm", path="/org/alpm",
                                   interface="org.alpm.Manager1", member="InstallFiles",
                                   signature="aha{sv}", body=[[0], {}], unix_fds=[fd]))
        finally:
            os.close(fd)
        made = await asyncio.wait_for(announced, 60)
        bus.disconnect()
        return made
    return asyncio.run(asyncio.wait_for(go(), 120))


def _copies(world: World) -> list[str]:
    incoming = world.root.root.root / "var/lib/alpmd/incoming"
    return sorted(os.listdir(incoming)) if incoming.exists() else []


def _until_gone(world: World, path: str) -> Any:
    """The Transactions list once ``path`` left it (a hang bound, not a timing)."""
    for _ in range(600):
        paths = manager_property(world, "Transactions")
        if path not in paths:
            return paths
        time.sleep(0.1)
    raise AssertionError(f"{path} stayed on the bus")


def test_a_client_that_leaves_during_the_copy_leaves_no_copy(files_world: World) -> None:
    """Before: the transaction ended when its client left, then the copy finished and was
    given to it: the 256 MiB copy stayed in root's incoming directory and counted against
    the daemon's room for package files until a restart (here the next InstallFiles was
    refused: LimitExceeded)."""
    world = files_world
    package = world.public / "big.pkg.tar.zst"
    with open(package, "wb") as fh:
        fh.truncate(SIZE)
    package.chmod(0o644)
    made = as_user(world.user, lambda: _leave_during_the_copy(world.env.address, str(package)))
    _until_gone(world, made)
    for _ in range(600):  # the copy that was running ends, and is removed then
        if not _copies(world):
            break
        time.sleep(0.1)
    assert _copies(world) == []
    # the room it took is given back: the same file again fits
    again = world.hostile([{"iface": "org.alpm.Manager1", "member": "InstallFiles",
                            "sig": "aha{sv}", "body": [[0], {}],
                            "fds": [{"open": str(package)}]}])
    assert "ok" in again[0], again
    _until_gone(world, again[0]["ok"][0])  # (its client has left too: dropped, copy removed)
    assert _copies(world) == []
    world.healthy()
