"""Installing 200 real package files with ``-U`` into an empty root: pacman against us.

The packages are generated once (200 packages, 40 small files each, zstd),
then installed with one ``-U`` per run into a fresh empty root: ``pacman -U``
and ``alpm -U`` as whole processes (``--noconfirm``, no dependencies between
the packages). Each run starts from a fresh copy of the empty root, which is
not timed. Our commit flushes its journal's plan once and the file systems
once per batch of steps (``syncfs``, in a thread while the next steps run; the
last one is waited for); pacman does not flush at all. Wall and CPU time (user + system: steadier on a shared
machine) are reported, and one more run of each under ``strace -c -f`` counts
the system calls per package (fsync/fdatasync above all).
"""

from __future__ import annotations

import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
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


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _time(cmd: list[str], extra_env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run."""
    c0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT,
                   env={"LC_ALL": "C", "PATH": "/usr/bin:/bin", **(extra_env or {})})
    return time.perf_counter() - t0, _children_cpu() - c0


#: System calls worth counting per package (the rest are summed in "all").
SYSCALLS = ("fsync", "fdatasync", "syncfs", "sync_file_range", "openat", "newfstatat", "write",
            "rename", "renameat2", "mkdir", "unlink")


def _syscalls(cmd: list[str]) -> dict[str, int]:
    """``strace -c -f`` call counts of one run (every thread and child)."""
    with tempfile.NamedTemporaryFile(prefix="alpmd-bench-strace-") as out:
        subprocess.run(["strace", "-f", "-c", "-o", out.name, *cmd], check=True,
                       capture_output=True, cwd=ROOT, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
        counts: dict[str, int] = {}
        for line in Path(out.name).read_text().splitlines():
            cols = line.split()
            # "% time seconds usecs/call calls [errors] syscall"; "total" has no usecs column.
            if len(cols) >= 5 and cols[0][0].isdigit() and cols[3].isdigit():
                counts[cols[-1]] = int(cols[3])
        counts["all"] = counts.pop("total", 0)
        return counts


def run(ctx: Context) -> Section:
    started = time.perf_counter()
    pkgdir = ctx.workdir / "install-pkgs"
    if not pkgdir.exists():
        _packages(pkgdir)
    files = sorted(str(p) for p in pkgdir.glob("*.pkg.tar.zst"))
    repeats = max(1, min(ctx.repeats, 5))
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    synced: list[tuple[float, float]] = []
    alpm = [sys.executable, "-m", "alpmd.cli.alpm", "-U"]
    for _ in range(repeats):
        args = _root(ctx.workdir / "install-root-pacman")
        theirs.append(_time([PACMAN, "-U", *args, *files]))
        args = _root(ctx.workdir / "install-root-alpm")
        ours.append(_time([*alpm, *args, *files]))
        # pacman made as durable as our commit: its files flushed when it ends
        base = ctx.workdir / "install-root-pacman"
        args = _root(base)
        synced.append(_time(["sh", "-c", '"$0" "$@" && sync -f "$ROOTDIR"', PACMAN, "-U",
                             *args, *files], extra_env={"ROOTDIR": str(base)}))
    t = Table(["", "pacman -U", "alpm -U", "ratio (ours / pacman)"])
    p, o = statistics.median(w for w, _ in theirs), statistics.median(w for w, _ in ours)
    pc, oc = statistics.median(c for _, c in theirs), statistics.median(c for _, c in ours)
    t.add(f"{COUNT} packages × {FILES} files, wall, median of {repeats}", fmt_s(p), fmt_s(o),
          ratio(o, p))
    t.add("CPU (user + system), median", fmt_s(pc), fmt_s(oc), ratio(oc, pc))
    ps = statistics.median(w for w, _ in synced)
    t.add("wall against pacman -U followed by sync -f of its root (the same durability)",
          fmt_s(ps), fmt_s(o), ratio(o, ps))
    section = Section(TITLE, tables=[t], notes=[
        f"package files built under {pkgdir}", f"from {ROOT}",
        f"each run: pacman {', '.join(fmt_s(w) for w, _ in theirs)}; "
        f"alpm {', '.join(fmt_s(w) for w, _ in ours)} (runs alternate, so a busy disk "
        "slows both)"])
    if shutil.which("strace") is None:
        raise RuntimeError("strace is not installed (it is in the Makefile's APT_PACKAGES)")
    counted_p = _syscalls([PACMAN, "-U", *_root(ctx.workdir / "install-root-pacman"), *files])
    counted_a = _syscalls([*alpm, *_root(ctx.workdir / "install-root-alpm"), *files])
    sc = Table(["system call", "pacman per package", "alpm per package"],
               title=f"System calls per package (strace -c -f, one run of {COUNT} packages)")
    for name in (*SYSCALLS, "all"):
        a, b = counted_p.get(name, 0), counted_a.get(name, 0)
        if a or b or name in ("fsync", "fdatasync", "syncfs"):
            digits = 3 if "sync" in name else 1  # a few per run: per package they are small
            sc.add(name, f"{a / COUNT:.{digits}f}", f"{b / COUNT:.{digits}f}")
    section.tables.append(sc)
    section.seconds = time.perf_counter() - started
    return section
