"""``-Sc`` under every CleanMethod (and ``-Scc``) against pacman on twin roots.

The cache holds the installed version, an older one, the repository's current
one, a package only the repository has, their signatures, a partial download,
files pacman never judges (``*.db*``, ``*.src.tar.*``, ``*.delta``) and files that
are not packages. Compared: exit code, output (questions included), and every
file left in the cache directories.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.behaviours.twin import Case, run_case
from tests.trans.harness import Pkg, Scenario, build_all

pytestmark = pytest.mark.oracle

PKGS = [Pkg("foo", "0.9-1"), Pkg("foo"), Pkg("foo", "1.1-1"), Pkg("bar", "2.0-1"),
        Pkg("baz", "1.0-1"), Pkg("gone", "3.0-1")]
CACHED = ["foo-0.9-1", "foo-1.0-1", "foo-1.1-1", "bar-2.0-1", "baz-1.0-1", "gone-3.0-1"]
JUNK = {"notapkg.pkg.tar.zst": "junk", "x.db": "db", "x.db.tar.gz": "db", "y.files": "f",
        "a-1-1.src.tar.gz": "src", "b.delta": "delta", "README": "hello",
        "foo-1.2-1-any.pkg.tar.zst.part": "partial"}


def _prep(built: dict[str, Path], second: bool) -> object:
    def prep(root: Path) -> None:
        dirs = [root / "var/cache/pacman/pkg"] + ([root / "var/cache/second"] if second else [])
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
        for i, key in enumerate(CACHED):
            d = dirs[i % len(dirs)]
            shutil.copyfile(built[key], d / built[key].name)
            if key != "baz-1.0-1":
                (d / (built[key].name + ".sig")).write_bytes(b"sig")
        for name, text in JUNK.items():
            (dirs[-1] / name).write_text(text)
        for name in ("old.db", "old.files", "old.db.sig"):   # a repository no longer configured
            (root / "var/lib/pacman/sync" / name).write_text("stale")
    return prep


METHODS = {"default": None, "installed": "KeepInstalled", "current": "KeepCurrent",
           "both": "KeepInstalled KeepCurrent", "both-reversed": "KeepCurrent KeepInstalled"}
COMMANDS = {"Sc": (["-S", "-c"], None), "Scc": (["-S", "-cc"], None),
            "Sc-yes": (["-S", "-c", "--confirm"], "y\ny\n"),
            "Sc-no": (["-S", "-c", "--confirm"], "n\nn\n"),
            "Scc-yes": (["-S", "-cc", "--confirm"], "y\ny\n"),
            "Scc-eof": (["-S", "-cc", "--confirm"], "")}
CASES = [(m, c, s) for m in METHODS for c in COMMANDS for s in (False, True)
         if not (c.startswith("Scc") and m != "default")]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(PKGS, tmp_path_factory.mktemp("pkgs"))


@pytest.mark.parametrize(("method", "cmd", "second"), CASES,
                         ids=[f"{m}-{c}{'-2dirs' if s else ''}" for m, c, s in CASES])
def test_clean_matches_pacman(tmp_path: Path, method: str, cmd: str, second: bool,
                              built: dict[str, Path]) -> None:
    options = {}
    if METHODS[method]:
        options["CleanMethod"] = METHODS[method]
    args, stdin = COMMANDS[cmd]
    if second:
        args = [*args, "--cachedir", "ROOTDIR/var/cache/pacman/pkg/",
                "--cachedir", "ROOTDIR/var/cache/second/"]
    sc = Scenario(f"{method}-{cmd}", args, local=["foo-1.0-1", "baz-1.0-1"],
                  repo=["foo-1.1-1", "bar-2.0-1"], options=options,
                  prep=_prep(built, second))
    case = Case(sc, 0, stdin=stdin, sort_stderr=True)
    _, _, a, b = run_case(tmp_path, case, built)
    assert sorted(p.name for p in (b.dbpath / "sync").iterdir()) == \
        sorted(p.name for p in (a.dbpath / "sync").iterdir())


def test_missing_cache_dir(tmp_path: Path, built: dict[str, Path]) -> None:
    sc = Scenario("missing", ["-S", "-c", "--cachedir", "ROOTDIR/nowhere/"],
                  local=["foo-1.0-1"], prep=_prep(built, False))
    run_case(tmp_path, Case(sc, 1, sort_stderr=True), built)
