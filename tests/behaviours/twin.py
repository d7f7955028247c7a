"""Twin-root runs for the behaviour tests: pacman on root A, the ``alpm`` command on root B.

Built on :mod:`tests.trans.harness` (same fixtures, same snapshot). What this adds:
every case names the exit code pacman must give (checked first, so two failures
never count as agreement), ``alpm`` runs as a real process (so answers can come
on stdin), and output can be compared with each root's path written as ROOT.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from alpmd.engine.formats.desc import PkgMeta
from alpmd.testing.oracle import PACMAN, PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.trans.harness import Pkg, Scenario, expand, setup_twins, snapshot

ALPM = str(Path(sys.executable).parent / "alpm")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass
class Case:
    """A scenario with pacman's expected exit code and what else to compare."""

    sc: Scenario
    code: int
    stdin: str | None = None
    compare_output: bool = True
    compare_state: bool = True
    #: stderr compared as a multiset of lines (pacman reports in readdir order)
    sort_stderr: bool = False
    #: substrings pacman's stdout+stderr must contain (the scenario's point)
    expect_output: list[str] = field(default_factory=list)
    #: rewrites both roots' pacman.conf once the twins are set up
    config_edit: Callable[[str], str] | None = None

    def __str__(self) -> str:
        return self.sc.name


def run_tool(tool: str, root: PacmanRoot, args: list[str], stdin: str | None) -> Run:
    """pacman or alpm with pacman's argument order, C locale, no colour, on ``root``.

    ``ROOTDIR`` in an argument becomes the root's path.
    """
    env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    args = [a.replace("ROOTDIR", str(root.root)) for a in args]
    cmd = [tool, *args[:1], *root.args(), "--color", "never", *args[1:]]
    r = subprocess.run(cmd, capture_output=True, text=True, errors="surrogateescape", env=env,
                       input=stdin, timeout=300)  # (packages may hold any bytes)
    norm = str(root.root)
    return Run(r.returncode, r.stdout.replace(norm, "ROOT"), r.stderr.replace(norm, "ROOT"))


def run_case(tmp: Path, case: Case, built: dict[str, Path] | None = None,
             ) -> tuple[Run, Run, PacmanRoot, PacmanRoot]:
    """Both tools on twin roots; asserts pacman's code, then ours, output and state."""
    a, b, paths = setup_twins(tmp, case.sc, built)
    if case.config_edit is not None:
        for r in (a, b):
            r.config.write_text(case.config_edit(r.config.read_text()))
    args = expand(case.sc.cmd, paths)
    ref = run_tool(PACMAN, a, args, case.stdin)
    assert ref.code == case.code, f"pacman said {ref.code}:\n{ref.stdout}{ref.stderr}"
    for want in case.expect_output:
        assert want in ref.stdout + ref.stderr, (want, ref.stdout, ref.stderr)
    ours = run_tool(ALPM, b, args, case.stdin)
    assert ours.code == ref.code, (f"pacman said {ref.code}:\n{ref.stdout}{ref.stderr}"
                                   f"\nalpm said {ours.code}:\n{ours.stdout}{ours.stderr}")
    if case.compare_output and case.sort_stderr:
        assert ours.stdout == ref.stdout
        assert sorted(ours.stderr.splitlines()) == sorted(ref.stderr.splitlines())
    elif case.compare_output:
        assert (ours.stdout, ours.stderr) == (ref.stdout, ref.stderr)
    if case.compare_state:
        want, got = snapshot(a.root), snapshot(b.root)
        assert got["db"] == want["db"]
        assert got["fs"] == want["fs"]
        assert got["log"] == want["log"]
    return ref, ours, a, b


@dataclass
class ArchPkg(Pkg):
    """A test package built for ``arch`` (the harness's are all ``any``)."""

    arch: str = "any"

    def build(self, outdir: Path) -> Path:
        files = self.files or {f"usr/share/{self.name}/data": f"{self.name} {self.version}\n"}
        specs = [v if isinstance(v, FileSpec) else FileSpec(k, v.encode())
                 for k, v in files.items()]
        meta = PkgMeta(self.name, self.version, desc=f"{self.name} test package",
                       arch=self.arch, depends=list(self.depends))
        return build_package(outdir, meta, specs, compression=self.compression)
