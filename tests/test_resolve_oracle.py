"""Our resolver against Debian's pacman 6 on the same roots.

Print mode (``-Sp``/``-Rp``) gives pacman's plan in order; pacman's print mode
skips conflict checks (it sets NOCONFLICTS), so conflict and replace scenarios
read the ``Packages (n)`` summary of a real ``-S --noconfirm`` run instead
(which then fails to download: there are no package files).  ``--ask N``
inverts the default answer of the question kinds in the bitmask; our
question callback does exactly the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_resolve import (
    ASK_CONFLICT,
    ASK_INSTALL_IGNORED,
    ASK_REMOVE_PKGS,
    ASK_REPLACE,
    L,
    P,
    World,
    build,
    packages_line,
    pacman_misses,
    printed,
)

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import (
    ConflictPackage,
    InstallIgnored,
    Question,
    RemoveUnresolvable,
    ReplacePackage,
    TransFlag,
)
from alpmd.engine.resolve import Plan, resolve_remove, resolve_sync

pytestmark = pytest.mark.oracle

_BITS: dict[type, int] = {InstallIgnored: ASK_INSTALL_IGNORED, ReplacePackage: ASK_REPLACE,
                          ConflictPackage: ASK_CONFLICT, RemoveUnresolvable: ASK_REMOVE_PKGS}


def asker(ask: int) -> Callable[[Question], object]:
    """pacman's --noconfirm answers, with the kinds in ``ask`` inverted as --ask does."""
    def cb(q: Question) -> object:
        bit = _BITS.get(type(q))
        if bit is not None and ask & bit:
            return not q.default
        return q.default
    return cb


@dataclass
class Case:
    id: str
    world: World
    targets: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)   # pacman's extra flags
    flags: TransFlag = TransFlag.NONE               # the same flags for us
    sysupgrade: int = 0
    ask: int = 0
    assume: list[str] = field(default_factory=list)


def _ours_sync(handle: object, case: Case, extra: TransFlag) -> Plan:
    from alpmd.engine.handle import Handle
    assert isinstance(handle, Handle)
    handle.options.assume_installed = list(case.assume)
    return resolve_sync(handle, case.targets, flags=case.flags | extra,
                        sysupgrade=case.sysupgrade, question=asker(case.ask))


def _misses(exc: AlpmError) -> set[tuple[str, str]]:
    return {(m.depend, m.target) for m in exc.details.get("missing", [])}


def _pacman_args(case: Case) -> list[str]:
    args = list(case.args)
    for a in case.assume:
        args += ["--assume-installed", a]
    if case.ask:
        args += ["--ask", str(case.ask)]
    return args


def check_print(tmp: Path, case: Case) -> None:
    root, handle = build(tmp, case.world)
    op = "-S" + "u" * case.sysupgrade
    res = root.pacman(op, "-p", "--print-format", "%n %v %r", *_pacman_args(case),
                      *case.targets)
    try:
        plan = _ours_sync(handle, case, TransFlag.NOCONFLICTS)
    except AlpmError as exc:
        assert res.returncode != 0, (exc, res.stdout, res.stderr)
        text = res.stdout + res.stderr
        if exc.code is ErrorCode.PKG_NOT_FOUND:
            assert "target not found" in text or "database not found" in text
        else:
            assert exc.code is ErrorCode.UNSATISFIED_DEPS
            assert _misses(exc) == pacman_misses(text), text
        return
    assert res.returncode == 0, (res.stdout, res.stderr, plan)
    ours = [(p.name, p.version, p.db.name if p.db is not None else "") for p in plan.add]
    assert ours == printed(res.stdout, 3), res.stderr


def check_real(tmp: Path, case: Case) -> None:
    """A real -S run (conflicts and replaces): the summary's sets, or the error."""
    root, handle = build(tmp, case.world)
    op = "-S" + "u" * case.sysupgrade
    res = root.pacman(op, *_pacman_args(case), *case.targets)
    text = res.stdout + res.stderr
    try:
        plan = _ours_sync(handle, case, TransFlag.NONE)
    except AlpmError as exc:
        assert "failed to prepare transaction" in text, (exc, text)
        if exc.code is ErrorCode.CONFLICTING_DEPS:
            assert "conflicting dependencies" in text
            c = exc.details["conflicts"][0]
            assert f":: {c.pkg1} and {c.pkg2} are in conflict" in text
        else:
            assert exc.code is ErrorCode.UNSATISFIED_DEPS, exc
            assert _misses(exc) == pacman_misses(text), text
        return
    assert "failed to prepare transaction" not in text, (text, plan)
    add, rem = packages_line(res.stdout)
    assert {p.name for p in plan.add} == add, text
    assert {p.name for p in plan.remove} == rem, text


def check_remove(tmp: Path, case: Case) -> None:
    root, handle = build(tmp, case.world)
    res = root.pacman("-R", "-p", "--print-format", "%n %v", *_pacman_args(case),
                      *case.targets)
    handle.options.assume_installed = list(case.assume)
    try:
        plan = resolve_remove(handle, case.targets, flags=case.flags)
    except AlpmError as exc:
        assert res.returncode != 0, (exc, res.stdout)
        text = res.stdout + res.stderr
        if exc.code is ErrorCode.PKG_NOT_FOUND:
            assert "target not found" in text
        else:
            assert exc.code is ErrorCode.UNSATISFIED_DEPS
            assert {(m.depend, m.target) for m in exc.details["missing"]} \
                == pacman_misses(text), text
        return
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert [(p.name, p.version) for p in plan.remove] == printed(res.stdout, 2)


# -- scenarios --------------------------------------------------------------------------

CHAIN = [P("a", depends=["b"]), P("b", depends=["c>=2"]), P("c", "2.1-1"),
         P("top", depends=["a", "libx.so"]), P("libx", provides=["libx.so=1-64"])]

PRINT_CASES: list[Case] = [
    Case("plain-chain", World({"core": CHAIN}), ["top"]),
    Case("two-targets-shared", World({"core": CHAIN}), ["a", "top"]),
    Case("versioned-unsat", World({"core": [P("a", depends=["c>=3"]), P("c", "2.1-1")]}), ["a"]),
    Case("versioned-local-ok", World({"core": [P("a", depends=["c>=2"])]}, [L("c", "2.5-1")]),
         ["a"]),
    Case("versioned-local-too-old", World({"core": [P("a", depends=["c>=2"]), P("c", "2.5-1")]},
                                          [L("c", "1.5-1")]), ["a"]),
    Case("missing-deep", World({"core": [P("a", depends=["b"]), P("b", depends=["m"]),
                                         P("m", depends=["libmissing.so"])]}), ["a"]),
    Case("missing-two-paths", World({"core": [P("a", depends=["b", "c"]),
                                              P("b", depends=["d"]), P("c", depends=["d"]),
                                              P("d", depends=["nope"])]}), ["a"]),
    Case("not-found", World({"core": CHAIN}), ["nosuch"]),
    Case("not-found-and-found", World({"core": CHAIN}), ["a", "nosuch"]),
    Case("provider-single", World({"core": [P("a", depends=["sh"]),
                                            P("bash", provides=["sh"])]}), ["a"]),
    Case("provider-literal-wins", World({"core": [P("a", depends=["sh"]), P("sh"),
                                                  P("bash", provides=["sh"])]}), ["a"]),
    Case("provider-first-of-many", World({"core": [P("a", depends=["sh"]),
                                                   P("zsh", provides=["sh"]),
                                                   P("bash", provides=["sh"])]}), ["a"]),
    Case("provider-installed-wins", World({"core": [P("a", depends=["cc"]),
                                                    P("clang", provides=["cc"]),
                                                    P("gcc", provides=["cc"])]},
                                          [L("gcc", "0.9-1")]), ["a"]),
    Case("provider-repo-order", World({"core": [P("a", depends=["sh"]),
                                                P("zsh", provides=["sh"])],
                                       "extra": [P("bash", provides=["sh"])]}), ["a"]),
    Case("provider-versioned", World({"core": [P("a", depends=["sh>=2"]),
                                               P("bash", provides=["sh=1"]),
                                               P("zsh", provides=["sh=3"])]}), ["a"]),
    Case("provider-unversioned-not-enough", World({"core": [P("a", depends=["sh>=2"]),
                                                            P("bash", provides=["sh"])]}),
         ["a"]),
    Case("target-by-provision", World({"core": [P("bash", provides=["sh"])]}), ["sh"]),
    Case("repo-slash-name", World({"core": [P("a", "1.0-1")], "extra": [P("a", "2.0-1")]}),
         ["extra/a"]),
    Case("repo-order-first", World({"core": [P("a", "1.0-1")], "extra": [P("a", "2.0-1")]}),
         ["a"]),
    Case("repo-unknown", World({"core": [P("a")]}), ["nope/a"]),
    Case("group", World({"core": [P("g1", groups=["grp"]), P("g2", groups=["grp"],
                                                                  depends=["d"]), P("d")]}),
         ["grp"]),
    Case("group-needed", World({"core": [P("g1", groups=["grp"]), P("g2", groups=["grp"])]},
                               [L("g1")]), ["grp"], ["--needed"], TransFlag.NEEDED),
    Case("needed-skip", World({"core": CHAIN}, [L("a")]), ["a", "c"], ["--needed"],
         TransFlag.NEEDED),
    Case("reinstall", World({"core": CHAIN}, [L("a", depends=["b"]), L("b", depends=["c"]),
                                              L("c", "2.1-1")]), ["a"]),
    Case("dup-target", World({"core": CHAIN}), ["a", "a", "b"]),
    Case("cycle", World({"core": [P("x", depends=["y"]), P("y", depends=["z"]),
                                  P("z", depends=["x"])]}), ["x"]),
    Case("cycle-two-targets", World({"core": [P("x", depends=["y"]), P("y", depends=["x"])]}),
         ["y", "x"]),
    Case("order-dependents", World({"core": [P("app", depends=["lib2"]),
                                             P("lib2", depends=["lib1"]), P("lib1")]}),
         ["lib1", "app", "lib2"]),
    Case("ignored-target", World({"core": CHAIN}, options={"IgnorePkg": "c"}), ["c"]),
    Case("ignored-dependency", World({"core": CHAIN}, options={"IgnorePkg": "c"}), ["a"]),
    Case("ignored-group-glob", World({"core": [P("g1", groups=["grp"]),
                                               P("g2", groups=["grp"])]},
                                     options={"IgnoreGroup": "gr*"}), ["grp"]),
    Case("nodepversion", World({"core": [P("a", depends=["c>=3"]), P("c", "2.1-1")]}), ["a"],
         ["-d"], TransFlag.NODEPVERSION),
    Case("nodeps", World({"core": CHAIN}), ["top"], ["-dd"], TransFlag.NODEPS),
    Case("assume-installed", World({"core": [P("a", depends=["libmissing.so>=1"])]}), ["a"],
         assume=["libmissing.so=2"]),
    Case("assume-installed-wrong-version", World({"core": [P("a",
                                                             depends=["libm.so>=3"])]}),
         ["a"], assume=["libm.so=2"]),
    Case("sysupgrade", World({"core": [P("a", "2.0-1", depends=["b>=2"]), P("b", "2.0-1"),
                                       P("c", "1.0-1")]},
                             [L("a", depends=["b"]), L("b", dep=True), L("c"), L("lone")]),
         sysupgrade=1),
    Case("sysupgrade-pulls-new-dep", World({"core": [P("a", "2.0-1", depends=["n"]), P("n")]},
                                           [L("a")]), sysupgrade=1),
    Case("sysupgrade-ignored", World({"core": [P("a", "2.0-1"), P("b", "2.0-1")]},
                                     [L("a"), L("b")], options={"IgnorePkg": "a"}),
         sysupgrade=1),
    Case("sysupgrade-local-newer", World({"core": [P("a", "1.0-1"), P("b", "2.0-1")]},
                                         [L("a", "3.0-1"), L("b")]), sysupgrade=1),
    Case("sysupgrade-downgrade", World({"core": [P("a", "1.0-1"), P("b", "2.0-1")]},
                                       [L("a", "3.0-1"), L("b")]), sysupgrade=2),
    Case("sysupgrade-plus-target", World({"core": [P("a", "2.0-1"), P("t", depends=["a>=2"])]},
                                         [L("a")]), ["t"], sysupgrade=1),
    Case("sysupgrade-usage-first-repo", World({"core": [P("a", "2.0-1")],
                                               "extra": [P("a", "3.0-1")]}, [L("a")]),
         sysupgrade=1),
    Case("sysupgrade-upgrade-breaks", World({"core": [P("lib", "2.0-1")]},
                                            [L("lib"), L("app", depends=["lib<2"])]),
         sysupgrade=1),
]

REAL_CASES: list[Case] = [
    # print mode answers every ignore question with yes: refusing needs a real run
    Case("ignored-target-refused", World({"core": CHAIN}, options={"IgnorePkg": "c"}),
         ["c", "b"], ask=ASK_INSTALL_IGNORED),
    Case("ignored-target-accepted", World({"core": CHAIN}, options={"IgnorePkg": "c"}),
         ["c", "b"]),
    Case("conflict-default-no", World({"core": [P("x", conflicts=["d"])]}, [L("d")]), ["x"]),
    Case("conflict-yes", World({"core": [P("x", conflicts=["d"])]}, [L("d")]), ["x"],
         ask=ASK_CONFLICT),
    Case("conflict-yes-breaks", World({"core": [P("x", conflicts=["d"])]},
                                      [L("d"), L("y", depends=["d"])]), ["x"], ask=ASK_CONFLICT),
    Case("conflict-yes-provides", World({"core": [P("x", conflicts=["d"], provides=["d"])]},
                                        [L("d"), L("y", depends=["d"])]), ["x"],
         ask=ASK_CONFLICT),
    Case("conflict-by-installed", World({"core": [P("x")]}, [L("d", conflicts=["x"])]), ["x"],
         ask=ASK_CONFLICT),
    Case("inner-conflict-provides", World({"core": [P("x", conflicts=["y"], provides=["y"]),
                                                    P("y")]}), ["x", "y"]),
    Case("inner-conflict-fatal", World({"core": [P("x", conflicts=["y"]), P("y")]}),
         ["x", "y"]),
    Case("replace-yes", World({"core": [P("n", replaces=["d"], conflicts=["d"],
                                          provides=["d"])]},
                              [L("d"), L("y", depends=["d"])]), sysupgrade=1),
    Case("replace-no", World({"core": [P("d", "2.0-1"), P("n", replaces=["d"], conflicts=["d"],
                                                           provides=["d"])]}, [L("d")]),
         sysupgrade=1, ask=ASK_REPLACE),
    Case("replace-two-by-one", World({"core": [P("n", replaces=["d", "e"],
                                                 conflicts=["d", "e"])]},
                                     [L("d"), L("e")]), sysupgrade=1),
    Case("replace-ignored", World({"core": [P("n", replaces=["d"], conflicts=["d"])]},
                                  [L("d")], options={"IgnorePkg": "n"}), sysupgrade=1),
    Case("replace-versioned-miss", World({"core": [P("n", replaces=["d<1"])]}, [L("d")]),
         sysupgrade=1),
]

_R = World({}, [L("app", depends=["lib", "tool"]), L("lib", dep=True, depends=["base"]),
                L("tool", depends=["base"]), L("base", dep=True), L("other", depends=["lib"]),
                L("orphan", dep=True), L("opt", dep=True, depends=["orphan"]),
                L("g1", groups=["grp"]), L("g2", groups=["grp"], dep=True)])

REMOVE_CASES: list[Case] = [
    Case("remove-leaf", _R, ["app"]),
    Case("remove-breaks", _R, ["lib"]),
    Case("remove-cascade", _R, ["lib"], ["-c"], TransFlag.CASCADE),
    Case("remove-recursive", _R, ["app"], ["-s"], TransFlag.RECURSE),
    Case("remove-recursive-all", _R, ["app"], ["-ss"], TransFlag.RECURSE | TransFlag.RECURSEALL),
    Case("remove-recursive-two", _R, ["app", "other"], ["-s"], TransFlag.RECURSE),
    Case("remove-cascade-recursive", _R, ["base"], ["-cs"], TransFlag.CASCADE | TransFlag.RECURSE),
    Case("remove-unneeded", _R, ["lib", "opt", "app"], ["-u"], TransFlag.UNNEEDED),
    Case("remove-nodeps", _R, ["lib"], ["-dd"], TransFlag.NODEPS),
    Case("remove-nodepversion", World({}, [L("a", depends=["b>=9"]), L("b")]), ["b"], ["-d"],
         TransFlag.NODEPVERSION),
    Case("remove-group", _R, ["grp"]),
    Case("remove-local-prefix", _R, ["local/orphan"]),
    Case("remove-not-found", _R, ["nosuch"]),
    Case("remove-order", _R, ["base", "app", "lib", "tool", "other"]),
    Case("remove-provider-breaks", World({}, [L("a", depends=["sh"]), L("bash", provides=["sh"]),
                                              L("zsh", provides=["sh"])]), ["bash"]),
    Case("remove-assume", World({}, [L("a", depends=["b"]), L("b")]), ["b"], assume=["b"]),
]


@pytest.mark.parametrize("case", PRINT_CASES, ids=lambda c: c.id)
def test_sync_print(tmp_path: Path, case: Case) -> None:
    check_print(tmp_path, case)


@pytest.mark.parametrize("case", REAL_CASES, ids=lambda c: c.id)
def test_sync_conflicts_replaces(tmp_path: Path, case: Case) -> None:
    check_real(tmp_path, case)


@pytest.mark.parametrize("case", REMOVE_CASES, ids=lambda c: c.id)
def test_remove_print(tmp_path: Path, case: Case) -> None:
    check_remove(tmp_path, case)




def test_sysupgrade_300_of_1500_matches_pacman(tmp_path: Path) -> None:
    """The generated 15,000-package repository, 1,500 installed, 300 outdated: same plan."""
    from alpmd.engine.handle import Handle, Options
    from alpmd.testing.oracle import PacmanRoot
    from alpmd.testing.repogen import generate_repo, make_local_db, write_sync_db

    metas = generate_repo(1, 15000)
    root = PacmanRoot(tmp_path / "root")
    root.add_repo("extra", write_sync_db(metas, tmp_path / "extra.db"))
    make_local_db(root.dbpath, metas, installed=1500, outdated=300, with_files=False)
    res = root.pacman("-Sup", "--print-format", "%n %v %r")
    assert res.returncode == 0, res.stderr
    handle = Handle(Options(root=str(root.root), dbpath=str(root.dbpath), use_snapshots=False))
    handle.register_syncdb("extra")
    plan = resolve_sync(handle, [], sysupgrade=1, flags=TransFlag.NOCONFLICTS)
    theirs = printed(res.stdout, 3)
    assert len(theirs) == 300
    assert [(p.name, p.version, "extra") for p in plan.add] == theirs
