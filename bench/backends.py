"""The local database's two stores, files and SQLite, against pacman on the same system.

For 1,500 and 5,000 installed packages (generated, with file lists): the same
root twice, once in pacman's files layout and once converted to SQLite
(``alpm -D --convert sqlite``'s engine function). Whole processes of pacman
(files) and ``alpm`` on each store, plus warm in-process figures: what the
engine call costs once the database is open (the daemon's case), and what the
SQLite indexes answer directly (file owners, reverse dependencies).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bench import PACMAN, Context, Section, Table, fmt_s, ratio, run_probe, run_process

TITLE = "Local database stores: files vs SQLite vs pacman (1,500 and 5,000 installed)"

SIZES = (1500, 5000)


@dataclass
class StoreFixture:
    installed: int
    files_root: Path
    sqlite_root: Path
    #: Installed files (relative to either root), spread over the installed set.
    rels: list[str]
    search: str
    revdep_of: str

    def config(self, root: Path) -> Path:
        return root / "etc/pacman.conf"

    def paths(self, root: Path) -> list[str]:
        return [str(root / rel) for rel in self.rels]


def _build(ctx: Context, installed: int) -> StoreFixture:
    from alpmd.engine.db.convert import convert_dbpath
    from alpmd.engine.db.stores import Store
    from alpmd.testing.oracle import PacmanRoot
    from alpmd.testing.repogen import generate_files, generate_repo, make_local_db

    top = ctx.workdir / f"stores-{installed}"
    files_root = PacmanRoot(top / "files")
    metas = generate_repo(1, 15000)
    local = make_local_db(files_root.dbpath, metas, installed=installed,
                          outdated=installed // 5, seed=1)
    owned: list[str] = []
    for m in local:
        owned += [f for f in generate_files(m, 1).files if not f.endswith("/")][:1]
    paths = owned[:: max(1, len(owned) // 100)][:100]
    for rel in paths:  # -Qo stats each path (pacman refuses missing files)
        on_disk = files_root.root / rel
        on_disk.parent.mkdir(parents=True, exist_ok=True)
        on_disk.touch()
    shutil.copytree(files_root.root, top / "sqlite", symlinks=True)
    sqlite_root = PacmanRoot(top / "sqlite")
    convert_dbpath(str(sqlite_root.dbpath), Store.SQLITE)
    depended: dict[str, int] = {}
    for m in local:
        for d in m.depends:
            name = d.split(">")[0].split("<")[0].split("=")[0]
            depended[name] = depended.get(name, 0) + 1
    revdep_of = "glibc" if "glibc" in depended else max(depended, key=lambda n: depended[n])
    return StoreFixture(installed, files_root.root, sqlite_root.root, paths, "lib", revdep_of)


def _cases(fx: StoreFixture, root: Path) -> list[tuple[str, list[str]]]:
    paths = fx.paths(root)
    return [("-Qo one path", ["-Qo", paths[0]]), ("-Qo 100 paths", ["-Qo", *paths]),
            ("-Qs", ["-Qs", fx.search]), ("-Qi all", ["-Qi"])]


_WARM = r"""
import json, statistics, time
from alpmd.engine.config import load_config
from alpmd.engine.handle import Handle
from alpmd.engine import query
cfg = load_config({config!r})
handle, _ = Handle.from_config(cfg)
local = handle.localdb
rel = [p[len(handle.options.root):] for p in {paths!r}]
ops = {{
    "open + list": lambda: (local.invalidate(), len(local.packages)),
    "-Qo one": lambda: query.find_owner(handle, {paths!r}[0]),
    "-Qo 100": lambda: [query.find_owner(handle, p) for p in {paths!r}],
    "-Qs": lambda: query.search(local, [{search!r}]),
    "-Qi all": lambda: [(p.desc, p.depends, p.isize, query.required_by(handle, p))
                        for p in local.packages],
    "reverse deps": lambda: query.required_by(handle, local.get({revdep!r})),
}}
from alpmd.engine.db.sqlite import LocalSqliteBackend
backend = local.backend
if isinstance(backend, LocalSqliteBackend):
    ops["index: owners of 100"] = lambda: backend.owners(rel)
    ops["index: reverse deps"] = lambda: backend.required_by({revdep!r})
out = {{}}
for name, fn in ops.items():
    if name == "open + list":
        times = []
        for _ in range(5):
            t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
        continue
    fn()
    times = []
    for _ in range(7):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    out[name] = statistics.median(times)
print(json.dumps(out))
"""


def run(ctx: Context) -> Section:
    t0 = time.perf_counter()
    section = Section(TITLE)
    n = max(3, ctx.repeats // 3)
    alpm = str(Path(ctx.python).with_name("alpm"))
    for size in SIZES:
        fx = ctx.fixture(f"stores-{size}", lambda size=size: _build(ctx, size))  # type: ignore[misc]

        table = Table(["query", "pacman", "alpm files", "alpm SQLite", "files/pacman",
                       "SQLite/pacman", "SQLite/files"],
                      title=f"{size} installed: whole processes, median of {n} runs")
        for (label, args), (_, sargs) in zip(_cases(fx, fx.files_root), _cases(fx, fx.sqlite_root),
                                             strict=True):
            fconf, sconf = str(fx.config(fx.files_root)), str(fx.config(fx.sqlite_root))
            p = run_process([PACMAN, args[0], "--config", fconf, "--color", "never", *args[1:]],
                            env=ctx.env(), repeats=n)
            f = run_process([alpm, args[0], "--config", fconf, "--color", "never", *args[1:]],
                            env=ctx.env(), repeats=n)
            s = run_process([alpm, sargs[0], "--config", sconf, "--color", "never",
                             *sargs[1:]], env=ctx.env(), repeats=n)
            table.add(label, fmt_s(p.median), fmt_s(f.median), fmt_s(s.median),
                      ratio(f.median, p.median), ratio(s.median, p.median),
                      ratio(s.median, f.median))
        section.tables.append(table)
        warm = {}
        for store, root in (("files", fx.files_root), ("sqlite", fx.sqlite_root)):
            code = _WARM.format(config=str(fx.config(root)), paths=fx.paths(root),
                                search=fx.search, revdep=fx.revdep_of)
            warm[store] = run_probe(ctx, code, repeats=1, warmup=0)[0]
        wt = Table(["engine call (warm)", "files", "SQLite", "SQLite/files"],
                   title=f"{size} installed: in-process, median of 7 calls after one warm-up")
        for key in warm["sqlite"]:
            fv = warm["files"].get(key)
            sv = float(warm["sqlite"][key])
            wt.add(key, fmt_s(float(fv)) if fv is not None else "–", fmt_s(sv),
                   ratio(sv, float(fv)) if fv is not None else "–")
        section.tables.append(wt)
        section.notes.append(f"{size} installed: reverse dependencies of {fx.revdep_of}; "
                             f"-Qs {fx.search!r}; -Qo paths spread over the installed set.")
    section.notes += [
        "Same generated system in both stores (repogen seed 1); the SQLite root is the files "
        "root converted by alpmd.engine.db.convert.",
        "'index:' rows are the SQLite backend's own indexes (LocalSqliteBackend.owners, "
        ".required_by); the query functions behind -Qo/-Qi do not use them yet.",
    ]
    section.seconds = time.perf_counter() - t0
    return section
