"""Benchmarks against Debian's pacman: shared fixtures, timing helpers, markdown output.

A benchmark is a module with ``TITLE`` and ``run(ctx: Context) -> Section``,
listed in :data:`bench.run.BENCHMARKS`. Fixtures that take seconds to build
(the generated 15,000-package repository) are built once per run through
:meth:`Context.fixture` and shared by every benchmark. Results are reported as
medians with the spread, and always next to pacman measured in the same run on
the same files: absolute numbers vary with the machine, ratios much less.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

PACMAN = shutil.which("pacman") or "/usr/bin/pacman"
ROOT = Path(__file__).resolve().parents[1]


# -- results ----------------------------------------------------------------------------


@dataclass
class Table:
    """A markdown table; cells are preformatted strings."""

    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    title: str = ""

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        out = []
        if self.title:
            out.append(f"**{self.title}**\n")
        out.append("| " + " | ".join(self.headers) + " |")
        out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.headers)))
                   + "|")
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(out) + "\n"


@dataclass
class Section:
    """One benchmark's report: tables plus notes (setup, caveats, what was measured)."""

    title: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    def markdown(self) -> str:
        out = [f"## {self.title}\n"]
        for t in self.tables:
            out.append(t.markdown())
        if self.notes:
            out.append("\n".join(f"- {n}" for n in self.notes) + "\n")
        if self.error:
            out.append("```\n" + self.error.rstrip() + "\n```\n")
        out.append(f"_({self.seconds:.0f} s)_\n")
        return "\n".join(out)


# -- the run's context ------------------------------------------------------------------


@dataclass
class Context:
    """What every benchmark gets: a scratch directory, repeat counts, shared fixtures."""

    workdir: Path
    repeats: int = 11
    quick: bool = False
    python: str = sys.executable
    _fixtures: dict[str, Any] = field(default_factory=dict)

    def fixture(self, key: str, build: Callable[[], T]) -> T:
        """Build a shared fixture once per run (keyed by name)."""
        if key not in self._fixtures:
            self._fixtures[key] = build()
        result: T = self._fixtures[key]
        return result

    def env(self) -> dict[str, str]:
        """The environment for child processes: C locale, our tree importable."""
        env = {"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "PYTHONPATH": str(ROOT), "HOME": str(self.workdir)}
        return env

    def repo(self, count: int = 15000, seed: int = 1) -> RepoFixture:
        """The generated repository as a pacman DBPath with a pacman.conf (built once)."""
        return self.fixture(f"repo-{count}-{seed}", lambda: RepoFixture.build(
            self.workdir / f"repo-{count}-{seed}", count, seed))


@dataclass
class RepoFixture:
    """``<dir>/db/sync/extra.db`` (generated), an empty local db and a pacman.conf."""

    dir: Path
    count: int
    seed: int
    dbpath: Path
    dbfile: Path
    config: Path
    names: list[str]
    seconds: float

    @classmethod
    def build(cls, dir: Path, count: int, seed: int) -> RepoFixture:
        from alpmd.testing.repogen import generate_repo, write_sync_db

        t0 = time.perf_counter()
        metas = generate_repo(seed, count)
        dbpath = dir / "db"
        dbfile = write_sync_db(metas, dbpath / "sync" / "extra.db")
        (dbpath / "local").mkdir(parents=True, exist_ok=True)
        for sub in ("root", "cache", "gnupg"):
            (dir / sub).mkdir(exist_ok=True)
        (dbpath / "local" / "ALPM_DB_VERSION").write_text("9\n")
        config = dir / "pacman.conf"
        config.write_text(
            "[options]\n"
            f"RootDir = {dir}/root\n"
            f"DBPath = {dbpath}/\n"
            f"CacheDir = {dir}/cache/\n"
            f"LogFile = {dir}/pacman.log\n"
            f"GPGDir = {dir}/gnupg/\n"
            "Architecture = auto\n"
            "SigLevel = Never\n\n"
            "[extra]\n"
            "Server = file:///nonexistent\n")
        return cls(dir, count, seed, dbpath, dbfile, config, [m.name for m in metas],
                   time.perf_counter() - t0)

    def pacman_args(self) -> list[str]:
        return ["--config", str(self.config), "--dbpath", str(self.dbpath), "--color", "never"]


# -- measuring --------------------------------------------------------------------------


@dataclass
class Runs:
    """Wall times (s) and peak RSS (bytes) of repeated runs."""

    times: list[float]
    maxrss: list[int] = field(default_factory=list)
    #: CPU time (user + system, s) of each run: steadier than wall time on a busy machine.
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        """The fastest run: on a shared machine noise only ever adds time."""
        return min(self.times)

    @property
    def spread(self) -> str:
        return f"{fmt_s(min(self.times))}–{fmt_s(max(self.times))}"

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else 0.0

    @property
    def rss(self) -> int:
        return int(statistics.median(self.maxrss)) if self.maxrss else 0


#: Runs a command and writes, to argv[1], its peak RSS (KiB), user and system CPU seconds
#: (microsecond resolution, unlike GNU time's 10 ms) and wall seconds from spawn to exit,
#: so the launcher's own start-up is not timed. A separate small parent is needed because
#: a child forked from this (large) process inherits its RSS high-water mark across exec.
_LAUNCHER = """
import os, sys, time
t0 = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
open(sys.argv[1], "w").write(f"{usage.ru_maxrss} {usage.ru_utime} {usage.ru_stime} {wall}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _measured(cmd: Sequence[str], rssfile: str) -> list[str]:
    """cmd wrapped so that its measures land in rssfile, from a small parent process."""
    return [sys.executable, "-S", "-E", "-c", _LAUNCHER, rssfile, *cmd]


def rss_method() -> str:
    """How run_process measures peak RSS, CPU and wall time (for the report's notes)."""
    return ("a small Python launcher as the parent of each run: wait4's peak RSS (about "
            "8 MiB floor) and CPU time, wall time from spawn to exit")


def run_process(cmd: Sequence[str], *, env: dict[str, str] | None = None,
                repeats: int = 5, warmup: int = 1, check: bool = True) -> Runs:
    """Time whole processes (spawn to exit) and take each one's own peak RSS and CPU time."""
    runs = Runs([], [])
    with tempfile.TemporaryDirectory(prefix="alpmd-bench-rss-") as tmp:
        rssfile = os.path.join(tmp, "maxrss")
        for i in range(warmup + repeats):
            proc = subprocess.run(_measured(cmd, rssfile), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=env)
            if check and proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): "
                                   f"{proc.stderr.decode(errors='replace')[-500:]}")
            if i >= warmup:
                with open(rssfile) as f:
                    rss, user, system, wall = f.read().split()
                runs.times.append(float(wall))
                runs.maxrss.append(int(rss) * 1024)
                runs.cpu.append(float(user) + float(system))
    return runs


def time_calls(fn: Callable[[], object], *, repeats: int, warmup: int = 1,
               fastest: bool = False) -> float:
    """Median (or, with ``fastest``, minimum) seconds of ``repeats`` calls of ``fn``
    after ``warmup`` untimed ones.

    The one timing loop of the in-process probes (they run in a fresh interpreter
    with this tree on ``PYTHONPATH`` and ``from bench import time_calls``).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) if fastest else statistics.median(times)


def run_probe(ctx: Context, code: str, *, repeats: int, warmup: int = 1) -> list[dict[str, Any]]:
    """Run a Python snippet in a fresh interpreter ``repeats`` times; it prints one JSON line."""
    results = []
    for i in range(warmup + repeats):
        out = subprocess.run([ctx.python, "-c", code], capture_output=True, text=True,
                             env=ctx.env(), timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"probe failed: {out.stderr[-1500:]}")
        if i >= warmup:
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def median_of(results: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in results))


# -- formatting -------------------------------------------------------------------------


def fmt_s(seconds: float) -> str:
    """Seconds as ms below 10 s, else s."""
    if seconds < 10:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.2f} ms"
    return f"{seconds:.1f} s"


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def ratio(ours: float, theirs: float) -> str:
    """``ours / pacman`` as ``2.3×`` (or ``0.4×`` when faster)."""
    if theirs <= 0:
        return "–"
    return f"{ours / theirs:.2f}×"


def machine() -> str:
    """A one-line description of where the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pv = subprocess.run([PACMAN, "--version"], capture_output=True, text=True).stdout
        pacman = next((ln.split("Pacman ")[1].split(" -")[0] for ln in pv.splitlines()
                       if "Pacman v" in ln), "?")
    except OSError:
        pacman = "not installed"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return (f"{cpu}, {os.cpu_count()} CPUs, load {load:.2f}; Python "
            f"{platform.python_version()}; pacman {pacman}")
