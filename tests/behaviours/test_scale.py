"""Scale against pacman on twin roots: one transaction of 1,000+ packages, very long
metadata fields, and a package of 20,000+ files.

Compared as everywhere: pacman's exit code first, then ours, the local database,
every file and the log (and, for the long fields, ``-Qi``/``-Si`` verbatim).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from alpmd.engine.formats.desc import PkgMeta
from alpmd.testing.oracle import PACMAN
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.behaviours.twin import ALPM, Case, run_case, run_tool
from tests.trans.harness import Pkg, Scenario

pytestmark = pytest.mark.oracle

N = 1_050          # packages in one transaction
FILES = 20_500     # files in one package


@dataclasses.dataclass
class MetaPkg(Pkg):
    """A test package with full control over its metadata and files."""

    meta: PkgMeta | None = None
    specs: list[FileSpec] = dataclasses.field(default_factory=list)

    def build(self, outdir: Path) -> Path:
        assert self.meta is not None
        return build_package(outdir, self.meta, self.specs or [
            FileSpec(f"usr/share/{self.name}/data", f"{self.name}\n".encode())],
            compression=self.compression)


def _many() -> list[Pkg]:
    pkgs: list[Pkg] = []
    for i in range(N):
        deps = [f"p{i - 1:04d}"] if i % 10 else []   # chains of ten
        pkgs.append(Pkg(f"p{i:04d}", depends=deps, compression="none",
                        files={f"usr/share/p{i:04d}/f": f"{i}\n"}))
    pkgs.append(Pkg("meta", depends=[f"p{i:04d}" for i in range(N)], compression="none"))
    return pkgs


def test_one_transaction_of_a_thousand_packages(tmp_path: Path) -> None:
    pkgs = _many()
    keys = [p.key for p in pkgs]
    t0 = time.monotonic()
    install = Case(Scenario("thousand", ["-S", "meta"], pkgs=pkgs, repo=keys), 0,
                   compare_output=False, expect_output=[f"Packages ({N + 1})"])
    ref, ours, a, b = run_case(tmp_path / "install", install)
    assert len(list((b.dbpath / "local").iterdir())) == N + 2   # + ALPM_DB_VERSION
    # ... and all of them out again in one -Rs
    remove = Case(Scenario("thousand-out", ["-R", "-s", "meta"], pkgs=pkgs, local=["meta-1.0-1"],
                           local_deps=keys[:-1]), 0, compare_output=False)
    _, _, a, b = run_case(tmp_path / "remove", remove)
    assert [p.name for p in (b.dbpath / "local").iterdir()] == ["ALPM_DB_VERSION"]
    assert time.monotonic() - t0 < 1800   # a sanity bound, not a benchmark


LONG = "A very long description. " * 2_700      # ~67 KB on one line
LONG_META = PkgMeta(
    "longpkg", "1:2.3.4.5.6.7.8.9-1", desc=LONG, url="https://example.org/" + "x" * 4000,
    arch="any", packager="P " * 500 + "<p@example.org>", builddate=1_600_000_000,
    licenses=[f"License-{i}" for i in range(300)], groups=[f"g{i}" for i in range(300)],
    depends=[f"dep{i}>=1.{i}" for i in range(400)],
    optdepends=[f"opt{i}: " + "why " * 50 for i in range(200)],
    provides=[f"prov{i}={i}" for i in range(400)], conflicts=[f"c{i}<2" for i in range(300)],
    replaces=[f"r{i}" for i in range(300)])


#: libalpm reads local database lines into a 1024-byte buffer, so installed packages are
#: shown (-Qi) with single lines of at most 1023 bytes; this one stays just below that
MID_META = dataclasses.replace(
    LONG_META, name="midpkg", version="1.0-1", desc="d" * 1000, url="https://e.org/" + "u" * 990,
    depends=[f"mdep{i}" for i in range(400)], provides=[f"mprov{i}" for i in range(400)],
    conflicts=[], replaces=[])


def _no_install_date(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("Install Date"))


def test_very_long_fields(tmp_path: Path) -> None:
    pkg = MetaPkg("longpkg", "1:2.3.4.5.6.7.8.9-1", meta=LONG_META, specs=[
        FileSpec("usr/share/longpkg/" + "d" * 200 + "/" + "f" * 250, b"deep\n"),
        FileSpec("etc/longpkg.conf", b"c\n")])
    mid = MetaPkg("midpkg", meta=MID_META)
    sc = Scenario("long", ["-S", "-dd", "longpkg", "midpkg"], pkgs=[pkg, mid],
                  repo=[pkg.key, mid.key])
    # the installed database entries (67 KB description included) must be pacman's
    ref, ours, a, b = run_case(tmp_path, Case(sc, 0, expect_output=["longpkg"]))
    for args in (["-S", "-i", "longpkg"], ["-S", "-i", "-i", "longpkg"],
                 ["-S", "-s", "very long"], ["-Q", "-l", "longpkg"], ["-Q", "-q", "-s", "prov"],
                 ["-Q", "-i", "midpkg"], ["-Q", "-i", "-i", "midpkg"], ["-Q", "-s", "midpkg"]):
        theirs = run_tool(PACMAN, a, args, None)
        mine = run_tool(ALPM, b, args, None)
        assert theirs.code == 0, theirs.stderr
        assert (mine.code, _no_install_date(mine.stdout), mine.stderr) == (
            theirs.code, _no_install_date(theirs.stdout), theirs.stderr), args


def test_package_of_twenty_thousand_files(tmp_path: Path) -> None:
    specs = [FileSpec(f"usr/share/big/d{i // 500:03d}/file{i:05d}", f"{i}\n".encode())
             for i in range(FILES)]
    big = MetaPkg("big", meta=PkgMeta("big", "1.0-1", arch="any"), specs=specs,
                  compression="zst")
    big2 = MetaPkg("big", "2.0-1", meta=PkgMeta("big", "2.0-1", arch="any"),
                   specs=specs[::2], compression="zst")
    for name, cmd, local in (("install", ["-U", "@big-1.0-1"], []),
                             ("upgrade", ["-U", "@big-2.0-1"], ["big-1.0-1"]),
                             ("remove", ["-R", "big"], ["big-1.0-1"])):
        sc = Scenario(f"big-{name}", cmd, pkgs=[big, big2], local=local)
        run_case(tmp_path / name, Case(sc, 0, compare_output=name != "install"))
