"""What the bus library answers by itself from the daemon's objects (attack round 5; the
test failed on the daemon before its fix)."""

from __future__ import annotations

from typing import Any

from alpmd.dbus.limits import LIMITS
from tests.security.secworld import World, named

MANAGER = {"iface": "org.alpm.Manager1"}
OBJECTS = {"iface": "org.freedesktop.DBus.ObjectManager", "member": "GetManagedObjects"}


def _install(targets: list[str]) -> dict[str, Any]:
    return {**MANAGER, "member": "Install", "sig": "asa{sv}", "body": [targets, {}]}


def test_all_objects_at_once_cannot_take_the_daemon_off_the_bus(world: World) -> None:
    """One client's 32 transactions, each with targets of 1 Mi characters (the caps), then
    GetManagedObjects: dbus-fast answers it by itself with every property of every object,
    and a client sees its own transactions' targets: 33 MB, past the bus's 32 MiB. Before:
    the bus dropped the daemon's connection for it and the daemon exited (0.3 s, one
    unprivileged connection). The calls are paced as a patient attacker would: the
    relay refuses a user's messages past its share of decoding time."""
    targets = [f"{i:05d}" + "x" * (LIMITS.target_length - 6) for i in range(2048)]
    assert sum(map(len, targets)) <= LIMITS.targets_length
    first = [_install(targets), {**OBJECTS, "path": "/"}]
    # paced: each ~1 MiB call costs its user ~0.1 s of the loop's share (decoding), paid
    # back at a quarter-second per second (sent at once, the later ones are refused)
    rest = [{**_install(targets), "pause": 0.5}] * (LIMITS.transactions_per_client - 1)
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
