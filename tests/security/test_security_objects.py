"""What the bus library answers by itself from the daemon's objects, and what a client's
answers to questions may be (attack round 5). Each test failed on the daemon before its
fix (said per test)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alpmd.dbus.limits import LIMITS
from tests.dbus.dbus_e2e import Client
from tests.security.secworld import World, build_world, named
from tests.security.test_security_plan import INSTALL_ONLY

MANAGER = {"iface": "org.alpm.Manager1"}
OBJECTS = {"iface": "org.freedesktop.DBus.ObjectManager", "member": "GetManagedObjects"}


def _install(targets: list[str]) -> dict[str, Any]:
    return {**MANAGER, "member": "Install", "sig": "asa{sv}", "body": [targets, {}]}


def test_all_objects_at_once_cannot_take_the_daemon_off_the_bus(world: World) -> None:
    """One client's 32 transactions, each with targets of 1 Mi characters (the caps), then
    GetManagedObjects: dbus-fast answers it by itself with every property of every object,
    and a client sees its own transactions' targets: 33 MB, past the bus's 32 MiB. Before:
    the bus dropped the daemon's connection for it and the daemon exited (0.3 s, one
    unprivileged connection)."""
    targets = [f"{i:05d}" + "x" * (LIMITS.target_length - 6) for i in range(2048)]
    assert sum(map(len, targets)) <= LIMITS.targets_length
    first = [_install(targets), {**OBJECTS, "path": "/"}]
    rest = [_install(targets)] * (LIMITS.transactions_per_client - 1)
    results = world.hostile([*first, *rest, {**OBJECTS, "path": "/"},
                             {"path": {"ref": 0}, "iface": "org.freedesktop.DBus.Properties",
                              "member": "Get", "sig": "ss",
                              "body": ["org.alpm.Transaction1", "Targets"]}])
    path = results[0]["ok"][0]
    # with one transaction the answer is sent, the owner's targets in it
    objects = results[1]["ok"][0]
    assert objects[path]["org.alpm.Transaction1"]["Targets"]["v"][1] == targets
    assert all("ok" in r for r in results[2:-2]), [r for r in results[2:-2] if "ok" not in r]
    # with all 32 it would be larger than the answer cap: refused, and the daemon stays
    assert named(results[-2]) == "org.alpm.Error.LimitExceeded", results[-2]
    assert str(LIMITS.reply_bytes) in results[-2]["text"]
    assert results[-1]["ok"][0]["v"][1] == targets  # one object at a time still answers
    world.healthy()


@pytest.fixture
def install_only(tmp_path: Path, user: str) -> Iterator[World]:
    yield from build_world(tmp_path, user, rules=INSTALL_ONLY)


def test_an_answer_of_infinity_takes_the_default(install_only: World) -> None:
    """``editor`` needs one of two providers; the user (allowed to install) answers the
    question with a ``d`` infinity, an index no integer can hold. Before: OverflowError,
    the transaction failed with Internal and a traceback in the daemon's log."""
    world = install_only
    infinity = {"v": ["d", float("inf")]}
    results = world.hostile([
        {**MANAGER, "member": "Install", "sig": "asa{sv}",
         "body": [["editor"], {"no-sysupgrade": {"v": ["b", True]}}]},
        {"path": {"ref": 0}, "iface": "org.alpm.Transaction1", "member": "SetHints",
         "sig": "a{sv}", "body": [{"answers": {"v": ["a{sv}", {"SelectProvider": infinity}]}}]},
        {"path": {"ref": 0}, "iface": "org.alpm.Transaction1", "member": "Run"}], linger=6)
    assert all("ok" in r for r in results), results
    path = results[0]["ok"][0]

    async def outcome() -> tuple[tuple[str, str, str], list[Any]]:
        c = await Client.open(world.env.address)
        try:
            ended = await c.finished(path, timeout=30)
            return ended, await c.tx(path, "GetLog")
        finally:
            c.close()
    (res, err, text), log = asyncio.run(asyncio.wait_for(outcome(), 40))
    assert (res, err) == ("success", ""), (res, err, text)
    installed = world.root.installed()
    assert installed.get("editor") == "1.0-1" and "prov-a" in installed  # the default: 0
    assert "prov-b" not in installed
    assert any("SelectProvider" in row[3] and "not a valid choice" in row[3] for row in log)
    world.healthy()
