"""The daemon reads a new query handle's databases off its event loop.

The daemon runs in this process (``serve`` on a private bus) with the real
loader wrapped only to note the thread it runs in and, once asked, to wait on
a gate: while the reload after an install is held at the gate, the daemon
still answers queries (from the previous handle, so the package is not yet
installed), and after the gate opens the new handle answers. No timing.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import pytest
from dbus_e2e import Client, Pkg, owned, run, served_root, v

from alpmd.dbus.service import serve
from alpmd.engine.handle import Handle


def test_reload_parses_off_the_loop_and_queries_go_on(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    hold = threading.Event()  # set: the next loads wait at the gate
    entered = threading.Event()
    gate = threading.Event()
    real = Handle.load_databases

    def load(self: Handle, *, compact: bool = False) -> None:
        threads.append(threading.get_ident())
        if hold.is_set():
            entered.set()
            assert gate.wait(60), "the gate never opened"
        real(self, compact=compact)

    monkeypatch.setattr(Handle, "load_databases", load)
    repo = [Pkg("lib"), Pkg("app", depends=["lib"])]
    with served_root(tmp_path, repo, []) as (e, env):
        async def scenario() -> tuple[int, list[str], list[str], list[str], str]:
            loop_thread = threading.get_ident()
            server = asyncio.ensure_future(serve(str(e.root.config), address=env.address))
            c = await Client.open(env.address)
            try:
                await owned(c)
                before = await c.query("Resolve", "asa{sv}", ["app"], {})
                hold.set()
                path = await c.manager("Install", "asa{sv}", ["app"],
                                       {"no-sysupgrade": v("b", True)})
                await c.tx(path, "Run")
                assert await asyncio.to_thread(entered.wait, 60), "no reload started"
                # the reload is parked in its thread; the loop still answers
                during = await c.query("Resolve", "asa{sv}", ["app"], {})
                installed_meanwhile = sorted(e.installed())
                gate.set()
                result = await c.finished(path)
                after = await c.query("Resolve", "asa{sv}", ["app"], {})
                return loop_thread, before, during, after, \
                    result[0] + " " + ",".join(installed_meanwhile)
            finally:
                gate.set()
                c.close()
                os.kill(os.getpid(), signal.SIGTERM)  # serve's handler: stop
                assert await asyncio.wait_for(server, 30) == 0

        loop_thread, before, during, after, outcome = run(scenario(), timeout=120)
    assert outcome == "success app,lib", outcome
    # the commit was on disk while the old handle still answered: consistent, not torn
    assert during == before, (before, during)
    assert after != before, (before, after)
    assert len(threads) >= 2, threads  # start-up and after the install
    assert loop_thread not in threads
