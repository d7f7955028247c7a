"""Package cache cleaning: -Sc (checked against pacman), -Scc, keep-N, unused sync dbs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alpmd.engine.db.local import LocalDatabase
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle, Options
from alpmd.engine.pkgcache import clean_cache, clean_sync_dbs
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package

VERSIONS = [("foo", "1.0-1"), ("foo", "1.1-1"), ("foo", "2.0-1"), ("foo", "10.0-1"),
            ("bar", "1-1"), ("baz", "3-2")]
INSTALLED = {"foo": "1.1-1", "baz": "3-2"}


def fill_cache(cache: Path, dbpath: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for name, version in VERSIONS:
        meta = PkgMeta(name, version, arch="x86_64", desc=name, packager="t <t@t>",
                       builddate=1_600_000_000)
        path = build_package(cache, meta, [FileSpec(f"usr/share/{name}/{version}", b"x")])
        if version == "1.0-1":
            Path(f"{path}.sig").write_bytes(b"sig")
    (cache / "notes.txt").write_text("not a package\n")
    (cache / "baz-4-1-x86_64.pkg.tar.zst.part").write_bytes(b"partial")
    local = LocalDatabase(str(dbpath), durable=False)
    for name, version in INSTALLED.items():
        local.add(PkgMeta(name, version, arch="x86_64", installdate=1_600_000_000), None)


def handle_for(root: Path) -> Handle:
    return Handle(Options(root=str(root), use_snapshots=False))


def names(paths: list[str]) -> list[str]:
    return sorted(Path(p).name for p in paths)


def test_clean_keeps_installed(tmp_path: Path) -> None:
    handle = handle_for(tmp_path)
    cache = Path(handle.options.cachedirs[0])
    fill_cache(cache, Path(handle.dbpath))
    result = clean_cache(handle)
    assert names(result.removed) == [
        "bar-1-1-x86_64.pkg.tar.zst", "foo-1.0-1-x86_64.pkg.tar.zst",
        "foo-1.0-1-x86_64.pkg.tar.zst.sig", "foo-10.0-1-x86_64.pkg.tar.zst",
        "foo-2.0-1-x86_64.pkg.tar.zst"]
    assert sorted(p.name for p in cache.iterdir()) == [
        "baz-3-2-x86_64.pkg.tar.zst", "baz-4-1-x86_64.pkg.tar.zst.part",
        "foo-1.1-1-x86_64.pkg.tar.zst", "notes.txt"]
    assert result.freed > 0


def test_keep_versions(tmp_path: Path) -> None:
    handle = handle_for(tmp_path)
    cache = Path(handle.options.cachedirs[0])
    fill_cache(cache, Path(handle.dbpath))
    clean_cache(handle, keep_versions=2, keep_installed=False)
    left = sorted(p.name for p in cache.iterdir() if p.name.endswith(".zst"))
    # 10.0 > 2.0 by vercmp, not by string order
    assert left == ["bar-1-1-x86_64.pkg.tar.zst", "baz-3-2-x86_64.pkg.tar.zst",
                    "foo-10.0-1-x86_64.pkg.tar.zst", "foo-2.0-1-x86_64.pkg.tar.zst"]
    clean_cache(handle, keep_versions=0)
    left = sorted(p.name for p in cache.iterdir() if p.name.endswith(".zst"))
    assert left == ["baz-3-2-x86_64.pkg.tar.zst"]


def test_clean_all_and_dry_run(tmp_path: Path) -> None:
    handle = handle_for(tmp_path)
    cache = Path(handle.options.cachedirs[0])
    fill_cache(cache, Path(handle.dbpath))
    before = sorted(p.name for p in cache.iterdir())
    dry = clean_cache(handle, all=True, dry_run=True)
    assert sorted(p.name for p in cache.iterdir()) == before
    assert names(dry.removed) == before
    clean_cache(handle, all=True)
    assert list(cache.iterdir()) == []


def test_unused_sync_dbs(tmp_path: Path) -> None:
    handle = handle_for(tmp_path)
    sync = Path(handle.dbpath) / "sync"
    sync.mkdir(parents=True)
    for n in ("core.db", "core.files", "gone.db", "gone.db.sig", "gone.files", ".gone.db.validators",
              "README"):
        (sync / n).write_text("x")
    handle.register_syncdb("core")
    result = clean_sync_dbs(handle)
    assert names(result.removed) == [".gone.db.validators", "gone.db", "gone.db.sig",
                                     "gone.files"]
    assert sorted(p.name for p in sync.iterdir()) == ["README", "core.db", "core.files"]


@pytest.mark.oracle
@pytest.mark.timeout(60)
def test_clean_matches_pacman(tmp_path: Path) -> None:
    proot = PacmanRoot(tmp_path / "pacman")
    fill_cache(proot.cachedir, proot.dbpath)
    ours = tmp_path / "ours"
    handle = Handle(Options(root=str(ours), use_snapshots=False))
    shutil.copytree(proot.cachedir, handle.options.cachedirs[0])
    shutil.copytree(proot.dbpath / "local", Path(handle.dbpath) / "local")
    out = proot.pacman("-Sc")
    assert out.returncode == 0, out.stderr
    clean_cache(handle)
    theirs = sorted(p.name for p in proot.cachedir.iterdir() if not p.name.endswith(".part"))
    mine = sorted(p.name for p in Path(handle.options.cachedirs[0]).iterdir()
                  if not p.name.endswith(".part"))
    assert mine == theirs
