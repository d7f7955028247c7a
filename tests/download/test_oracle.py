"""Debian's pacman against the same test mirror gets the same database and package files."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpmd.engine.download import fetch_packages, refresh_databases
from alpmd.testing.mirror import MirrorServer
from alpmd.testing.oracle import PacmanRoot

from .helpers import make_handle, make_repo, packages, run

pytestmark = [pytest.mark.oracle, pytest.mark.timeout(120)]

SIZES = {"alpha": 30_000, "beta": 300_000, "gamma": 1, "delta": 70_000}


def pacman_root(base: Path, url: str) -> PacmanRoot:
    root = PacmanRoot(base)
    root.write_config()
    text = root.config.read_text()
    root.config.write_text(text + "ParallelDownloads = 3\n\n[core]\nServer = " + url + "\n")
    return root


def test_pacman_gets_what_we_get(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, SIZES, write=False)
    server = MirrorServer(files=repo.files())
    with server.threaded():
        proot = pacman_root(tmp_path / "pacman", server.url)
        sy = proot.pacman("-Sy")
        assert sy.returncode == 0, sy.stderr
        sw = proot.pacman("-Sw", *SIZES)
        assert sw.returncode == 0, sw.stderr + sw.stdout

        handle = make_handle(tmp_path / "ours", repo, [server.url], install_db=False)

        async def ours() -> dict[str, str]:
            assert await refresh_databases(handle) == {"core": True}
            return await fetch_packages(handle, packages(handle))

        got = run(ours())
    theirs_db = (proot.dbpath / "sync" / "core.db").read_bytes()
    assert (Path(handle.dbpath) / "sync" / "core.db").read_bytes() == theirs_db
    theirs = {p.name: p.read_bytes() for p in proot.cachedir.iterdir()}
    mine = {Path(p).name: Path(p).read_bytes() for p in got.values()}
    assert theirs == mine
    assert len(mine) == len(SIZES)
