"""What `alpm` prints for failing transactions, compared verbatim with pacman's output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from alpmd.engine.formats.desc import PkgMeta
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package, sync_meta
from alpmd.testing.repogen import write_sync_db

ALPM = str(Path(sys.executable).with_name("alpm"))

REPO = [
    PkgMeta("foo", "1.0-1", depends=["bar>=2"]),
    PkgMeta("baz", "1.0-1", depends=["foo"]),
    PkgMeta("qux", "1.0-1", depends=["nothere"]),
    PkgMeta("ok", "1.0-1"),
]


def _root(path: Path) -> PacmanRoot:
    root = PacmanRoot(path)
    srv = root.root / "srv" / "core"
    srv.mkdir(parents=True)
    built = [build_package(srv, m, [FileSpec(f"usr/share/{m.name}/x", b"x\n")]) for m in REPO]
    write_sync_db([sync_meta(p) for p in built], srv / "core.db")
    root.add_repo("core", srv / "core.db")
    return root


def _alpm(root: PacmanRoot, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ALPM, args[0], "--config", str(root.config), "--color", "never",
                           *args[1:]], capture_output=True, text=True, env={"LC_ALL": "C"},
                          timeout=60)


@pytest.mark.oracle
@pytest.mark.parametrize("args", [
    ("-S", "--noconfirm", "baz"),
    ("-S", "--noconfirm", "baz", "qux"),
    ("-S", "--noconfirm", "ok", "qux"),
    ("-S", "--noconfirm", "nosuch"),
    ("-R", "--noconfirm", "ok"),
], ids=lambda a: "-".join(a).replace("--noconfirm-", ""))
def test_failure_output_is_pacmans(tmp_path: Path, args: tuple[str, ...]) -> None:
    theirs_root = _root(tmp_path / "pacman")
    ours_root = _root(tmp_path / "alpm")
    theirs = subprocess.run(["pacman", args[0], "--config", str(theirs_root.config), "--color",
                             "never", *args[1:]], capture_output=True, text=True,
                            env={"LC_ALL": "C"}, timeout=60)
    ours = _alpm(ours_root, *args)
    assert theirs.returncode != 0  # every case here is a refusal
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        theirs.returncode, theirs.stdout, theirs.stderr)
