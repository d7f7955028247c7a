"""``make bench``: run every registered benchmark, print markdown, save bench/out/results.md.

Add a benchmark by writing ``bench/<name>.py`` with ``TITLE`` and
``run(ctx) -> Section`` and listing it in :data:`BENCHMARKS`. A benchmark that
fails is reported as such and the others still run.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from bench import (
    ROOT,
    Context,
    Section,
    backends,
    commit_memory,
    dbus,
    download,
    install,
    machine,
    query,
    repo,
    resolve,
    scale,
    sync_load,
)

#: The benchmarks, in report order (each a module of ``bench`` with ``TITLE`` and ``run``).
MODULES: dict[str, ModuleType] = {
    "sync_load": sync_load,
    "resolve": resolve,
    "query": query,
    "backends": backends,
    "download": download,
    "install": install,
    "dbus": dbus,
    "commit_memory": commit_memory,
    "repo": repo,
    "scale": scale,
}
BENCHMARKS: list[str] = list(MODULES)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument("--only", action="append", choices=BENCHMARKS, metavar="NAME",
                    help=f"run only these (any of: {', '.join(BENCHMARKS)})")
    ap.add_argument("--quick", action="store_true", help="3 repetitions instead of 11")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "results.md")
    ap.add_argument("--workdir", type=Path, default=None,
                    help="keep fixtures here (default: a temporary directory)")
    args = ap.parse_args(argv)

    repeats = args.repeats or (3 if args.quick else 11)
    names = args.only or BENCHMARKS
    # An installed alpmd ships its compiled modules: without them (PYTHONDONTWRITEBYTECODE,
    # a read-only tree) every `alpm` process timed would compile our sources again.
    compileall.compile_dir(str(ROOT / "alpmd"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="alpmd-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        ctx = Context(workdir=workdir, repeats=repeats, quick=args.quick)
        started = datetime.datetime.now().astimezone()
        parts = [
            "# alpmd benchmarks\n",
            f"{started:%Y-%m-%d %H:%M %Z}; {machine()}; {repeats} repetitions.\n",
        ]
        print(parts[0] + "\n" + parts[1], flush=True)
        failed = 0
        for name in names:
            t0 = time.perf_counter()
            try:
                section: Section = MODULES[name].run(ctx)
            except Exception:  # report it, keep going
                failed += 1
                section = Section(f"{name}: FAILED", error=traceback.format_exc())
                section.seconds = time.perf_counter() - t0
            text = section.markdown()
            print(text, flush=True)
            parts.append(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(parts))
    print(f"written to {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
