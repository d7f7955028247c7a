"""DownloadUser (pacman 7): package downloads run as that user, in a child process.

No pacman 7 here to compare with, so these check the behaviour itself: the
transfer's process has the user's uid and gid (an XferCommand records them),
the files land in the cache owned by root with no staging directory left behind,
the install then proceeds as usual, and an unknown user is a clear error. The
child is confined by Landlock to writing in its download directory unless
``DisableSandbox`` or ``DisableSandboxFilesystem`` is set; the user switch does
not depend on them, as in pacman 7.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpmd.engine.config import load_config
from alpmd.testing.mirror import MirrorServer
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import sync_meta
from alpmd.testing.repogen import write_sync_db
from tests.behaviours.twin import ALPM
from tests.trans.harness import Pkg

PKGS = [Pkg("foo"), Pkg("bar", depends=["foo"])]
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A directory the download user can reach (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="alpmd-dluser-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[PacmanRoot, MirrorServer]]:
    if os.geteuid() != 0:
        pytest.fail("DownloadUser needs root to switch users; these tests run as root in CI")
    srv = tmp_path / "srv"
    srv.mkdir()
    metas = [sync_meta(p.build(srv)) for p in PKGS]
    write_sync_db(metas, srv / "test.db")
    with MirrorServer(root=srv).threaded() as mirror:
        root = PacmanRoot(tmp_path / "root")
        (root.dbpath / "sync" / "test.db").write_bytes((srv / "test.db").read_bytes())
        yield root, mirror


def _configure(root: PacmanRoot, mirror: MirrorServer, extra: str) -> None:
    text = root.config.read_text()
    text = re.sub(r"\n\[test\].*", "", text, flags=re.S)
    root.config.write_text(text + extra + f"\n[test]\nServer = {mirror.url}\n")


def _alpm(root: PacmanRoot, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.run([ALPM, *args[:1], *root.args(), *args[1:]], capture_output=True,
                          text=True, env=env, timeout=120)


def _xfer_logging_ids(tmp_path: Path) -> tuple[Path, Path]:
    """An XferCommand that appends its ids to a world-writable log, then fetches with curl."""
    log = tmp_path / "xfer.log"
    log.touch()
    os.chmod(log, 0o666)
    script = tmp_path / "xfer"
    script.write_text(f"#!/bin/sh\necho \"$(id -u) $(id -g) $(id -G)\" >> {log}\n"
                      "exec /usr/bin/curl -sf -o \"$2\" \"$1\"\n")
    os.chmod(script, 0o755)
    return script, log


@pytest.mark.parametrize("switch", ["DisableSandbox", "DisableSandboxFilesystem"])
def test_download_runs_as_the_user(world: tuple[PacmanRoot, MirrorServer], tmp_path: Path,
                                   switch: str) -> None:
    root, mirror = world
    script, log = _xfer_logging_ids(tmp_path)
    _configure(root, mirror, f"DownloadUser = nobody\n{switch}\nXferCommand = {script} %u %o\n")
    assert load_config(str(root.config)).download_user == "nobody"
    r = _alpm(root, "-S", "bar")
    assert r.returncode == 0, r.stdout + r.stderr
    ids = log.read_text().split("\n")[:-1]
    assert ids == [f"{NOBODY.pw_uid} {NOBODY.pw_gid} {NOBODY.pw_gid}"] * 2   # foo and bar
    _cache_is_roots(root)
    assert {p.name for p in (root.dbpath / "local").iterdir()} >= {"foo-1.0-1", "bar-1.0-1"}


def test_sandbox_confines_writes_to_the_download_dir(world: tuple[PacmanRoot, MirrorServer],
                                                    tmp_path: Path) -> None:
    """Without DisableSandbox the download may write nowhere else, not even a 0666 file."""
    root, mirror = world
    script, log = _xfer_logging_ids(tmp_path)
    _configure(root, mirror, f"DownloadUser = nobody\nXferCommand = {script} %u %o\n")
    r = _alpm(root, "-S", "bar")
    assert r.returncode == 0, r.stdout + r.stderr
    assert log.read_text() == ""                       # the append was refused
    assert r.stderr.count("Permission denied") == 2    # once per file, said by the shell
    _cache_is_roots(root)


def test_http_download_as_the_user(world: tuple[PacmanRoot, MirrorServer]) -> None:
    root, mirror = world
    _configure(root, mirror, "DownloadUser = nobody\nDisableSandbox\n")
    cfg = load_config(str(root.config))
    assert cfg.download_user == "nobody" and cfg.disable_sandbox
    r = _alpm(root, "-S", "-w", "bar")
    assert r.returncode == 0, r.stdout + r.stderr
    assert " foo-1.0-1-any downloading..." in r.stdout
    assert sorted(q.path for q in mirror.requests) == ["bar-1.0-1-any.pkg.tar.zst",
                                                       "foo-1.0-1-any.pkg.tar.zst"]
    _cache_is_roots(root)


def test_the_user_cannot_write_the_cache_itself(world: tuple[PacmanRoot, MirrorServer]) -> None:
    """The staging directory is the only place the user may write (the cache stays root's)."""
    root, mirror = world
    os.chmod(root.cachedir, 0o755)
    _configure(root, mirror, "DownloadUser = nobody\n")
    r = _alpm(root, "-S", "foo")
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.stat(root.cachedir).st_uid == 0
    _cache_is_roots(root)


def test_unknown_user_is_an_error(world: tuple[PacmanRoot, MirrorServer]) -> None:
    root, mirror = world
    _configure(root, mirror, "DownloadUser = no-such-user-here\n")
    r = _alpm(root, "-S", "foo")
    assert r.returncode == 1
    assert "download user 'no-such-user-here' does not exist" in r.stdout + r.stderr
    assert mirror.requests == []
    assert list((root.dbpath / "local").iterdir()) == []


def _cache_is_roots(root: PacmanRoot) -> None:
    names = sorted(p.name for p in root.cachedir.iterdir())
    assert names and all(n.endswith(".pkg.tar.zst") for n in names), names  # no download-*
    assert all(os.stat(root.cachedir / n).st_uid == 0 for n in names)


def test_url_download_as_the_user(world: tuple[PacmanRoot, MirrorServer],
                                  tmp_path: Path) -> None:
    """-U URL goes through the same child: the file is fetched as the user, kept as root's."""
    root, mirror = world
    _configure(root, mirror, "DownloadUser = nobody\nSigLevel = Optional\n")
    r = _alpm(root, "-U", f"{mirror.url}/foo-1.0-1-any.pkg.tar.zst")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [(q.path, q.status) for q in mirror.requests] == [
        ("foo-1.0-1-any.pkg.tar.zst", 200), ("foo-1.0-1-any.pkg.tar.zst.sig", 404)]
    _cache_is_roots(root)
    assert (root.dbpath / "local" / "foo-1.0-1").is_dir()
