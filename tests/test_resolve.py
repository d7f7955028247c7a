"""Resolver unit tests, and the twin fixtures (one root read by pacman and by us) they share
with test_resolve_oracle."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alpmd.engine.db.local import LocalDatabase
from alpmd.engine.depend import Depend
from alpmd.engine.formats.desc import PkgMeta, Reason
from alpmd.engine.handle import Handle, Options
from alpmd.engine.package import Origin, Package
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.repogen import write_sync_db


def P(name: str, version: str = "1.0-1", **fields: Any) -> PkgMeta:
    """A package's metadata with everything pacman insists on in a sync database."""
    fields.setdefault("arch", "any")
    fields.setdefault("filename", f"{name}-{version}-any.pkg.tar.zst")
    fields.setdefault("csize", 100)
    fields.setdefault("isize", 100)
    return PkgMeta(name, version, **fields)


def L(name: str, version: str = "1.0-1", *, dep: bool = False, **fields: Any) -> PkgMeta:
    """An installed package (reason DEPEND with ``dep=True``)."""
    fields.setdefault("arch", "any")
    return PkgMeta(name, version, reason=Reason.DEPEND if dep else Reason.EXPLICIT, **fields)


@dataclass
class World:
    """Sync repositories (in order) and installed packages, written to a root."""

    repos: dict[str, list[PkgMeta]] = field(default_factory=dict)
    local: list[PkgMeta] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)


def build(tmp: Path, world: World) -> tuple[PacmanRoot, Handle]:
    root = PacmanRoot(tmp / "root", options=dict(world.options))
    for name, metas in world.repos.items():
        db = write_sync_db(metas, tmp / "repos" / f"{name}.db")
        root.add_repo(name, db)
    ldb = LocalDatabase(str(root.dbpath) + "/", durable=False)
    for m in world.local:
        ldb.add(m, None)
    opts = Options(root=str(root.root), dbpath=str(root.dbpath), use_snapshots=False)
    for key, value in world.options.items():
        if key == "IgnorePkg":
            opts.ignorepkg = value.split()
        elif key == "IgnoreGroup":
            opts.ignoregroup = value.split()
        elif key == "HoldPkg":
            opts.holdpkg = value.split()
    handle = Handle(opts)
    for name in world.repos:
        handle.register_syncdb(name)
    return root, handle


_MISS = re.compile(r":: unable to satisfy dependency '([^']*)' required by (\S+)")
_BREAK = re.compile(r":: (?:removing|installing) (\S+)(?: \([^)]*\))? breaks dependency "
                    r"'([^']*)' required by (\S+)")


def pacman_misses(text: str) -> set[tuple[str, str]]:
    """(dependency, needed by) pairs pacman reports."""
    out = {(m.group(1), m.group(2)) for m in _MISS.finditer(text)}
    out |= {(m.group(2), m.group(3)) for m in _BREAK.finditer(text)}
    return out


def printed(stdout: str, fields: int) -> list[tuple[str, ...]]:
    """The ``--print-format`` lines of pacman's output."""
    out = []
    for line in stdout.splitlines():
        parts = tuple(line.split())
        if len(parts) == fields and not line.startswith((":", "warning", "error")):
            out.append(parts)
    return out


_PACKAGES = re.compile(r"^Packages \(\d+\)\s+(.*?)\n\n", re.S | re.M)


def packages_line(stdout: str) -> tuple[set[str], set[str]]:
    """From pacman's ``Packages (n) ...`` summary: names added and names removed."""
    m = _PACKAGES.search(stdout)
    if m is None:
        return set(), set()
    add: set[str] = set()
    rem: set[str] = set()
    items = m.group(1).split()
    for i, item in enumerate(items):
        if item == "[removal]":
            continue
        name = item.rsplit("-", 2)[0]
        if i + 1 < len(items) and items[i + 1] == "[removal]":
            rem.add(name)
        else:
            add.add(name)
    return add, rem


# pacman 6's question types (the --ask bitmask)
ASK_INSTALL_IGNORED = 1
ASK_REPLACE = 2
ASK_CONFLICT = 4
ASK_REMOVE_PKGS = 16
ASK_SELECT_PROVIDER = 32


# -- unit tests (no pacman needed) -------------------------------------------------------

import dataclasses  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from alpmd.engine.errors import AlpmError, ErrorCode  # noqa: E402
from alpmd.engine.events import (  # noqa: E402
    Event,
    Operation,
    Question,
    RemoveUnresolvable,
    ResolveDeps,
    SelectGroupMembers,
    SelectProvider,
    TransFlag,
    Warning_,
)
from alpmd.engine.resolve import (  # noqa: E402
    MissingDep,
    held_targets,
    resolve_remove,
    resolve_sync,
)


def _handle(tmp: Path, world: World) -> Handle:
    return build(tmp, world)[1]


def _names(pkgs: Sequence[object]) -> list[str]:
    return [p.name for p in pkgs]  # type: ignore[attr-defined]


def test_order_and_reasons(tmp_path: Path) -> None:
    w = World({"core": [P("app", "2.0-1", depends=["lib"]), P("lib", depends=["base"]),
                        P("base")]}, [L("app", dep=True)])
    h = _handle(tmp_path, w)
    events: list[Event] = []
    plan = resolve_sync(h, ["app"], event=events.append)
    assert _names(plan.add) == ["base", "lib", "app"]
    # an upgrade keeps the installed reason; pulled dependencies are DEPEND
    assert plan.reason == {"app": Reason.DEPEND, "lib": Reason.DEPEND, "base": Reason.DEPEND}
    assert plan.operation(plan.add[2], h.localdb) is Operation.UPGRADE
    assert plan.operation(plan.add[0], h.localdb) is Operation.INSTALL
    assert ResolveDeps() in events and ResolveDeps(done=True) in events
    forced = resolve_sync(h, ["app"], flags=TransFlag.ALLEXPLICIT)
    assert set(forced.reason.values()) == {Reason.EXPLICIT}


def test_new_target_is_explicit(tmp_path: Path) -> None:
    h = _handle(tmp_path, World({"core": [P("a", depends=["b"]), P("b")]}))
    plan = resolve_sync(h, ["a"])
    assert plan.reason == {"a": Reason.EXPLICIT, "b": Reason.DEPEND}
    assert resolve_sync(h, ["a"], flags=TransFlag.ALLDEPS).reason["a"] is Reason.DEPEND


def test_replacer_inherits_reason(tmp_path: Path) -> None:
    w = World({"core": [P("new", replaces=["old"], conflicts=["old"])]}, [L("old", dep=True)])
    plan = resolve_sync(_handle(tmp_path, w), [], sysupgrade=1)
    assert _names(plan.add) == ["new"] and _names(plan.remove) == ["old"]
    assert plan.reason["new"] is Reason.DEPEND
    assert _names(plan.replaces["new"]) == ["old"]


def test_missing_chain_names_the_path(tmp_path: Path) -> None:
    w = World({"core": [P("a", depends=["b"]), P("b", depends=["libmissing.so"])]})
    with pytest.raises(AlpmError) as err:
        resolve_sync(_handle(tmp_path, w), ["a"])
    assert err.value.code is ErrorCode.UNSATISFIED_DEPS
    first: MissingDep = err.value.details["missing"][0]
    assert (first.target, first.depend, first.chain) == ("b", "libmissing.so", ["a", "b"])
    assert first.path == "a -> b -> libmissing.so"
    assert "a -> b -> libmissing.so" in str(err.value)


def test_skip_unresolvable_target(tmp_path: Path) -> None:
    w = World({"core": [P("bad", depends=["nope"]), P("good")]})

    def yes(q: Question) -> object:
        return True if isinstance(q, RemoveUnresolvable) else q.default

    plan = resolve_sync(_handle(tmp_path, w), ["bad", "good"], question=yes)
    assert _names(plan.add) == ["good"]


def test_provider_question(tmp_path: Path) -> None:
    w = World({"core": [P("a", depends=["sh"]), P("bash", provides=["sh"]),
                        P("zsh", provides=["sh"])]})
    asked: list[SelectProvider] = []

    def second(q: Question) -> object:
        if isinstance(q, SelectProvider):
            asked.append(q)
            return 1
        return q.default

    plan = resolve_sync(_handle(tmp_path, w), ["a"], question=second)
    assert _names(plan.add) == ["zsh", "a"]
    assert asked[0].depend == "sh" and _names(asked[0].providers) == ["bash", "zsh"]


def test_group_selection(tmp_path: Path) -> None:
    w = World({"core": [P("g1", groups=["grp"]), P("g2", groups=["grp"])]})

    def pick(q: Question) -> object:
        return [1] if isinstance(q, SelectGroupMembers) else q.default

    assert _names(resolve_sync(_handle(tmp_path, w), ["grp"], question=pick).add) == ["g2"]


def test_warnings_as_pacman_words_them(tmp_path: Path) -> None:
    w = World({"core": [P("a", "2.0-1"), P("x", depends=["y"]), P("y", depends=["x"]),
                        P("u")]}, [L("a"), L("u")], options={"IgnorePkg": "a"})
    h = _handle(tmp_path, w)
    events: list[Event] = []
    plan = resolve_sync(h, ["x", "y", "u"], flags=TransFlag.NEEDED, sysupgrade=1,
                        event=events.append)
    assert "a: ignoring package upgrade (1.0-1 => 2.0-1)" in plan.warnings
    assert "u-1.0-1 is up to date -- skipping" in plan.warnings
    assert any(w.startswith("dependency cycle detected") for w in plan.warnings)
    assert Warning_(message=plan.warnings[0]) in events


def test_remove_reports_the_broken_dependency(tmp_path: Path) -> None:
    w = World({}, [L("lib"), L("app", depends=["lib"])], options={"HoldPkg": "li*"})
    h = _handle(tmp_path, w)
    with pytest.raises(AlpmError) as err:
        resolve_remove(h, ["lib"])
    assert "removing lib breaks dependency 'lib' required by app" in str(err.value)
    plan = resolve_remove(h, ["lib"], flags=TransFlag.CASCADE)
    assert _names(plan.remove) == ["app", "lib"]
    assert _names(held_targets(h, plan)) == ["lib"]
    assert plan.operation(plan.remove[0], h.localdb) is Operation.REMOVE


def test_target_not_found_lists_all(tmp_path: Path) -> None:
    with pytest.raises(AlpmError) as err:
        resolve_sync(_handle(tmp_path, World({"core": [P("a")]})), ["x", "a", "y"])
    assert err.value.code is ErrorCode.PKG_NOT_FOUND
    assert err.value.details["targets"] == ["x", "y"]


# -- the generated 15,000-package repository ---------------------------------------------


@dataclass
class Big:
    metas: list[PkgMeta]
    target: str
    victim: str      # the package deep in the target's tree that gets a missing library
    by_name: dict[str, PkgMeta]


def _deep_path(metas: Sequence[PkgMeta]) -> tuple[str, list[str]]:
    """A target and the longest first-choice dependency path from it (literal, else provider)."""
    by_name = {m.name: m for m in metas}
    providers: dict[str, list[str]] = {}
    for m in sorted(metas, key=lambda m: m.name):
        for p in m.provides:
            providers.setdefault(Depend.parse(p).name, []).append(m.name)

    def pick(dep: str) -> str | None:
        name = Depend.parse(dep).name
        if name in by_name:
            return name
        return (providers.get(name) or [None])[0]

    best: tuple[int, str, list[str]] = (0, "", [])
    for start in sorted(by_name)[::97]:
        parent: dict[str, str | None] = {start: None}
        queue = [start]
        for cur in queue:
            for d in by_name[cur].depends:
                nxt = pick(d)
                if nxt is not None and nxt not in parent:
                    parent[nxt] = cur
                    queue.append(nxt)
        last = queue[-1]
        path = [last]
        while (p := parent[path[-1]]) is not None:
            path.append(p)
        if len(path) > best[0]:
            best = (len(path), start, path[::-1])
    return best[1], best[2]


@pytest.fixture(scope="module")
def big() -> Iterator[Big]:
    from alpmd.testing.repogen import generate_repo

    metas = generate_repo(1, 15000)
    target, path = _deep_path(metas)
    victim = path[-1]
    metas = [dataclasses.replace(m, depends=[*m.depends, "libinjected-missing.so=3-64"])
             if m.name == victim else m for m in metas]
    yield Big(metas, target, victim, {m.name: m for m in metas})


def test_unsatisfiable_deep_in_15000_fails_with_chain(tmp_path: Path, big: Big) -> None:
    h = _handle(tmp_path, World({"extra": big.metas}))
    t0 = time.perf_counter()
    with pytest.raises(AlpmError) as err:
        resolve_sync(h, [big.target])
    elapsed = time.perf_counter() - t0
    assert err.value.code is ErrorCode.UNSATISFIED_DEPS
    missing: list[MissingDep] = err.value.details["missing"]
    leaf = next(m for m in missing if m.depend == "libinjected-missing.so=3-64")
    assert leaf.target == big.victim
    assert leaf.chain[0] == big.target and leaf.chain[-1] == big.victim
    for a, b in zip(leaf.chain, leaf.chain[1:], strict=False):
        deps = [Depend.parse(d) for d in big.by_name[a].depends]
        assert any(d.satisfied_by(_meta_pkg(big.by_name[b])) for d in deps), (a, b)
    assert leaf.path.endswith(f"{big.victim} -> libinjected-missing.so=3-64")
    print(f"unsatisfiable on 15,000 packages: {elapsed:.3f} s, chain {leaf.path}")


def _meta_pkg(m: PkgMeta) -> Package:
    return Package(m.name, m.version, Origin.SYNCDB, meta=m)
