"""The repository generator: deterministic, calibrated on real Arch data, and read by pacman.

The statistics are checked on the full 15,000-package repository the benchmarks
use (seed 1); pacman is given a 2,000-package one to keep the suite fast.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from alpmd.engine.depend import Depend, satisfies
from alpmd.engine.formats.desc import PkgMeta, Reason
from alpmd.testing import repogen
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.repogen import (
    build_package_files,
    generate_files,
    generate_repo,
    make_local_db,
    plan_local,
    repo_stats,
    write_sync_db,
)

SMALL = 2000


@pytest.fixture(scope="module")
def big() -> list[PkgMeta]:
    return generate_repo(1, 15000)


@pytest.fixture(scope="module")
def small() -> list[PkgMeta]:
    return generate_repo(3, SMALL)


@pytest.fixture(scope="module")
def small_db(small: list[PkgMeta], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("repo") / "extra.db"
    write_sync_db(small, out, files={m.name: generate_files(m, 3) for m in small})
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _index(metas: Sequence[PkgMeta]) -> dict[str, list[PkgMeta]]:
    by: dict[str, list[PkgMeta]] = {}
    for m in metas:
        by.setdefault(m.name, []).append(m)
        for p in m.provides:
            by.setdefault(Depend.parse(p).name, []).append(m)
    return by


def _satisfier(by: dict[str, list[PkgMeta]], dep: str) -> PkgMeta | None:
    d = Depend.parse(dep)
    return next((m for m in by.get(d.name, ()) if satisfies(m.name, m.version, m.provides, d)),
                None)


# -- determinism ------------------------------------------------------------------------


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b = generate_repo(7, 500), generate_repo(7, 500)
    assert a == b
    write_sync_db(a, tmp_path / "a.db", files={m.name: generate_files(m, 7) for m in a})
    write_sync_db(b, tmp_path / "b.db", files={m.name: generate_files(m, 7) for m in b})
    assert _sha(tmp_path / "a.db") == _sha(tmp_path / "b.db")
    assert _sha(tmp_path / "a.files") == _sha(tmp_path / "b.files")
    assert generate_repo(8, 500) != a


def test_count_and_unique_names(small: list[PkgMeta]) -> None:
    assert len(small) == SMALL
    assert len({m.name for m in small}) == SMALL
    assert [m.name for m in small] == sorted(m.name for m in small)
    assert len(generate_repo(1, 50)) == 50


# -- statistics (calibrated on [core]+[extra], Sept 2022) -------------------------------


def test_statistics_match_arch(big: list[PkgMeta]) -> None:
    s = repo_stats(big)
    assert 3.0 <= s["mean_deps"] <= 3.6
    assert s["median_deps"] == 2
    assert 25 <= s["p99_deps"] <= 45
    assert 0.10 <= s["glibc_frac"] <= 0.14
    assert 0.25 <= s["split_frac"] <= 0.35
    assert 0.12 <= s["versioned_frac"] <= 0.18
    assert 0.08 <= s["so_provides_frac"] <= 0.12
    # a power law: a few packages carry most reverse dependencies
    assert s["top_rdeps_2"] >= 0.10 and s["top_rdeps_50"] <= 0.01
    for key in ("groups_frac", "optdepends_frac", "checkdepends_frac", "conflicts_frac",
                "replaces_frac", "epoch_frac"):
        assert 0.02 <= s[key] <= 0.3, key
    assert s["makedepends_frac"] > 0.5
    assert 0.1 <= s["any_frac"] <= 0.45


def test_fields_look_real(big: list[PkgMeta]) -> None:
    for m in big:
        assert m.filename == f"{m.name}-{m.version}-{m.arch}.pkg.tar.zst"
        assert m.base and m.desc and m.url and m.packager and m.licenses
        assert m.arch in ("x86_64", "any")
        assert m.csize and m.isize and m.builddate
        assert len(m.md5sum or "") == 32 and len(m.sha256sum or "") == 64
        assert "-" in m.version
        assert all(": " in o for o in m.optdepends)
    provides = {p for m in big for p in m.provides}
    assert "sh" in provides and "java-runtime=17" in provides
    assert any(p.endswith(".so=3-64") or p.endswith(".so=1-64") for p in provides)
    ops = {op for m in big for d in m.depends for op in (">=", "<", "=") if op in d}
    assert ops == {">=", "<", "="}


# -- the graph --------------------------------------------------------------------------


def test_every_dependency_is_satisfiable(big: list[PkgMeta]) -> None:
    by = _index(big)
    missing = [(m.name, d) for m in big for d in (*m.depends, *m.makedepends, *m.checkdepends)
               if _satisfier(by, d) is None]
    assert missing == []
    assert all(Depend.parse(o).name in by for m in big for o in m.optdepends)


def _sccs(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan, iteratively (the graph is deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on.add(v)
            if i < len(graph[v]):
                work.append((v, i + 1))
                w = graph[v][i]
                if w not in index:
                    work.append((w, 0))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return out


def test_mostly_acyclic_with_a_few_small_cycles(big: list[PkgMeta]) -> None:
    by = _index(big)
    graph = {m.name: [s.name for d in m.depends if (s := _satisfier(by, d)) is not None]
             for m in big}
    cycles = [c for c in _sccs(graph) if len(c) > 1]
    assert 5 <= len(cycles) <= 60
    assert max(len(c) for c in cycles) == 2
    assert sorted(["freetype2", "harfbuzz"]) in [sorted(c) for c in cycles]


def test_generated_files_never_conflict(small: list[PkgMeta]) -> None:
    owner: dict[str, str] = {}
    for m in small:
        fl = generate_files(m, 1)
        assert fl.files == sorted(fl.files, key=str.encode)
        for path in fl.files:
            assert not path.startswith("/")
            if path.endswith("/"):
                continue
            assert owner.setdefault(path, m.name) == m.name, path
        for b in fl.backup:
            assert b.path in fl.files and len(b.md5) == 32
    assert len(owner) > 10 * len(small)


# -- what pacman and our reader make of it ---------------------------------------------


@pytest.mark.oracle
def test_pacman_reads_the_sync_db(small: list[PkgMeta], small_db: Path,
                                  pacman_root: PacmanRoot) -> None:
    pacman_root.add_repo("extra", small_db, small_db.with_name("extra.files"))
    listed = pacman_root.pacman("-Sl", "extra", check=True).stdout.splitlines()
    assert len(listed) == SMALL
    assert listed[0] == f"extra {small[0].name} {small[0].version}"
    by_name = {m.name: m for m in small}
    picks = ["glibc", "gtk3"] + [m.name for m in small if m.optdepends and m.groups][:2]
    for name in picks:
        m = by_name[name]
        info = pacman_root.pacman("-Si", name, check=True).stdout
        assert f"Version         : {m.version}" in info
        assert f"Packager        : {m.packager}" in info
        assert f"Description     : {m.desc}" in info
        for dep in m.depends[:3]:
            assert dep in info
    files = pacman_root.pacman("-Fl", "gtk3", check=True).stdout.splitlines()
    fl = generate_files(by_name["gtk3"], 3)
    assert files == [f"gtk3 {p}" for p in fl.files]


def test_our_sync_database_reads_it(small: list[PkgMeta], small_db: Path) -> None:
    from alpmd.engine.db.sync import SyncDatabase

    db = SyncDatabase("extra", str(small_db))
    assert len(db) == SMALL
    for m in small[::97]:
        pkg = db.get(m.name)
        assert pkg is not None
        assert pkg.meta == m


# -- the local database -----------------------------------------------------------------


def test_local_plan_is_closed_and_upgradable(small: list[PkgMeta]) -> None:
    local = plan_local(small, installed=400, outdated=80, seed=3)
    assert len(local) == 400
    repo = {m.name: m for m in small}
    assert sum(1 for m in local if m.version != repo[m.name].version) == 80
    by = _index(local)
    assert [(m.name, d) for m in local for d in m.depends if _satisfier(by, d) is None] == []
    explicit = sum(1 for m in local if m.reason is Reason.EXPLICIT)
    assert 0.05 * 400 <= explicit <= 0.4 * 400
    assert plan_local(small, installed=400, outdated=80, seed=3) == local


@pytest.mark.oracle
def test_pacman_reads_the_local_db(small: list[PkgMeta], small_db: Path,
                                   pacman_root: PacmanRoot) -> None:
    pacman_root.add_repo("extra", small_db)
    make_local_db(pacman_root.dbpath, small, installed=300, outdated=60, seed=3)
    assert len(pacman_root.pacman("-Q", check=True).stdout.splitlines()) == 300
    assert len(pacman_root.pacman("-Qu").stdout.splitlines()) == 60
    check = pacman_root.pacman("-Dk")
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.oracle
def test_built_packages_match_their_metadata(small: list[PkgMeta], tmp_path: Path,
                                             pacman_root: PacmanRoot) -> None:
    import copy

    picks = [copy.deepcopy(m) for m in small if m.name in ("gtk3", "glibc")]
    picks.append(copy.deepcopy(next(m for m in small if m.name.startswith("python-"))))
    paths = build_package_files(tmp_path / "cache", picks, 3)
    for m, path in zip(picks, paths, strict=True):
        data = path.read_bytes()
        assert path.name == m.filename
        assert m.csize == len(data)
        assert m.sha256sum == hashlib.sha256(data).hexdigest()
        listed = pacman_root.pacman("-Qlp", str(path), check=True).stdout.splitlines()
        want = [f"{m.name} {pacman_root.root}/{p}" for p in generate_files(m, 3).files]
        assert sorted(listed) == sorted(want)
        info = pacman_root.pacman("-Qip", str(path), check=True).stdout
        assert f"Version         : {m.version}" in info


def test_cli_writes_a_dbpath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["repogen"])
    rc = repogen.main(["--out", str(tmp_path), "--count", "600", "--seed", "2", "--files",
                       "--local", "100", "--outdated", "10", "--stats"])
    assert rc == 0
    assert (tmp_path / "sync" / "extra.db").stat().st_size > 0
    assert (tmp_path / "sync" / "extra.files").stat().st_size > 0
    assert (tmp_path / "local" / "ALPM_DB_VERSION").read_text() == "9\n"
    assert len([p for p in (tmp_path / "local").iterdir() if p.is_dir()]) == 100
    assert "mean_deps" in capsys.readouterr().out
