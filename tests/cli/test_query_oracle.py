"""The read-only ``alpm`` commands against the real pacman, on one shared fixture.

The fixture is built once per module: packages made with
:func:`~alpmd.testing.pkgbuild.build_package` and installed by the real
``pacman -U`` into a :class:`PacmanRoot`, the real Arch [core] and [extra]
databases of 2022 plus a generated ``[testrepo]`` (with a ``.files`` twin),
then a few files on disk altered for ``-Qk``/``-Qkk``. Every scenario runs
pacman and ``alpm`` with the same arguments and compares exit code, stdout
and stderr.

Normalisations (only what must differ):

* getopt messages name the program (``argv[0]``): ``/usr/bin/pacman:`` and
  ``.../alpm:`` at the start of a line become ``PROG:``;
* nothing else: paths, dates (C locale, UTC, both read the same files) and
  sizes must be identical, and so must the order of lines on each stream.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from alpmd.engine.formats.desc import PkgMeta, write_sync_desc
from alpmd.engine.formats.files import FileList, write_sync_files
from alpmd.testing.oracle import PACMAN, PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package

pytestmark = pytest.mark.oracle

ALPM = str(Path(sys.executable).parent / "alpm")
ARCH_SYNC = Path(__file__).resolve().parents[1] / "data" / "arch-sync-2022"


@dataclass
class Fixture:
    root: PacmanRoot
    pkgfile: Path  # a package file for -Qip/-Qlp


def _pkg(name: str, version: str, **kw: object) -> PkgMeta:
    return PkgMeta(name, version, arch="any", packager="Test Packager <t@example.org>",
                   builddate=1_600_000_000, **kw)  # type: ignore[arg-type]


LOCAL: list[tuple[PkgMeta, list[FileSpec], dict[str, object]]] = [
    (_pkg("alpha", "1.0-1", desc="The alpha test package", url="https://example.org/alpha",
          licenses=["GPL", "MIT"], groups=["testgrp", "othergrp"],
          depends=["beta>=1.0", "libbeta.so=1-64"],
          optdepends=["delta: for delta things", "nonexistent: never installed"],
          conflicts=["alpha-git"], provides=["alpha-virtual=1.0"], replaces=["alpha-old"]),
     [FileSpec("usr/bin/alpha", b"#!/bin/sh\necho alpha\n", mode=0o755),
      FileSpec("usr/bin/alpha-link", kind="link", target="alpha"),
      FileSpec("etc/alpha.conf", b"setting=1\n"),
      FileSpec("usr/share/alpha/README", b"alpha readme\n"),
      FileSpec("usr/share/alpha/data.txt", b"x" * 5000),
      FileSpec("usr/share/doc/alpha/", kind="dir")],
     {"backup": ["etc/alpha.conf"]}),
    (_pkg("beta", "2.0-1", desc="Beta library", url="https://example.org/beta",
          licenses=["BSD"], provides=["libbeta.so=1-64", "betavirt=2.0"],
          groups=["testgrp"]),
     [FileSpec("usr/lib/libbeta.so.1", b"\x7fELF" + b"\0" * 2000, mode=0o755),
      FileSpec("usr/lib/libbeta.so", kind="link", target="libbeta.so.1"),
      FileSpec("usr/share/doc/beta/README", b"beta\n")],
     {"asdeps": True}),
    (_pkg("gamma", "0.5-2", desc="Gamma, an orphan dependency",
          optdepends=["delta: better gamma"]),
     [FileSpec("usr/bin/gamma", b"gamma" * 300000, mode=0o755)],
     {"asdeps": True}),
    (_pkg("delta", "3.1-1", desc="Delta: optionally wanted", licenses=["custom"]),
     [FileSpec("usr/share/delta/file", b"delta\n")],
     {"asdeps": True}),
    (_pkg("epsilon", "1:2.0-3", desc="Epsilon with an install script",
          depends=["sh"]),
     [FileSpec("usr/share/epsilon/data", b"epsilon data\n"),
      FileSpec("usr/share/epsilon/keep", b"keep\n")],
     {"install": "post_install() {\n  :\n}\n"}),
    (_pkg("zlib", "1:1.2.11-1", desc="Compression library (old, from the test)",
          provides=["libz.so=1-64"]),
     [FileSpec("usr/lib/libz.so.1", b"zlib" * 100, mode=0o755)],
     {}),
    (_pkg("bash", "5.1.016-1", desc="The GNU Bourne Again shell (test build)",
          provides=["sh"]),
     [FileSpec("usr/bin/bash", b"bash\n", mode=0o755),
      FileSpec("usr/bin/sh", kind="link", target="bash")],
     {}),
    (_pkg("foreign-tool", "0.1-1", desc="Not in any repository"),
     [FileSpec("opt/foreign/tool", b"tool\n", mode=0o755)],
     {}),
]

SYNC_TEST: list[tuple[PkgMeta, list[str]]] = [
    (_pkg("alpha", "1.1-1", desc="The alpha test package", groups=["testgrp", "othergrp"],
          depends=["beta>=1.0"], csize=12345, isize=987654, filename="alpha-1.1-1-any.pkg.tar.zst",
          url="https://example.org/alpha", licenses=["GPL"], md5sum="0" * 32,
          sha256sum="1" * 64),
     ["usr/", "usr/bin/", "usr/bin/alpha", "usr/share/", "usr/share/alpha/",
      "usr/share/alpha/README"]),
    (_pkg("beta", "2.0-1", desc="Beta library", groups=["testgrp"],
          provides=["libbeta.so=1-64", "betavirt=2.0"], csize=2048, isize=4096,
          filename="beta-2.0-1-any.pkg.tar.zst"),
     ["usr/", "usr/lib/", "usr/lib/libbeta.so", "usr/lib/libbeta.so.1"]),
    (_pkg("omega", "9.9-1", desc="Omega, only in the repository; mentions alpha",
          depends=["alpha", "zlib>=1.2"], optdepends=["beta: extras"], csize=3 * 1024 * 1024,
          isize=7 * 1024 * 1024 + 17, filename="omega-9.9-1-any.pkg.tar.zst",
          groups=["omegagrp"], conflicts=["alpha-git"], replaces=["oldomega"]),
     ["usr/", "usr/bin/", "usr/bin/omega", "usr/share/", "usr/share/omega/",
      "usr/share/omega/alpha.txt"]),
    (_pkg("needsbeta", "1-1", desc="Requires beta from the repository",
          depends=["beta"], csize=100, isize=200, filename="needsbeta-1-1-any.pkg.tar.zst"),
     ["usr/", "usr/bin/", "usr/bin/needsbeta"]),
]


def _write_db(path: Path, entries: list[tuple[PkgMeta, list[str]]], *, files: bool) -> None:
    with tarfile.open(path, "w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for meta, flist in entries:
            d = f"{meta.name}-{meta.version}"
            members = [("desc", write_sync_desc(meta))]
            if files:
                members.append(("files", write_sync_files(FileList(flist))))
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
            for fname, text in members:
                data = text.encode()
                info = tarfile.TarInfo(f"{d}/{fname}")
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))


def build_fixture(base: Path) -> Fixture:
    """Build the whole fixture under ``base`` (the real pacman installs the packages)."""
    root = PacmanRoot(base / "root")
    pkgdir = base / "pkgs"
    built: dict[str, Path] = {}
    for meta, files, opts in LOCAL:
        built[meta.name] = build_package(pkgdir, meta, files,
                                         backup=list(opts.get("backup", [])),  # type: ignore[call-overload]
                                         install=opts.get("install"))  # type: ignore[arg-type]
    explicit = [str(built[m.name]) for m, _f, o in LOCAL if not o.get("asdeps")]
    deps = [str(built[m.name]) for m, _f, o in LOCAL if o.get("asdeps")]
    root.pacman("-U", "--asdeps", *deps, check=True)
    root.pacman("-U", *explicit, check=True)
    # Sync databases: real Arch ones, and ours (with .files twins).
    root.add_repo("core", ARCH_SYNC / "core.db.tar.gz", ARCH_SYNC / "core.db.tar.gz")
    root.add_repo("extra", ARCH_SYNC / "extra.db.tar.gz", ARCH_SYNC / "extra.db.tar.gz")
    _write_db(base / "testrepo.db", SYNC_TEST, files=False)
    _write_db(base / "testrepo.files", SYNC_TEST, files=True)
    root.add_repo("testrepo", base / "testrepo.db", base / "testrepo.files")
    # Damage for -Qk/-Qkk.
    r = root.root
    (r / "usr/share/alpha/README").write_bytes(b"alpha readme, edited by hand\n")
    os.utime(r / "usr/share/alpha/README", (1_700_000_000, 1_700_000_000))
    os.chmod(r / "usr/bin/alpha", 0o700)
    (r / "etc/alpha.conf").write_bytes(b"setting=2\n")
    (r / "usr/share/epsilon/data").unlink()
    (r / "usr/lib/libbeta.so").unlink()
    (r / "usr/lib/libbeta.so").symlink_to("elsewhere.so")
    (r / "var/lib/emptydb/local").mkdir(parents=True)  # a database without sync files
    return Fixture(root, built["alpha"])



Result = tuple[int, str, str]

R = "{root}"  # replaced by the fixture's root directory
PKGFILE = "{pkgfile}"

#: id -> arguments (operation first). Read-only: they run concurrently.
SCENARIOS: dict[str, list[str]] = {
    # -Q: listing, info, files
    "Q": ["-Q"],
    "Qq": ["-Qq"],
    "Q-named": ["-Q", "alpha", "beta"],
    "Q-provision": ["-Q", "sh"],
    "Q-local-prefix": ["-Q", "local/alpha"],
    "Q-unknown": ["-Q", "nothere"],
    "Qi-alpha": ["-Qi", "alpha"],
    "Qi-beta-requiredby": ["-Qi", "beta"],
    "Qi-delta-optionalfor": ["-Qi", "delta"],
    "Qi-epsilon-scriptlet": ["-Qi", "epsilon"],
    "Qi-all": ["-Qi"],
    "Qii-alpha-backup": ["-Qii", "alpha"],
    "Qii-beta": ["-Qii", "beta"],
    "Qi-unknown-and-known": ["-Qi", "nothere", "alpha"],
    "Ql-alpha": ["-Ql", "alpha"],
    "Qlq-beta": ["-Qlq", "beta"],
    "Ql-all": ["-Ql"],
    # -Qo
    "Qo-file": ["-Qo", R + "/usr/bin/alpha"],
    "Qo-dir": ["-Qo", R + "/usr/share/"],
    "Qo-dir-noslash": ["-Qo", R + "/usr/share/alpha"],
    "Qo-symlink": ["-Qo", R + "/usr/bin/alpha-link"],
    "Qo-missing": ["-Qo", R + "/nope"],
    "Qo-outside-root": ["-Qo", "/etc/hostname"],
    "Qo-several": ["-Qo", R + "/usr/bin/bash", R + "/nope", R + "/usr/lib/libbeta.so.1"],
    "Qoq": ["-Qoq", R + "/usr/bin/gamma"],
    "Qo-no-targets": ["-Qo"],
    # -Qs
    "Qs-alpha": ["-Qs", "alpha"],
    "Qs-regex": ["-Qs", "^b.*a$"],
    "Qs-desc": ["-Qs", "ORPHAN"],
    "Qs-two-terms": ["-Qs", "alpha", "test"],
    "Qs-provides": ["-Qs", "betavirt"],
    "Qsq": ["-Qsq", "a"],
    "Qs-all": ["-Qs"],
    "Qs-nomatch": ["-Qs", "zzzzzz"],
    "Qs-bad-regex": ["-Qs", "a("],
    # filters
    "Qe": ["-Qe"],
    "Qeq": ["-Qeq"],
    "Qd": ["-Qd"],
    "Qt": ["-Qt"],
    "Qtt": ["-Qtt"],
    "Qdt": ["-Qdt"],
    "Qdtt": ["-Qdtt"],
    "Qm": ["-Qm"],
    "Qn": ["-Qn"],
    "Qu": ["-Qu"],
    "Quq": ["-Quq"],
    "Qen-named": ["-Qen", "alpha", "gamma"],
    "Qg": ["-Qg"],
    "Qg-testgrp": ["-Qg", "testgrp"],
    "Qg-unknown": ["-Qg", "nogroup"],
    # checks
    "Qk": ["-Qk"],
    "Qk-epsilon": ["-Qk", "epsilon"],
    "Qkq": ["-Qkq"],
    "Qkk": ["-Qkk", "alpha", "beta", "epsilon"],
    "Qkk-all": ["-Qkk"],
    "Qkkq": ["-Qkkq"],
    # package files
    "Qip": ["-Qip", PKGFILE],
    "Qlp": ["-Qlp", PKGFILE],
    "Qp": ["-Qp", PKGFILE],
    "Qp-missing": ["-Qp", "/nonexistent.pkg.tar.zst"],
    "Qp-no-targets": ["-Qp"],
    # -S query side
    "Si-omega": ["-Si", "omega"],
    "Sii-alpha": ["-Sii", "alpha"],
    "Si-core-glibc": ["-Si", "core/glibc"],
    "Sii-glibc": ["-Sii", "glibc"],
    "Si-two": ["-Si", "bash", "testrepo/beta"],
    "Si-unknown": ["-Si", "nothere"],
    "Si-bad-repo": ["-Si", "foo/bar"],
    "Ss-omega": ["-Ss", "omega"],
    "Ss-zlib": ["-Ss", "zlib"],
    "Ss-regex": ["-Ss", "^lib[a-z]+2$"],
    "Ss-two": ["-Ss", "alpha", "package"],
    "Ssq": ["-Ssq", "python"],
    "Ss-nomatch": ["-Ss", "zzzzqqqq"],
    "Ss-bad-regex": ["-Ss", "a("],
    "Sl-testrepo": ["-Sl", "testrepo"],
    "Sl": ["-Sl"],
    "Sl-core": ["-Sl", "core"],
    "Slq-core": ["-Slq", "core"],
    "Sl-unknown": ["-Sl", "nope"],
    "Sg": ["-Sg"],
    "Sg-testgrp": ["-Sg", "testgrp"],
    "Sgg": ["-Sgg"],
    "Sgq-base-devel": ["-Sgq", "base-devel"],
    "Sg-unknown": ["-Sg", "nogroup"],
    "S-no-targets": ["-S"],
    # -T
    "T-satisfied": ["-T", "alpha", "sh", "libz.so=1-64"],
    "T-missing": ["-T", "beta>=3", "nothere", "alpha"],
    "T-versioned": ["-T", "beta>=1.0", "zlib<2", "epsilon=1:2.0"],
    "T-none": ["-T"],
    # -Dk
    "Dk": ["-Dk"],
    "Dkq": ["-Dkq"],
    "Dkk": ["-Dkk"],
    # -F
    "F-name": ["-F", "alpha"],
    "F-path": ["-F", "/usr/bin/alpha"],
    "Fx": ["-Fx", "lib.*so"],
    "Fx-path": ["-Fx", "/usr/bin/.*"],
    "Fq": ["-Fq", "alpha"],
    "Fl-beta": ["-Fl", "beta"],
    "Flq-beta": ["-Flq", "beta"],
    "Fl-repo": ["-Fl", "testrepo/omega"],
    "Fl-unknown": ["-Fl", "nothere"],
    "F-machinereadable": ["-F", "--machinereadable", "alpha"],
    "Fl-machinereadable": ["-Fl", "--machinereadable", "beta"],
    "Fx-bad-regex": ["-Fx", "a("],
    "F-no-targets": ["-F"],
    "F-nomatch": ["-F", "nothing-is-called-this"],
    # usage errors and option placement
    "invalid-option": ["-Qz"],
    "unknown-long-option": ["-Q", "--foo"],
    "missing-argument": ["-Qi", "alpha", "-r"],
    "options-after-targets": ["-Q", "alpha", "-i"],
    "options-after-targets-long": ["-Q", "beta", "--info", "--quiet"],
    "split-flags": ["-Q", "-t", "-d"],
    # colour (the last --color wins, as with pacman)
    "color-Q": ["-Q", "--color", "always"],
    "color-Qi": ["-Qi", "alpha", "--color", "always"],
    "color-Qs": ["-Qs", "a", "--color", "always"],
    "color-Ss": ["-Ss", "alpha", "--color", "always"],
    "color-Sl": ["-Sl", "testrepo", "--color", "always"],
    "color-Qo": ["-Qo", R + "/usr/bin/alpha", "--color", "always"],
    "color-Qkk": ["-Qkk", "alpha", "--color", "always"],
    "color-Qu": ["-Qu", "--color", "always"],
    "color-F": ["-F", "alpha", "--color", "always"],
    "color-error": ["-Q", "nothere", "--color", "always"],
    # wrapping: pacman honours COLUMNS even when stdout is not a terminal
    "wrap-Qi": ["COLUMNS=40", "-Qi", "alpha"],
    "wrap-Sii": ["COLUMNS=50", "-Sii", "glibc"],
    "wrap-Si-long": ["COLUMNS=60", "-Si", "core/systemd", "core/linux"],
    "wrap-Ss": ["COLUMNS=30", "-Ss", "gtk"],
    "wrap-narrow": ["COLUMNS=5", "-Qi", "alpha"],
    # more edge cases
    "Qo-relative-missing": ["-Qo", "no-such-program"],
    "Qo-dotdot": ["-Qo", R + "/usr/share/alpha/../alpha/README"],
    "Qo-trailing-slash-file": ["-Qo", R + "/usr/bin/alpha/"],
    "Qo-root-itself": ["-Qo", R + "/"],
    "Qo-empty": ["-Qo", ""],
    "Qi-versioned-target": ["-Qi", "beta>=1"],
    "Q-versioned-unsatisfied": ["-Q", "beta>=9"],
    "Qs-groups": ["-Qs", "othergrp"],
    "Ss-provides": ["-Ss", "^libbeta"],
    "Ss-posix-class": ["-Ss", "^x[[:digit:]]"],
    "Ss-gnu-escape": ["-Ss", "\\<zlib\\>"],
    "Ss-plus-plus": ["-Ss", "c++"],
    "Sl-two": ["-Sl", "testrepo", "core"],
    "Si-all-testrepo-missing": ["-Si", "testrepo/omega", "testrepo/zlib"],
    "Sii-omega": ["-Sii", "omega"],
    "Qkk-epsilon-quiet": ["-Qkkq", "epsilon", "alpha"],
    "Qtq": ["-Qtq"],
    "Qmq": ["-Qmq"],
    "Fx-icase": ["-Fx", "ALPHA"],
    "Fq-path": ["-Fq", "usr/lib/libbeta.so"],
    "clash-Qde": ["-Qde"],
    "clash-Qmn": ["-Qmn"],
    "clash-Qsi": ["-Qsi", "alpha"],
    "clash-Qol": ["-Qol", R + "/usr/bin/alpha"],
    "clash-Qpo": ["-Qpo", PKGFILE],
    "clash-Ssi": ["-Ssi", "alpha"],
    "clash-Sgl": ["-Sgl"],
    "clash-Dk-asdeps": ["-Dk", "--asdeps", "zlib"],
    "clash-D-both": ["-D", "--asdeps", "--asexplicit", "zlib"],
    "D-no-reason": ["-D", "zlib"],
    "config-missing": ["-Q", "--config", "/nonexistent/pacman.conf"],
    "dbpath-missing": ["-Q", "--dbpath", "/nonexistent/db"],
    "syncdbs-missing": ["-Si", "bash", "--dbpath", R + "/var/lib/pacman/../emptydb/"],
    "T-provision-versioned": ["-T", "alpha-virtual>=1.0", "alpha-virtual>1.0", "betavirt"],
}


def _subst(fx: Fixture, argv: list[str]) -> list[str]:
    return [a.replace(R, str(fx.root.root)).replace(PKGFILE, str(fx.pkgfile)) for a in argv]


_PROG = re.compile(r"^\S*(pacman|alpm): ", re.M)


def normalise(text: str) -> str:
    """Only the program name in getopt messages differs (see the module docstring)."""
    return _PROG.sub("PROG: ", text)


def _env(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Leading ``NAME=value`` items of a scenario are environment variables."""
    env = {"LC_ALL": "C"}
    if "PYTHONPATH" in os.environ:  # alpm runs the code under test (a work tree's)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    while argv and "=" in argv[0] and not argv[0].startswith("-"):
        k, _, v = argv[0].partition("=")
        env[k] = v
        argv = argv[1:]
    return argv, env


def run_pacman(fx: Fixture, argv: list[str]) -> Result:
    argv, env = _env(_subst(fx, argv))
    if set(env) <= {"LC_ALL", "PYTHONPATH"}:
        p = fx.root.pacman(*argv)
    else:  # same command line as PacmanRoot.pacman, with the extra variables
        env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
        cmd = [PACMAN, *argv[:1], *fx.root.args(), "--color", "never", *argv[1:]]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    return p.returncode, normalise(p.stdout), normalise(p.stderr)


def run_alpm(fx: Fixture, argv: list[str]) -> Result:
    argv, env = _env(_subst(fx, argv))
    cmd = [ALPM, *argv[:1], *fx.root.args(), "--color", "never", *argv[1:]]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    return p.returncode, normalise(p.stdout), normalise(p.stderr)


@dataclass
class Suite:
    fx: Fixture
    results: dict[str, tuple[Result, Result]]


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    fx = build_fixture(tmp_path_factory.mktemp("qoracle"))
    with ThreadPoolExecutor(max_workers=max(4, (os.cpu_count() or 2) * 2)) as pool:
        futs = {k: (pool.submit(run_pacman, fx, v), pool.submit(run_alpm, fx, v))
                for k, v in SCENARIOS.items()}
        results = {k: (a.result(), b.result()) for k, (a, b) in futs.items()}
    yield Suite(fx, results)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_same_as_pacman(suite: Suite, scenario: str) -> None:
    want, got = suite.results[scenario]
    assert got[1] == want[1], "stdout differs"
    assert got[2] == want[2], "stderr differs"
    assert got[0] == want[0], "exit code differs"


#: State-changing scenarios: each runs with pacman, is undone, runs with alpm, is undone.
CHANGES: dict[str, list[list[str]]] = {
    "D-asdeps-then-Qi": [["-D", "--asdeps", "zlib"], ["-Qi", "zlib"], ["-Qd"]],
    "D-asexplicit-then-Qt": [["-D", "--asexplicit", "gamma", "nothere"], ["-Qe"],
                             ["-Qdt"]],
    "D-asdeps-quiet": [["-Dq", "--asdeps", "bash"], ["-Qdq"]],
    "D-no-targets": [["-D", "--asdeps"]],
}
UNDO = {"D-asdeps-then-Qi": ["-D", "--asexplicit", "zlib"],
        "D-asexplicit-then-Qt": ["-D", "--asdeps", "gamma"],
        "D-asdeps-quiet": ["-D", "--asexplicit", "bash"],
        "D-no-targets": ["-Q"]}


@pytest.mark.parametrize("scenario", list(CHANGES))
def test_database_changes_as_pacman(suite: Suite, scenario: str) -> None:
    fx = suite.fx
    want = [run_pacman(fx, argv) for argv in CHANGES[scenario]]
    run_pacman(fx, UNDO[scenario])
    got = [run_alpm(fx, argv) for argv in CHANGES[scenario]]
    run_alpm(fx, UNDO[scenario])
    assert got == want
    assert run_pacman(fx, ["-Q"]) == run_alpm(fx, ["-Q"])


def test_minimal_environment(suite: Suite) -> None:
    """``env -i`` (no PATH, no HOME) is enough to run ``alpm``."""
    fx = suite.fx
    p = subprocess.run([ALPM, "-Q", "--config", str(fx.root.config)], capture_output=True,
                       text=True, env={}, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "alpha 1.0-1" in p.stdout


if __name__ == "__main__":  # build a fixture to look at: python -m tests.cli.test_query_oracle DIR
    target = Path(sys.argv[1])
    shutil.rmtree(target, ignore_errors=True)
    fx = build_fixture(target)
    print(fx.root.config, fx.pkgfile)
