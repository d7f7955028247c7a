"""The daemon's remaining behaviours end to end on a private bus: package files passed as
file descriptors, the package cache cleaned, history with the caller's uid and bus name,
hints (question deadline with pacman's default, validation), Cancel while queued and
while a question waits, duplicate refreshes merged, finished transactions dropped after
the keep time, a vanished client's setup transactions dropped, and the Manager1 signals
for changes made behind the daemon's back (real pacman, a lock held by another process)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_e2e import (
    Client,
    E2ERoot,
    Pkg,
    big,
    make_root,
    mirror,
    private_bus,
    run,
    running_daemon,
    v,
)
from dbus_fast import DBusError

from alpmd.testing.dbusenv import DBusEnv, have_tools
from alpmd.testing.mirror import MirrorServer

pytestmark = pytest.mark.skipif(have_tools() is not None, reason=f"no private bus: {have_tools()}")

REPO = [Pkg("tool", "1.1-1"),
        Pkg("editor", "1.0-1", depends=["sh-provider"]),
        Pkg("prov-a", "1.0-1", provides=["sh-provider"]),
        Pkg("prov-b", "1.0-1", provides=["sh-provider"])]
INSTALLED = [Pkg("tool", "1.0-1")]
NO_UPGRADE = {"no-sysupgrade": v("b", True)}
MANAGER = "org.alpm.Manager1"


def _world(tmp: Path, repo: list[Pkg], *daemon_args: str, **mirror_kw: Any
           ) -> Iterator[tuple[DBusEnv, E2ERoot, MirrorServer]]:
    srv = tmp / "srv"
    srv.mkdir()
    with mirror(root=srv, **mirror_kw) as m:
        srv.rmdir()
        e = make_root(tmp, repo, INSTALLED, m.url)
        with private_bus(tmp) as env, running_daemon(env, e.root.config, *daemon_args):
            yield env, e, m


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[DBusEnv, E2ERoot, MirrorServer]]:
    yield from _world(tmp_path, REPO)


async def _gone(c: Client, path: str, timeout: float = 15) -> None:
    """Wait until ``path`` is no longer among the daemon's transactions."""
    deadline = time.monotonic() + timeout
    while path in await c.prop("/org/alpm", "Transactions", MANAGER):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} is still exported")
        await asyncio.sleep(0.1)


def test_install_files_by_fd_history_and_clean_cache(world: Any, tmp_path: Path) -> None:
    env, e, m = world
    local = Pkg("localthing", "3.0-1").build(tmp_path / "pkgs")
    cache = e.root.cachedir
    ghost = Pkg("ghost", "0.1-1").build(tmp_path / "pkgs")
    old = Pkg("tool", "0.9-1").build(tmp_path / "pkgs")
    for f in (ghost, old):
        (cache / f.name).write_bytes(f.read_bytes())
    kept = cache / Path(e.built["tool-1.0-1"]).name
    kept.write_bytes(Path(e.built["tool-1.0-1"]).read_bytes())

    async def go() -> tuple[Any, Any, list[dict[str, Any]], str, Any]:
        c = await Client.open(env.address)
        try:
            fd = os.open(local, os.O_RDONLY)
            try:
                path = (await c.raw("org.alpm", "/org/alpm", MANAGER, "InstallFiles",
                                    "aha{sv}", [[0], {}], fds=[fd]))[0]
            finally:
                os.close(fd)       # the daemon holds its own copy of the descriptor
            assert await c.prop(path, "Kind") == "install-files"
            await c.tx(path, "Run")
            res = await c.finished(path)
            clean = await c.manager("CleanCache", "a{sv}", {})
            await c.tx(clean, "Run")
            res2 = await c.finished(clean)
            hist = await c.manager("GetHistory", "a{sv}", {"limit": v("x", 50)})
            rows = [{k: x.value for k, x in r.items()} for r in hist]
            return res, res2, rows, c.bus.unique_name, await c.tx(clean, "GetLog")
        finally:
            c.close()
    res, res2, rows, me, clean_log = run(go())
    assert res[0] == "success", res
    assert e.installed()["localthing"] == "3.0-1"
    assert e.installed()["tool"] == "1.0-1"          # a file install is no full upgrade
    assert (e.root.root / "usr/share/localthing/data").read_bytes() == b"localthing 3.0-1\n"
    # -Sc with KeepInstalled: the stray file goes, the installed version's file stays
    assert res2[0] == "success", res2
    assert not (cache / ghost.name).exists() and not (cache / old.name).exists()
    assert kept.exists()
    assert any(ghost.name in row[3] for row in clean_log)
    # history (newest first): the daemon's record of who asked and what moved; its own
    # commits are not read a second time from pacman.log
    assert not [r for r in rows if r["source"] == "pacman.log"], rows
    ours = [r for r in rows if r["source"] == "alpmd"]
    assert [r["kind"] for r in ours] == ["clean-cache", "install-files"]
    assert all(r["uid"] == os.getuid() and r["client"] == me and r["result"] == "success"
               for r in ours)
    assert [list(c) for c in ours[1]["changes"]] == [["localthing", "", "3.0-1"]]
    assert ours[0]["changes"] == []


def test_question_deadline_takes_pacmans_default(world: Any) -> None:
    env, e, m = world

    async def go() -> tuple[Any, list[Any], list[str], list[str]]:
        c = await Client.open(env.address)
        try:
            path = await c.manager("Install", "asa{sv}", ["editor"], NO_UPGRADE)
            refused = []
            for bad in ({"question-timeout": v("d", -1.0)},
                        {"question-timeout": v("s", "soon")},
                        {"interactive": v("s", "yes")},
                        {"locale": v("s", "en_US.UTF-8; rm -rf /")},
                        {"answers": v("s", "all")}):
                try:
                    await c.tx(path, "SetHints", "a{sv}", bad)
                except DBusError as exc:
                    refused.append(exc.type)
            await c.tx(path, "SetHints", "a{sv}", {"question-timeout": v("d", 0.5),
                                                   "locale": v("s", "C.UTF-8"),
                                                   "unknown-hint": v("b", True)})
            await c.tx(path, "Run")
            res = await c.finished(path)
            try:
                await c.tx(path, "SetHints", "a{sv}", {})
                late = ""
            except DBusError as exc:
                late = exc.type
            log = [r[3] for r in await c.tx(path, "GetLog")]
            return res, c.of(path, "QuestionAsked"), refused + [late], log
        finally:
            c.close()
    res, asked, refused, log = run(go())
    assert refused == ["org.alpm.Error.InvalidArgs"] * 5 + ["org.alpm.Error.WrongState"]
    assert len(asked) == 1 and asked[0][1] == "SelectProvider"
    assert res[0] == "success", res
    got = e.installed()
    # nobody answered: pacman's default for a provider choice is the first one
    assert "prov-a" in got and "prov-b" not in got and "editor" in got
    assert any("not answered" in line for line in log)


def test_cancel_while_waiting_for_an_answer_then_a_bad_preseed(world: Any) -> None:
    env, e, m = world

    async def go() -> tuple[Any, str, set[str], Any, list[Any], list[str]]:
        c = await Client.open(env.address)
        try:
            path = await c.manager("Install", "asa{sv}", ["editor"], NO_UPGRADE)
            await c.tx(path, "Run")
            await c.wait_signal(lambda msg: msg.path == path and msg.member == "QuestionAsked")
            state = await c.prop(path, "State")
            await c.tx(path, "Cancel")
            res = await c.finished(path, 20)
            after_cancel = set(e.installed())
            # a pre-seeded answer out of range: the default, a warning, no question
            again = await c.manager("Install", "asa{sv}", ["editor"], NO_UPGRADE)
            await c.tx(again, "SetHints", "a{sv}",
                       {"answers": v("a{sv}", {"SelectProvider": v("u", 7)})})
            await c.tx(again, "Run")
            res2 = await c.finished(again)
            log = [r[3] for r in await c.tx(again, "GetLog")]
            return res, state, after_cancel, res2, c.of(again, "QuestionAsked"), log
        finally:
            c.close()
    res, state, after_cancel, res2, asked, log = run(go())
    assert state == "waiting-answer"
    assert res[0] == "cancelled" and res[1] == "org.alpm.Error.Cancelled", res
    assert after_cancel == {"tool"}
    assert res2[0] == "success", res2
    assert asked == []
    assert any("not a valid choice" in line for line in log)
    assert "prov-a" in e.installed() and "prov-b" not in e.installed()


def test_queue_cancel_while_queued_and_refreshes_merged(tmp_path: Path) -> None:
    # 2 MiB at 256 KiB/s keeps the writer busy until the test cancels it
    gen = _world(tmp_path, [*REPO, big("blob", 2 << 20)], rate=256 * 1024)
    env, e, m = next(gen)
    try:
        async def go() -> dict[str, Any]:
            c = await Client.open(env.address)
            try:
                first = await c.manager("Install", "asa{sv}", ["blob"], NO_UPGRADE)
                await c.tx(first, "Run")
                await c.wait_signal(lambda msg: msg.path == first
                                    and msg.member == "DownloadProgress", 20)
                r1 = await c.manager("Refresh", "a{sv}", {})
                r2 = await c.manager("Refresh", "a{sv}", {})
                r3 = await c.manager("Refresh", "a{sv}", {})
                other = await c.manager("Install", "asa{sv}", ["prov-a"], NO_UPGRADE)
                for p in (r1, r2, r3, other):
                    await c.tx(p, "Run")
                states = [await c.prop(p, "State") for p in (r1, r2, r3, other)]
                can = await c.prop(other, "CanCancel")
                await c.tx(other, "Cancel")
                # the leader of the merged pair cancelled: the follower still runs
                await c.tx(r1, "Cancel")
                cancelled = await c.finished(other, 5)
                still = await c.prop(first, "State")
                await c.tx(first, "Cancel")
                out = {"states": states, "can": can, "cancelled": cancelled, "still": still,
                       "first": await c.finished(first, 20),
                       "r1": await c.finished(r1, 30), "r2": await c.finished(r2, 30),
                       "r3": await c.finished(r3, 30),
                       "log2": [r[3] for r in await c.tx(r2, "GetLog")],
                       "updates": [s.body for s in c.signals if s.member == "UpdatesChanged"]}
                return out
            finally:
                c.close()
        out = run(go(), 90)
    finally:
        gen.close()
    assert out["states"] == ["queued"] * 4
    assert out["can"] is True
    assert out["cancelled"][0] == "cancelled", out["cancelled"]
    assert out["still"] == "downloading"           # the running one was not disturbed
    assert out["first"][0] == "cancelled"
    # the second refresh rode on the first; cancelling the first left the second to run
    assert [out[r][0] for r in ("r1", "r2", "r3")] == ["cancelled", "success", "success"], out
    assert any("merged with transaction" in line for line in out["log2"])
    assert any("running it on its own" in line for line in out["log2"])
    assert len(m.hits("test.db")) == 1            # r3 rode on r2: one request
    assert out["updates"] and out["updates"][-1] == [1]       # tool 1.0-1 -> 1.1-1
    assert set(e.installed()) == {"tool"}


def test_finished_dropped_after_keep_time_and_vanished_client(tmp_path: Path) -> None:
    gen = _world(tmp_path, REPO, "--keep-finished", "1")
    env, e, m = next(gen)
    try:
        async def go() -> tuple[bool, bool, str]:
            c = await Client.open(env.address)
            other = await Client.open(env.address)
            try:
                path = await c.manager("Remove", "asa{sv}", ["tool"], {})
                await c.tx(path, "Cancel")
                await c.finished(path)
                listed = path in await c.prop("/org/alpm", "Transactions", MANAGER)
                await _gone(c, path)
                try:
                    await c.prop(path, "State")
                    err = ""
                except DBusError as exc:
                    err = exc.type
                # a client that leaves drops what it set up (but nobody else's)
                mine = await c.manager("Install", "asa{sv}", ["prov-a"], {})
                theirs = await other.manager("Install", "asa{sv}", ["prov-b"], {})
                before = theirs in await c.prop("/org/alpm", "Transactions", MANAGER)
                other.close()
                await _gone(c, theirs)
                kept = mine in await c.prop("/org/alpm", "Transactions", MANAGER)
                return listed and before, kept, err
            finally:
                c.close()
        (listed, kept, err) = run(go(), 40)
    finally:
        gen.close()
    assert listed
    assert kept
    assert err.startswith("org.freedesktop.DBus.Error."), err


@pytest.mark.oracle
def test_changes_behind_the_daemons_back(world: Any) -> None:
    """Real pacman installs and removes on the daemon's root; another process takes the lock."""
    env, e, m = world
    lockfile = e.root.dbpath / "db.lck"

    async def go() -> dict[str, Any]:
        c = await Client.open(env.address)
        try:
            path = await c.manager("Refresh", "a{sv}", {})
            await c.tx(path, "Run")
            assert (await c.finished(path))[0] == "success"
            await c.wait_signal(lambda s: s.member == "UpdatesChanged" and s.body == [1])
            gen0 = await c.prop("/org/alpm", "Generation", MANAGER)
            n = len(c.signals)
            out = await asyncio.to_thread(e.root.pacman, "-U", str(e.built["tool-1.1-1"]))
            assert out.returncode == 0, out.stderr
            installed = await c.wait_signal(lambda s: s.member == "InstalledChanged"
                                            and s in c.signals[n:], 10)
            zero = await c.wait_signal(lambda s: s.member == "UpdatesChanged"
                                       and s.body == [0], 10)
            ids = await c.query("Resolve", "asa{sv}", ["tool"], {})
            n = len(c.signals)
            out = await asyncio.to_thread(e.root.pacman, "-R", "tool")
            assert out.returncode == 0, out.stderr
            removed = await c.wait_signal(lambda s: s.member == "InstalledChanged"
                                          and s in c.signals[n:], 10)
            # a lock held open by another process is reported, then its release
            await c.wait_signal(lambda s: s.member == "LockChanged" and s.body == [""]
                                and s in c.signals[n:], 10) if lockfile.exists() else None
            n = len(c.signals)
            holder = subprocess.Popen(["sh", "-c", f'exec 3>>"{lockfile}"; exec sleep 60'],
                                      start_new_session=True)
            try:
                taken = await c.wait_signal(lambda s: s.member == "LockChanged"
                                            and s.body[0] != "" and s in c.signals[n:], 10)
                held = await c.prop("/org/alpm", "LockHolder", MANAGER)
            finally:
                os.killpg(holder.pid, signal.SIGKILL)
                holder.wait(5)
                lockfile.unlink()
            freed = await c.wait_signal(lambda s: s.member == "LockChanged" and s.body == [""]
                                        and s in c.signals[n:], 10)
            return {"gen0": gen0, "installed": installed.body[0], "zero": zero.body,
                    "ids": ids, "removed": removed.body[0], "taken": taken.body[0],
                    "held": held, "pid": holder.pid, "freed": freed.body}
        finally:
            c.close()
    out = run(go(), 90)
    assert out["installed"] > out["gen0"] and out["removed"] > out["installed"]
    assert out["ids"] == ["tool;1.1-1;x86_64;local"] or out["ids"][0].startswith("tool;1.1-1;")
    assert out["zero"] == [0]
    assert out["taken"] == out["held"] == f"pid {out['pid']} (sleep)"
    assert out["freed"] == [""]
