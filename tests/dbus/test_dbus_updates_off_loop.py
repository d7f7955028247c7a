"""The update list is worked out in a worker thread, never on the event loop.

Working it out reads every shadow sync database (the last Refresh's copies): with
Arch-sized repositories that is hundreds of milliseconds, during which an event loop
doing it would answer nobody. So after a Refresh and after the installed set changed,
the daemon's main thread (the event loop) reads no shadow database, and GetUpdates and
UpdatesAvailable still give the list a worker made.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_e2e import Client, E2ERoot, Pkg, make_root, mirror, private_bus, start_daemon, stop_daemon

from alpmd.testing.dbusenv import DBusEnv, have_tools

pytestmark = pytest.mark.skipif(have_tools() is not None, reason=f"no private bus: {have_tools()}")

MANAGER = "org.alpm.Manager1"
REPO = [Pkg("tool", "1.1-1"), Pkg("other", "2.0-1")]
INSTALLED = [Pkg("tool", "1.0-1"), Pkg("other", "1.0-1")]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[DBusEnv, E2ERoot, subprocess.Popen[bytes]]]:
    srv = tmp_path / "srv"
    srv.mkdir()
    with mirror(root=srv) as m:
        srv.rmdir()
        e = make_root(tmp_path, REPO, INSTALLED, m.url)
        with private_bus(tmp_path) as env:
            proc = start_daemon(env, e.root.config)
            try:
                yield env, e, proc
            finally:
                stop_daemon(proc)


def test_updates_are_worked_out_off_the_event_loop(world: Any) -> None:
    assert shutil.which("strace"), "strace is needed (Makefile APT_PACKAGES)"
    env, e, proc = world

    async def go() -> tuple[list[Any], int, list[Any]]:
        c = await Client.open(env.address)
        try:
            path = await c.manager("Refresh", "a{sv}", {})
            await c.tx(path, "Run")
            assert (await c.finished(path))[0] == "success"
            changed = await c.wait_signal(lambda s: s.member == "UpdatesChanged", 20)
            rows = await c.query("GetUpdates", "a{sv}", {})
            count = await c.prop("/org/alpm", "UpdatesAvailable", MANAGER)
            return [{k: x.value for k, x in r.items()} for r in rows], count, changed.body
        finally:
            c.close()

    with tempfile.NamedTemporaryFile("r") as out:
        # the main thread only (no -f): the event loop's own system calls
        tracer = subprocess.Popen(["strace", "-p", str(proc.pid), "-e", "trace=openat,open",
                                   "-o", out.name], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while "TracerPid:\t0\n" in Path(f"/proc/{proc.pid}/status").read_text():
            assert tracer.poll() is None and time.monotonic() < deadline, "strace did not attach"
            time.sleep(0.05)
        try:
            rows, count, announced = asyncio.run(asyncio.wait_for(go(), 60))
        finally:
            tracer.send_signal(signal.SIGINT)
            err = tracer.communicate(timeout=30)[1]
        trace = Path(out.name).read_text()
    assert b"attached" in err or "attached" in trace, err
    # the scenario did what it should: both packages have an update in the new databases
    assert sorted((r["name"], r["old"], r["new"]) for r in rows) == [
        ("other", "1.0-1", "2.0-1"), ("tool", "1.0-1", "1.1-1")]
    assert count == 2 and announced == [2]
    # (the Refresh itself writes the new files from the event loop: its downloads are
    # asynchronous; reading a database back is the parse, which must not be there)
    shadow = [line for line in trace.splitlines()
              if "/shadow/" in line and '.db"' in line and "O_RDONLY" in line]
    assert not shadow, "\n".join(shadow)
