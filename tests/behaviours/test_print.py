"""``--print`` / ``-p`` and ``-Sl`` with a missing repository, against pacman on twin roots.

In print mode pacman shows no events, no progress and no questions: it answers
them itself (yes to IgnorePkg and replacements, the first provider, every group
member, no to conflicts) and prints only the targets. Output is compared
verbatim (each root's path written as ROOT), with pacman's exit code checked
first; nothing may change on either root.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.behaviours.twin import Case, run_case
from tests.trans.harness import Pkg, Scenario

pytestmark = pytest.mark.oracle


def _pkgs() -> list[Pkg]:
    return [
        Pkg("foo"), Pkg("foo", "1.1-1"),
        Pkg("bar", depends=["foo"]),
        Pkg("lib", files={"usr/lib/libx.so": "x\n"}),
        Pkg("app", depends=["lib", "virt"]),
        Pkg("prov", provides=["virt=1.0"], files={"usr/bin/prov": "p\n"}),
        Pkg("prov2", provides=["virt=2.0"], files={"usr/bin/prov2": "p2\n"}),
        Pkg("old", files={"usr/share/old/x": "old\n"}),
        Pkg("new", replaces=["old"], conflicts=["old"], files={"usr/share/new/x": "new\n"}),
        Pkg("enemy", conflicts=["foo"], files={"usr/share/enemy/x": "e\n"}),
        Pkg("ga", groups=["grp"]), Pkg("gb", groups=["grp"]),
    ]


REPO = ["foo-1.1-1", "bar-1.0-1", "lib-1.0-1", "app-1.0-1", "prov-1.0-1", "prov2-1.0-1",
        "new-1.0-1", "enemy-1.0-1", "ga-1.0-1", "gb-1.0-1"]


def _case(name: str, cmd: list[str], code: int = 0, *, local: list[str] | None = None,
          options: dict[str, str] | None = None, expect: list[str] | None = None) -> Case:
    return Case(Scenario(name, cmd, repo=REPO, local=local or [], options=options or {}),
                code, expect_output=expect or [])


CASES = [
    # a provider to choose for 'virt': the first, without the question
    _case("Sp-provider", ["-S", "--print", "app"], expect=["prov-1.0-1"]),
    _case("Sp-provider-confirm", ["-S", "--print", "--confirm", "app"], expect=["prov-1.0-1"]),
    _case("Sp-format", ["-S", "--print-format", "%n %v %r %a %s", "app", "bar"],
          expect=["app 1.0-1 test %a"]),
    # IgnorePkg: installed anyway in print mode, no question
    _case("Sp-ignored", ["-S", "-p", "foo"], options={"IgnorePkg": "foo"}, expect=["foo-1.1-1"]),
    _case("Sup-ignored", ["-S", "-u", "-p"], local=["foo-1.0-1"], options={"IgnorePkg": "foo"}),
    # replaces: accepted silently
    _case("Sup-replaces", ["-S", "-u", "-p"], local=["old-1.0-1"], expect=["new-1.0-1"]),
    # a conflict with an installed package: not even checked in print mode
    _case("Sp-conflict", ["-S", "-p", "enemy"], local=["foo-1.0-1"], expect=["enemy-1.0-1"]),
    # groups: every member, no selection prompt
    _case("Sp-group", ["-S", "-p", "grp"], expect=["ga-1.0-1"]),
    _case("Sp-group-confirm", ["-S", "-p", "--confirm", "grp"], expect=["gb-1.0-1"]),
    # already installed / up to date
    _case("Sp-reinstall", ["-S", "-p", "foo"], local=["foo-1.1-1"]),
    _case("Sp-needed", ["-S", "-p", "--needed", "foo"], local=["foo-1.1-1"]),
    _case("Sup-nothing", ["-S", "-u", "-p"], local=["foo-1.1-1"]),
    _case("Sup-upgrade", ["-S", "-u", "--print-format", "%n %v"], local=["foo-1.0-1", "bar-1.0-1"],
          expect=["foo 1.1-1"]),
    # remove
    _case("Rp", ["-R", "-p", "foo", "--confirm"], local=["foo-1.0-1"], expect=["foo-1.0-1"]),
    _case("Rp-cascade", ["-R", "-p", "-c", "foo"], local=["foo-1.0-1", "bar-1.0-1"]),
    _case("Rp-format", ["-R", "--print-format", "%n %v %r %s %l", "foo"], local=["foo-1.0-1"],
          expect=["foo 1.0-1 local 10 foo-1.0-1"]),
    _case("Up-format", ["-U", "--print-format", "%n %r %s", "@foo-1.0-1"], expect=["foo local"]),
    _case("Rp-breaks", ["-R", "-p", "foo"], 1, local=["foo-1.0-1", "bar-1.0-1"]),
    # package files
    _case("Up", ["-U", "-p", "@foo-1.0-1", "--confirm"], expect=["foo-1.0-1"]),
    _case("Up-deps", ["-U", "--print-format", "%n %l", "@app-1.0-1"], expect=["lib"]),
    # -Sl with repositories that do not exist: reported, the others listed
    _case("Sl-missing-last", ["-S", "-l", "test", "nosuch"], 1, expect=["test foo 1.1-1"]),
    _case("Sl-missing-first", ["-S", "-l", "nosuch", "test", "other"], 1),
    _case("Sl-missing-only", ["-S", "-l", "nosuch"], 1),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.trans.harness import build_all

    return build_all(_pkgs(), tmp_path_factory.mktemp("pkgs"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_print_mode_matches_pacman(tmp_path: Path, case: Case, built: dict[str, Path]) -> None:
    # Questions must not be asked at all: an empty stdin would answer them 'no'.
    case.stdin = ""
    ref, ours, _, _ = run_case(tmp_path, case, built)
    if case.code == 0:
        assert "::" not in ref.stdout  # pacman really asked nothing, announced nothing
