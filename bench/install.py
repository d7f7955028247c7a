"""Installing 200 real package files with ``-U`` into an empty root: pacman against us.

The packages are generated once (200 packages, 40 small files each, zstd),
then installed with one ``-U`` per run into an empty root: ``pacman -U`` and
``alpm -U`` as whole processes (``--noconfirm``, no dependencies between the
packages), in pairs whose order alternates, after one untimed run of each (the
package files in the page cache). Each run gets a root of its own, made just
before it (not timed); the roots are deleted only at the end. Deleting 8,000
files right before creating 8,000 would time the file system, not the
installers: ext4 without a journal (this machine's disk) will not reuse an
inode freed in the last 5 s (5 minutes while its inode table is not written
out) and looks at each such inode on every create, so installing right after a
deletion made both installers several times slower and their ratio noisy (other
jobs deleting files on the same disk still do, a little).

Our commit flushes its journal's plan once, the file systems once per 5 s of a long
commit (``syncfs``, in a thread while the next steps run), and leaves its last flush
and the journal's deletion to a detached process, so the command does not wait for the
disk; pacman does not flush at all. After each of our runs the benchmark waits
(untimed) for that process, so it never slows the next run, and a third run per pair
compares the time until everything is flushed: pacman followed by ``sync -f`` of its
root against ``alpm -U`` until its last flush was done. Wall and CPU time (user +
system; the detached process's CPU is not counted, it is mostly the kernel's
write-back) are reported per pair as ratios (min, median, max: "every run" means the
max), on the disk and on tmpfs (``/dev/shm``: no disk, what is left is CPU), and, when
this runs as root, on a new ext4 file system with a journal made in a sparse file and
loop-mounted for the run (what a root file system usually is, and free of the
freed-inode scans above). One more run of
each under ``strace -c -f`` counts the system calls per package
(fsync/fdatasync/syncfs above all).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import PACMAN, ROOT, Context, Section, Table, fmt_s

TITLE = "Install 200 package files with -U into an empty root"
COUNT = 200
FILES = 40
#: Interleaved pairs (pacman, alpm) per place.
PAIRS = 5
#: Where tmpfs roots go (skipped, and said so, when absent).
SHM = Path("/dev/shm")


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


class _Image:
    """A new ext4 file system with a journal (what a system's root usually is), in a
    sparse file, loop-mounted: no freed inodes of anybody else's in it (needs root)."""

    def __init__(self, dir: Path) -> None:
        self.file = dir / "install-ext4.img"
        self.mountpoint = dir / "install-ext4"
        self.mounted = False

    def mount(self) -> str | None:
        """Make and mount it; why not, when it cannot be."""
        if os.geteuid() != 0:
            return "not root"
        if shutil.which("mkfs.ext4") is None:
            return "no mkfs.ext4"
        self.file.unlink(missing_ok=True)
        with open(self.file, "wb") as f:
            f.truncate(8 << 30)
        self.mountpoint.mkdir(exist_ok=True)
        for cmd in (["mkfs.ext4", "-q", "-F", "-N", "1000000", str(self.file)],
                    ["mount", "-o", "loop", str(self.file), str(self.mountpoint)]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                self.file.unlink(missing_ok=True)
                return f"{' '.join(cmd[:1])} failed: {done.stderr.strip()[:200]}"
        self.mounted = True
        return None

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.mountpoint)], check=False)
            self.mounted = False
        self.file.unlink(missing_ok=True)


class _Roots:
    """Fresh empty roots under one directory, each made once and deleted only at the end."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.count = 0

    def clear(self) -> None:
        """Delete earlier runs' roots, then flush and wait until ext4 no longer skips
        inodes freed so far, ours or anybody's (5 s once the inode tables are written;
        5 minutes while they are not)."""
        self.remove()
        time.sleep(6)
        self.top.mkdir(parents=True)

    def remove(self) -> None:
        """Delete the roots, and write the inode tables out (see :meth:`clear`)."""
        shutil.rmtree(self.top, ignore_errors=True)
        subprocess.run(["sync", "-f", str(self.top.parent)], check=True)

    def new(self, tool: str) -> tuple[Path, list[str]]:
        from alpmd.testing.oracle import PacmanRoot

        self.count += 1
        base = self.top / f"{tool}-{self.count}"
        return base, PacmanRoot(base).args()


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


_ENV = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}


def _time(cmd: list[str], extra_env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run."""
    c0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT,
                   env={**_ENV, **(extra_env or {})})
    return time.perf_counter() - t0, _children_cpu() - c0


#: System calls worth counting per package (the rest are summed in "all").
SYSCALLS = ("fsync", "fdatasync", "syncfs", "sync_file_range", "openat", "newfstatat", "write",
            "rename", "renameat2", "mkdir", "unlink")


def _syscalls(cmd: list[str]) -> dict[str, int]:
    """``strace -c -f`` call counts of one run (every thread and child)."""
    with tempfile.NamedTemporaryFile(prefix="alpmd-bench-strace-") as out:
        subprocess.run(["strace", "-f", "-c", "-o", out.name, *cmd], check=True,
                       capture_output=True, cwd=ROOT, env=_ENV)
        counts: dict[str, int] = {}
        for line in Path(out.name).read_text().splitlines():
            cols = line.split()
            # "% time seconds usecs/call calls [errors] syscall"; "total" has no usecs column.
            if len(cols) >= 5 and cols[0][0].isdigit() and cols[3].isdigit():
                counts[cols[-1]] = int(cols[3])
        counts["all"] = counts.pop("total", 0)
        return counts


def _spread(values: list[float], fmt: str = "{:.2f}×") -> str:
    """min / median / max."""
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values),
                                              max(values)))


class _Place:
    """Paired runs in one place (a disk directory or tmpfs)."""

    def __init__(self, label: str, roots: _Roots, files: list[str]) -> None:
        self.label = label
        self.roots = roots
        self.files = files
        self.pacman: list[tuple[float, float]] = []
        self.alpm: list[tuple[float, float]] = []
        self.synced: list[tuple[float, float]] = []
        #: alpm's wall time until its last flush was done (its journal gone)
        self.settled: list[float] = []

    def run_pacman(self) -> tuple[float, float]:
        _, args = self.roots.new("pacman")
        return _time([PACMAN, "-U", *args, *self.files])

    def run_alpm(self) -> tuple[float, float, float]:
        """Wall and CPU of the command, and the wall time until its last flush was done
        (its detached settler let go of the journal: waited for, so that it never
        slows the next run)."""
        from alpmd.engine.journal import wait_settled

        base, args = self.roots.new("alpm")
        t0 = time.perf_counter()
        wall, cpu = _time([sys.executable, "-m", "alpmd.cli.alpm", "-U", *args, *self.files])
        wait_settled(str(base / "var/lib/pacman"))
        return wall, cpu, time.perf_counter() - t0

    def run_synced(self) -> tuple[float, float]:
        base, args = self.roots.new("pacman-sync")
        return _time(["sh", "-c", '"$0" "$@" && sync -f "$ROOTDIR"', PACMAN, "-U", *args,
                      *self.files], extra_env={"ROOTDIR": str(base)})

    def measure(self, pairs: int, synced: bool) -> None:
        self.run_pacman()  # untimed: the package files into the page cache
        self.run_alpm()
        for i in range(pairs):
            if i % 2 == 0:
                self.pacman.append(self.run_pacman())
                *ours, settled = self.run_alpm()
            else:
                *ours, settled = self.run_alpm()
                self.pacman.append(self.run_pacman())
            self.alpm.append((ours[0], ours[1]))
            self.settled.append(settled)
            if synced:
                self.synced.append(self.run_synced())

    def rows(self, t: Table) -> None:
        for what, k in (("wall", 0), ("CPU (user + system)", 1)):
            ours = [r[k] for r in self.alpm]
            theirs = [r[k] for r in self.pacman]
            t.add(f"{self.label}: {what}", fmt_s(statistics.median(theirs)),
                  fmt_s(statistics.median(ours)),
                  _spread([o / p for o, p in zip(ours, theirs, strict=True)]))
        if self.synced:
            ours = self.settled
            theirs = [w for w, _ in self.synced]
            t.add(f"{self.label}: wall until flushed (pacman -U followed by sync -f of its "
                  "root; alpm -U until its last flush was done)",
                  fmt_s(statistics.median(theirs)),
                  fmt_s(statistics.median(ours)),
                  _spread([o / p for o, p in zip(ours, theirs, strict=True)]))

    def note(self) -> str:
        return (f"{self.label}, each pair (pacman, alpm): "
                + "; ".join(f"{fmt_s(p)}, {fmt_s(a)}"
                            for (p, _), (a, _) in zip(self.pacman, self.alpm, strict=True)))


def run(ctx: Context) -> Section:
    started = time.perf_counter()
    if shutil.which("strace") is None:
        raise RuntimeError("strace is not installed (it is in the Makefile's APT_PACKAGES)")
    pkgdir = ctx.workdir / "install-pkgs"
    if not pkgdir.exists():
        _packages(pkgdir)
    files = sorted(str(p) for p in pkgdir.glob("*.pkg.tar.zst"))
    pairs = PAIRS if not ctx.quick else 3
    disk = _Roots(ctx.workdir / "install-roots")
    places = [_Place("disk (ext4 without a journal)", disk, files)]
    image = _Image(ctx.workdir)
    why_not = image.mount()
    if why_not is None:
        places.append(_Place("new ext4 with a journal", _Roots(image.mountpoint / "roots"),
                             files))
    shm = _Roots(SHM / f"alpmd-bench-install-{os.getpid()}") if SHM.is_dir() else None
    if shm is not None:
        places.append(_Place("tmpfs", shm, files))
    disk.clear()
    try:
        for place in places[1:]:
            shutil.rmtree(place.roots.top, ignore_errors=True)
            place.roots.top.mkdir(parents=True)
        for place in places:
            place.measure(pairs, synced=place.roots is not shm)  # tmpfs: nothing to sync
        t = Table(["", "pacman -U (median)", "alpm -U (median)",
                   "ours / pacman per pair: min / median / max"],
                  title=f"{COUNT} packages × {FILES} files, {pairs} interleaved pairs")
        for place in places:
            place.rows(t)
        counted_p = _syscalls([PACMAN, "-U", *disk.new("pacman")[1], *files])
        counted_a = _syscalls([sys.executable, "-m", "alpmd.cli.alpm", "-U",
                               *disk.new("alpm")[1], *files])
    finally:
        disk.remove()
        image.unmount()
        if shm is not None:
            shutil.rmtree(shm.top, ignore_errors=True)
    notes = [f"package files built under {pkgdir}", f"from {ROOT}",
             *(p.note() for p in places)]
    if shm is None:
        notes.append(f"no tmpfs at {SHM}")
    if why_not is not None:
        notes.append(f"no ext4 image with a journal: {why_not}")
    section = Section(TITLE, tables=[t], notes=notes)
    sc = Table(["system call", "pacman per package", "alpm per package"],
               title=f"System calls per package (strace -c -f, one run of {COUNT} packages)")
    counted_p["fsync + fdatasync + syncfs"] = sum(
        counted_p.get(n, 0) for n in ("fsync", "fdatasync", "syncfs"))
    counted_a["fsync + fdatasync + syncfs"] = sum(
        counted_a.get(n, 0) for n in ("fsync", "fdatasync", "syncfs"))
    for name in (*SYSCALLS, "fsync + fdatasync + syncfs", "all"):
        a, b = counted_p.get(name, 0), counted_a.get(name, 0)
        if a or b or "sync" in name:
            digits = 3 if "sync" in name else 1  # a few per run: per package they are small
            sc.add(name, f"{a / COUNT:.{digits}f}", f"{b / COUNT:.{digits}f}")
    section.tables.append(sc)
    section.seconds = time.perf_counter() - started
    return section
