"""How cost grows with the size of the system: 1,000 / 15,000 / 100,000 sync packages and
300 / 1,500 / 5,000 installed ones, pacman beside us on the same files in the same run.

Two axes, each with the other held fixed: the repository grows with 300 packages
installed, and the installed system grows on the 15,000-package repository.
Every cell is a whole process (spawn to exit, median of repeats after one
warm-up that also builds our sync snapshot, as the first ``-Sy`` does on a real
system): wall and CPU time, and peak RSS. The growth columns give the exponent
``k`` of ``CPU time ∝ size^k`` between neighbouring sizes for each tool: 1 is linear, and a
fixed start-up cost pulls it below 1. A row is flagged when ours grows faster
than linearly (k > 1.15) where pacman's does not.

Generated data is cached under ``bench/out/scale-cache/`` keyed by a hash of the
generator, so the 100,000-package repository (about a minute to build) is made
once per generator version.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    PACMAN,
    ROOT,
    Context,
    Section,
    Table,
    fmt_bytes,
    fmt_s,
    ratio,
    run_process,
)

TITLE = "Scale: 1,000 / 15,000 / 100,000 sync packages, 300 / 1,500 / 5,000 installed"

SYNC_SIZES = (1000, 15000, 100000)
LOCAL_SIZES = (300, 1500, 5000)
#: Installed packages while the repository grows; repository size while the system grows.
FIXED_LOCAL = 300
FIXED_SYNC = 15000
CACHE = ROOT / "bench" / "out" / "scale-cache"
#: An exponent above this is "faster than linear" (noise on a loaded machine stays below).
SUPERLINEAR = 1.15


def _generator_key() -> str:
    """Changes whenever the generator or the database writers do (then data is rebuilt)."""
    h = hashlib.sha256()
    for rel in ("alpmd/testing/repogen.py", "alpmd/engine/formats/desc.py",
                "alpmd/engine/formats/files.py"):
        h.update((ROOT / rel).read_bytes())
    return h.hexdigest()[:12]


@dataclass
class Scenario:
    """A root with the generated repository as ``extra`` and a generated installed system."""

    sync: int
    local: int
    dir: Path
    config: Path
    root: Path
    dbpath: Path
    sync_target: str      # a package of the repository (-Si)
    local_target: str     # an installed package (-Qi one)
    owned_file: str       # an absolute path it owns (-Qo)
    seconds: float        # time to build (0 when taken from the cache)


def _scenario(sync: int, local: int) -> Scenario:
    from alpmd.testing.oracle import PacmanRoot
    from alpmd.testing.repogen import generate_files, generate_repo, make_local_db, write_sync_db

    base = CACHE / _generator_key()
    dir = base / f"s{sync}-l{local}"
    done = dir / "ready"
    t0 = time.perf_counter()
    if not done.exists():
        if dir.exists():
            shutil.rmtree(dir)
        metas = generate_repo(1, sync)
        dbfile = base / f"extra-{sync}.db"
        if not dbfile.exists():
            write_sync_db(metas, dbfile.with_suffix(".tmp.db"))
            dbfile.with_suffix(".tmp.db").rename(dbfile)
        root = PacmanRoot(dir / "root")
        root.add_repo("extra", dbfile)
        installed = make_local_db(root.dbpath, metas, installed=local, outdated=local // 5,
                                  seed=1)
        target = sorted(installed, key=lambda m: (-len(m.depends), m.name))[0]
        owned = next(f for f in generate_files(target, 1).files if not f.endswith("/"))
        on_disk = root.root / owned
        on_disk.parent.mkdir(parents=True, exist_ok=True)
        on_disk.write_bytes(b"")
        sync_target = metas[len(metas) // 2].name
        done.write_text(f"{sync_target}\n{target.name}\n{on_disk}\n")
    sync_target, local_target, owned_file = done.read_text().split("\n")[:3]
    root_dir = dir / "root"
    return Scenario(sync, local, dir, root_dir / "etc/pacman.conf", root_dir,
                    root_dir / "var/lib/pacman", sync_target, local_target, owned_file,
                    time.perf_counter() - t0)


def _ops(sc: Scenario, axis: str) -> list[tuple[str, list[str]]]:
    common = [("-Sup", ["-Sup", "--print-format", "%n"]), ("-Qo", ["-Qo", sc.owned_file])]
    if axis == "sync":
        return [("-Si (load + one)", ["-Si", sc.sync_target]), ("-Ss font", ["-Ss", "font"]),
                *common]
    return [("-Qs lib", ["-Qs", "lib"]), ("-Qi one", ["-Qi", sc.local_target]),
            ("-Qi all", ["-Qi"]), ("-Ss font", ["-Ss", "font"]), *common]


@dataclass
class Cell:
    """Medians of one operation at one size: wall and CPU seconds, peak RSS."""

    pacman: float
    ours: float
    pacman_cpu: float
    ours_cpu: float
    pacman_rss: int
    ours_rss: int


def _measure(ctx: Context, sc: Scenario, args: list[str], repeats: int) -> Cell:
    alpm = str(Path(ctx.python).with_name("alpm"))
    base = ["--config", str(sc.config), "--root", str(sc.root), "--dbpath", str(sc.dbpath),
            "--color", "never"]
    # -Sup/-Qu exit 1 when there is nothing to do; the status is not what is measured.
    p = run_process([PACMAN, args[0], *base, *args[1:]], env=ctx.env(), repeats=repeats,
                    check=False)
    a = run_process([alpm, args[0], *base, *args[1:]], env=ctx.env(), repeats=repeats,
                    check=False)
    return Cell(p.median, a.median, p.cpu_median, a.cpu_median, p.rss, a.rss)


def _exponent(t1: float, t2: float, n1: int, n2: int) -> float:
    return math.log(t2 / t1) / math.log(n2 / n1) if t1 > 0 and t2 > 0 else 0.0


def _axis(ctx: Context, axis: str, sizes: tuple[int, ...], repeats: int,
          section: Section, measured: dict[tuple[int, int, str], Cell]) -> list[Scenario]:
    scenarios = [_scenario(n, FIXED_LOCAL) if axis == "sync" else _scenario(FIXED_SYNC, n)
                 for n in sizes]
    built = [f"{s.sync}/{s.local}: {s.seconds:.0f} s" for s in scenarios if s.seconds > 1]
    if built:
        section.notes.append(f"Generated ({axis} axis, sync/installed): " + ", ".join(built))
    label = "sync packages" if axis == "sync" else "installed packages"
    fixed = (f"{FIXED_LOCAL} installed" if axis == "sync"
             else f"{FIXED_SYNC:,} sync packages")
    times = Table(["operation", label, "pacman wall", "alpm wall", "pacman CPU", "alpm CPU",
                   "CPU ratio", "pacman RSS", "alpm RSS"],
                  title=f"Growing {label} ({fixed}); median of {repeats} whole processes")
    growth = Table(["operation", "sizes", "pacman k", "alpm k", "flag"],
                   title=f"Growth exponent k (CPU time ∝ size^k) along {label}")
    per_size = [_ops(sc, axis) for sc in scenarios]
    for j, (op, _) in enumerate(per_size[0]):
        cells = [_measure(ctx, sc, ops[j][1], repeats)
                 for sc, ops in zip(scenarios, per_size, strict=True)]
        for sc, c in zip(scenarios, cells, strict=True):
            measured[(sc.sync, sc.local, op)] = c
        for n, c in zip(sizes, cells, strict=True):
            times.add(op, f"{n:,}", fmt_s(c.pacman), fmt_s(c.ours), fmt_s(c.pacman_cpu),
                      fmt_s(c.ours_cpu), ratio(c.ours_cpu, c.pacman_cpu),
                      fmt_bytes(c.pacman_rss), fmt_bytes(c.ours_rss))
        for i in range(len(sizes) - 1):
            kp = _exponent(cells[i].pacman_cpu, cells[i + 1].pacman_cpu, sizes[i], sizes[i + 1])
            ka = _exponent(cells[i].ours_cpu, cells[i + 1].ours_cpu, sizes[i], sizes[i + 1])
            flag = "**superlinear**" if ka > SUPERLINEAR and kp <= SUPERLINEAR else ""
            growth.add(op, f"{sizes[i]:,}→{sizes[i + 1]:,}", f"{kp:.2f}", f"{ka:.2f}", flag)
    section.tables += [times, growth]
    return scenarios


def run(ctx: Context) -> Section:
    t0 = time.perf_counter()
    section = Section(TITLE)
    repeats = max(3, ctx.repeats // 2)
    measured: dict[tuple[int, int, str], Cell] = {}
    scenarios = _axis(ctx, "sync", SYNC_SIZES, repeats, section, measured)
    scenarios += _axis(ctx, "local", LOCAL_SIZES, repeats, section, measured)[1:]
    _dbus(ctx, scenarios, measured, section)
    section.notes += [
        "Repository: repogen seed 1; installed systems: repogen.make_local_db (a fifth "
        "outdated, files lists written), the same files for both tools.",
        "-Si names the repository's middle package, -Qi one the installed package with the "
        "most dependencies, -Qo one of its files; -Sup prints the upgrade targets' names.",
        "Whole processes include start-up (Python's interpreter and imports for us), which "
        "flattens the small sizes; k compares neighbouring sizes.",
        "CPU = user + system time of the process (wait4): on a shared machine it varies "
        "far less than wall time, so ratios and k use it; wall time is shown beside it.",
        f"Cache: {CACHE.relative_to(ROOT)}/<generator hash>/ (delete it to rebuild).",
    ]
    section.seconds = time.perf_counter() - t0
    return section


# -- the daemon ---------------------------------------------------------------------------


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def _daemon_calls(address: str, n: int) -> dict[str, Any]:
    """First and warm Search / GetUpdates from one client (dbus-fast)."""
    from bench.dbus import _call, _client

    bus = await _client(address)
    out: dict[str, Any] = {}
    for key, member, sig, body in (("search", "Search", "asa{sv}", [["font"], {}]),
                                   ("updates", "GetUpdates", "a{sv}", [{}])):
        t0 = time.perf_counter()
        rows = (await _call(bus, "org.alpm.Query1", member, sig, body))[0]
        out[key + "_first"] = time.perf_counter() - t0
        out[key + "_rows"] = len(rows)
        warm = []
        for _ in range(n):
            t0 = time.perf_counter()
            await _call(bus, "org.alpm.Query1", member, sig, body)
            warm.append(time.perf_counter() - t0)
        out[key] = statistics.median(warm)
    bus.disconnect()
    return out


def _dbus(ctx: Context, scenarios: list[Scenario], measured: dict[tuple[int, int, str], Cell],
          section: Section) -> None:
    from alpmd.testing.dbusenv import DBusEnv, have_tools

    why = have_tools()
    if why:
        raise RuntimeError(f"D-Bus part cannot run: {why}")
    table = Table(["sync / installed", "daemon start", "Search first", "Search warm",
                   "pacman -Ss", "GetUpdates first", "GetUpdates warm", "pacman -Sup",
                   "daemon RSS"],
                  title="The daemon (alpmd) per size: Search ['font'] and GetUpdates over "
                        "D-Bus; pacman whole processes (median wall) beside")
    n = 5 if ctx.quick else 15
    for sc in scenarios:
        # GetUpdates answers from the last Refresh's copy of the sync databases.
        shadow = sc.root / "var/lib/alpmd/shadow/sync"
        shadow.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sc.dbpath / "sync" / "extra.db", shadow / "extra.db")
        env = DBusEnv(ctx.workdir / f"scale-bus-{sc.sync}-{sc.local}", polkit=False)
        env.start()
        try:
            t0 = time.perf_counter()
            proc = env.spawn([ctx.python, "-m", "alpmd.dbus.service", "--config",
                              str(sc.config), "--idle-timeout", "0"],
                             env={"PYTHONPATH": str(ROOT)})
            env.wait_for_name("org.alpm", timeout=300, proc=proc)
            started = time.perf_counter() - t0
            m = asyncio.run(_daemon_calls(env.address, n))
            rss = _rss(proc.pid)
        finally:
            env.stop()
        ss, sup = measured[(sc.sync, sc.local, "-Ss font")], measured[(sc.sync, sc.local, "-Sup")]
        table.add(f"{sc.sync:,} / {sc.local:,}", fmt_s(started), fmt_s(m["search_first"]),
                  fmt_s(m["search"]), fmt_s(ss.pacman), fmt_s(m["updates_first"]),
                  f"{fmt_s(m['updates'])} ({m['updates_rows']} rows)", fmt_s(sup.pacman),
                  fmt_bytes(rss))
    section.tables.append(table)
    section.notes.append(
        "Daemon: a private system-role dbus-daemon, no polkit (root client); warm = median "
        f"of {n} calls after the first; RSS read from /proc after both calls. GetUpdates "
        "reads the shadow copy of the sync database (as after a Refresh).")
