"""What the plan does is authorised, and a client that leaves never holds the queue
(issue 10, findings 7 and 11)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dbus.dbus_e2e import Client, v
from tests.security.secworld import World, build_world

#: install and partial upgrades are granted; everything else (downgrade) is refused
INSTALL_ONLY = """\
polkit.addRule(function(action, subject) {
    if (action.id == "org.alpm.install" || action.id == "org.alpm.no-sysupgrade") {
        return polkit.Result.YES;
    }
    if (action.id.indexOf("org.alpm.") == 0) { return polkit.Result.NO; }
});
"""
WITH_DOWNGRADE = INSTALL_ONLY.replace('action.id == "org.alpm.no-sysupgrade"',
                                      'action.id == "org.alpm.no-sysupgrade" || '
                                      'action.id == "org.alpm.downgrade"')


@pytest.fixture
def install_only(tmp_path: Path, user: str) -> Iterator[World]:
    yield from build_world(tmp_path, user, rules=INSTALL_ONLY)


def _install_tool(world: World) -> tuple[str, str, str]:
    """The user asks for ``tool`` (older in the repository) without a full upgrade and
    stays connected while it runs; root reads how it ended."""
    results = world.hostile([{"iface": "org.alpm.Manager1", "member": "Install",
                              "sig": "asa{sv}",
                              "body": [["tool"], {"no-sysupgrade": {"v": ["b", True]},
                                                  "run": {"v": ["b", True]}}]}], linger=6)
    path = results[0]["ok"][0]

    async def outcome() -> tuple[str, str, str]:
        c = await Client.open(world.env.address)
        try:
            res, err, text = await c.finished(path, timeout=30)
            return res, err, text
        finally:
            c.close()
    return asyncio.run(asyncio.wait_for(outcome(), 40))


def test_a_downgrade_needs_the_downgrade_right(install_only: World) -> None:
    world = install_only
    res, err, text = _install_tool(world)
    assert (res, err) == ("failed", "org.alpm.Error.NotAuthorized"), (res, err, text)
    assert "org.alpm.downgrade" in text
    assert world.root.installed()["tool"] == "2.0-1"
    # the same request with the right granted does downgrade (the refusal was the right's)
    world.env.set_rules(WITH_DOWNGRADE)
    time.sleep(1.5)
    res, err, text = _install_tool(world)
    assert res == "success", (res, err, text)
    assert world.root.installed()["tool"] == "1.0-1"
    world.healthy()


def test_a_question_whose_client_left_takes_the_default_at_once(world: World) -> None:
    async def go() -> tuple[Any, ...]:
        asker = await Client.open(world.env.address)
        path = await asker.manager("Install", "asa{sv}", ["editor"],
                                   {"no-sysupgrade": v("b", True)})
        await asker.tx(path, "SetHints", "a{sv}", {"question-timeout": v("d", 1e9)})
        await asker.tx(path, "Run")
        await asker.wait_signal(lambda m: m.path == path and m.member == "QuestionAsked", 30)
        asker.close()                         # leaves with the question open
        other = await Client.open(world.env.address)
        try:
            return await other.finished(path, timeout=30)
        finally:
            other.close()
    res = asyncio.run(asyncio.wait_for(go(), 60))
    assert res[0] == "success", res
    got = world.root.installed()
    assert "prov-a" in got and "prov-b" not in got     # pacman's default: the first
    world.healthy()
