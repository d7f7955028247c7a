"""Backup files saved on removal when ``.pacsave`` copies already exist, against pacman.

libalpm keeps the newest copy as ``.pacsave`` and shifts older ones up
(``.pacsave`` -> ``.pacsave.1`` -> ``.pacsave.2`` ...), starting from the highest
number present. Each case prepares the same copies on twin roots and compares
exit code, output, every file, the database and the log.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.behaviours.twin import Case, run_case
from tests.trans.harness import Pkg, Scenario, build_all

pytestmark = pytest.mark.oracle

CFG = "etc/foo.conf"
ODD = "etc/a+.conf"  # libalpm uses the name as a regular expression, unescaped
PKGS = [
    Pkg("cfg", backup=[CFG], files={CFG: "one\n", "usr/bin/cfg": "c1\n"}),
    Pkg("cfg", "3.0-1", files={"usr/bin/cfg": "c3\n"}),
    Pkg("odd", backup=[ODD], files={ODD: "odd\n"}),
]


def _prep(edit: bool, *copies: str, target: str = CFG) -> Callable[[Path], None]:
    def prep(root: Path) -> None:
        if edit:
            (root / target).write_text("changed by the admin\n")
        for name in copies:
            (root / "etc" / name).write_text(f"old copy {name}\n")
    return prep


def _case(name: str, prep: Callable[[Path], None], cmd: list[str] | None = None,
          local: str = "cfg-1.0-1", expect: list[str] | None = None) -> Case:
    sc = Scenario(name, cmd or ["-R", "cfg"], local=[local], prep=prep)
    return Case(sc, 0, expect_output=expect if expect is not None else ["saved as"])


CASES = [
    _case("first", _prep(True)),
    _case("one-exists", _prep(True, "foo.conf.pacsave")),
    _case("chain", _prep(True, "foo.conf.pacsave", "foo.conf.pacsave.1", "foo.conf.pacsave.2")),
    _case("numbered-only", _prep(True, "foo.conf.pacsave.1")),
    _case("gap", _prep(True, "foo.conf.pacsave.1", "foo.conf.pacsave.3")),
    _case("gap-and-plain", _prep(True, "foo.conf.pacsave", "foo.conf.pacsave.2")),
    _case("leading-zero", _prep(True, "foo.conf.pacsave", "foo.conf.pacsave.02")),
    _case("not-numbers", _prep(True, "foo.conf.pacsave.x", "foo.conf.pacsave.1x",
                               "foo.conf.pacsave.")),
    _case("other-files", _prep(True, "bar.conf.pacsave.4", "foo.conf.pacnew")),
    _case("unchanged", _prep(False, "foo.conf.pacsave", "foo.conf.pacsave.1"), expect=[]),
    _case("nosave", _prep(True, "foo.conf.pacsave"), ["-R", "-n", "cfg"], expect=[]),
    _case("upgrade-drops-backup", _prep(True, "foo.conf.pacsave"), ["-U", "@cfg-3.0-1"]),
    _case("regex-name", _prep(True, "a+.conf.pacsave", "aa.conf.pacsave.2", target=ODD),
          ["-R", "odd"], local="odd-1.0-1"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(PKGS, tmp_path_factory.mktemp("pkgs"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_pacsave_numbering_matches_pacman(tmp_path: Path, case: Case,
                                          built: dict[str, Path]) -> None:
    run_case(tmp_path, case, built)
