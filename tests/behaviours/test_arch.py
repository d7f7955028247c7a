"""Package architectures against pacman on twin roots: -U and -S of packages built for
another architecture are refused before anything is resolved (libalpm's check_arch on
the transaction's targets), under ``Architecture = auto``, several architectures,
``any``, ``--arch``, and no Architecture at all (no check).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.behaviours.twin import ArchPkg, Case, run_case
from tests.trans.harness import Scenario, build_all

pytestmark = pytest.mark.oracle

MACHINE = os.uname().machine
PKGS = [ArchPkg("native", arch=MACHINE), ArchPkg("foreign", arch="sparc64"),
        ArchPkg("anyp", arch="any"), ArchPkg("i6", arch="i686"),
        ArchPkg("needsforeign", arch=MACHINE, depends=["foreign"]),
        ArchPkg("foreign", "2.0-1", arch="sparc64")]
REPO = ["native-1.0-1", "foreign-1.0-1", "anyp-1.0-1", "i6-1.0-1", "needsforeign-1.0-1"]
INVALID = "does not have a valid architecture"


def _arch(value: str | None) -> object:
    """Replace the roots' ``Architecture = auto`` line (None: no line at all)."""
    def edit(text: str) -> str:
        line = f"Architecture = {value}\n" if value is not None else ""
        return re.sub(r"^Architecture = auto\n", line, text, flags=re.M)
    return edit


def _case(name: str, cmd: list[str], code: int, arch: str | None = "auto",
          local: list[str] | None = None) -> Case:
    sc = Scenario(name, cmd, repo=REPO, local=local or [])
    return Case(sc, code, expect_output=[INVALID] if code else [],
                config_edit=_arch(arch) if arch != "auto" else None)


CASES = [
    _case("U-foreign", ["-U", "@foreign-1.0-1"], 1),
    _case("U-native", ["-U", "@native-1.0-1"], 0),
    _case("U-any", ["-U", "@anyp-1.0-1"], 0),
    _case("U-mixed", ["-U", "@native-1.0-1", "@foreign-1.0-1", "@i6-1.0-1"], 1),
    _case("U-several-ok", ["-U", "@i6-1.0-1", "@native-1.0-1"], 0, f"i686 {MACHINE}"),
    _case("U-several-bad", ["-U", "@i6-1.0-1", "@foreign-1.0-1"], 1, f"i686 {MACHINE}"),
    _case("U-arch-any", ["-U", "@native-1.0-1"], 1, "any"),
    _case("U-arch-any-anypkg", ["-U", "@anyp-1.0-1"], 0, "any"),
    _case("U-explicit-machine", ["-U", "@foreign-1.0-1"], 1, MACHINE),
    _case("U-no-architecture", ["-U", "@foreign-1.0-1"], 0, None),
    _case("U-arch-option", ["-U", "--arch", "sparc64", "@foreign-1.0-1"], 0),
    _case("U-arch-option-adds", ["-U", "--arch", "sparc64", "@native-1.0-1"], 0),
    _case("U-print", ["-U", "-p", "@foreign-1.0-1"], 1),
    _case("U-dbonly", ["-U", "--dbonly", "@foreign-1.0-1"], 1),
    _case("U-nodeps", ["-U", "-dd", "@foreign-1.0-1"], 1),
    _case("S-foreign", ["-S", "foreign"], 1),
    _case("S-native", ["-S", "native", "anyp"], 0),
    _case("S-several", ["-S", "i6", "foreign"], 1, f"i686 {MACHINE}"),
    _case("S-dependency-unchecked", ["-S", "needsforeign"], 0),
    _case("S-no-architecture", ["-S", "foreign", "i6"], 0, None),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(PKGS, tmp_path_factory.mktemp("pkgs"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_architecture_matches_pacman(tmp_path: Path, case: Case,
                                     built: dict[str, Path]) -> None:
    run_case(tmp_path, case, built)
