"""Caps per client, option values, and what one user may see of another's transactions
(issue 10, findings 4 and 12)."""

from __future__ import annotations

import asyncio
from typing import Any

from dbus_fast import DBusError

from alpmd.dbus.limits import LIMITS
from tests.dbus.dbus_e2e import Client, v
from tests.security.secworld import World, named

MANAGER = {"iface": "org.alpm.Manager1"}
PROPS = "org.freedesktop.DBus.Properties"


def _install(opts: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**MANAGER, "member": "Install", "sig": "asa{sv}", "body": [["tool"], opts or {}]}


def test_transaction_objects_are_capped_per_client_and_dropped_in_one_change(
        world: World) -> None:
    asked = LIMITS.transactions_per_client + 20

    async def go() -> tuple[list[dict[str, Any]], list[list[str]]]:
        obs = await Client.open(world.env.address)
        try:
            loop = asyncio.get_running_loop()
            results = await loop.run_in_executor(None, lambda: world.hostile(
                [_install()], repeat=asked))
            for _ in range(200):  # until the daemon has noticed the client left
                if not await obs.prop("/org/alpm", "Transactions", "org.alpm.Manager1"):
                    break
                await asyncio.sleep(0.1)
            await obs.prop("/org/alpm", "State", "org.alpm.Manager1")  # a round trip
            lists = [m.body[1]["Transactions"].value for m in obs.signals
                     if m.member == "PropertiesChanged" and m.path == "/org/alpm"
                     and "Transactions" in m.body[1]]
            return results, lists
        finally:
            obs.close()
    results, lists = asyncio.run(asyncio.wait_for(go(), 120))
    made = [r for r in results if "ok" in r]
    refused = [r for r in results if "ok" not in r]
    assert len(made) == LIMITS.transactions_per_client
    assert refused and all(named(r) == "org.alpm.Error.LimitExceeded" for r in refused)
    # creation grows the list one by one; the client's leaving empties it in one change
    shrinking = [b for a, b in zip(lists, lists[1:], strict=False) if len(b) < len(a)]
    assert lists and lists[-1] == [] and len(shrinking) == 1, [len(x) for x in lists]
    world.healthy()


def test_option_values_are_checked_when_they_arrive(world: World) -> None:
    huge = {"v": ["t", 2**64 - 1]}
    results = world.hostile([
        _install({"keep-versions": huge}),
        _install({"force": huge}),
        _install({"needed": {"v": ["s", "yes"]}}),
        _install({"some-unknown-option": huge, "needed": {"v": ["b", True]}}),
        {"path": {"ref": 3}, "iface": PROPS, "member": "GetAll", "sig": "s",
         "body": ["org.alpm.Transaction1"]},
        {"path": {"ref": 3}, "iface": PROPS, "member": "Get", "sig": "ss",
         "body": ["org.alpm.Transaction1", "Options"]},
    ])
    assert [named(r) for r in results[:3]] == ["org.alpm.Error.InvalidArgs"] * 3
    assert "ok" in results[4], results[4]
    opts = results[5]
    # an unknown option is dropped, the known one kept
    assert opts["ok"][0] == {"v": ["a{sv}", {"needed": {"v": ["b", True]}}]}, opts
    world.healthy()


def test_other_users_transactions_and_history_are_not_shown(world: World) -> None:
    def get(path: str, name: str) -> dict[str, Any]:
        return {"path": path, "iface": PROPS, "member": "Get", "sig": "ss",
                "body": ["org.alpm.Transaction1", name]}

    async def go() -> list[dict[str, Any]]:
        c = await Client.open(world.env.address)   # root, connected throughout
        try:
            done = await c.manager("SetReason", "assa{sv}", ["tool"], "dependency",
                                   {"run": v("b", True)})
            await c.finished(done)
            kept = await c.manager("Install", "asa{sv}", ["tool"],
                                   {"no-sysupgrade": v("b", True)})
            calls = [get(kept, "Targets"), get(kept, "Options"), get(kept, "Sender"),
                     get(kept, "Plan"), get(kept, "State"),
                     {"path": done, "iface": "org.alpm.Transaction1", "member": "GetLog"},
                     {**MANAGER, "member": "GetHistory", "sig": "a{sv}", "body": [{}]}]
            results = await asyncio.get_running_loop().run_in_executor(
                None, lambda: world.hostile(calls))
            rows = await c.manager("GetHistory", "a{sv}", {})
            mine = [{k: x.value for k, x in r.items()} for r in rows]
            return [*results, {"root": [r for r in mine if r["source"] == "alpmd"]}]
        finally:
            c.close()
    targets, opts, sender, plan, state, log, history, root = asyncio.run(
        asyncio.wait_for(go(), 90))
    assert targets["ok"][0]["v"][1] == [] and opts["ok"][0]["v"][1] == {}
    assert sender["ok"][0]["v"][1] == "" and plan["ok"][0]["v"][1] == []
    assert state["ok"][0]["v"][1] == "setup"      # the state is no secret
    assert named(log) == "org.alpm.Error.NotAuthorized"
    ours = [r for r in history["ok"][0] if r["source"]["v"][1] == "alpmd"]
    assert ours and all("uid" not in r and "client" not in r for r in ours), ours
    # root (an administrator) still sees who asked
    rows = root["root"]
    assert rows and rows[0]["uid"] == 0 and rows[0]["client"]
    world.healthy()


def test_other_users_logs_and_questions_are_not_broadcast(world: World) -> None:
    """Log and QuestionAsked signals, and changes of the plan, go to the owner only."""
    drop = world.public / "drop"
    drop.mkdir()
    drop.chmod(0o777)
    ready = drop / "ready"

    async def go() -> tuple[list[list[Any]], str, int]:
        loop = asyncio.get_running_loop()
        watching = loop.run_in_executor(None, lambda: world.hostile(
            [], linger=8, watch=True, ready=str(ready)))
        for _ in range(100):
            if ready.exists():
                break
            await asyncio.sleep(0.1)
        c = await Client.open(world.env.address)   # root's own transaction
        try:
            path = await c.manager("Install", "asa{sv}", ["editor"],
                                   {"no-sysupgrade": v("b", True)})
            await c.tx(path, "SetHints", "a{sv}", {"question-timeout": v("d", 0.5)})
            await c.tx(path, "Run")
            res = await c.finished(path, timeout=30)
            owner_heard = len([m for m in c.signals if m.path == path
                               and m.member in ("Log", "QuestionAsked")])
        finally:
            c.close()
        out = await watching
        return out[-1]["signals"], res[0], owner_heard
    heard, result, owner_heard = asyncio.run(asyncio.wait_for(go(), 60))
    assert result == "success" and owner_heard > 0
    members = {m for _, m, _ in heard}
    assert "Finished" in members            # the public part is still announced
    assert not members & {"Log", "QuestionAsked"}, members
    assert not any({"Plan", "Question"} & set(changed) for _, m, changed in heard
                   if m == "PropertiesChanged"), heard
    added = [dict(changed) for _, m, changed in heard if m == "InterfacesAdded"]
    assert added and all(not a.get("Targets") and not a.get("Options") and not a.get("Sender")
                         for a in added), added
    world.healthy()


def test_queued_requests_are_capped_per_client(world: World) -> None:
    """While another program holds the lock, one client may queue only so many changes."""
    lock = world.root.root.dbpath / "db.lck"

    async def go() -> tuple[list[str], list[str]]:
        c = await Client.open(world.env.address)
        made: list[str] = []
        refused: list[str] = []
        try:
            for _ in range(LIMITS.queued_per_client + 4):
                try:
                    made.append(await c.manager("SetReason", "assa{sv}", ["tool"], "dependency",
                                                {"run": v("b", True)}))
                except DBusError as exc:
                    refused.append(exc.type)
            for path in made:                 # they can all be cancelled
                if await c.prop(path, "State") != "finished":
                    await c.tx(path, "Cancel")
        finally:
            c.close()
        return made, refused
    with open(lock, "w"):                     # held open: a live holder, not a stale lock
        made, refused = asyncio.run(asyncio.wait_for(go(), 60))
    lock.unlink()
    # one is running (waiting for the lock), the rest queued up to the cap
    assert len(made) == LIMITS.queued_per_client + 1, (len(made), refused)
    assert refused and set(refused) == {"org.alpm.Error.LimitExceeded"}
    world.healthy()
