"""HoldPkg against pacman on twin roots: removing a held package warns and asks (default no).

pacman's remove.c names each held package being removed (also those -c/-s pull in),
then asks "HoldPkg was found in target list"; --noconfirm and end of input take the
default (no, exit 1). Output is compared verbatim, state and log too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.behaviours.twin import Case, run_case
from tests.trans.harness import Pkg, Scenario, build_all

pytestmark = pytest.mark.oracle

PKGS = [Pkg("foo"), Pkg("bar", depends=["foo"]), Pkg("baz")]
ASKED = "HoldPkg was found in target list"


def _case(name: str, cmd: list[str], code: int, hold: str, *, stdin: str | None = None,
          local: list[str] | None = None, deps: list[str] | None = None,
          asked: bool = True) -> Case:
    sc = Scenario(name, cmd, local=local or ["foo-1.0-1", "bar-1.0-1", "baz-1.0-1"],
                  local_deps=deps or [], options={"HoldPkg": hold})
    return Case(sc, code, stdin=stdin, expect_output=[ASKED] if asked else [])


CASES = [
    _case("noconfirm", ["-R", "baz"], 1, "baz"),
    _case("answer-yes", ["-R", "--confirm", "baz"], 0, "baz", stdin="y\n\n"),
    _case("answer-no", ["-R", "--confirm", "baz"], 1, "baz", stdin="n\n"),
    _case("answer-empty", ["-R", "--confirm", "baz"], 1, "baz", stdin="\n"),
    _case("answer-other", ["-R", "--confirm", "baz"], 1, "baz", stdin="sure\n"),
    _case("yes-then-no", ["-R", "--confirm", "baz"], 1, "baz", stdin="y\nn\n"),
    _case("end-of-input", ["-R", "--confirm", "baz"], 1, "baz", stdin=""),
    _case("glob", ["-R", "baz", "bar"], 1, "b?z"),
    _case("several", ["-R", "--confirm", "baz", "bar"], 0, "baz bar", stdin="yes\ny\n"),
    _case("not-a-target", ["-R", "baz"], 0, "foo", asked=False),
    _case("cascade", ["-R", "-c", "foo"], 1, "bar"),
    _case("cascade-yes", ["-R", "-c", "--confirm", "foo"], 0, "bar", stdin="Y\nYES\n"),
    _case("recursive", ["-R", "-s", "bar"], 1, "foo", local=["bar-1.0-1", "baz-1.0-1"],
          deps=["foo-1.0-1"]),
    _case("print", ["-R", "-p", "baz"], 1, "baz"),
    _case("dbonly", ["-R", "--dbonly", "baz"], 1, "baz"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(PKGS, tmp_path_factory.mktemp("pkgs"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_holdpkg_matches_pacman(tmp_path: Path, case: Case, built: dict[str, Path]) -> None:
    run_case(tmp_path, case, built)
