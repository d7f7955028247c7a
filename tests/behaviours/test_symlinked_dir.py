"""Removing a package whose directory the administrator replaced with a symlink.

libalpm removes the package's files through the symlink (they are reached by
their paths) and then unlinks the symlink itself, which is no longer a directory:
it never follows it to remove the directory it points to. Twin roots compare
exit code, output, every file (links as links), the database and the log.

One deliberate difference, checked separately: a symlink leading out of the
root. pacman deletes the package's files there; alpm refuses (an error per
file) and touches nothing outside the root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from alpmd.testing.oracle import PACMAN
from tests.behaviours.twin import ALPM, Case, run_case, run_tool
from tests.trans.harness import Pkg, Scenario, build_all, setup_twins, snapshot

pytestmark = pytest.mark.oracle

PKGS = [
    Pkg("dl", files={"usr/share/dl/f": "f\n", "usr/share/dl/sub/x": "x\n"}),
    Pkg("dl2", files={"usr/share/dl/g": "g\n"}),
    Pkg("dl", "2.0-1", files={"usr/share/dl/f": "f2\n", "usr/share/dl/sub/y": "y\n"}),
    Pkg("other", files={"usr/share/other/o": "o\n"}),
]
DL = "usr/share/dl"


def _move(dirname: str, target: str, *, keep: bool = True,
          extra: dict[str, str] | None = None) -> Callable[[Path], None]:
    """Replace ``dirname`` by a symlink to ``target`` (its content moved there if ``keep``)."""
    def prep(root: Path) -> None:
        d = root / dirname
        dest = (d.parent / target) if not target.startswith("/") else root / target[1:]
        if keep:
            shutil.move(str(d), str(dest))
        else:
            shutil.rmtree(d)
        for name, text in (extra or {}).items():
            (dest / name).write_text(text)
        os.symlink(target, d)
    return prep


def _case(name: str, prep: Callable[[Path], None], cmd: list[str] | None = None,
          local: list[str] | None = None) -> Case:
    sc = Scenario(name, cmd or ["-R", "dl"], local=local or ["dl-1.0-1"], prep=prep)
    return Case(sc, 0)


CASES = [
    _case("moved-beside", _move(DL, "dl.real")),
    _case("moved-with-admin-files", _move(DL, "dl.real", extra={"mine": "admin\n"})),
    # an absolute target is the host's path (nothing there): only the link goes
    _case("absolute-missing", _move(DL, "/srv/dl")),
    _case("to-other-package", lambda r: (shutil.rmtree(r / DL), os.symlink("other", r / DL)),
          local=["dl-1.0-1", "other-1.0-1"]),
    _case("dangling", _move(DL, "gone", keep=False)),
    _case("nested", _move(DL + "/sub", "../sub.real")),
    _case("shared-dir", _move(DL, "dl.real"), ["-R", "dl"], local=["dl-1.0-1", "dl2-1.0-1"]),
    _case("both-owners", _move(DL, "dl.real"), ["-R", "dl", "dl2"],
          local=["dl-1.0-1", "dl2-1.0-1"]),
    _case("upgrade", _move(DL, "dl.real"), ["-U", "@dl-2.0-1"]),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(PKGS, tmp_path_factory.mktemp("pkgs"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_symlinked_dir_matches_pacman(tmp_path: Path, case: Case,
                                      built: dict[str, Path]) -> None:
    run_case(tmp_path, case, built)


def test_symlink_out_of_the_root_is_not_followed(tmp_path: Path,
                                                 built: dict[str, Path]) -> None:
    """pacman deletes through a symlink leading out of the root; alpm does not."""
    outside = {}
    for side in ("a", "b"):
        out = tmp_path / f"outside-{side}"
        out.mkdir()
        (out / "f").write_text("not the package's\n")
        (out / "sub").mkdir()
        (out / "sub/x").write_text("x\n")
        outside[side] = out

    def prep(root: Path) -> None:
        shutil.rmtree(root / DL)
        os.symlink(str(outside["a"]), root / DL)

    sc = Scenario("outside", ["-R", "dl"], local=["dl-1.0-1"], prep=prep)
    a, b, _ = setup_twins(tmp_path / "roots", sc, built)
    os.unlink(b.root / DL)
    os.symlink(str(outside["b"]), b.root / DL)
    ref = run_tool(PACMAN, a, ["-R", "dl"], None)
    ours = run_tool(ALPM, b, ["-R", "dl"], None)
    assert ref.code == 0 and ours.code == 0
    # pacman followed it: the files out there are gone.
    assert not (outside["a"] / "f").exists() and not (outside["a"] / "sub").exists()
    # alpm left them, said so, and otherwise ended where pacman did.
    assert sorted(p.name for p in outside["b"].rglob("*")) == ["f", "sub", "x"]
    assert "resolves outside the root" in ours.stderr
    want, got = snapshot(a.root), snapshot(b.root)
    assert got["db"] == want["db"] and got["fs"] == want["fs"]
    assert not os.path.lexists(b.root / DL)
