"""Queries on 15,000 sync packages and 1,500 installed ones: pacman against ``alpm``.

Two views of every query, on the same files in the same run:

* whole process, spawn to exit: ``pacman`` and our ``alpm`` with the same
  arguments (ours pays the interpreter's start-up; its sync snapshot is warm
  after the first run, as on a real system);
* warm in-process: the engine call behind the command, with the handle and
  databases already loaded (what the daemon answers with), median of repeats
  after one warm-up call that builds the lazy indexes.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bench import (
    PACMAN,
    Context,
    Runs,
    Section,
    Table,
    fmt_s,
    ratio,
    run_probe,
    run_process,
)

TITLE = "Queries (-Ss, -Si, -Qs, -Qi, -Ql, -Qo, -Qu, -Fx) on 15,000 packages, 1,500 installed"


@dataclass
class QueryFixture:
    root: Path
    config: Path
    installed: str       # an installed package with files
    owned_file: str      # an absolute path it owns
    sync_pkg: str
    search: str
    files_regex: str


def _build(ctx: Context) -> QueryFixture:
    from alpmd.testing.oracle import PacmanRoot
    from alpmd.testing.repogen import (
        generate_files,
        generate_repo,
        make_local_db,
        write_sync_db,
    )

    top = ctx.workdir / "query"
    root = PacmanRoot(top / "root")
    metas = generate_repo(1, 15000)
    files = {m.name: generate_files(m, 1) for m in metas}
    srv = top / "srv"
    srv.mkdir(parents=True, exist_ok=True)
    write_sync_db(metas, srv / "extra.db", files=files)
    root.add_repo("extra", srv / "extra.db", srv / "extra.files")
    local = make_local_db(root.dbpath, metas, installed=1500, outdated=300, seed=1)
    with_files = next(m for m in local if m.name == "bash") if any(
        m.name == "bash" for m in local) else local[0]
    owned = next(f for f in files[with_files.name].files if not f.endswith("/"))
    # -Qo stats the file (pacman refuses a missing one), as seen from outside the root.
    on_disk = root.root / owned
    on_disk.parent.mkdir(parents=True, exist_ok=True)
    on_disk.write_bytes(b"")
    return QueryFixture(root.root, root.config, with_files.name, str(on_disk), "gtk3",
                        "font", r"usr/bin/.*ctl$")


_WARM = r"""
import json
from bench import time_calls
from alpmd.engine.config import load_config
from alpmd.engine.handle import Handle
from alpmd.engine import filesearch, query
cfg = load_config({config!r})
handle, _ = Handle.from_config(cfg)
fhandle, _ = Handle.from_config(cfg, dbext=".files")
local = handle.localdb
sync = handle.syncdbs

def qi(pkg):
    return (pkg.desc, pkg.depends, pkg.optdepends, pkg.provides, pkg.isize,
            query.required_by(handle, pkg), query.optional_for(handle, pkg))

ops = {{
    "-Ss": lambda: [query.search(db, [{search!r}]) for db in sync],
    "-Si": lambda: [(p.desc, p.depends, p.provides, p.isize) for db in sync
                    for p in [db.get({sync_pkg!r})] if p],
    "-Qs": lambda: query.search(local, ["lib"]),
    "-Qi one": lambda: qi(local.get({installed!r})),
    "-Qi all": lambda: [qi(p) for p in local.packages],
    "-Ql": lambda: list(local.get({installed!r}).files),
    "-Qo": lambda: query.find_owner(handle, {owned!r}),
    "-Qu": lambda: [query.new_version(handle, p) for p in local.packages],
    "-Fx": lambda: filesearch.files_search(fhandle.syncdbs, {regex!r}, regex=True),
}}
print(json.dumps({{name: time_calls(fn, repeats=15, fastest=True) for name, fn in ops.items()}}))
"""


def _sqlite_copy(ctx: Context, fx: QueryFixture) -> tuple[Path, str]:
    """The same root with its local database converted to alpmd's SQLite store:
    its pacman.conf and the owned file's path (pacman reads the original)."""
    from alpmd.engine.db.convert import convert_dbpath
    from alpmd.engine.db.stores import Store

    top = ctx.workdir / "query-sqlite"
    if top.exists():
        shutil.rmtree(top)
    root = top / "root"
    shutil.copytree(fx.root, root, symlinks=True)
    config = root / fx.config.relative_to(fx.root)
    config.write_text(config.read_text().replace(str(fx.root), str(root)))
    convert_dbpath(str(root / "var/lib/pacman"), Store.SQLITE)
    return config, fx.owned_file.replace(str(fx.root), str(root))


def _interleaved(ctx: Context, n: int, cmds: list[list[str]]) -> list[Runs]:
    """``n`` runs of each command (after one warm-up each), taken in turn, so that a
    busy spell of a shared machine slows them alike and the ratios stay fair."""
    runs = [run_process(cmd, env=ctx.env(), repeats=1, warmup=1) for cmd in cmds]
    for _ in range(n - 1):
        for cmd, acc in zip(cmds, runs, strict=True):
            one = run_process(cmd, env=ctx.env(), repeats=1, warmup=0)
            acc.times += one.times
            acc.maxrss += one.maxrss
            acc.cpu += one.cpu
    return runs


def _start_up(ctx: Context, fx: QueryFixture, n: int) -> Table:
    """-Qi of one package, -Qs, -Qo and -Qq as whole processes: mostly start-up for us."""
    sqlite_config, sqlite_owned = ctx.fixture("query-sqlite", lambda: _sqlite_copy(ctx, fx))
    alpm = str(Path(ctx.python).with_name("alpm"))
    table = Table(["query", "pacman", "alpm (files store)", "ratio", "alpm (SQLite store)",
                   "ratio"], title=f"Whole-process -Q on 1,500 installed, fastest / median of {n} "
                                   "runs taken in turn; ratios of the fastest, also by CPU time "
                                   "(user+system), and of the medians")
    cases = [("-Qi one", ["-Qi", fx.installed], ["-Qi", fx.installed]),
             ("-Qs", ["-Qs", "lib"], ["-Qs", "lib"]),
             ("-Qo", ["-Qo", fx.owned_file], ["-Qo", sqlite_owned]),
             ("-Qq", ["-Qq"], ["-Qq"])]
    for label, args, sqlite_args in cases:
        base = ["--color", "never", args[0]]
        p, f, q = _interleaved(ctx, n, [
            [PACMAN, "--config", str(fx.config), *base, *args[1:]],
            [alpm, "--config", str(fx.config), *base, *args[1:]],
            [alpm, "--config", str(sqlite_config), *base, *sqlite_args[1:]]])
        table.add(label, f"{fmt_s(p.best)} / {fmt_s(p.median)}",
                  f"{fmt_s(f.best)} / {fmt_s(f.median)}", _ratios(f, p),
                  f"{fmt_s(q.best)} / {fmt_s(q.median)}", _ratios(q, p))
    return table


def _ratios(ours: Runs, pacman: Runs) -> str:
    """Fastest against fastest (CPU time beside it), then median against median."""
    return (f"{ratio(ours.best, pacman.best)} (CPU {ratio(min(ours.cpu), min(pacman.cpu))}), "
            f"median {ratio(ours.median, pacman.median)}")


def run(ctx: Context) -> Section:
    t0 = time.perf_counter()
    section = Section(TITLE)
    fx = ctx.fixture("query", lambda: _build(ctx))
    n = max(3, ctx.repeats // 2)
    base = ["--config", str(fx.config), "--color", "never"]
    cases = [
        ("-Ss", ["-Ss", fx.search]),
        ("-Si", ["-Si", fx.sync_pkg]),
        ("-Qs", ["-Qs", "lib"]),
        ("-Qi one", ["-Qi", fx.installed]),
        ("-Qi all", ["-Qi"]),
        ("-Ql", ["-Ql", fx.installed]),
        ("-Qo", ["-Qo", fx.owned_file]),
        ("-Qu", ["-Qu"]),
        ("-Fx", ["-Fx", fx.files_regex]),
    ]
    alpm = str(Path(ctx.python).with_name("alpm"))
    warm = run_probe(ctx, _WARM.format(config=str(fx.config), search=fx.search,
                                       sync_pkg=fx.sync_pkg, installed=fx.installed,
                                       owned=fx.owned_file, regex=fx.files_regex),
                     repeats=1, warmup=0)[0]
    table = Table(["query", "pacman (process)", "alpm (process)", "process ratio",
                   "alpm warm in-process", "warm vs pacman process"],
                  title=f"Fastest of {n} runs each (after 1 warm-up); warm: fastest of 15 calls")
    for label, args in cases:
        # -Qu exits 1 when nothing is outdated; -Qo and the rest exit 0 here.
        p = run_process([PACMAN, args[0], *base, *args[1:]], env=ctx.env(), repeats=n,
                        check=False)
        a = run_process([alpm, args[0], *base, *args[1:]], env=ctx.env(), repeats=n,
                        check=False)
        w = float(warm[label])
        table.add(label, fmt_s(p.best), fmt_s(a.best), ratio(a.best, p.best),
                  fmt_s(w), ratio(w, p.best))
    section.tables.append(table)
    section.tables.append(_start_up(ctx, fx, max(n, 5)))
    section.notes += [
        "Fixture: generated repository (seed 1, 15,000 packages, with a .files database), "
        "1,500 installed of which 300 outdated (repogen.make_local_db).",
        f"Targets: -Ss {fx.search!r}, -Si {fx.sync_pkg}, -Qi/-Ql {fx.installed}, "
        f"-Qo {fx.owned_file}, -Fx {fx.files_regex!r}.",
        "Our process time includes Python's start-up (about 8 ms for the bare interpreter here) "
        "and the imports a query needs (re, enum, dataclasses and our own modules, compiled "
        "beforehand as an installation ships them); the warm column is what a running "
        "daemon pays.",
        "Fastest of several runs for pacman and us alike (a shared machine: noise only adds).",
    ]
    section.seconds = time.perf_counter() - t0
    return section
