"""The daemon over D-Bus on 15,000 sync packages and 1,500 installed ones.

A private system-role bus (``dbus-daemon``, no polkitd: the client is root) with
``alpmd`` on a copy of the query benchmark's root, plus a small repository of real
package files for a commit. Measured from one Python client (dbus-fast):

* Search and GetPackages latency (p50, p99) and calls per second, warm, against
  ``pacman -Ss`` / ``-Si`` process time on the same files in the same run;
* signal throughput of our bus stack (dbus-fast with the EAGAIN-safe writer);
* Search/GetPackages p99 while the daemon commits 100 packages;
* the daemon's resident memory with everything loaded.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Annotated, Any

from dbus_fast import Variant
from dbus_fast.annotations import DBusSignature
from dbus_fast.service import ServiceInterface, dbus_signal

from bench import PACMAN, Context, Section, Table, fmt_bytes, fmt_s, ratio, run_process

TITLE = "Daemon over D-Bus (Search, GetPackages, signals, queries during a commit, memory)"
COMMIT_PACKAGES = 100


U = Annotated[int, DBusSignature("u")]


class Flood(ServiceInterface):
    """Signals as fast as the service can emit them."""

    def __init__(self) -> None:
        super().__init__("org.alpm.Test1")

    @dbus_signal()
    def Tick(self, i: U) -> U:
        return i


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _prepare(ctx: Context) -> tuple[Path, Path, list[str]]:
    """A copy of the query fixture's root plus a ``bench`` repository of real packages."""
    from alpmd.engine.formats.desc import PkgMeta
    from alpmd.testing.pkgbuild import FileSpec, build_package
    from alpmd.testing.repogen import write_sync_db
    from bench.query import _build

    fx = ctx.fixture("query", lambda: _build(ctx))
    top = ctx.workdir / "dbus"
    if top.exists():
        shutil.rmtree(top)
    root = top / "root"
    shutil.copytree(fx.root, root, symlinks=True)
    conf = fx.config.read_text().replace(str(fx.root), str(root))
    srv = top / "srv"
    srv.mkdir()
    metas = []
    import hashlib
    for i in range(COMMIT_PACKAGES):
        meta = PkgMeta(f"dbench{i:03d}", "1.0-1", desc="daemon benchmark package")
        path = build_package(srv, meta, [FileSpec(f"usr/share/dbench{i:03d}/f{j}", b"x" * 4096)
                                         for j in range(30)], compression="gz")
        data = path.read_bytes()
        m = PkgMeta(meta.name, meta.version, desc=meta.desc, arch="any", filename=path.name,
                    csize=len(data), isize=30 * 4096, builddate=1_600_000_000,
                    sha256sum=hashlib.sha256(data).hexdigest(),
                    md5sum=hashlib.md5(data).hexdigest())
        metas.append(m)
    write_sync_db(metas, srv / "bench.db")
    shutil.copyfile(srv / "bench.db", root / "var/lib/pacman/sync/bench.db")
    conf += f"\n[bench]\nServer = file://{srv}\n"
    config = root / "etc/pacman.conf"
    config.write_text(conf)
    return root, config, [m.name for m in metas]


async def _client(address: str) -> Any:
    from alpmd.dbus.bus import connect
    return await connect(address)


async def _call(bus: Any, iface: str, member: str, sig: str, body: list[Any],
                path: str = "/org/alpm") -> Any:
    from dbus_fast import Message, MessageType
    reply = await bus.call(Message(destination="org.alpm", path=path, interface=iface,
                                   member=member, signature=sig, body=body))
    if reply.message_type is MessageType.ERROR:
        raise RuntimeError(f"{member}: {reply.error_name} {reply.body}")
    return reply.body


async def _latency(bus: Any, n: int, member: str, sig: str, body: list[Any],
                   iface: str = "org.alpm.Query1") -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await _call(bus, iface, member, sig, body)
        times.append(time.perf_counter() - t0)
    return times


async def _throughput(address: str, member: str, sig: str, body: list[Any], *,
                      clients: int = 8, seconds: float = 2.0) -> float:
    buses = [await _client(address) for _ in range(clients)]
    count = 0
    stop = time.perf_counter() + seconds

    async def loop(bus: Any) -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await _call(bus, "org.alpm.Query1", member, sig, body)
            count += 1
    t0 = time.perf_counter()
    await asyncio.gather(*(loop(b) for b in buses))
    elapsed = time.perf_counter() - t0
    for b in buses:
        b.disconnect()
    return count / elapsed


async def _signal_rate(address: str, n: int = 20000) -> float:
    """Signals per second from a dbus-fast service (our writer) to a client via dbus-daemon."""
    from dbus_fast import Message, MessageType

    server, client = await _client(address), await _client(address)
    iface = Flood()
    server.export("/t", iface)
    got = 0
    done = asyncio.Event()

    def on(msg: Message) -> bool:
        nonlocal got
        if msg.message_type is MessageType.SIGNAL and msg.member == "Tick":
            got += 1
            if got == n:
                done.set()
        return False
    client.add_message_handler(on)
    await client.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                              interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                              body=[f"type='signal',sender='{server.unique_name}'"]))
    t0 = time.perf_counter()
    for i in range(n):
        iface.Tick(i)
    await asyncio.wait_for(done.wait(), 120)
    rate = n / (time.perf_counter() - t0)
    server.disconnect()
    client.disconnect()
    return rate


async def _during_commit(address: str, names: list[str], sid: str) -> dict[str, Any]:
    from dbus_fast.signature import Variant
    bus = await _client(address)
    poll = await _client(address)
    path = (await _call(bus, "org.alpm.Manager1", "Install", "asa{sv}",
                        [names, {"no-sysupgrade": Variant("b", True)}]))[0]
    await _call(bus, "org.alpm.Transaction1", "Run", "", [], path=path)
    times: list[float] = []
    states: set[str] = set()
    t0 = time.perf_counter()
    while True:
        for member, sig, body in (("Search", "asa{sv}", [["font"], {}]),
                                  ("GetPackages", "asas", [[sid], []])):
            a = time.perf_counter()
            await _call(poll, "org.alpm.Query1", member, sig, body)
            times.append(time.perf_counter() - a)
        st = (await _call(poll, "org.freedesktop.DBus.Properties", "Get", "ss",
                          ["org.alpm.Transaction1", "State"], path=path))[0].value
        states.add(st)
        if st == "finished" or time.perf_counter() - t0 > 600:
            break
    result = (await _call(poll, "org.freedesktop.DBus.Properties", "Get", "ss",
                          ["org.alpm.Transaction1", "Result"], path=path))[0].value
    bus.disconnect()
    poll.disconnect()
    return {"times": times, "states": sorted(states), "result": result,
            "seconds": time.perf_counter() - t0}


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run(ctx: Context) -> Section:
    from alpmd.testing.dbusenv import DBusEnv, have_tools

    t0 = time.perf_counter()
    section = Section(TITLE)
    why = have_tools()
    if why:
        section.notes.append(f"skipped: {why}")
        return section
    root, config, names = _prepare(ctx)
    n = 50 if ctx.quick else 300
    env = DBusEnv(ctx.workdir / "dbus" / "bus", polkit=False)
    env.start()
    try:
        proc = env.spawn([sys.executable, "-m", "alpmd.dbus.service", "--config", str(config),
                          "--idle-timeout", "0"], env={"PYTHONPATH": str(Path(__file__).parents[1])})
        env.wait_for_name("org.alpm", timeout=120, proc=proc)

        async def measure() -> dict[str, Any]:
            bus = await _client(env.address)
            sid = (await _call(bus, "org.alpm.Query1", "Resolve", "asa{sv}",
                               [["gtk3"], {}]))[0][0]
            first = time.perf_counter()
            await _call(bus, "org.alpm.Query1", "Search", "asa{sv}", [["font"], {}])
            cold = time.perf_counter() - first
            rows = len((await _call(bus, "org.alpm.Query1", "Search", "asa{sv}",
                                    [["font"], {}]))[0])
            out: dict[str, Any] = {"cold": cold, "rows": rows, "sid": sid}
            out["search"] = await _latency(bus, n, "Search", "asa{sv}", [["font"], {}])
            out["getpkg"] = await _latency(bus, n * 3, "GetPackages", "asas", [[sid], []])
            out["getpkg_all"] = await _latency(bus, n, "GetPackages", "asas",
                                               [[sid], ["name", "version", "depends",
                                                        "required_by", "installed"]])
            out["search_rate"] = await _throughput(env.address, "Search", "asa{sv}",
                                                   [["font"], {}])
            out["getpkg_rate"] = await _throughput(env.address, "GetPackages", "asas",
                                                   [[sid], []])
            await _call(bus, "org.alpm.Query1", "GetUpdates", "a{sv}", [{}])
            await _call(bus, "org.alpm.Query1", "Search", "asa{sv}",
                        [[], {"scope": Variant("s", "installed")}])
            out["rss_loaded"] = _rss(proc.pid)
            out["signals"] = await _signal_rate(env.address, 5000 if ctx.quick else 20000)
            bus.disconnect()
            out["commit"] = await _during_commit(env.address, names, sid)
            out["rss_after"] = _rss(proc.pid)
            return out
        m = asyncio.run(measure())
    finally:
        env.stop()
    base = ["--config", str(config), "--color", "never"]
    reps = max(3, ctx.repeats // 2)
    pss = run_process([PACMAN, "-Ss", *base, "font"], env=ctx.env(), repeats=reps)
    psi = run_process([PACMAN, "-Si", *base, "gtk3"], env=ctx.env(), repeats=reps)

    lat = Table(["call", "p50", "p99", "calls/s (8 clients)", "pacman process", "p50 vs pacman",
                 "goal"], title=f"Warm latency over D-Bus, {n}+ calls each (one client)")
    lat.add(f"Search ['font'] ({m['rows']} rows)", fmt_s(_pct(m["search"], .5)),
            fmt_s(_pct(m["search"], .99)), f"{m['search_rate']:.0f}",
            f"-Ss {fmt_s(pss.median)}", ratio(_pct(m["search"], .5), pss.median),
            "< 0.10× " + ("met" if _pct(m["search"], .5) < pss.median / 10 else "NOT met"))
    lat.add("GetPackages 1 id (list attributes)", fmt_s(_pct(m["getpkg"], .5)),
            fmt_s(_pct(m["getpkg"], .99)), f"{m['getpkg_rate']:.0f}",
            f"-Si {fmt_s(psi.median)}", ratio(_pct(m["getpkg"], .5), psi.median),
            "< 2 ms " + ("met" if _pct(m["getpkg"], .5) < 0.002 else "NOT met"))
    lat.add("GetPackages 1 id (+depends, required_by)", fmt_s(_pct(m["getpkg_all"], .5)),
            fmt_s(_pct(m["getpkg_all"], .99)), "", "", "", "")
    section.tables.append(lat)
    c = m["commit"]
    p99 = _pct(c["times"], .99)
    other = Table(["measure", "value"], title="Under load, signals, memory")
    other.add(f"query p99 during a {COMMIT_PACKAGES}-package commit ({len(c['times'])} queries, "
              f"{c['seconds']:.1f} s, result {c['result']})",
              f"{fmt_s(p99)} (p50 {fmt_s(statistics.median(c['times']))}; goal < 20 ms "
              + ("met" if p99 < 0.02 else "NOT met") + ")")
    other.add("signal throughput (dbus-fast service → dbus-daemon → client)",
              f"{m['signals']:.0f} signals/s")
    other.add("first Search after start (lazy indexes built)", fmt_s(m["cold"]))
    other.add("daemon RSS, everything loaded", fmt_bytes(m["rss_loaded"]))
    other.add("daemon RSS after the commit", fmt_bytes(m["rss_after"]))
    section.tables.append(other)
    section.notes += [
        "Fixture: the query benchmark's root (15,000 generated sync packages, 1,500 installed) "
        f"copied, plus a repository of {COMMIT_PACKAGES} real 30-file packages (file://) "
        "that the commit installs with no-sysupgrade.",
        "Client and daemon on a private system-role dbus-daemon on this machine; the client "
        "is root (no polkit round trip for queries anyway). Latency includes the client's "
        "own dbus-fast marshalling.",
        f"States seen while polling the commit: {', '.join(c['states'])}.",
        "pacman -Ss/-Si: whole process (spawn to exit) on the same files.",
    ]
    section.seconds = time.perf_counter() - t0
    return section


if __name__ == "__main__":  # pragma: no cover - manual run
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(run(Context(Path(tmp), repeats=3, quick="--quick" in sys.argv)).markdown())
    os._exit(0)
