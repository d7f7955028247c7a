"""Differential transactions: pacman and ``alpm`` on twin roots must end in the same state.

Each scenario runs once per payload compression (zst, xz), so the extraction
path is exercised on two archive filters. Compared: exit code, the local
database (every desc field but %INSTALLDATE%, files with backup md5s, mtree
and install presence), every file under the root (type, mode, content, link
target; .pacnew/.pacsave included) and the [ALPM] lines of pacman.log.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from tests.trans.harness import Pkg, Scenario, expand, run_alpm, setup_twins, snapshot

pytestmark = pytest.mark.oracle

_NEEDED = ["resolve", "extract", "remove", "conflict"]
_MISSING = [m for m in _NEEDED if importlib.util.find_spec(f"alpmd.engine.{m}") is None]


def _pkgs() -> list[Pkg]:
    cfg = "etc/foo.conf"
    return [
        Pkg("foo"), Pkg("foo", "1.1-1"), Pkg("foo", "0.9-1"),
        Pkg("bar", depends=["foo"]), Pkg("bar", "2.0-1", depends=["foo>=1.1"]),
        Pkg("lib", files={"usr/lib/libx.so": "x\n"}),
        Pkg("app", depends=["lib", "virt"]),
        Pkg("prov", provides=["virt=1.0"], files={"usr/bin/prov": "p\n"}),
        Pkg("clash", files={"usr/share/foo/data": "clash\n"}),
        Pkg("cfg", backup=[cfg], files={cfg: "one\n", "usr/bin/cfg": "c1\n"}),
        Pkg("cfg", "2.0-1", backup=[cfg], files={cfg: "two\n", "usr/bin/cfg": "c2\n"}),
        Pkg("cfgsame", "2.0-1", backup=[cfg], files={cfg: "one\n"}),
        Pkg("link", files={"usr/lib/real": "r\n",
                           "usr/lib/alias": _link("real")}),
        Pkg("link", "2.0-1", files={"usr/lib/real2": "r2\n", "usr/lib/alias": _link("real2")}),
        Pkg("scr", install="post_install() {\n  echo installed\n}\n"),
        Pkg("ga", groups=["grp"]), Pkg("gb", groups=["grp"]),
        Pkg("old", files={"usr/share/old/x": "old\n"}),
        Pkg("new", replaces=["old"], conflicts=["old"], files={"usr/share/new/x": "new\n"}),
        Pkg("enemy", conflicts=["foo"], files={"usr/share/enemy/x": "e\n"}),
        Pkg("top", depends=["mid"]), Pkg("mid", depends=["leaf"]), Pkg("leaf"),
        Pkg("opt", optdepends=["foo: for foo things"]),
        Pkg("nx", files={"usr/share/nx/keep": "k\n", "usr/share/nx/skip": "s\n"}),
        Pkg("mode", files={"usr/bin/tool": _exec("#!/bin/sh\n")}),
    ]


def _link(target: str) -> object:
    from alpmd.testing.pkgbuild import FileSpec

    return FileSpec("", kind="link", target=target)


def _exec(data: str) -> object:
    from alpmd.testing.pkgbuild import FileSpec

    return FileSpec("", data.encode(), mode=0o755)


def _fix_specs(pkgs: list[Pkg]) -> list[Pkg]:
    from alpmd.testing.pkgbuild import FileSpec

    for p in pkgs:
        if p.files:
            p.files = {k: (dataclasses.replace(v, path=k) if isinstance(v, FileSpec) else v)
                       for k, v in p.files.items()}
    return pkgs


def _write(path: str, data: str) -> object:
    def prep(root: Path) -> None:
        f = root / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(data)
    return prep


ALL_REPO = ["foo-1.1-1", "bar-1.0-1", "lib-1.0-1", "app-1.0-1", "prov-1.0-1", "ga-1.0-1",
            "gb-1.0-1", "new-1.0-1", "top-1.0-1", "mid-1.0-1", "leaf-1.0-1", "cfg-2.0-1",
            "enemy-1.0-1", "opt-1.0-1"]


def _scenarios() -> list[Scenario]:
    S = Scenario  # noqa: N806
    return [
        # -U
        S("U-install", ["-U", "@foo-1.0-1"]),
        S("U-install-asdeps", ["-U", "--asdeps", "@foo-1.0-1"]),
        S("U-asexplicit-over-dep", ["-U", "--asexplicit", "@foo-1.1-1"],
          local_deps=["foo-1.0-1"]),
        S("U-upgrade", ["-U", "@foo-1.1-1"], local=["foo-1.0-1"]),
        S("U-upgrade-keeps-dep-reason", ["-U", "@foo-1.1-1"], local_deps=["foo-1.0-1"]),
        S("U-downgrade", ["-U", "@foo-0.9-1"], local=["foo-1.0-1"]),
        S("U-reinstall", ["-U", "@foo-1.0-1"], local=["foo-1.0-1"]),
        S("U-needed-skip", ["-U", "--needed", "@foo-1.0-1"], local=["foo-1.0-1"]),
        S("U-dbonly", ["-U", "--dbonly", "@foo-1.0-1"]),
        S("U-two-with-dep", ["-U", "@bar-1.0-1", "@foo-1.0-1"]),
        S("U-missing-dep", ["-U", "@bar-1.0-1"]),
        S("U-nodeps", ["-U", "-dd", "@bar-1.0-1"]),
        S("U-version-dep-unmet", ["-U", "@bar-2.0-1"], local=["foo-1.0-1"]),
        S("U-fs-conflict", ["-U", "@foo-1.0-1"], prep=_write("usr/share/foo/data", "x\n")),
        S("U-fs-conflict-overwrite", ["-U", "--overwrite", "*", "@foo-1.0-1"],
          prep=_write("usr/share/foo/data", "x\n")),
        S("U-owned-conflict", ["-U", "@clash-1.0-1"], local=["foo-1.0-1"]),
        S("U-target-conflict", ["-U", "@foo-1.0-1", "@clash-1.0-1"]),
        S("U-backup-fresh", ["-U", "@cfg-1.0-1"]),
        S("U-backup-upgrade-clean", ["-U", "@cfg-2.0-1"], local=["cfg-1.0-1"]),
        S("U-backup-upgrade-modified", ["-U", "@cfg-2.0-1"], local=["cfg-1.0-1"],
          prep=_write("etc/foo.conf", "mine\n")),
        S("U-backup-exists-untracked", ["-U", "@cfg-1.0-1"],
          prep=_write("etc/foo.conf", "mine\n")),
        S("U-noupgrade", ["-U", "@cfg-2.0-1"], local=["cfg-1.0-1"],
          options={"NoUpgrade": "etc/foo.conf"}),
        S("U-noextract", ["-U", "@nx-1.0-1"], options={"NoExtract": "usr/share/nx/skip"}),
        S("U-symlink", ["-U", "@link-1.0-1"]),
        S("U-symlink-upgrade", ["-U", "@link-2.0-1"], local=["link-1.0-1"]),
        S("U-scriptlet-noscriptlet", ["-U", "--noscriptlet", "@scr-1.0-1"]),
        S("U-exec-mode", ["-U", "@mode-1.0-1"]),
        S("U-conflict-installed", ["-U", "@enemy-1.0-1"], local=["foo-1.0-1"]),
        S("U-provides-satisfies", ["-U", "@app-1.0-1"], local=["lib-1.0-1", "prov-1.0-1"]),
        S("U-optdepends", ["-U", "@opt-1.0-1"]),
        S("U-chain", ["-U", "@top-1.0-1", "@mid-1.0-1", "@leaf-1.0-1"]),
        # -R
        S("R-single", ["-R", "foo"], local=["foo-1.0-1"]),
        S("R-breaks-dep", ["-R", "foo"], local=["foo-1.0-1", "bar-1.0-1"]),
        S("R-cascade", ["-Rc", "foo"], local=["foo-1.0-1", "bar-1.0-1"]),
        S("R-nodeps", ["-Rdd", "foo"], local=["foo-1.0-1", "bar-1.0-1"]),
        S("R-recursive", ["-Rs", "top"], local=["top-1.0-1"], local_deps=["mid-1.0-1",
                                                                          "leaf-1.0-1"]),
        S("R-recursive-explicit-kept", ["-Rs", "top"], local=["top-1.0-1", "leaf-1.0-1"],
          local_deps=["mid-1.0-1"]),
        S("R-recursive-all", ["-Rss", "top"], local=["top-1.0-1", "mid-1.0-1", "leaf-1.0-1"]),
        S("R-backup-clean", ["-R", "cfg"], local=["cfg-1.0-1"]),
        S("R-backup-pacsave", ["-R", "cfg"], local=["cfg-1.0-1"],
          prep=_write("etc/foo.conf", "mine\n")),
        S("R-nosave", ["-Rn", "cfg"], local=["cfg-1.0-1"], prep=_write("etc/foo.conf", "m\n")),
        S("R-dbonly", ["-R", "--dbonly", "foo"], local=["foo-1.0-1"]),
        S("R-not-found", ["-R", "nosuch"], local=["foo-1.0-1"]),
        S("R-unneeded", ["-Ru", "foo", "leaf"], local=["foo-1.0-1", "bar-1.0-1", "leaf-1.0-1"]),
        S("R-group", ["-R", "grp"], local=["ga-1.0-1", "gb-1.0-1"]),
        S("R-symlink", ["-R", "link"], local=["link-1.0-1"]),
        S("R-two", ["-R", "foo", "bar"], local=["foo-1.0-1", "bar-1.0-1"]),
        # -S
        S("S-install", ["-S", "foo"], repo=ALL_REPO),
        S("S-with-deps", ["-S", "top"], repo=ALL_REPO),
        S("S-group", ["-S", "grp"], repo=ALL_REPO),
        S("S-provider", ["-S", "app"], repo=ALL_REPO),
        S("S-needed", ["-S", "--needed", "foo"], repo=ALL_REPO, local=["foo-1.1-1"]),
        S("S-reinstall", ["-S", "foo"], repo=ALL_REPO, local=["foo-1.1-1"]),
        S("S-upgrade-target", ["-S", "foo"], repo=ALL_REPO, local=["foo-1.0-1"]),
        S("S-sysupgrade", ["-Su"], repo=ALL_REPO, local=["foo-1.0-1", "cfg-1.0-1"]),
        S("S-sysupgrade-ignore", ["-Su", "--ignore", "foo"], repo=ALL_REPO,
          local=["foo-1.0-1", "cfg-1.0-1"]),
        S("S-sysupgrade-nothing", ["-Su"], repo=ALL_REPO, local=["foo-1.1-1"]),
        S("S-replaces", ["-Su"], repo=ALL_REPO, local=["old-1.0-1"]),
        S("S-conflict-default-no", ["-S", "enemy"], repo=ALL_REPO, local=["foo-1.0-1"]),
        S("S-asdeps", ["-S", "--asdeps", "leaf"], repo=ALL_REPO),
        S("S-not-found", ["-S", "nosuch"], repo=ALL_REPO),
        S("S-downloadonly", ["-Sw", "foo"], repo=ALL_REPO),
        S("S-print", ["-Sp", "top"], repo=ALL_REPO),
        S("S-dbonly", ["-S", "--dbonly", "foo"], repo=ALL_REPO),
        S("S-backup-upgrade-modified", ["-S", "cfg"], repo=ALL_REPO, local=["cfg-1.0-1"],
          prep=_write("etc/foo.conf", "mine\n")),
        S("S-fs-conflict", ["-S", "foo"], repo=ALL_REPO,
          prep=_write("usr/share/foo/data", "x\n")),
        S("S-repo-prefix", ["-S", "test/leaf"], repo=ALL_REPO),
        S("S-clean", ["-Sc"], repo=ALL_REPO, local=["foo-1.0-1"],
          prep=_write("var/cache/pacman/pkg/stale-1.0-1-any.pkg.tar.zst", "junk"),
          needs=["pkgcache"]),
    ]


SCENARIOS = [(sc, comp) for sc in _scenarios() for comp in ("zst", "xz")]


@pytest.mark.skipif(bool(_MISSING), reason=f"engine modules not landed yet: {_MISSING}")
@pytest.mark.parametrize(("sc", "comp"), SCENARIOS,
                         ids=[f"{sc.name}-{comp}" for sc, comp in SCENARIOS])
def test_transaction_matches_pacman(tmp_path: Path, sc: Scenario, comp: str) -> None:
    for mod in sc.needs:
        if importlib.util.find_spec(f"alpmd.engine.{mod}") is None:
            pytest.skip(f"engine module {mod} not landed yet")
    sc.pkgs = _fix_specs(_pkgs())
    for p in sc.pkgs:
        p.compression = comp
    a, b, built = setup_twins(tmp_path, sc)
    args = expand(sc.cmd, built)
    ref = a.pacman(*args)
    code, out, err = run_alpm(b, args)
    assert code == ref.returncode, (f"pacman said {ref.returncode}:\n{ref.stdout}{ref.stderr}"
                                    f"\nalpm said {code}:\n{out}{err}")
    if sc.exit_only:
        return
    want, got = snapshot(a.root), snapshot(b.root)
    assert got["db"] == want["db"]
    assert got["fs"] == want["fs"]
    assert got["log"] == want["log"]


def test_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 100
