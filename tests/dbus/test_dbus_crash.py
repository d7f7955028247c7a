"""The daemon killed (SIGKILL) in the middle of a commit, then restarted: the lock it left
is taken back, the engine's journal repairs the half-done package, the state is reported,
and the next transaction works. A lock the daemon did not take is reported, never removed."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from dbus_e2e import (
    Client,
    Pkg,
    make_root,
    mirror,
    private_bus,
    run,
    start_daemon,
    stop_daemon,
    v,
)
from dbus_fast import DBusError

from alpmd.engine.journal import read_journal
from alpmd.testing.dbusenv import have_tools
from alpmd.testing.rootfs import shell_root

pytestmark = pytest.mark.skipif(have_tools() is not None, reason=f"no private bus: {have_tools()}")

GATE_SCRIPT = "pre_install() {\n  read x < /gate\n}\n"


def _files(name: str) -> dict[str, bytes]:
    return {f"usr/share/{name}/f{i}": f"{name} {i}\n".encode() * 32 for i in range(10)}


def _release_gate(gate: Path) -> None:
    """Let a scriptlet blocked on the FIFO go, and make later reads return at once."""
    try:
        fd = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        fd = -1
    if fd >= 0:
        os.write(fd, b"go\n")
        os.close(fd)
    if gate.exists() and stat.S_ISFIFO(gate.stat().st_mode):
        gate.unlink()
        gate.write_text("go\n")


def test_sigkill_mid_commit_then_restart(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir()
    repo = [Pkg("p1", files=_files("p1")), Pkg("p2", files=_files("p2"), install=GATE_SCRIPT),
            Pkg("p3", files=_files("p3"))]
    with mirror(root=srv) as m:
        srv.rmdir()
        e = make_root(tmp_path, repo, [], m.url)
        why = shell_root(e.root.root)
        if why:
            pytest.skip(why)
        gate = e.root.root / "gate"
        os.mkfifo(gate)
        lock = e.root.dbpath / "db.lck"
        with private_bus(tmp_path) as env:
            proc = start_daemon(env, e.root.config)
            try:
                async def until_blocked() -> str:
                    c = await Client.open(env.address)
                    try:
                        path = await c.manager("Install", "asa{sv}", ["p1", "p2", "p3"],
                                               {"no-sysupgrade": v("b", True)})
                        await c.tx(path, "Run")
                        deadline = time.monotonic() + 30
                        while time.monotonic() < deadline:
                            state = read_journal(str(e.root.dbpath) + "/")
                            if state is not None and any(s.name == "p2" for s in state.pending):
                                return str(await c.prop(path, "State"))
                            await asyncio.sleep(0.05)
                        raise AssertionError("the commit never reached p2")
                    finally:
                        c.close()
                state = run(until_blocked())
                assert state == "committing"
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            finally:
                stop_daemon(proc)
                _release_gate(gate)
            # what the crash left behind
            assert lock.exists()
            assert read_journal(str(e.root.dbpath) + "/") is not None
            assert "p1" in e.installed() and "p3" not in e.installed()

            proc = start_daemon(env, e.root.config)
            try:
                async def after() -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
                    c = await Client.open(env.address)
                    try:
                        props = await c.props("/org/alpm", "org.alpm.Manager1")
                        hist = await c.manager("GetHistory", "a{sv}", {})
                        path = await c.manager("Install", "asa{sv}", ["p3"],
                                               {"no-sysupgrade": v("b", True)})
                        await c.tx(path, "Run")
                        res = await c.finished(path)
                        return props, [{k: x.value for k, x in r.items()} for r in hist], res
                    finally:
                        c.close()
                props, hist, res = run(after())
            finally:
                stop_daemon(proc)
    assert props["State"] == "idle" and props["LockHolder"] == ""
    rec = [r for r in hist if r["kind"] == "recovery"]
    assert rec and rec[0]["result"] == "repaired", hist
    assert "removed stale lock" in rec[0]["error"]
    assert read_journal(str(e.root.dbpath) + "/") is None
    # p2 was rolled forward from the cached file or back to nothing, never half there
    installed = e.installed()
    on_disk = sorted(p.name for p in (e.root.root / "usr/share/p2").glob("*")) \
        if (e.root.root / "usr/share/p2").exists() else []
    if "p2" in installed:
        assert on_disk == sorted(f"f{i}" for i in range(10))
    else:
        assert on_disk == []
    assert res[0] == "success", res
    assert "p3" in e.installed()
    assert not lock.exists()


def test_foreign_stale_lock_is_reported_not_removed(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir()
    with mirror(root=srv) as m:
        srv.rmdir()
        e = make_root(tmp_path, [Pkg("p1")], [], m.url)
        lock = e.root.dbpath / "db.lck"
        lock.write_text("")          # left by someone else (no alpmd marker)
        with private_bus(tmp_path) as env:
            proc = start_daemon(env, e.root.config)
            try:
                async def go() -> tuple[str, Any, str]:
                    c = await Client.open(env.address)
                    try:
                        holder = await c.prop("/org/alpm", "LockHolder", "org.alpm.Manager1")
                        path = await c.manager("Install", "asa{sv}", ["p1"],
                                               {"no-sysupgrade": v("b", True)})
                        await c.tx(path, "Run")
                        res = await c.finished(path)
                        try:
                            await c.manager("Bogus")
                            err = ""
                        except DBusError as exc:
                            err = exc.type
                        return holder, res, err
                    finally:
                        c.close()
                holder, res, err = run(go())
            finally:
                stop_daemon(proc)
    assert holder == "stale"
    assert res[0] == "failed" and res[1] == "org.alpm.Error.Locked", res
    assert "stale lock" in res[2]
    assert lock.exists()
    assert "p1" not in e.installed()
    assert err  # an unknown method is an error, not a crash
