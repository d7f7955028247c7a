"""ldconfig after a transaction, against pacman on twin roots.

The roots get a chrooted shell and an ``/sbin/ldconfig`` script that records each
run (its arguments, working directory and what it sees of the root) in /ldlog and
prints a line: pacman runs it once per committed transaction when the root has
``etc/ld.so.conf`` and an executable ldconfig, chrooted, its output shown and
logged as scriptlet output. Compared: exit code, output, files (/ldlog), log.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.behaviours.twin import Case, run_case
from tests.trans.harness import Pkg, Scenario, build_all

pytestmark = pytest.mark.oracle

LDCONFIG = """#!/bin/sh
echo "ldconfig run: $0 $# $(pwd) $(ls /usr/lib/libfoo.so 2>&1)" >> /ldlog
echo "ldconfig says hello"
"""
PKGS = [Pkg("foo", files={"usr/lib/libfoo.so": "lib\n"}), Pkg("foo", "2.0-1"),
        Pkg("bar", depends=["foo"]), Pkg("clash", files={"usr/lib/libfoo.so": "other\n"})]


def _setup(conf: bool = True, script: bool = True, mode: int = 0o755,
           ) -> Callable[[Path], None]:
    def prep(root: Path) -> None:
        if conf:
            (root / "etc").mkdir(exist_ok=True)
            (root / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
        if script:
            (root / "sbin").mkdir(exist_ok=True)
            (root / "sbin/ldconfig").write_text(LDCONFIG)
            os.chmod(root / "sbin/ldconfig", mode)
    return prep


def _case(name: str, cmd: list[str], code: int = 0, *, ran: bool = True,
          local: list[str] | None = None, **kw: object) -> Case:
    sc = Scenario(name, cmd, local=local or [], shell=True, prep=_setup(**kw),  # type: ignore[arg-type]
                  repo=["foo-2.0-1", "bar-1.0-1"])
    return Case(sc, code, expect_output=["ldconfig says hello"] if ran else [])


CASES = [
    _case("U", ["-U", "@foo-1.0-1"]),
    _case("U-two", ["-U", "@foo-1.0-1", "@bar-1.0-1"]),
    _case("R", ["-R", "foo"], local=["foo-1.0-1"]),
    _case("S-upgrade", ["-S", "foo"], local=["foo-1.0-1"]),
    _case("S-deps", ["-S", "bar"]),
    _case("dbonly", ["-U", "--dbonly", "@foo-1.0-1"]),
    _case("no-ld.so.conf", ["-U", "@foo-1.0-1"], ran=False, conf=False),
    _case("no-ldconfig", ["-U", "@foo-1.0-1"], ran=False, script=False),
    _case("not-executable", ["-U", "@foo-1.0-1"], ran=False, mode=0o644),
    _case("print", ["-U", "-p", "@foo-1.0-1"], ran=False),
    _case("nothing-to-do", ["-S", "--needed", "foo"], ran=False, local=["foo-2.0-1"]),
    _case("file-conflict", ["-U", "@clash-1.0-1"], 1, ran=False, local=["foo-1.0-1"]),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(PKGS, tmp_path_factory.mktemp("pkgs"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_ldconfig_matches_pacman(tmp_path: Path, case: Case, built: dict[str, Path]) -> None:
    _, _, a, _ = run_case(tmp_path, case, built)
    runs = (a.root / "ldlog").read_text().count("ldconfig run") if (a.root / "ldlog").exists() \
        else 0
    assert runs == (1 if case.expect_output else 0)
