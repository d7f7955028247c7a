"""Fetching ~200 packages from 3 mirrors: pacman -Sw against our downloader.

The same files (incompressible, described by a generated sync database with
their sha256) are served by three ``alpmd.testing.mirror`` processes on
127.0.0.1, twice: first capping every connection and each mirror's total rate
(the issue's "at least 2x faster" case), then with no cap at all (the "never
slower" case); both add a per-request latency. Both sides start from an empty cache with
ParallelDownloads = 5: ``pacman -Sw --noconfirm`` and a fresh interpreter
running :func:`alpmd.engine.download.fetch_packages`. Reported: wall time and
its ratio, the fraction of the mirrors' combined bandwidth reached, and CPU
time (user + system) per 100 MB.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import PACMAN, Context, Section, Table, fmt_s, ratio

TITLE = "Downloads: ~200 packages from 3 mirrors (rate-capped, then uncapped)"

MB = 1_000_000
CONN_RATE = 6 * MB          # per connection
MIRROR_RATE = 12 * MB       # per mirror
LATENCY = 0.03              # per request
PARALLEL = 5

_PROBE = r"""
import asyncio, json, os, resource, sys, time
from alpmd.engine.config import Repo, SigCheck, SigLevel, SigPolicy
from alpmd.engine.download import fetch_packages
from alpmd.engine.handle import Handle, Options
never = SigLevel(SigPolicy(SigCheck.NEVER), SigPolicy(SigCheck.NEVER))
h = Handle(Options(root={root!r}, dbpath={dbpath!r}, cachedirs=[{cache!r}], siglevel=never,
                   parallel_downloads={parallel}, use_snapshots=False))
h.register_syncdb("bench", Repo("bench", servers={servers!r}, siglevel=never))
pkgs = h.syncdbs[0].packages
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
got = asyncio.run(fetch_packages(h, pkgs))
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
assert len(got) == len(pkgs)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print(json.dumps({{"wall": wall, "cpu": cpu}}))
"""


def _build(work: Path, seed: int = 7) -> tuple[Path, list[str], int]:
    """The served directory (packages + bench.db); package names; total bytes."""
    from alpmd.engine.formats.desc import PkgMeta
    from alpmd.testing.repogen import write_sync_db

    rng = random.Random(seed)
    srv = work / "srv"
    if srv.exists():
        shutil.rmtree(srv)
    srv.mkdir(parents=True)
    pool = os.urandom(32 << 20)
    sizes = [int(20_000 * (150 ** rng.random())) for _ in range(190)]       # 20 kB - 3 MB
    sizes += [rng.randrange(8 * MB, 25 * MB) for _ in range(10)]
    metas = []
    for i, size in enumerate(sizes):
        off = rng.randrange(0, len(pool) - size)
        data = i.to_bytes(8, "big") + pool[off:off + size - 8]
        name = f"pkg{i:03d}"
        filename = f"{name}-1-1-x86_64.pkg.tar.zst"
        (srv / filename).write_bytes(data)
        metas.append(PkgMeta(name, "1-1", arch="x86_64", filename=filename, csize=len(data),
                             sha256sum=hashlib.sha256(data).hexdigest(),
                             builddate=1_600_000_000))
    write_sync_db(metas, srv / "bench.db")
    return srv, [m.name for m in metas], sum(sizes)


def _start_mirrors(srv: Path, ctx: Context,
                   capped: bool) -> tuple[list[subprocess.Popen[str]], list[str]]:
    caps = ["--rate", str(CONN_RATE), "--total-rate", str(MIRROR_RATE)] if capped else []
    procs, urls = [], []
    for _ in range(3):
        p = subprocess.Popen(
            [ctx.python, "-m", "alpmd.testing.mirror", str(srv), *caps,
             "--latency", str(LATENCY)],
            stdout=subprocess.PIPE, text=True, env=ctx.env())
        assert p.stdout is not None
        procs.append(p)
        urls.append(p.stdout.readline().strip())
    return procs, urls


def _root(work: Path, name: str, srv: Path, urls: list[str]) -> tuple[Path, Path, Path, Path]:
    root = work / name
    if root.exists():
        shutil.rmtree(root)
    dbpath, cache = root / "db", root / "cache"
    for d in (dbpath / "sync", dbpath / "local", cache, root / "gnupg"):
        d.mkdir(parents=True)
    (dbpath / "local" / "ALPM_DB_VERSION").write_text("9\n")
    shutil.copyfile(srv / "bench.db", dbpath / "sync" / "bench.db")
    conf = root / "pacman.conf"
    conf.write_text(
        "[options]\n"
        f"RootDir = {root}\nDBPath = {dbpath}/\nCacheDir = {cache}/\n"
        f"LogFile = {root}/pacman.log\nGPGDir = {root}/gnupg/\n"
        f"Architecture = auto\nSigLevel = Never\nParallelDownloads = {PARALLEL}\n\n"
        "[bench]\n" + "".join(f"Server = {u}\n" for u in urls))
    return root, dbpath, cache, conf


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU (user+sys) seconds of one child process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {out.stderr[-1500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout


def _cache_ok(cache: Path, srv: Path, count: int) -> None:
    files = sorted(p.name for p in cache.iterdir())
    if len(files) != count or any(f.endswith(".part") for f in files):
        raise RuntimeError(f"cache holds {len(files)} files, expected {count}")


@dataclass
class _Measure:
    p_wall: float
    p_cpu: float
    o_wall: float
    o_cpu: float
    inner: float
    inner_cpu: float


def _measure(ctx: Context, work: Path, srv: Path, names: list[str], capped: bool) -> _Measure:
    """One side-by-side run (fresh caches) against three freshly started mirrors."""
    procs, urls = _start_mirrors(srv, ctx, capped)
    try:
        _, _, pcache, pconf = _root(work, "pacman", srv, urls)
        p_wall, p_cpu, _ = _timed([PACMAN, "-Sw", "--noconfirm", "--config", str(pconf),
                                   "--color", "never", *names], ctx.env())
        _cache_ok(pcache, srv, len(names))
        root, dbpath, cache, _ = _root(work, "ours", srv, urls)
        code = _PROBE.format(root=str(root), dbpath=str(dbpath) + "/", cache=str(cache) + "/",
                             parallel=PARALLEL, servers=urls)
        o_wall, o_cpu, out = _timed([ctx.python, "-c", code], ctx.env())
        probe = json.loads(out.strip().splitlines()[-1])
        _cache_ok(cache, srv, len(names))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
    return _Measure(p_wall, p_cpu, o_wall, o_cpu, probe["wall"], probe["cpu"])


def _table(title: str, m: _Measure, total: int, combined: float | None) -> Table:
    table = Table(["", "pacman -Sw", "alpmd fetch_packages", "ratio (ours/pacman)"],
                  title=title)
    table.add("wall time (process)", fmt_s(m.p_wall), fmt_s(m.o_wall), ratio(m.o_wall, m.p_wall))
    table.add("throughput", f"{total / m.p_wall / MB:.1f} MB/s",
              f"{total / m.o_wall / MB:.1f} MB/s",
              ratio(m.p_wall, m.o_wall).replace("×", "× faster"))
    if combined is not None:
        table.add("share of the mirrors' combined bandwidth", f"{total / m.p_wall / combined:.0%}",
                  f"{total / m.o_wall / combined:.0%} ({total / m.inner / combined:.0%} "
                  "excluding start-up)", "")
    table.add("CPU per 100 MB (user+sys)", f"{m.p_cpu / (total / 100 / MB) * 1000:.0f} ms",
              f"{m.o_cpu / (total / 100 / MB) * 1000:.0f} ms", ratio(m.o_cpu, m.p_cpu))
    table.add("… excluding our start-up (interpreter, imports, db load)", "",
              f"{m.inner_cpu / (total / 100 / MB) * 1000:.0f} ms", ratio(m.inner_cpu, m.p_cpu))
    return table


def run(ctx: Context) -> Section:
    t_start = time.perf_counter()
    work = ctx.workdir / "download"
    srv, names, total = _build(work)
    section = Section(TITLE)
    combined = 3 * MIRROR_RATE
    capped = _measure(ctx, work, srv, names, capped=True)
    section.tables.append(_table("Mirrors capping each connection's rate", capped, total,
                                 combined))
    free = _measure(ctx, work, srv, names, capped=False)
    section.tables.append(_table("Mirrors without a rate cap (latency only)", free, total, None))
    section.notes += [
        f"{len(names)} files, {total / MB:.0f} MB (190 of 20 kB–3 MB, 10 of 8–25 MB), "
        "random content, sha256 in a generated sync db; fresh cache for each side.",
        f"3 mirror processes on 127.0.0.1: capped run {CONN_RATE / MB:g} MB/s per connection, "
        f"{MIRROR_RATE / MB:g} MB/s per mirror (combined {combined / MB:g} MB/s); uncapped run "
        f"no limit (the Python mirror processes and loopback are the limit); "
        f"{LATENCY * 1000:g} ms per request in both; ParallelDownloads = {PARALLEL} on both "
        "sides.",
        "pacman sends every transfer to the first Server; we spread files over the mirrors "
        "(least busy first) and split large files into ranges across all three.",
        "One run each (minutes of transfer would not fit repetitions); CPU time is the "
        "child's rusage, our figure includes interpreter start-up and imports.",
        f"python {sys.version.split()[0]}",
    ]
    section.seconds = time.perf_counter() - t_start
    return section
