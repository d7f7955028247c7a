"""What an unprivileged caller's arguments make the daemon build, send and keep: answers
too large for the bus, work multiplied on the event loop, history rows and hints kept for
nobody. Each test failed on the daemon before its fix (said per test)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType

from alpmd.dbus.bus import connect
from alpmd.dbus.limits import LIMITS
from tests.dbus.dbus_e2e import Pkg
from tests.security.secworld import INSTALLED, REPO, World, build_world, named

QUERY = {"iface": "org.alpm.Query1"}
MANAGER = {"iface": "org.alpm.Manager1"}
#: an installed package whose one attribute takes about 44 KB on the wire
WIDE = Pkg("wide", "1.0-1", provides=[f"prov-number-{i}" for i in range(2000)])
WIDE_ID = "wide;1.0-1;x86_64;local"


@pytest.fixture
def wide_world(tmp_path: Path, user: str) -> Iterator[World]:
    yield from build_world(tmp_path, user, installed=[*INSTALLED, WIDE], repo=REPO)


def _while_hostile(world: World, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hostile calls in the background; meanwhile a root client must get its answers
    (each probe gives up after secworld's hang bound)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(world.hostile, calls, timeout=600)
        while not fut.done():
            world.probe()
        return fut.result()


def test_an_answer_too_large_for_the_bus_is_refused_not_sent(wide_world: World) -> None:
    """One GetPackages naming one wide package 900 times: a 40 MB reply, past the bus's
    32 MiB. Before: the bus dropped the daemon's connection for it and the daemon exited
    (the caller got NoReply, every other client lost the service)."""
    w = wide_world
    results = w.hostile([
        {**QUERY, "member": "GetPackages", "sig": "asas",
         "body": [[WIDE_ID] * 900, ["provides"]]},
        {**QUERY, "member": "GetPackages", "sig": "asas", "body": [[WIDE_ID] * 4, ["provides"]]},
    ])
    assert named(results[0]) == "org.alpm.Error.LimitExceeded", results[0]
    assert str(LIMITS.reply_bytes) in results[0]["text"]
    rows = results[1]["ok"][0]
    assert len(rows) == 4 and len(rows[0]["provides"]["v"][1]) == 2000
    w.healthy()


def test_repeated_attributes_are_computed_once(world: World) -> None:
    """GetPackages with 10,000 ids x the same attribute 10,000 times. Before: 10^8 values
    computed on the event loop (minutes during which no other client was answered)."""
    ids = ["tool;2.0-1;x86_64;local"] * 10_000
    results = _while_hostile(world, [{**QUERY, "member": "GetPackages", "sig": "asas",
                                      "body": [ids, ["required_by"] * 10_000]}])
    rows = results[0]["ok"][0]
    assert len(rows) == 10_000 and rows[0] == {"required_by": {"v": ["as", []]}}
    world.healthy()


def _deep(top: Path, depth: int) -> Path:
    """A chain of ``depth`` directories ``a`` below ``top``, every user may walk it."""
    here = top
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):  # (relative to the last one: a path this long is no argument)
            os.mkdir("a", 0o755, dir_fd=fd)
            nxt = os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
            here = here / "a"
    finally:
        os.close(fd)
    return here


def test_deep_paths_do_not_stall_owns(world: World) -> None:
    """Owns of paths 2,000 directories deep. Before: each cost 80 ms of realpath on the
    event loop (an lstat per component, each walking from the root): five calls of 250
    such paths kept every other client waiting for more than a minute and a half."""
    from alpmd.dbus.query import PATHS_LENGTH

    top = world.public / "deep"
    top.mkdir()
    try:
        deepest = _deep(top, (4000 - len(str(top))) // 2)
        path = str(deepest) + "/x"
        assert 3900 < len(path) <= 4096
        paths = [path] * (PATHS_LENGTH // len(path))
        call = {**QUERY, "member": "Owns", "sig": "as", "body": [paths]}
        too_much = {**QUERY, "member": "Owns", "sig": "as", "body": [paths + [path]]}
        owned = {**QUERY, "member": "Owns", "sig": "as",
                 "body": [[str(world.root.root.root) + "/usr/share/tool/data", path]]}
        results = _while_hostile(world, [call] * 5 + [too_much, owned])
    finally:  # (too deep for shutil.rmtree's recursion)
        subprocess.run(["rm", "-rf", str(top)], check=True)
    assert all(r == {"ok": [[]]} for r in results[:5]), results[:5]
    assert named(results[5]) == "org.alpm.Error.InvalidArgs"
    ((where, pid),) = results[6]["ok"][0]
    assert where.endswith("/usr/share/tool/data") and pid.startswith("tool;2.0-1;")
    world.healthy()


def _history(w: World) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        bus = await connect(w.env.address)
        try:
            reply = await bus.call(Message(
                destination="org.alpm", path="/org/alpm", interface="org.alpm.Manager1",
                member="GetHistory", signature="a{sv}", body=[{}]))
            assert reply.message_type is MessageType.METHOD_RETURN, reply.body
            return [{k: x.value for k, x in row.items()} for row in reply.body[0]]
        finally:
            bus.disconnect()
    return asyncio.run(asyncio.wait_for(go(), 60))


def _history_bytes(w: World) -> int:
    state = w.root.root.root / "var" / "lib" / "alpmd"
    return sum(p.stat().st_size for p in state.glob("history.sqlite*"))


def test_refused_and_abandoned_requests_do_not_grow_the_history(world: World) -> None:
    """Requests with 2,000 targets of 500 characters, cancelled, refused by polkit, or
    left behind by a client that disconnects. Before: each was a history row of 1 MB on
    root's disk (5 MB with 10,000 targets), as often as anybody liked (the history never
    shrinks)."""
    targets = [f"{i:05d}" + "t" * 495 for i in range(2000)]
    assert sum(map(len, targets)) <= LIMITS.targets_length
    install = {**MANAGER, "member": "Install", "sig": "asa{sv}",
               "body": [targets, {"no-sysupgrade": {"v": ["b", True]}}]}
    calls: list[dict[str, Any]] = []
    for i in range(3):
        calls += [install, {"path": {"ref": 3 * i}, "iface": "org.alpm.Transaction1",
                            "member": "Cancel"}]
        calls += [{**install, "body": [targets, {"run": {"v": ["b", True]}}]}]
    calls += [install] * 3                          # left behind at the disconnect
    before = _history_bytes(world)
    results = world.hostile(calls)
    assert all("ok" in r for r in results[0:9:3] + results[1:9:3] + results[9:]), results
    assert all(named(r) == "org.alpm.Error.NotAuthorized" for r in results[2:9:3]), results
    rows = _history(world)                          # (waits for the history's writes)
    assert not [r for r in rows if r["source"] == "alpmd"], [r["kind"] for r in rows]
    assert _history_bytes(world) - before < 1 << 20
    world.healthy()


def _peak(w: World) -> int:
    """The daemon's peak resident memory so far (bytes)."""
    with open(f"/proc/{w.proc.pid}/status", encoding="ascii") as fh:
        return next(int(ln.split()[1]) << 10 for ln in fh if ln.startswith("VmHWM:"))


def test_answer_hints_cannot_make_the_daemon_hold_memory(world: World) -> None:
    """Eight transactions, each with a pre-seeded answer of 250,000 strings (a 3 MB
    message; the bus relay refuses larger ones unread). Before: each kept for the
    transaction's life, about 100 MB in the daemon for a million strings (the peak grew
    by 800 MB; 64 transactions per user could take gigabytes). Now each is refused once
    read (or, past the user's share of the loop, before it is read): the peak grows by
    about one message's worth."""
    big = [f"{i:07d}" for i in range(250_000)]
    calls: list[dict[str, Any]] = []
    for i in range(8):
        calls += [{**MANAGER, "member": "Refresh", "sig": "a{sv}", "body": [{}]},
                  {"path": {"ref": 2 * i}, "iface": "org.alpm.Transaction1",
                   "member": "SetHints", "sig": "a{sv}",
                   "body": [{"answers": {"v": ["a{sv}", {"select-provider":
                                                          {"v": ["as", big]}}]}}]}]
    small = {"answers": {"v": ["a{sv}", {"import-key": {"v": ["b", True]},
                                         "select-provider": {"v": ["u", 1]}}]}}
    # (after the user has paid back its share: the eight messages' decoding and handling
    # may have left it owing up to about the burst, more on a busy machine)
    calls += [{**MANAGER, "member": "Refresh", "sig": "a{sv}", "body": [{}],
               "pause": LIMITS.loop_burst / LIMITS.loop_share},
              {"path": {"ref": 16}, "iface": "org.alpm.Transaction1", "member": "SetHints",
               "sig": "a{sv}", "body": [small]}]
    before = _peak(world)
    results = world.hostile(calls)
    grown = _peak(world) - before
    assert named(results[1]) == "org.alpm.Error.InvalidArgs", results[1]
    assert all(named(r) in ("org.alpm.Error.InvalidArgs", "org.alpm.Error.LimitExceeded")
               for r in results[1:17:2]), results
    assert results[17] == {"ok": []}, results[17]
    assert grown < 400 << 20, grown
    world.healthy()


def test_a_users_transactions_cannot_hold_much_memory(world: World) -> None:
    """32 transactions (one client's cap) of 10,000 targets of 500 characters each.
    Before: all kept for as long as the client stayed, 5.6 MB each (the daemon's peak
    grew by 177 MB; a user's 64 transactions: twice that). Now the targets of one
    transaction take at most 1 Mi characters: those calls are refused (unread by the bus
    relay: their 5 MB are over its cap; one just over 1 Mi characters, read)."""
    targets = [f"{i:05d}" + "t" * 495 for i in range(LIMITS.targets)]
    install = {**MANAGER, "member": "Install", "sig": "asa{sv}", "body": [targets, {}]}
    over = {**install, "body": [targets[:2100], {}]}
    fits = {**install, "body": [targets[:2000], {}]}
    results = world.hostile([install] * LIMITS.transactions_per_client + [over, fits])
    assert all(named(r) == "org.alpm.Error.LimitExceeded" for r in results[:-2]), results[0]
    assert str(LIMITS.message_bytes) in results[0]["text"]
    assert named(results[-2]) == "org.alpm.Error.InvalidArgs", results[-2]
    assert str(LIMITS.targets_length) in results[-2]["text"]
    assert "ok" in results[-1], results[-1]
    world.healthy()


def _gigantic_descriptions(e: Any) -> None:
    """A world's ``prepare``: the repository as a hostile mirror served it, ten packages
    whose descriptions take 4 MiB each (each entry under the database's member cap)."""
    from alpmd.engine.formats.desc import PkgMeta
    from alpmd.testing.repogen import write_sync_db

    metas = [PkgMeta(f"huge{i}", "1.0-1", arch="any", filename=f"huge{i}-1.0-1-any.pkg.tar.gz",
                     desc=f"{i} " + "d" * (4 << 20)) for i in range(10)]
    write_sync_db(metas, e.root.dbpath / "sync" / "test.db")


@pytest.fixture
def huge_world(tmp_path: Path, user: str) -> Iterator[World]:
    yield from build_world(tmp_path, user, prepare=_gigantic_descriptions)


def test_a_mirrors_gigantic_descriptions_do_not_take_the_daemon_off_the_bus(
        huge_world: World) -> None:
    """Any user's Search matching every package of such a repository. Before: a 40 MiB
    answer, and the bus dropped the daemon. Now refused; a narrower search is answered."""
    search = {**QUERY, "member": "Search", "sig": "asa{sv}"}
    results = huge_world.hostile([{**search, "body": [["dd"], {}]},
                                  {**search, "body": [["dd"], {"limit": {"v": ["u", 2]}}]}])
    assert named(results[0]) == "org.alpm.Error.LimitExceeded", results[0]
    assert [row[1] for row in results[1]["ok"][0]] == ["huge0", "huge1"]
    huge_world.healthy()
