"""``alpm -h`` and ``alpm -<op> -h`` against pacman's own help behaviour.

Compared with pacman 6.0.2: the exit code (0, nothing else done), that the help
is the operation's, and the option set each operation lists — ours must be
exactly what our parser accepts for that operation, and equal to pacman's but
for the differences named here. The wording is our own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from alpmd.cli.args import COMMON_LONG, COMMON_SHORT, OP_FLAGS
from alpmd.testing.oracle import PACMAN, PacmanRoot

pytestmark = pytest.mark.oracle

ALPM = str(Path(sys.executable).parent / "alpm")
ENV = {"LC_ALL": "C", "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}

#: what pacman offers that ``alpm`` does not accept, per operation (and the reverse)
NOT_OURS: dict[str, set[str]] = {}
#: options of ours that pacman 6.0.2 does not have
ONLY_OURS: dict[str, set[str]] = {"database": {"--convert"}}

OPS = {"D": "database", "F": "files", "Q": "query", "R": "remove", "S": "sync",
       "T": "deptest", "U": "upgrade"}


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool, *args], capture_output=True, text=True, env=ENV, timeout=60)


def _listed(text: str) -> set[str]:
    """Every ``-x`` and ``--long`` an options list names."""
    found: set[str] = set()
    for line in text.splitlines():
        m = re.match(r"\s+(?:(-\w), )?(--[\w-]+)", line)
        if m:
            found.update(o for o in m.groups() if o)
    return found


def _accepted(op: str) -> set[str]:
    short_map, longs = OP_FLAGS[op]
    names = (COMMON_LONG | longs | set(short_map.values())) - {"help", "ask"}
    shorts = {**COMMON_SHORT, **short_map}
    return {f"--{n}" for n in names} | {f"-{c}" for c, n in shorts.items() if n != "help"}


@pytest.mark.parametrize("letter", sorted(OPS))
@pytest.mark.parametrize("form", ["-{}h", "--help -{}", "-{} --help"])
def test_operation_help(letter: str, form: str, tmp_path: Path) -> None:
    op = OPS[letter]
    root = PacmanRoot(tmp_path / "root")
    # A target and a root: pacman shows the help and does nothing with them.
    argv = [*form.format(letter).split(), "--config", str(root.config), "bash"]
    theirs = _run(PACMAN, *argv)
    ours = _run(ALPM, *argv)
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout.startswith(f"usage:  pacman {{-{letter} --{op}}}")
    assert (ours.returncode, ours.stderr) == (0, "")
    assert ours.stdout.startswith(f"usage:  alpm {{-{letter} --{op}}}")
    assert _listed(ours.stdout) == _accepted(op)
    assert _listed(ours.stdout) - _listed(theirs.stdout) == ONLY_OURS.get(op, set())
    assert _listed(theirs.stdout) - _listed(ours.stdout) == NOT_OURS.get(op, set())
    assert not (root.root / "var/log/pacman.log").exists()


def test_help_does_not_run_the_operation(tmp_path: Path) -> None:
    """``-Sh pkg`` shows help: nothing is installed, nothing is logged."""
    root = PacmanRoot(tmp_path / "root")
    for tool in (PACMAN, ALPM):
        r = _run(tool, "-Sh", "--noconfirm", "--config", str(root.config), "nosuch")
        assert r.returncode == 0 and "usage:" in r.stdout and r.stderr == ""
    assert not (root.root / "var/log/pacman.log").exists()
    assert list((root.dbpath / "local").iterdir()) == []


@pytest.mark.parametrize("argv", [["-h"], ["--help"], ["-Vh"], ["-h", "-h"]])
def test_main_help(argv: list[str]) -> None:
    theirs = _run(PACMAN, *argv)
    ours = _run(ALPM, *argv)
    assert theirs.returncode == 0 and theirs.stdout.startswith("usage:  pacman <operation>")
    assert ours.returncode == 0 and ours.stdout.startswith("usage:  alpm <operation>")
    ops = re.findall(r"\{(-\w --\w+)\}", theirs.stdout)
    assert re.findall(r"\{(-\w --\w+)\}", ours.stdout) == ops


@pytest.mark.parametrize("argv", [
    ["-Sh", "--nosuchoption"],   # unknown to every operation: refused even with -h
    ["-Sh", "-Q"],               # two operations
    ["-S", "-S", "x"],           # the same operation twice
    ["-Th", "-z"],
], ids=lambda a: " ".join(a))
def test_help_refusals(argv: list[str]) -> None:
    theirs = _run(PACMAN, *argv)
    ours = _run(ALPM, *argv)
    assert theirs.returncode == 1
    assert ours.returncode == 1
    assert ours.stdout == theirs.stdout == ""
    prog = re.compile(r"^\S*(pacman|alpm): ", re.M)
    assert prog.sub("PROG: ", ours.stderr) == prog.sub("PROG: ", theirs.stderr)


@pytest.mark.parametrize("argv", [["-T", "-d", "x"], ["-Q", "--noprogressbar"], ["-Qw"],
                                  ["-R", "--needed", "x"]], ids=lambda a: " ".join(a))
def test_option_of_another_operation(argv: list[str], tmp_path: Path) -> None:
    """An option pacman knows, given to an operation that does not take it."""
    root = PacmanRoot(tmp_path / "root")
    theirs = _run(PACMAN, *argv, "--config", str(root.config))
    ours = _run(ALPM, *argv, "--config", str(root.config))
    assert theirs.returncode == 1 and theirs.stderr.startswith("error: invalid option")
    assert (ours.returncode, ours.stdout, ours.stderr) == (1, theirs.stdout, theirs.stderr)
