"""100 clients polling the daemon (transaction properties, Manager1 state, a search) while a
commit runs: every call answers, nobody is disconnected, and the percentage each client
sees never goes down."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from dbus_e2e import Client, Pkg, make_root, mirror, private_bus, run, running_daemon, v

from alpmd.testing.dbusenv import have_tools

pytestmark = pytest.mark.skipif(have_tools() is not None, reason=f"no private bus: {have_tools()}")

CLIENTS = 100
PACKAGES = 40


def test_hundred_polling_clients_during_a_commit(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir()
    repo = [Pkg(f"pk{i:02d}", files={f"usr/share/pk{i:02d}/f{j}": b"x" * 2048 for j in range(40)})
            for i in range(PACKAGES)]
    with mirror(root=srv) as m:
        srv.rmdir()
        e = make_root(tmp_path, repo, [], m.url)
        with private_bus(tmp_path) as env, running_daemon(env, e.root.config):
            async def go() -> tuple[Any, list[tuple[int, int, list[float], bool]]]:
                owner = await Client.open(env.address)
                pollers = await asyncio.gather(*(Client.open(env.address)
                                                 for _ in range(CLIENTS)))
                try:
                    path = await owner.manager("Install", "asa{sv}",
                                               [p.name for p in repo],
                                               {"no-sysupgrade": v("b", True)})
                    done = asyncio.Event()

                    async def poll(c: Client, i: int) -> tuple[int, int, list[float], bool]:
                        calls = errors = 0
                        seen: list[float] = []
                        while True:
                            try:
                                props = await c.props(path)
                                seen.append(props["Percentage"])
                                await c.prop("/org/alpm", "State", "org.alpm.Manager1")
                                if i % 4 == 0:
                                    await c.query("Search", "asa{sv}", [f"pk{i % 40:02d}"],
                                                  {"scope": v("s", "available")})
                                calls += 1
                            except Exception:
                                errors += 1
                            if done.is_set() or calls + errors >= 400:
                                return calls, errors, seen, c.bus.connected
                            await asyncio.sleep(0.01)

                    tasks = [asyncio.ensure_future(poll(c, i)) for i, c in enumerate(pollers)]
                    await owner.tx(path, "Run")
                    res = await owner.finished(path, 90)
                    done.set()
                    return res, list(await asyncio.gather(*tasks))
                finally:
                    owner.close()
                    for c in pollers:
                        c.close()
            res, stats = run(go(), timeout=150)
    assert res[0] == "success", res
    assert len(e.installed()) == PACKAGES
    assert len(stats) == CLIENTS
    assert sum(s[1] for s in stats) == 0                 # no call failed
    assert all(s[0] >= 1 and s[3] for s in stats)        # everyone was answered, still connected
    for _calls, _errors, seen, _conn in stats:
        assert seen == sorted(seen)                      # the percentage only goes up
    # the polls overlapped the work (someone saw it part done)
    assert any(0 < p < 100 for s in stats for p in s[2])
