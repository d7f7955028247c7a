"""Loading a 15,000-package sync database and answering ``-Si``: pacman against us.

Measured on the generated repository (seed 1), the same file for both:

* whole processes, fork to exit: ``pacman -Si``, our ``alpm -Si`` as shipped,
  and the same lookup as a bare ``python -c`` with and without a snapshot, next
  to the interpreter's own start-up (the floor no Python tool goes below);
* in-process, each run in a fresh interpreter (import and caches cold): the
  load plus ``get()`` plus reading fields, without a snapshot, building one,
  and from a populated one; with the RSS growth and tracemalloc's peak.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from bench import (
    PACMAN,
    Context,
    RepoFixture,
    Runs,
    Section,
    Table,
    fmt_bytes,
    fmt_s,
    median_of,
    ratio,
    rss_method,
    run_probe,
    run_process,
)

TITLE = "Sync database load and -Si (15,000 packages)"
TARGET = "gtk3"

_PROBE = r"""
import json, time
t0 = time.perf_counter()
from alpmd.engine.db.sync import SyncDatabase
t1 = time.perf_counter()

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0

if {trace}:
    import tracemalloc
    tracemalloc.start()
r0 = rss()
t2 = time.perf_counter()
db = SyncDatabase("extra", {path!r}, snapshot_dir={snap!r})
pkg = db.get({name!r})
fields = (pkg.desc, pkg.depends, pkg.provides, pkg.isize, pkg.packager)
t3 = time.perf_counter()
peak = tracemalloc.get_traced_memory()[1] if {trace} else 0
r1 = rss()
print(json.dumps({{"import": t1 - t0, "load": t3 - t2, "rss_delta": r1 - r0, "peak": peak}}))
"""

_LOOKUP = r"""
from alpmd.engine.db.sync import SyncDatabase
db = SyncDatabase("extra", {path!r}, snapshot_dir={snap!r})
p = db.get({name!r})
print(p.name, p.version, p.desc, p.url, p.licenses, p.depends, p.optdepends, p.provides,
      p.conflicts, p.replaces, p.csize, p.isize, p.packager, p.builddate)
"""


def _probe(ctx: Context, repo: RepoFixture, snap: Path | None, *, fresh_snapshot: bool,
           trace: bool, repeats: int) -> list[dict[str, float]]:
    code = _PROBE.format(path=str(repo.dbfile), snap=str(snap) if snap else None,
                         name=TARGET, trace=trace)
    if not fresh_snapshot:
        return run_probe(ctx, code, repeats=repeats)
    assert snap is not None
    results = []
    for _ in range(repeats):  # every run builds the snapshot from scratch
        shutil.rmtree(snap, ignore_errors=True)
        snap.mkdir(parents=True)
        results += run_probe(ctx, code, repeats=1, warmup=0)
    return results


def _alpm_cli(ctx: Context, repo: RepoFixture) -> list[str] | None:
    """Our ``alpm -Si`` command line if the CLI answers it, else None."""
    cmd = [ctx.python, "-m", "alpmd.cli.alpm", *repo.pacman_args(), "-Si", TARGET]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=ctx.env(), timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0 or f"Name            : {TARGET}" not in out.stdout:
        return None
    return cmd


def run(ctx: Context) -> Section:
    t0 = time.perf_counter()
    section = Section(TITLE)
    repo = ctx.repo(15000, 1)
    snap = ctx.workdir / "snapshots"
    n = ctx.repeats

    # -- whole processes ----------------------------------------------------------
    pacman = run_process([PACMAN, *repo.pacman_args(), "-Si", TARGET], env=ctx.env(),
                         repeats=n)
    procs: list[tuple[str, Runs]] = [(f"pacman -Si {TARGET}", pacman)]
    cli = _alpm_cli(ctx, repo)
    if cli is not None:
        procs.append((f"alpm -Si {TARGET} (our CLI, as shipped)",
                      run_process(cli, env=ctx.env(), repeats=n)))
    for label, snapdir in (("no snapshot", None), ("warm snapshot", snap)):
        if snapdir is not None:  # populate it once
            shutil.rmtree(snapdir, ignore_errors=True)
            snapdir.mkdir(parents=True)
        code = _LOOKUP.format(path=str(repo.dbfile), snap=str(snapdir) if snapdir else None,
                              name=TARGET)
        procs.append((f"python -c: SyncDatabase, {label}",
                      run_process([ctx.python, "-c", code], env=ctx.env(), repeats=n)))
    procs.append(("python -c 'import alpmd.engine.db.sync' (import floor)",
                  run_process([ctx.python, "-c", "import alpmd.engine.db.sync"],
                              env=ctx.env(), repeats=n)))
    procs.append(("python -c pass (interpreter floor)",
                  run_process([ctx.python, "-c", "pass"], env=ctx.env(), repeats=n)))
    whole = Table(["command", "median wall", "range", "vs pacman", "peak RSS", "vs pacman"],
                  title=f"Whole process, spawn to exit ({n} runs each, after 1 warm-up)")
    for label, runs in procs:
        whole.add(label, fmt_s(runs.median), runs.spread, ratio(runs.median, pacman.median),
                  fmt_bytes(runs.rss), ratio(runs.rss, pacman.rss))
    section.tables.append(whole)

    # -- in-process, fresh interpreter per run ------------------------------------
    inproc = Table(["our load + get() + fields", "median", "vs pacman -Si (whole)",
                    "import", "RSS growth", "tracemalloc peak"],
                   title=f"In-process, a fresh interpreter per run ({min(n, 7)} runs each)")
    reps = min(n, 7)
    for label, snapdir, fresh in (("no snapshot (lazy desc parsing)", None, False),
                                  ("building the snapshot (first load)", snap, True),
                                  ("warm snapshot", snap, False)):
        timing = _probe(ctx, repo, snapdir, fresh_snapshot=fresh, trace=False, repeats=reps)
        memory = _probe(ctx, repo, snapdir, fresh_snapshot=fresh, trace=True,
                        repeats=max(1, reps // 3))
        load = median_of(timing, "load")
        inproc.add(label, fmt_s(load), ratio(load, pacman.median),
                   fmt_s(median_of(timing, "import")),
                   fmt_bytes(median_of(timing, "rss_delta")), fmt_bytes(median_of(memory, "peak")))
    section.tables.append(inproc)

    size = repo.dbfile.stat().st_size
    section.notes += [
        f"Database: generated, {repo.count} packages (seed {repo.seed}), "
        f"{fmt_bytes(size)} gzip; generated and written in {repo.seconds:.1f} s.",
        "pacman's figure includes its process start, pacman.conf parsing and reading "
        "the whole archive (libalpm parses every desc); ours in-process excludes the "
        "interpreter start and the import, listed separately.",
        f"Peak RSS is each process's own high-water mark, measured with {rss_method()}; "
        "tracemalloc peak counts Python allocations only, measured in separate runs "
        "(tracing slows them down).",
    ]
    if cli is None:
        section.notes.append("Our `alpm -Si` CLI did not answer; only the python -c rows ran.")
    section.seconds = time.perf_counter() - t0
    return section
