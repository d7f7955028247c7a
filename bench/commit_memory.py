"""The daemon's resident memory around a 100-package commit, and after it is dropped.

The dbus benchmark's fixture (15,000 sync packages, 1,500 installed, plus a
repository of 100 real 30-file packages) served by ``alpmd`` on a private
system-role bus, with finished transactions kept for one second only. RSS
(``VmRSS``) is read when everything is loaded and warm (Search, GetUpdates,
Resolve), right after the commit finished (the transaction object still on
the bus), and once the object is gone from the Manager's ``Transactions``.

Twice, from the same copy of the root: a cold start (the daemon parses the
sync databases and writes their snapshots, whose garbage stays in the heap)
and a warm start (the snapshots the first run wrote are there, as on any
system after its first start).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench import Context, Section, Table, fmt_bytes

TITLE = "Daemon memory around a 100-package commit"
#: The goal of issue 16: RSS after the commit at most this.
GOAL = 100 << 20


async def _measure(address: str, pid: int, names: list[str]) -> dict[str, int]:
    from dbus_fast.signature import Variant

    from bench.dbus import _call, _client, _rss

    bus = await _client(address)
    try:
        await _call(bus, "org.alpm.Query1", "Resolve", "asa{sv}", [["gtk3"], {}])
        await _call(bus, "org.alpm.Query1", "Search", "asa{sv}", [["font"], {}])
        await _call(bus, "org.alpm.Query1", "GetUpdates", "a{sv}", [{}])
        await _call(bus, "org.alpm.Query1", "Search", "asa{sv}",
                    [[], {"scope": Variant("s", "installed")}])
        out = {"idle": _rss(pid)}
        path = (await _call(bus, "org.alpm.Manager1", "Install", "asa{sv}",
                            [names, {"no-sysupgrade": Variant("b", True)}]))[0]
        await _call(bus, "org.alpm.Transaction1", "Run", "", [], path=path)
        deadline = time.monotonic() + 600
        while True:
            st = (await _call(bus, "org.freedesktop.DBus.Properties", "Get", "ss",
                              ["org.alpm.Transaction1", "State"], path=path))[0].value
            if st == "finished":
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the commit did not finish in 600 s")
            await asyncio.sleep(0.2)
        result = (await _call(bus, "org.freedesktop.DBus.Properties", "Get", "ss",
                              ["org.alpm.Transaction1", "Result"], path=path))[0].value
        if result != "success":
            raise RuntimeError(f"the commit ended with {result}")
        out["after_commit"] = _rss(pid)
        while True:
            paths = (await _call(bus, "org.freedesktop.DBus.Properties", "Get", "ss",
                                 ["org.alpm.Manager1", "Transactions"]))[0].value
            if path not in paths:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the finished transaction was never dropped")
            await asyncio.sleep(0.2)
        await _call(bus, "org.alpm.Query1", "Search", "asa{sv}", [["font"], {}])
        out["dropped"] = _rss(pid)
        return out
    finally:
        bus.disconnect()


def run(ctx: Context) -> Section:
    from alpmd.testing.dbusenv import DBusEnv, have_tools
    from bench.dbus import _prepare

    t0 = time.perf_counter()
    section = Section(TITLE)
    why = have_tools()
    if why:
        raise RuntimeError(f"the daemon cannot run here: {why}")
    root, config, names = _prepare(ctx)
    template = root.with_name("root-before-commit")
    if template.exists():
        shutil.rmtree(template)
    shutil.copytree(root, template, symlinks=True)
    t = Table(["moment", "cold start (no snapshots)", "warm start (snapshots present)"])
    runs: list[dict[str, Any]] = []
    for n, kind in enumerate(("cold", "warm")):
        if n:  # the same root again, before its commit, with the snapshots the first run wrote
            snapshots = root / "var/cache/alpmd"
            keep = template.with_name("snapshots")
            if keep.exists():
                shutil.rmtree(keep)
            shutil.copytree(snapshots, keep, symlinks=True)
            shutil.rmtree(root)
            shutil.copytree(template, root, symlinks=True)
            shutil.rmtree(root / "var/cache/alpmd", ignore_errors=True)
            shutil.copytree(keep, root / "var/cache/alpmd", symlinks=True)
        env = DBusEnv(ctx.workdir / "dbus" / f"bus-memory-{kind}", polkit=False)
        env.start()
        try:
            proc = env.spawn([sys.executable, "-m", "alpmd.dbus.service", "--config",
                              str(config), "--idle-timeout", "0", "--keep-finished", "1"],
                             env={"PYTHONPATH": str(Path(__file__).parents[1])})
            env.wait_for_name("org.alpm", timeout=120, proc=proc)
            runs.append(asyncio.run(_measure(env.address, proc.pid, names)))
        finally:
            env.stop()

    def goal(v: int) -> str:
        return fmt_bytes(v) + (" (≤ 100 MiB: met)" if v <= GOAL else " (≤ 100 MiB: NOT met)")
    t.add("everything loaded and warm, before the commit",
          *(fmt_bytes(m["idle"]) for m in runs))
    t.add(f"right after the {len(names)}-package commit (object still on the bus)",
          *(goal(m["after_commit"]) for m in runs))
    t.add("after the transaction object was dropped (and one Search)",
          *(fmt_bytes(m["dropped"]) for m in runs))
    section.tables.append(t)
    section.notes.append("Fixture: the dbus benchmark's (15,000 sync packages, 1,500 installed, "
                         f"{len(names)} real 30-file packages on a file:// mirror); "
                         "--keep-finished 1.")
    section.seconds = time.perf_counter() - t0
    return section


if __name__ == "__main__":  # pragma: no cover - manual run
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(run(Context(Path(tmp), repeats=1, quick=True)).markdown())
    os._exit(0)
