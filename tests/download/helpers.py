"""Shared pieces of the download tests: synthetic repositories, handles, bounded runs."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from alpmd.engine.config import Repo, SigCheck, SigLevel, SigPolicy
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle, Options
from alpmd.engine.package import Package
from alpmd.testing.repogen import write_sync_db

T = TypeVar("T")

NEVER = SigLevel(SigPolicy(SigCheck.NEVER), SigPolicy(SigCheck.NEVER))
#: every test run is bounded by this, besides pytest-timeout
LIMIT = 30.0


def run(coro: Coroutine[Any, Any, T], limit: float = LIMIT) -> T:
    """Run a coroutine in a fresh loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, limit))


@dataclass
class Repository:
    """Synthetic package files (random bytes) described by a generated sync database."""

    srv: Path
    name: str
    blobs: dict[str, bytes] = field(default_factory=dict)   # filename -> content
    metas: list[PkgMeta] = field(default_factory=list)

    @property
    def dbfile(self) -> Path:
        return self.srv / f"{self.name}.db"

    def files(self) -> dict[str, bytes]:
        """What a mirror serves: the packages and the database."""
        out = dict(self.blobs)
        out[f"{self.name}.db"] = self.dbfile.read_bytes()
        return out


def make_repo(base: Path, sizes: dict[str, int], *, name: str = "core", seed: int = 1,
              write: bool = True) -> Repository:
    """Packages ``name -> size`` with incompressible content, and their sync database."""
    rng = random.Random(seed)
    repo = Repository(base / "srv" / name, name)
    repo.srv.mkdir(parents=True, exist_ok=True)
    for i, (pkg, size) in enumerate(sorted(sizes.items())):
        data = rng.randbytes(size)
        filename = f"{pkg}-1.{i}-1-x86_64.pkg.tar.zst"
        repo.blobs[filename] = data
        repo.metas.append(PkgMeta(pkg, f"1.{i}-1", arch="x86_64", filename=filename,
                                  csize=size, builddate=1_600_000_000 + i,
                                  sha256sum=hashlib.sha256(data).hexdigest(),
                                  md5sum=hashlib.md5(data).hexdigest()))
        if write:
            (repo.srv / filename).write_bytes(data)
    write_sync_db(repo.metas, repo.dbfile)
    return repo


def make_handle(base: Path, repo: Repository, servers: list[str], *,
                cache_servers: list[str] | None = None, parallel: int = 5,
                install_db: bool = True, siglevel: SigLevel = NEVER,
                **options: Any) -> Handle:
    """A handle on ``base/root`` with ``repo`` registered from these servers."""
    root = base / "root"
    opts = Options(root=str(root), siglevel=siglevel, parallel_downloads=parallel,
                   use_snapshots=False, **options)
    handle = Handle(opts)
    sync = Path(handle.dbpath) / "sync"
    sync.mkdir(parents=True, exist_ok=True)
    (Path(handle.dbpath) / "local").mkdir(parents=True, exist_ok=True)
    if install_db:
        (sync / f"{repo.name}.db").write_bytes(repo.dbfile.read_bytes())
    handle.register_syncdb(repo.name, Repo(repo.name, servers=list(servers),
                                           cache_servers=list(cache_servers or []),
                                           siglevel=siglevel))
    return handle


def packages(handle: Handle, names: list[str] | None = None) -> list[Package]:
    db = handle.syncdbs[0]
    pkgs = db.packages
    return [p for p in pkgs if names is None or p.name in names]


def cache_listing(handle: Handle) -> dict[str, bytes]:
    """Every file in the first cache directory."""
    d = handle.options.cachedirs[0]
    if not os.path.isdir(d):
        return {}
    return {n: Path(d, n).read_bytes() for n in sorted(os.listdir(d))}


def assert_clean_cache(handle: Handle, repo: Repository) -> None:
    """Only complete, verified files under final names (a .part may stay for resume)."""
    for name, data in cache_listing(handle).items():
        if name.endswith(".part"):
            full = repo.blobs[name[:-5]]
            assert full.startswith(data), f"{name} is not a prefix of the package"
            continue
        assert repo.blobs[name] == data, f"{name} in the cache differs from the package"
