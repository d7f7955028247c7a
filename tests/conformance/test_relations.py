"""Odd relation strings and sizes in hand-written ``.PKGINFO`` files (Python's ``tarfile``):
``pacman -U`` and ``alpm -U`` on twin roots print the same and leave the same roots.

pacman's exit code and the line the case is about are asserted first: two failures
are not agreement.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alpmd.testing.oracle import PACMAN, PacmanRoot
from tests.behaviours.twin import ALPM, Run, run_tool
from tests.conformance.corpus import Entry, twins, write_archive
from tests.trans.harness import snapshot

pytestmark = pytest.mark.oracle


def _package(out: Path, name: str, version: str = "1.0-1", extra: str = "") -> Path:
    info = f"pkgname = {name}\npkgver = {version}\n{extra}"
    return write_archive([Entry(".PKGINFO", data=info.encode()),
                          Entry("usr/", "dir", mode=0o755),
                          Entry(f"usr/{name}", data=f"{version}\n".encode())],
                         "py-pax", "zst", out / f"{name}-{version}-any.pkg.tar.zst", out)


def _both(a: PacmanRoot, b: PacmanRoot, args: list[str], code: int,
          stdin: str | None = None) -> Run:
    """pacman on ``a`` (its exit code asserted), alpm on ``b``: same output, same roots."""
    ref = run_tool(PACMAN, a, args, stdin)
    assert ref.code == code, ref
    ours = run_tool(ALPM, b, args, stdin)
    assert (ours.code, ours.stdout, ours.stderr) == (ref.code, ref.stdout, ref.stderr)
    want, got = snapshot(a.root), snapshot(b.root)
    for part in ("db", "fs", "log"):
        assert got[part] == want[part], part
    return ref


#: conflict string -> what pacman's question and final line say about it
CONFLICTS = {
    "foo": ("(foo). Remove fooprov?", "are in conflict\n"),
    "fooprov": ("are in conflict. Remove fooprov?", "are in conflict\n"),
    "fooprov<2": ("are in conflict. Remove fooprov?", "are in conflict (fooprov<2)\n"),
    "foo>1": ("(foo). Remove fooprov?", "are in conflict (foo>1)\n"),
    "foo: a description": ("(foo). Remove fooprov?", "are in conflict\n"),
    "foo<>1": ("(foo). Remove fooprov?", "are in conflict (foo<>1)\n"),
}


@pytest.mark.parametrize("conflict", CONFLICTS)
def test_conflict_messages_like_pacman(tmp_path: Path, conflict: str) -> None:
    """pacman's question names the conflict's package name only, and its final line
    gives the reason only when it is versioned; libalpm logs the refusal as an error."""
    a, b = twins(tmp_path)
    done = a.pacman("-U", str(_package(tmp_path, "fooprov", extra="provides = foo=1.5-1\n")))
    assert done.returncode == 0, done
    b.pacman("-U", str(tmp_path / "fooprov-1.0-1-any.pkg.tar.zst"), check=True)
    pkg = _package(tmp_path, "c", extra=f"conflict = {conflict}\n")
    question, final = CONFLICTS[conflict]
    ref = _both(a, b, ["-U", str(pkg)], 1)
    assert question in ref.stdout and f":: c and fooprov {final}" in ref.stdout, ref.stdout
    assert "error: unresolvable package conflicts detected\n" in ref.stderr


def test_conflict_between_targets_like_pacman(tmp_path: Path) -> None:
    a, b = twins(tmp_path)
    one = _package(tmp_path, "one", extra="conflict = two\n")
    two = _package(tmp_path, "two")
    ref = _both(a, b, ["-U", str(one), str(two)], 1)
    assert "error: unresolvable package conflicts detected\n" in ref.stderr


def _no_install_date(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("Install Date")]


#: relation strings libalpm reads with an empty package name
EMPTY_NAMES = ("=1", ": x", ">=2: why")


@pytest.mark.parametrize("text", EMPTY_NAMES)
@pytest.mark.parametrize("key", ["conflict", "provides", "replaces", "optdepend"])
def test_relation_without_a_name_is_kept(tmp_path: Path, key: str, text: str) -> None:
    """It names no package: pacman 6.0.2 installs the package, as alpm does."""
    a, b = twins(tmp_path)
    ref = _both(a, b, ["-U", str(_package(tmp_path, "p", extra=f"{key} = {text}\n"))], 0)
    assert "installing p..." in ref.stdout
    shown = [run_tool(tool, root, ["-Qi", "p"], None) for tool, root in ((PACMAN, a), (ALPM, b))]
    assert shown[0].code == 0 and text in shown[0].stdout, shown[0]
    # (the install dates may be a second apart)
    assert [(r.code, _no_install_date(r.stdout), r.stderr) for r in shown] == [
        (0, _no_install_date(shown[0].stdout), "")] * 2


@pytest.mark.parametrize("text", EMPTY_NAMES)
def test_dependency_without_a_name_cannot_be_met(tmp_path: Path, text: str) -> None:
    a, b = twins(tmp_path)
    ref = _both(a, b, ["-U", str(_package(tmp_path, "p", extra=f"depend = {text}\n"))], 1)
    assert f"warning: cannot resolve \"{text}\", a dependency of \"p\"" in ref.stderr


#: (old size, new size): which size lines pacman prints for an upgrade, then a removal
SIZES = {
    (None, None): ([], []),
    (None, 2048): (["Total Installed Size"], []),
    (2048, None): (["Total Removed Size"], ["Total Removed Size"]),
    (2048, 4096): (["Total Installed Size", "Net Upgrade Size"], ["Total Removed Size"]),
    (-5, 100): (["Total Installed Size"], []),
}


@pytest.mark.parametrize("old, new", SIZES)
def test_size_lines_like_pacman(tmp_path: Path, old: int | None, new: int | None) -> None:
    """A size line only for a size there is: packages without ``size`` add none."""
    a, b = twins(tmp_path)

    def sized(version: str, size: int | None) -> Path:
        return _package(tmp_path, "s", version, "" if size is None else f"size = {size}\n")

    first = sized("1.0-1", old)
    for root in (a, b):
        assert root.pacman("-U", str(first)).returncode == 0
    upgrade, removal = SIZES[(old, new)]
    for args, lines in ((["-U", "--confirm", str(sized("2.0-1", new))], upgrade),
                        (["-R", "--confirm", "s"], removal)):
        ref = _both(a, b, args, 1, stdin="n\n")
        shown = [line.split(":")[0] for line in ref.stdout.splitlines() if "Size:" in line]
        assert shown == lines, ref.stdout


def test_nameless_conflict_meets_nameless_provision(tmp_path: Path) -> None:
    """libalpm compares names as they are: a conflict ``: x`` meets a provision ``=1``
    (both name nothing), and a dependency ``>=0`` is met by it."""
    a, b = twins(tmp_path)
    provider = _package(tmp_path, "pa", extra="provides = =1\n")
    for root in (a, b):
        assert root.pacman("-U", str(provider)).returncode == 0
    ref = _both(a, b, ["-U", str(_package(tmp_path, "pb", extra="conflict = : x\n"))], 1)
    assert ":: pb and pa are in conflict (). Remove pa? [y/N] " in ref.stdout.splitlines()
    ref = _both(a, b, ["-U", str(_package(tmp_path, "pc", extra="depend = >=0\n"))], 0)
    assert "installing pc..." in ref.stdout


def test_the_daemon_asks_the_conflict_question_as_the_command_line() -> None:
    """The daemon's QuestionAsked text names what pacman's question names (the conflict's
    package name, only when it is news): the rule is the event's, not each front end's."""
    from alpmd.dbus.transaction import describe
    from alpmd.engine import events as ev
    from alpmd.engine.package import Origin, Package

    new, old = Package("foo", "2.0-1", Origin.SYNCDB), Package("bar", "1.0-1", Origin.LOCALDB)
    asked = {reason: describe(ev.ConflictPackage(new=new, old=old, reason=reason))[0]
             for reason in ("", "bar", "bar<2", "baz>=1: a description", ": x")}
    assert asked == {
        "": "foo-2.0-1 and bar-1.0-1 are in conflict. Remove bar-1.0-1?",
        "bar": "foo-2.0-1 and bar-1.0-1 are in conflict. Remove bar-1.0-1?",
        "bar<2": "foo-2.0-1 and bar-1.0-1 are in conflict. Remove bar-1.0-1?",
        "baz>=1: a description": "foo-2.0-1 and bar-1.0-1 are in conflict (baz). Remove bar-1.0-1?",
        ": x": "foo-2.0-1 and bar-1.0-1 are in conflict (). Remove bar-1.0-1?"}, asked
