"""Repository management: ``alpm-repo`` against ``repo-add``/``repo-remove`` on 15,000 packages.

The starting point is the generated repository (``repogen``, seed 1): 15,000
packages in ``extra`` for two architectures (the same entries in both), with
``.files`` databases, gzip like Arch's. For repo-add it is the database pair
``write_sync_db`` writes; for alpm-repo a tree whose tracking database holds the
same entries (seeded through the engine's commit; the pool holds no files for
rows the benchmark never touches, which neither tool reads). 100 pkgbases start
in ``testing`` instead, to be moved. Every run starts from a fresh copy of the
starting point (not timed) and runs whole processes:

* add 1 / add 200 new package files: ``alpm-repo add extra x86_64`` vs ``repo-add``;
* remove 100 pkgbases: ``alpm-repo remove`` vs ``repo-remove`` (every package name);
* move 100 pkgbases testing → extra: ``alpm-repo move`` vs what ``db-move`` runs,
  ``repo-remove`` on testing and ``repo-add`` of the pool files on extra;
* update 50 new pkgbases over 2 architectures from staging: ``alpm-repo update``
  vs ``db-update``'s one ``repo-add`` per architecture.

Signature checks are off on both sides (``repo-add`` checks none by default).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import ROOT, Context, Section, Table, fmt_s, ratio

TITLE = "Repository management: alpm-repo vs repo-add / repo-remove (15,000 packages)"
ARCHES = ("x86_64", "aarch64")
MOVE = 100
REMOVE = 100
UPDATE = 50


class Fixture:
    """The starting point for both tools and the package files the operations use."""

    def __init__(self, dir: Path, count: int = 15000) -> None:
        from alpmd.engine.formats.desc import PkgMeta, write_sync_desc
        from alpmd.engine.formats.files import FileList, write_sync_files
        from alpmd.engine.repo.tracking import Row
        from alpmd.engine.repo.tree import init_tree
        from alpmd.engine.repo.txn import Plan, commit
        from alpmd.testing.pkgbuild import FileSpec, build_package
        from alpmd.testing.repogen import (
            build_package_files,
            generate_files,
            generate_repo,
            write_sync_db,
        )

        t0 = time.perf_counter()
        self.dir = dir
        metas = generate_repo(1, count)
        by_base: dict[str, list[PkgMeta]] = {}
        for m in metas:
            by_base.setdefault(m.base or m.name, []).append(m)
        bases = sorted(by_base)
        moving = [b for b in bases[::7] if all(m.arch == "x86_64" or m.arch == "any"
                                                for m in by_base[b])][:MOVE]
        moving_set = set(moving)
        self.move_bases = moving
        self.move_names = [m.name for b in moving for m in by_base[b]]
        self.remove_bases = [b for b in bases[3::11] if b not in moving_set][:REMOVE]
        self.remove_names = [m.name for b in self.remove_bases for m in by_base[b]]
        pool = dir / "pool"
        self.move_files = build_package_files(pool, [m for b in moving for m in by_base[b]])
        files = {m.name: generate_files(m) for m in metas}
        stay = [m for m in metas if (m.base or m.name) not in moving_set]
        testing = [m for m in metas if (m.base or m.name) in moving_set]
        # repo-add's side: one directory per architecture, as dbscripts keeps them
        self.ra = dir / "ra"
        for arch in ARCHES:
            d = self.ra / arch
            write_sync_db(stay, d / "extra.db.tar.gz", files=files,
                          files_path=d / "extra.files.tar.gz")
            write_sync_db(testing, d / "testing.db.tar.gz", files=files,
                          files_path=d / "testing.files.tar.gz")
            for repo in ("extra", "testing"):
                for kind in ("db", "files"):
                    (d / f"{repo}.{kind}").symlink_to(f"{repo}.{kind}.tar.gz")
        # alpm-repo's side: the same entries in the tracking database, databases written
        self.tree = dir / "tree"
        tree = init_tree(str(self.tree), ["extra", "testing"], list(ARCHES), siglevel="Never")
        plan = Plan()
        for repo, group in (("extra", stay), ("testing", testing)):
            for m in group:
                desc = write_sync_desc(m).encode()
                flist = write_sync_files(FileList(files[m.name].files)).encode()
                for arch in ARCHES:
                    plan.put(Row(repo, arch, m.name, m.base or m.name, m.version,
                                 m.filename or "", m.arch or "any", m.packager or "",
                                 m.builddate or 0, m.sha256sum or "", "bench", 0, desc, flist))
        commit(tree.cfg, tree.tracking, plan)
        tree.close()
        # the pool has the files of the packages that move (db-move reads them)
        for f in self.move_files:
            shutil.copyfile(f, self.tree / "pool" / "packages" / f.name)
        # new packages: 200 for x86_64, and 50 pkgbases for staging (half any, half both arches)
        new = dir / "new"
        self.add_files = [build_package(new, PkgMeta(f"zz-new{i:03d}", "1.0-1", arch="x86_64"),
                                        [FileSpec(f"usr/share/zz-new{i:03d}/data", b"x" * 100)])
                          for i in range(200)]
        self.staged: dict[str, list[Path]] = {a: [] for a in ARCHES}
        stage = dir / "stage"
        for i in range(UPDATE):
            name = f"zz-up{i:03d}"
            for arch in (("any",) if i % 2 else ARCHES):
                p = build_package(stage, PkgMeta(name, "1.0-1", arch=arch),
                                  [FileSpec(f"usr/share/{name}/data", b"y" * 100)])
                for a in (ARCHES if arch == "any" else (arch,)):
                    self.staged[a].append(p)
        self.seconds = time.perf_counter() - t0

    def fresh(self, work: Path) -> tuple[Path, Path]:
        """Copies of both starting points (repo-add's directory, alpm-repo's tree)."""
        if work.exists():
            shutil.rmtree(work)
        ra, tree = work / "ra", work / "tree"
        shutil.copytree(self.ra, ra, symlinks=True)
        shutil.copytree(self.tree, tree, symlinks=True)
        conf = tree / "alpm-repo.conf"
        conf.write_text(conf.read_text().replace(str(self.tree), str(tree)))
        return ra, tree


def _timed(cmds: list[list[str]], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    for cmd in cmds:
        proc = subprocess.run(cmd, capture_output=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[:4]} failed: {proc.stderr.decode(errors='replace')[-800:]}")
    return time.perf_counter() - t0


def _listed(tree: Path, env: dict[str, str]) -> dict[str, set[str]]:
    """What alpm-repo ls says each architecture's extra holds (checks the run did its job)."""
    out = subprocess.run([sys.executable, "-m", "alpmd.cli.repo", "--tree", str(tree), "ls",
                          "extra"], capture_output=True, text=True, env=env, check=True).stdout
    held: dict[str, set[str]] = {a: set() for a in ARCHES}
    for line in out.splitlines():
        _repo, arch, name, _version = line.split()
        held[arch].add(name)
    return held


def run(ctx: Context, count: int = 15000) -> Section:
    started = time.perf_counter()
    fx: Fixture = ctx.fixture(f"repo-management-{count}",
                              lambda: Fixture(ctx.workdir / f"repo-mgmt-{count}", count))
    env = ctx.env()
    repeats = 1 if ctx.quick else max(1, min(ctx.repeats, 3))
    work = ctx.workdir / f"repo-mgmt-run-{count}"
    ours_cmd = [sys.executable, "-m", "alpmd.cli.repo", "--tree"]

    def stage(tree: Path) -> None:
        d = tree / "staging" / "extra"
        d.mkdir(parents=True, exist_ok=True)
        for p in {p for files in fx.staged.values() for p in files}:
            shutil.copyfile(p, d / p.name)

    x86 = ARCHES[0]
    new_names = {p.name.split("-1.0-1-")[0] for p in fx.add_files}
    up_names = {p.name.split("-1.0-1-")[0] for ps in fx.staged.values() for p in ps}
    expect: dict[str, Callable[[dict[str, set[str]]], bool]] = {
        "add 1 package": lambda h: "zz-new000" in h[x86],
        "add 200 packages": lambda h: new_names <= h[x86],
        f"remove {REMOVE} pkgbases": lambda h: not (set(fx.remove_names) & h[x86]),
        f"move {MOVE} pkgbases testing → extra": lambda h: set(fx.move_names) <= h[x86],
        f"update {UPDATE} pkgbases × 2 architectures":
            lambda h: all(up_names <= h[a] for a in ARCHES),
    }
    ops: list[tuple[str, Callable[[Path], list[list[str]]], Callable[[Path], list[list[str]]],
                    Callable[[Path], None] | None]] = [
        ("add 1 package",
         lambda ra: [["repo-add", "-q", str(ra / x86 / "extra.db.tar.gz"), str(fx.add_files[0])]],
         lambda t: [[*ours_cmd, str(t), "add", "extra", x86, str(fx.add_files[0])]], None),
        ("add 200 packages",
         lambda ra: [["repo-add", "-q", str(ra / x86 / "extra.db.tar.gz"),
                      *map(str, fx.add_files)]],
         lambda t: [[*ours_cmd, str(t), "add", "extra", x86, *map(str, fx.add_files)]], None),
        (f"remove {REMOVE} pkgbases",
         lambda ra: [["repo-remove", "-q", str(ra / x86 / "extra.db.tar.gz"),
                      *fx.remove_names]],
         lambda t: [[*ours_cmd, str(t), "remove", "extra", x86, *fx.remove_bases]], None),
        (f"move {MOVE} pkgbases testing → extra",
         lambda ra: [["repo-remove", "-q", str(ra / x86 / "testing.db.tar.gz"),
                      *fx.move_names],
                     ["repo-add", "-q", str(ra / x86 / "extra.db.tar.gz"),
                      *map(str, fx.move_files)]],
         lambda t: [[*ours_cmd, str(t), "move", "testing", "extra", x86, *fx.move_bases]],
         None),
        (f"update {UPDATE} pkgbases × 2 architectures",
         lambda ra: [["repo-add", "-q", str(ra / a / "extra.db.tar.gz"),
                      *map(str, fx.staged[a])] for a in ARCHES],
         lambda t: [[*ours_cmd, str(t), "update"]], stage),
    ]
    table = Table(["operation (whole processes)", "repo-add / repo-remove", "alpm-repo",
                   "ratio (ours / theirs)", "speed-up"])
    notes = []
    for label, theirs_cmds, ours_cmds, prepare in ops:
        theirs, ours = [], []
        for _ in range(repeats):
            ra, tree = fx.fresh(work)
            theirs.append(_timed(theirs_cmds(ra), env))
            if prepare is not None:
                prepare(tree)
            ours.append(_timed(ours_cmds(tree), env))
            if not expect[label](_listed(tree, env)):
                raise RuntimeError(f"alpm-repo did not {label}")
        t, o = statistics.median(theirs), statistics.median(ours)
        table.add(label, fmt_s(t), fmt_s(o), ratio(o, t), f"{t / o:.0f}×")
        notes.append(f"{label}: repo-add {', '.join(fmt_s(x) for x in theirs)}; "
                     f"alpm-repo {', '.join(fmt_s(x) for x in ours)}")
    shutil.rmtree(work, ignore_errors=True)
    section = Section(TITLE.replace("15,000", f"{count:,}"), tables=[table], notes=[
        f"fixture built in {fmt_s(fx.seconds)} under {fx.dir}; median of {repeats}; "
        f"from {ROOT}", *notes])
    section.seconds = time.perf_counter() - started
    return section
