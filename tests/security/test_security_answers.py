"""Answers to a transaction's questions that are no valid choice take the default (attack
round 5; the test failed on the daemon before its fix)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dbus.dbus_e2e import Client
from tests.security.secworld import World, build_world
from tests.security.test_security_plan import INSTALL_ONLY

MANAGER = {"iface": "org.alpm.Manager1"}


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
