"""The engine's use cases, once: targets, query scopes (against pacman -Q's filters) and
the configuration files pacman leaves to merge (.pacnew/.pacsave), on the demo root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alpmd.engine.config import load_config
from alpmd.engine.depend import DepMod
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle
from alpmd.engine.leftovers import ConfigLeftover, config_leftovers
from alpmd.engine.query import Scope, installed, parse_scope
from alpmd.engine.target import find_package, parse_target, split_repo
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package
from alpmd.testing.sandbox import build_demo


def test_targets_parse_as_pacman_reads_them() -> None:
    assert split_repo("core/bash") == ("core", "bash")
    assert split_repo("bash") == (None, "bash")
    assert split_repo("/bash") == ("", "bash")
    t = parse_target("extra/python>=3.10")
    assert (t.repo, t.name, t.depend.mod, t.depend.version) == ("extra", "python", DepMod.GE,
                                                                "3.10")
    assert parse_target("sh").depend.version is None
    for bad in ("", "core/", "core/>=1"):
        with pytest.raises(AlpmError) as err:
            parse_target(bad)
        assert err.value.code is ErrorCode.PKG_INVALID_NAME


def _conf(root: Path, name: str, version: str, text: str) -> Path:
    return build_package(root / "pkgs" / version, PkgMeta(name, version),
                         [FileSpec("etc/site.conf", text.encode())], backup=["etc/site.conf"],
                         compression="gz")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PacmanRoot]:
    top = tmp_path_factory.mktemp("uc")
    root = build_demo(top / "sandbox")
    # a foreign package whose backup file was edited, then upgraded: pacman leaves a .pacnew
    r = root.pacman("-U", str(_conf(top, "site-conf", "1-1", "a = 1\n")))
    assert r.returncode == 0, r.stderr
    (root.root / "etc/site.conf").write_text("a = 1 # mine\n")
    r = root.pacman("-U", str(_conf(top, "site-conf", "2-1", "a = 2\n")))
    assert r.returncode == 0, r.stderr
    yield root


def _handle(root: PacmanRoot) -> Handle:
    h, _ = Handle.from_config(load_config(str(root.config)))
    return h


@pytest.mark.oracle
@pytest.mark.parametrize("flags", ["", "e", "d", "t", "tt", "dt", "dtt", "m", "n", "u",
                                   "eu", "et"])
def test_scopes_match_pacman_query_filters(demo: PacmanRoot, flags: str) -> None:
    bits = {"e": Scope.EXPLICIT, "d": Scope.DEPENDENCIES, "t": Scope.UNREQUIRED,
            "m": Scope.FOREIGN, "n": Scope.NATIVE, "u": Scope.UPGRADABLE}
    scope = Scope.INSTALLED
    for f in flags:
        scope |= bits[f]
    r = demo.pacman("-Qq" + flags)
    assert r.returncode in (0, 1), r.stderr
    want = r.stdout.split()
    h = _handle(demo)
    try:
        got = [p.name for p in installed(h, scope, unrequired_level=flags.count("t") - 1
                                         if "t" in flags else 0)]
    finally:
        h.release()
    assert got == want
    assert (r.returncode == 0) == bool(want)


def test_scope_names(demo: PacmanRoot) -> None:
    assert parse_scope("orphans") is Scope.ORPHANS == Scope.DEPENDENCIES | Scope.UNREQUIRED
    assert parse_scope("installed") is Scope.INSTALLED
    with pytest.raises(AlpmError) as err:
        parse_scope("everything")
    assert err.value.code is ErrorCode.WRONG_ARGS and "orphans" in err.value.message
    h = _handle(demo)
    try:
        assert [p.name for p in installed(h, Scope.FOREIGN)] == ["site-conf"]
        assert len(installed(h, Scope.UPGRADABLE)) == 4
    finally:
        h.release()


@pytest.mark.oracle
def test_pacnew_left_by_pacman_is_listed(demo: PacmanRoot) -> None:
    assert (demo.root / "etc/site.conf.pacnew").read_text() == "a = 2\n"
    h = _handle(demo)
    try:
        assert config_leftovers(h) == [ConfigLeftover("/etc/site.conf.pacnew", "/etc/site.conf",
                                                      "site-conf", "pacnew")]
    finally:
        h.release()


def test_find_package_by_repo_local_and_version(demo: PacmanRoot) -> None:
    h = _handle(demo)
    try:
        local = {p.name: p for p in h.localdb.packages}
        old = next(p for p in installed(h, Scope.UPGRADABLE))
        shown = find_package(h, old.name)
        assert shown is not None and shown.version == old.version          # installed first
        newer = find_package(h, old.name, prefer_local=False)
        assert newer is not None and newer.version != old.version and newer.name == old.name
        repo = find_package(h, f"demo/{old.name}")
        assert repo is not None and repo.version == newer.version
        via_local = find_package(h, f"local/{old.name}")
        assert via_local is not None and via_local.version == old.version
        versioned = find_package(h, f"{old.name}>{old.version}")       # only the repo's is
        assert versioned is not None and versioned.version == newer.version
        assert find_package(h, "nosuch/bash") is None
        assert find_package(h, "local/site-conf") is local["site-conf"]
        assert find_package(h, "demo/site-conf") is None
        provider = find_package(h, "local/sh")                  # bash provides sh
        assert provider is not None and provider.name == "bash"
    finally:
        h.release()
