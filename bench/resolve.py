"""Dependency resolution on the generated 15,000-package repository: pacman against us.

Three plans, the same files for both:

* a system upgrade (``-Sup``) of an installed system of 1,500 packages, 300 outdated
  (``repogen.make_local_db``);
* the install with the largest dependency tree (``-Sp``), nothing installed;
* an unsatisfiable install: a library missing deep in that tree (pacman retries the
  failing subtree from every path; it gets a time limit and is killed past it).

pacman is timed as a whole process; ours as a whole ``python -c`` process (cold:
interpreter, import, database load from a warm snapshot, resolution) and
in-process (``resolve_sync`` again on the loaded handle: warm).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from pathlib import Path

from bench import PACMAN, Context, Section, Table, fmt_s, median_of, ratio, run_probe

TITLE = "Dependency resolution (15,000 packages)"
PACMAN_LIMIT = 60.0

_PROBE = r"""
import json, time
t0 = time.perf_counter()
from alpmd.engine.handle import Handle, Options
from alpmd.engine.errors import AlpmError
from alpmd.engine.resolve import resolve_sync
opts = Options(root={root!r}, dbpath={dbpath!r}, snapshot_dir={snap!r})
h = Handle(opts)
h.register_syncdb("extra")
def once():
    try:
        plan = resolve_sync(h, {targets!r}, sysupgrade={sysupgrade})
        return len(plan.add), ""
    except AlpmError as exc:
        return -1, str(exc)
n, err = once()
t1 = time.perf_counter()
warm = []
for _ in range(5):
    s = time.perf_counter(); once(); warm.append(time.perf_counter() - s)
warm.sort()
print(json.dumps({{"cold": t1 - t0, "warm": warm[2], "n": n, "err": err}}))
"""


def _write_conf(dir: Path) -> Path:
    dir.mkdir(parents=True, exist_ok=True)
    conf = dir / "pacman.conf"
    conf.write_text("[options]\n"
                    f"RootDir = {dir}/root\nDBPath = {dir}/db/\nCacheDir = {dir}/cache/\n"
                    f"LogFile = {dir}/pacman.log\nGPGDir = {dir}/gnupg/\n"
                    "Architecture = auto\nSigLevel = Never\n\n"
                    "[extra]\nServer = file:///nonexistent\n")
    for sub in ("root", "cache", "gnupg", "db/local", "db/sync", "snap"):
        (dir / sub).mkdir(parents=True, exist_ok=True)
    (dir / "db/local/ALPM_DB_VERSION").write_text("9\n")
    return conf


def _pacman(conf: Path, dir: Path, args: list[str], repeats: int,
            limit: float = PACMAN_LIMIT) -> tuple[list[float], str]:
    """Wall times of pacman runs (inf when killed at ``limit``) and the last output."""
    times: list[float] = []
    out = ""
    for _ in range(repeats):
        cmd = [PACMAN, *args, "--config", str(conf), "--dbpath", f"{dir}/db/",
               "--color", "never", "--noconfirm"]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit,
                                  env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
            times.append(time.perf_counter() - t0)
            out = proc.stdout + proc.stderr
        except subprocess.TimeoutExpired:  # subprocess.run kills it
            times.append(float("inf"))
            out = f"killed after {limit:.0f} s"
            break
    return times, out


def _largest_tree(metas: list) -> tuple[str, list[str]]:  # type: ignore[type-arg]
    """The package with the largest first-choice dependency closure, and its deepest path."""
    from alpmd.engine.depend import Depend

    by_name = {m.name: m for m in metas}
    providers: dict[str, str] = {}
    for m in sorted(metas, key=lambda m: m.name):
        for p in m.provides:
            providers.setdefault(Depend.parse(p).name, m.name)
    best: tuple[int, str, list[str]] = (0, "", [])
    for start in sorted(by_name)[::7]:
        parent: dict[str, str | None] = {start: None}
        queue = [start]
        for cur in queue:
            for d in by_name[cur].depends:
                name = Depend.parse(d).name
                nxt = name if name in by_name else providers.get(name)
                if nxt is not None and nxt not in parent:
                    parent[nxt] = cur
                    queue.append(nxt)
        if len(queue) > best[0]:
            path = [queue[-1]]
            while (p := parent[path[-1]]) is not None:
                path.append(p)
            best = (len(queue), start, path[::-1])
    return best[1], best[2]


def _shared_victim(metas: list, target: str) -> str | None:  # type: ignore[type-arg]
    """The package of ``target``'s tree that most others in the tree depend on.

    A missing library under it is reached along many paths: the case where
    pacman's resolver, which forgets failures, spends its time.
    """
    from alpmd.engine.depend import Depend

    by_name = {m.name: m for m in metas}
    providers: dict[str, str] = {}
    for m in sorted(metas, key=lambda m: m.name):
        for p in m.provides:
            providers.setdefault(Depend.parse(p).name, m.name)
    seen = {target}
    queue = [target]
    indeg: dict[str, int] = {}
    for cur in queue:
        for d in by_name[cur].depends:
            name = Depend.parse(d).name
            nxt = name if name in by_name else providers.get(name)
            if nxt is None:
                continue
            indeg[nxt] = indeg.get(nxt, 0) + 1
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    deep = [n for n in queue[len(queue) // 3:] if by_name[n].depends]
    return max(deep, key=lambda n: (indeg.get(n, 0), n)) if deep else None


def run(ctx: Context) -> Section:
    from alpmd.testing.repogen import generate_repo, make_local_db, write_sync_db

    t0 = time.perf_counter()
    section = Section(TITLE)
    n = max(3, min(ctx.repeats, 5))
    metas = generate_repo(1, 15000)
    base = ctx.workdir / "resolve"
    shutil.rmtree(base, ignore_errors=True)

    upg = base / "upgrade"
    conf_u = _write_conf(upg)
    write_sync_db(metas, upg / "db/sync/extra.db")
    make_local_db(upg / "db", metas, installed=1500, outdated=300, with_files=False)

    fresh = base / "install"
    conf_i = _write_conf(fresh)
    write_sync_db(metas, fresh / "db/sync/extra.db")
    target, path = _largest_tree(metas)

    bad = base / "unsat"
    conf_b = _write_conf(bad)
    victim = _shared_victim(metas, target) or path[-1]
    broken = [dataclasses.replace(m, depends=[*m.depends, "libinjected-missing.so=3-64"])
              if m.name == victim else m for m in metas]
    write_sync_db(broken, bad / "db/sync/extra.db")

    table = Table(["plan", "pacman (whole process)", "ours, python -c (cold)",
                   "vs pacman", "ours in-process (warm)", "vs pacman", "packages"],
                  title=f"Median of {n} runs (ours: fresh interpreter per run)")
    cases = [
        ("-Su: 300 of 1,500 installed outdated", upg, conf_u, ["-Sup", "--print-format", "%n"],
         [], 1),
        (f"-S {target} (largest tree)", fresh, conf_i, ["-Sp", "--print-format", "%n", target],
         [target], 0),
        (f"-S {target}, library missing under {victim}", bad, conf_b,
         ["-Sp", "--print-format", "%n", target], [target], 0),
    ]
    for label, dir, conf, pargs, targets, sysup in cases:
        ptimes, pout = _pacman(conf, dir, pargs, n)
        code = _PROBE.format(root=f"{dir}/root", dbpath=f"{dir}/db/", snap=f"{dir}/snap/",
                             targets=targets, sysupgrade=sysup)
        run_probe(ctx, code, repeats=1, warmup=0)  # builds the snapshot
        res = run_probe(ctx, code, repeats=n, warmup=0)
        cold, warm = median_of(res, "cold"), median_of(res, "warm")
        finite = sorted(t for t in ptimes)
        pmed = finite[len(finite) // 2]
        shown = fmt_s(pmed) if pmed != float("inf") else f">{PACMAN_LIMIT:.0f} s (killed)"
        count = int(res[0]["n"])
        pcount = len([ln for ln in pout.splitlines() if ln and " " not in ln.strip()])
        table.add(label, shown, fmt_s(cold), ratio(cold, pmed) if pmed != float("inf") else "–",
                  fmt_s(warm), ratio(warm, pmed) if pmed != float("inf") else "–",
                  f"{count} (pacman {pcount})" if count >= 0 else "unsatisfiable")
        if count < 0:
            section.notes.append(f"our error: {res[0]['err'][:300]}")
    section.tables.append(table)
    section.notes += [
        f"Repository: generated, 15,000 packages (seed 1); largest tree from {target} "
        f"({len(path)} levels deep on its longest first-choice path).",
        "Ours cold = interpreter start + import + handle + database load from a warm "
        "snapshot + resolution; warm = resolve_sync again on the loaded handle.",
        f"pacman's unsatisfiable run is limited to {PACMAN_LIMIT:.0f} s and killed past it.",
    ]
    section.seconds = time.perf_counter() - t0
    return section
