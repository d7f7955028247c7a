"""Installing 200 real package files with ``-U`` into an empty root: pacman against us.

The packages are generated once (200 packages, 40 small files each, zstd),
then installed with one ``-U`` per run into a fresh empty root: ``pacman -U``
and ``alpm -U`` as whole processes (``--noconfirm``, no dependencies between
the packages). Each run starts from a fresh copy of the empty root, which is
not timed. Our commit writes the journal and fsyncs each database entry;
pacman does not fsync.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import PACMAN, ROOT, Context, Section, Table, fmt_s, ratio

TITLE = "Install 200 package files with -U into an empty root"
COUNT = 200
FILES = 40


def _packages(dir: Path) -> list[Path]:
    from alpmd.engine.formats.desc import PkgMeta
    from alpmd.testing.pkgbuild import FileSpec, build_package

    out = []
    for i in range(COUNT):
        name = f"bench{i:03d}"
        files = [FileSpec(f"usr/share/{name}/f{j}", f"{name} {j}\n".encode() * 32)
                 for j in range(FILES)]
        out.append(build_package(dir, PkgMeta(name, "1.0-1"), files))
    return out


def _root(base: Path) -> list[str]:
    from alpmd.testing.oracle import PacmanRoot

    if base.exists():
        shutil.rmtree(base)
    r = PacmanRoot(base)
    return r.args()


def _time(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT,
                   env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - t0


def run(ctx: Context) -> Section:
    started = time.perf_counter()
    pkgdir = ctx.workdir / "install-pkgs"
    if not pkgdir.exists():
        _packages(pkgdir)
    files = sorted(str(p) for p in pkgdir.glob("*.pkg.tar.zst"))
    repeats = max(1, min(ctx.repeats, 5))
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(repeats):
        args = _root(ctx.workdir / "install-root-pacman")
        theirs.append(_time([PACMAN, "-U", *args, *files]))
        args = _root(ctx.workdir / "install-root-alpm")
        ours.append(_time([sys.executable, "-m", "alpmd.cli.alpm", "-U", *args, *files]))
    t = Table(["", "pacman -U", "alpm -U", "ratio (ours / pacman)"])
    p, o = statistics.median(theirs), statistics.median(ours)
    t.add(f"{COUNT} packages × {FILES} files, median of {repeats}", fmt_s(p), fmt_s(o),
          ratio(o, p))
    section = Section(TITLE, tables=[t], notes=[
        f"package files built under {pkgdir}", f"from {ROOT}",
        f"each run: pacman {', '.join(fmt_s(x) for x in theirs)}; "
        f"alpm {', '.join(fmt_s(x) for x in ours)} (runs alternate, so a busy disk "
        "slows both)"])
    section.seconds = time.perf_counter() - started
    return section
