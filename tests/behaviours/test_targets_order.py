"""The "Packages (N)" line: the order pacman 6.0.2 lists targets in, on twin roots.

Packages pulled in (dependencies, upgrades, -s/-c removals, replaced packages)
come first, then the ones named on the command line, each group by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.behaviours.twin import Case, run_case
from tests.trans.harness import Pkg, Scenario, build_all

pytestmark = pytest.mark.oracle

PKGS = [Pkg("zlib"), Pkg("alib"), Pkg("app", depends=["zlib", "alib"]), Pkg("mid"),
        Pkg("zed", depends=["mid"]), Pkg("aa"), Pkg("zlib", "2.0-1"), Pkg("aa", "2.0-1"),
        Pkg("old"), Pkg("new", replaces=["old"], conflicts=["old"])]
REPO = ["app-1.0-1", "alib-1.0-1", "zlib-2.0-1", "zed-1.0-1", "mid-1.0-1", "aa-2.0-1",
        "new-1.0-1"]


def _case(name: str, cmd: list[str], local: list[str] | None = None,
          deps: list[str] | None = None) -> Case:
    return Case(Scenario(name, cmd, repo=REPO, local=local or [], local_deps=deps or []), 0,
                expect_output=["Packages ("])


CASES = [
    _case("S-deps", ["-S", "app", "mid"]),
    _case("S-named-order", ["-S", "zed", "aa"]),
    _case("Su", ["-S", "-u", "zed"], local=["zlib-1.0-1", "aa-1.0-1"]),
    _case("Su-replaces", ["-S", "-u"], local=["old-1.0-1", "aa-1.0-1"]),
    _case("U-deps", ["-U", "@app-1.0-1"]),
    _case("Rs", ["-R", "-s", "zed"], local=["zed-1.0-1"], deps=["mid-1.0-1"]),
    _case("Rc", ["-R", "-c", "mid", "aa"], local=["zed-1.0-1", "mid-1.0-1", "aa-1.0-1"]),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(PKGS, tmp_path_factory.mktemp("pkgs"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_targets_order_matches_pacman(tmp_path: Path, case: Case,
                                      built: dict[str, Path]) -> None:
    run_case(tmp_path, case, built)


OPT_PKGS = [Pkg("opt", optdepends=["zlib: for z", "nothere"]),
            Pkg("opt", "2.0-1", optdepends=["zlib: for z", "nothere", "aa: new one"]),
            Pkg("zlib"), Pkg("aa")]


@pytest.mark.parametrize(("cmd", "local"), [
    (["-U", "@opt-1.0-1"], []), (["-U", "@opt-1.0-1"], ["zlib-1.0-1"]),
    (["-U", "@opt-2.0-1"], ["opt-1.0-1"]), (["-U", "@opt-1.0-1"], ["opt-2.0-1"]),
], ids=["install", "install-one-installed", "upgrade-new-ones", "downgrade"])
def test_optional_dependencies_shown_as_pacman(tmp_path: Path, cmd: list[str],
                                               local: list[str]) -> None:
    case = Case(Scenario("opt", cmd, pkgs=OPT_PKGS, local=local), 0)
    ref, _, _, _ = run_case(tmp_path, case)
    assert "ptional dependencies for opt" in ref.stdout or cmd[1] == "@opt-1.0-1" and local
