"""Differential transactions: pacman and ``alpm`` on twin roots must end in the same state.

The first 68 scenarios, and the later ones about the file system, run once per
payload compression (zst, xz), so extraction is exercised on two archive
filters; the rest run on zst. Compared: exit code, the local database (every
desc field but %INSTALLDATE%, files with backup md5s, mtree and install
presence), every file under the root (type, mode, content, link target;
.pacnew/.pacsave, and what scriptlets and hooks wrote: /scriptlog, /hooklog)
and the [ALPM]/[ALPM-SCRIPTLET] lines of pacman.log. Scenarios with
``shell=True`` get a chrooted /bin/sh (tests.commit.support.shell_root) so
scriptlets and hooks really run; ``expect`` first checks that pacman did what
the scenario is about. Packages are built once per module.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from alpmd.engine.db.stores import Store
from tests.trans.harness import (
    Pkg,
    Scenario,
    build_all,
    evidence,
    expand,
    log_length,
    on_store,
    run_alpm,
    setup_twins,
    snapshot,
)

pytestmark = pytest.mark.oracle


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
        *_more_pkgs(),
    ]


SCRIPT = """\
log() { echo "$*" >> /scriptlog; }
pre_install() { log pre_install "$@"; for f in /usr/share/sx/*; do log "saw $f"; done; }
post_install() { log post_install "$@" "$(umask)"; for f in /usr/share/sx/*; do log "saw $f"; done; echo "installed $1"; }
pre_upgrade() { log pre_upgrade "$@"; }
post_upgrade() { log post_upgrade "$@"; echo "upgraded $2 to $1"; }
pre_remove() { log pre_remove "$@"; }
post_remove() { log post_remove "$@"; echo "removed $1"; }
"""


def _more_pkgs() -> list[Pkg]:
    cfg = "etc/foo.conf"
    return [
        # scriptlets
        Pkg("sx", install=SCRIPT, files={"usr/share/sx/1": "1\n"}),
        Pkg("sx", "2.0-1", install=SCRIPT, files={"usr/share/sx/2": "2\n"}),
        Pkg("sdep", depends=["sx"], install=SCRIPT.replace("/scriptlog", "/scriptlog2")),
        Pkg("sprefail", install="pre_install() { echo refusing; exit 1; }\n"),
        Pkg("spostfail", install="post_install() { echo broken; exit 3; }\n"),
        Pkg("sheir", replaces=["sx"], conflicts=["sx"], install=SCRIPT),
        # providers and versions
        Pkg("prov2", provides=["virt=2.0"], files={"usr/bin/prov2": "p2\n"}),
        Pkg("provnv", provides=["virt"], files={"usr/bin/provnv": "pn\n"}),
        Pkg("virt", files={"usr/bin/virt": "v\n"}),
        Pkg("appv", depends=["virt>=2"]),
        Pkg("legacy", depends=["foo<1.0"]),
        Pkg("baz", depends=["foo"]),
        Pkg("venemy", conflicts=["virt"]),
        Pkg("cyca", depends=["cycb"]), Pkg("cycb", depends=["cyca"]),
        # replaces, groups
        Pkg("old2", files={"usr/share/old2/x": "old2\n"}),
        Pkg("new2", replaces=["old", "old2"], conflicts=["old", "old2"]),
        Pkg("heir", replaces=["old"], conflicts=["old"], files={"usr/share/old/x": "heir\n"}),
        Pkg("ga", "1.1-1", groups=["grp"]),
        # backup files
        Pkg("cfg", "1.5-1", backup=[cfg], files={cfg: "one\n", "usr/bin/cfg": "c15\n"}),
        Pkg("cfg", "3.0-1", files={"usr/bin/cfg": "c3\n"}),
        Pkg("cfgnew", backup=[cfg], files={cfg: "one\n"}),
        Pkg("cfguser", depends=["cfg"]),
        # directories and symlinks
        Pkg("dl", files={"usr/share/dl/f": "f\n"}),
        Pkg("dl", "2.0-1", files={"usr/share/dlreal/f": "f2\n", "usr/share/dl": _link("dlreal")}),
        Pkg("sl", files={"usr/share/slreal/f": "f\n", "usr/share/sl": _link("slreal")}),
        Pkg("sl", "2.0-1", files={"usr/share/sl/f": "f2\n"}),
        Pkg("fd", files={"usr/share/fd/x": "file\n"}),
        Pkg("fd", "2.0-1", files={"usr/share/fd/x/y": "now a directory\n"}),
        Pkg("shared1", files={"usr/share/common/a": "a\n"}),
        Pkg("shared2", files={"usr/share/common/b": "b\n"}),
        Pkg("mode", "2.0-1", files={"usr/bin/tool": "#!/bin/sh\n# not executable any more\n"}),
        Pkg("bar", "3.0-1", depends=["foo", "leaf"]),
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


def _mkdir(path: str) -> object:
    def prep(root: Path) -> None:
        (root / path).mkdir(parents=True)
    return prep


def _symlink_dir(path: str) -> object:
    """``path`` made a symlink to a sibling directory the user created."""
    def prep(root: Path) -> None:
        link = root / path
        (link.parent / "elsewhere").mkdir(parents=True)
        link.symlink_to("elsewhere")
    return prep


def _remove(path: str) -> object:
    def prep(root: Path) -> None:
        (root / path).unlink()
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
        S("U-duplicate-name", ["-U", "@foo-1.0-1", "@foo-1.1-1"]),
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
          prep=_write("var/cache/pacman/pkg/stale-1.0-1-any.pkg.tar.zst", "junk")),
        *_more_scenarios(),
    ]


def _hook(trigger: str, when: str, exec_: str, extra: str = "") -> str:
    return f"[Trigger]\n{trigger}\n[Action]\nWhen = {when}\nExec = {exec_}\n{extra}"


def _tee(tag: str) -> str:
    """A hook command that records its targets (stdin) and that it ran, in /hooklog."""
    return (f"/bin/sh -c 'while read -r l; do echo \"{tag} $l\" >> /hooklog; done; "
            f"echo {tag} done >> /hooklog'")


def _mark(tag: str) -> str:
    return f"/bin/sh -c 'echo {tag} >> /hooklog; echo hook {tag} says hi'"


def _trig(kind: str, ops: str, *targets: str) -> str:
    lines = [f"Type = {kind}"] + [f"Operation = {o}" for o in ops.split()]
    return "\n".join(lines + [f"Target = {t}" for t in targets])


_SHARE_HOOK = _hook(_trig("Path", "Install Upgrade", "usr/share/*"), "PostTransaction",
                    _tee("share"), "NeedsTargets\n")


def _more_scenarios() -> list[Scenario]:
    S = Scenario  # noqa: N806
    sx_repo = ["sx-2.0-1", "sdep-1.0-1", "sheir-1.0-1", "foo-1.1-1"]
    two_prov = ["app-1.0-1", "lib-1.0-1", "prov-1.0-1", "prov2-1.0-1", "appv-1.0-1"]
    fail = "/bin/sh -c 'echo hook failing; exit 1'"
    scenarios = [
        # scriptlets that run in a chroot (their output lands in pacman.log as ALPM-SCRIPTLET)
        S("U-scriptlet-install", ["-U", "@sx-1.0-1"], shell=True),
        S("U-scriptlet-upgrade", ["-U", "@sx-2.0-1"], local=["sx-1.0-1"], shell=True),
        S("U-scriptlet-downgrade", ["-U", "@sx-1.0-1"], local=["sx-2.0-1"], shell=True),
        S("U-scriptlet-reinstall", ["-U", "@sx-1.0-1"], local=["sx-1.0-1"], shell=True),
        S("R-scriptlet-remove", ["-R", "sx"], local=["sx-1.0-1"], shell=True),
        S("R-scriptlet-noscriptlet", ["-R", "--noscriptlet", "sx"], local=["sx-1.0-1"],
          shell=True),
        S("S-scriptlet-dep-order", ["-S", "sdep"], repo=sx_repo, shell=True),
        S("S-scriptlet-replaced", ["-Su"], repo=sx_repo, local=["sx-1.0-1"], shell=True),
        S("U-scriptlet-pre-install-fails", ["-U", "@sprefail-1.0-1"], shell=True),
        S("U-scriptlet-post-install-fails", ["-U", "@spostfail-1.0-1"], shell=True),
        S("U-scriptlet-dbonly-skips", ["-U", "--dbonly", "@sx-1.0-1"], shell=True,
          hooks={"share.hook": _SHARE_HOOK}),
        # hooks
        S("hook-path-needstargets", ["-U", "@foo-1.0-1", "@sx-1.0-1"], shell=True,
          hooks={"share.hook": _SHARE_HOOK}),
        S("hook-package-upgrade-only", ["-U", "@foo-1.1-1", "@lib-1.0-1"],
          local=["foo-1.0-1"], shell=True,
          hooks={"10-up.hook": _hook(_trig("Package", "Upgrade", "*"), "PreTransaction",
                                     _tee("up"), "NeedsTargets\n"),
                 "20-inst.hook": _hook(_trig("Package", "Install", "*"), "PostTransaction",
                                       _tee("inst"), "NeedsTargets\n")}),
        S("hook-pre-remove-sees-files", ["-R", "foo", "lib"], local=["foo-1.0-1", "lib-1.0-1"],
          shell=True,
          hooks={"rm.hook": _hook(_trig("Path", "Remove", "usr/*"), "PreTransaction",
                                  "/bin/sh -c 'while read -r l; do test -e \"/$l\" && "
                                  "echo \"present $l\" >> /hooklog; done; true'",
                                  "NeedsTargets\n")}),
        S("hook-path-remove-on-upgrade", ["-U", "@link-2.0-1"], local=["link-1.0-1"], shell=True,
          hooks={"gone.hook": _hook(_trig("Path", "Remove", "usr/lib/*"), "PostTransaction",
                                    _tee("gone"), "NeedsTargets\n")}),
        S("hook-abort-on-fail", ["-U", "@foo-1.0-1"], shell=True,
          hooks={"fail.hook": _hook(_trig("Package", "Install", "*"), "PreTransaction", fail,
                                    "AbortOnFail\n")}),
        S("hook-pre-fails-without-abort", ["-U", "@foo-1.0-1"], shell=True,
          hooks={"fail.hook": _hook(_trig("Package", "Install", "*"), "PreTransaction", fail)}),
        S("hook-post-fails", ["-R", "foo"], local=["foo-1.0-1"], shell=True,
          hooks={"fail.hook": _hook(_trig("Package", "Remove", "*"), "PostTransaction", fail)}),
        S("hook-negated-target", ["-U", "@foo-1.0-1", "@bar-1.0-1"], shell=True,
          hooks={"neg.hook": _hook(_trig("Path", "Install", "usr/share/*",
                                         "!usr/share/foo/*"), "PostTransaction",
                                   _tee("neg"), "NeedsTargets\n")}),
        S("hook-order-and-output", ["-Su"], repo=ALL_REPO, local=["foo-1.0-1", "cfg-1.0-1"],
          shell=True,
          hooks={"20-b.hook": _hook(_trig("Package", "Upgrade", "*"), "PostTransaction",
                                    _mark("b")),
                 "10-a.hook": _hook(_trig("Package", "Upgrade", "foo"), "PostTransaction",
                                    _mark("a")),
                 "30-never.hook": _hook(_trig("Package", "Remove", "*"), "PostTransaction",
                                        _mark("never"))}),
        S("hook-sysupgrade-targets-sorted", ["-Su"], repo=ALL_REPO,
          local=["foo-1.0-1", "cfg-1.0-1"], shell=True,
          hooks={"all.hook": _hook(_trig("Package", "Install Upgrade", "*"), "PreTransaction",
                                   _tee("all"), "NeedsTargets\n")}),
        # providers, versioned dependencies, cycles
        S("S-provider-several-default", ["-S", "app"], repo=two_prov),
        S("S-provider-versioned", ["-S", "appv"], repo=two_prov),
        S("S-provider-literal-name-wins", ["-S", "app"], repo=[*two_prov, "virt-1.0-1"]),
        S("U-unversioned-provide-vs-versioned-dep", ["-U", "@appv-1.0-1", "@provnv-1.0-1"]),
        S("U-several-with-provider", ["-U", "@app-1.0-1", "@prov-1.0-1", "@lib-1.0-1"]),
        S("R-provider-in-use", ["-R", "prov"], local=["app-1.0-1", "lib-1.0-1", "prov-1.0-1"]),
        S("R-provider-alternative", ["-R", "prov"],
          local=["app-1.0-1", "lib-1.0-1", "prov-1.0-1", "prov2-1.0-1"]),
        S("S-dep-pulls-upgrade", ["-S", "bar"], repo=["bar-2.0-1", "foo-1.1-1"],
          local=["foo-1.0-1"]),
        S("U-dep-less-than-unmet", ["-U", "@legacy-1.0-1"], local=["foo-1.0-1"]),
        S("U-dep-less-than-met", ["-U", "@legacy-1.0-1"], local=["foo-0.9-1"]),
        S("S-d-skips-version", ["-Sd", "bar"], repo=["bar-2.0-1"], local=["foo-1.0-1"]),
        S("S-d-still-needs-dep", ["-Sd", "bar"], repo=["bar-2.0-1"]),
        S("S-dd-skips-deps", ["-Sdd", "top"], repo=ALL_REPO),
        S("U-assume-installed", ["-U", "--assume-installed", "foo=1.0", "@bar-1.0-1"]),
        S("U-assume-installed-too-old", ["-U", "--assume-installed", "foo=1.0", "@bar-2.0-1"]),
        S("S-cycle-install", ["-S", "cyca"], repo=["cyca-1.0-1", "cycb-1.0-1"]),
        S("R-cycle-recursive", ["-Rs", "cyca"], local=["cyca-1.0-1"], local_deps=["cycb-1.0-1"]),
        # conflicts
        S("S-conflict-ask-yes-breaks-dep", ["-S", "--ask", "4", "enemy"], repo=ALL_REPO,
          local=["foo-1.0-1", "baz-1.0-1"]),
        S("S-conflict-virtual", ["-S", "venemy"], repo=["venemy-1.0-1"],
          local=["prov-1.0-1"]),
        S("U-conflict-between-targets", ["-U", "@foo-1.0-1", "@enemy-1.0-1"]),
        S("S-conflict-replacer-at-install", ["-S", "new"], repo=ALL_REPO, local=["old-1.0-1"]),
        # replaces during -Su
        S("S-replaces-keeps-dep-reason", ["-Su"], repo=ALL_REPO, local_deps=["old-1.0-1"]),
        S("S-replaces-ignored", ["-Su", "--ignore", "old"], repo=ALL_REPO, local=["old-1.0-1"]),
        S("S-replaces-ask-no", ["-Su", "--ask", "2"], repo=ALL_REPO, local=["old-1.0-1"]),
        S("S-replaces-two", ["-Su"], repo=["new2-1.0-1"], local=["old-1.0-1", "old2-1.0-1"]),
        S("S-replaces-takes-files", ["-Su"], repo=["heir-1.0-1"], local=["old-1.0-1"]),
        # groups and ignores
        S("S-group-needed", ["-S", "--needed", "grp"], repo=ALL_REPO, local=["ga-1.0-1"]),
        S("S-group-ignore-member", ["-S", "--ignore", "ga", "grp"], repo=ALL_REPO),
        S("S-ignored-explicit-target", ["-S", "--ignore", "foo", "foo"], repo=ALL_REPO),
        S("S-sysupgrade-ignoregroup", ["-Su"], repo=["ga-1.1-1", "gb-1.0-1", "foo-1.1-1"],
          local=["ga-1.0-1", "foo-1.0-1"], options={"IgnoreGroup": "grp"}),
        S("S-sysupgrade-ignore-glob", ["-Su"], repo=["ga-1.1-1", "foo-1.1-1"],
          local=["ga-1.0-1", "foo-1.0-1"], options={"IgnorePkg": "g*"}),
        # downgrades
        S("S-Suu-downgrade", ["-Suu"], repo=["foo-1.0-1"], local=["foo-1.1-1"]),
        S("S-Su-local-newer", ["-Su"], repo=["foo-1.0-1"], local=["foo-1.1-1"]),
        S("S-downgrade-explicit-target", ["-S", "foo"], repo=["foo-1.0-1"], local=["foo-1.1-1"]),
        # -R variants
        S("R-cascade-chain", ["-Rc", "leaf"], local=["top-1.0-1", "mid-1.0-1", "leaf-1.0-1"]),
        S("R-cascade-recursive", ["-Rcs", "leaf"], local=["top-1.0-1", "foo-1.0-1"],
          local_deps=["mid-1.0-1", "leaf-1.0-1"]),
        S("R-d-still-checks-deps", ["-Rd", "foo"], local=["foo-1.0-1", "bar-1.0-1"]),
        S("R-recursive-shared-dep", ["-Rs", "bar"], local=["bar-1.0-1", "baz-1.0-1"],
          local_deps=["foo-1.0-1"]),
        S("R-dbonly-recursive", ["-Rs", "--dbonly", "top"], local=["top-1.0-1"],
          local_deps=["mid-1.0-1", "leaf-1.0-1"]),
        S("R-recursive-nosave", ["-Rsn", "cfguser"], local=["cfguser-1.0-1"],
          local_deps=["cfg-1.0-1"], prep=_write("etc/foo.conf", "mine\n")),
        S("R-print-only", ["-Rp", "foo"], local=["foo-1.0-1"]),
        # -U variants, overwrite, backup files, NoUpgrade/NoExtract, directories and symlinks
        S("U-asdeps-upgrade-explicit", ["-U", "--asdeps", "@foo-1.1-1", "@leaf-1.0-1"],
          local=["foo-1.0-1"]),
        S("U-overwrite-glob", ["-U", "--overwrite", "usr/share/foo/*", "@foo-1.0-1"],
          prep=_write("usr/share/foo/data", "x\n")),
        S("U-overwrite-negated", ["-U", "--overwrite", "*", "--overwrite", "!usr/share/foo/data",
                                  "@foo-1.0-1"], prep=_write("usr/share/foo/data", "x\n")),
        S("U-overwrite-owned", ["-U", "--overwrite", "*", "@clash-1.0-1"], local=["foo-1.0-1"]),
        S("U-reinstall-restores-modified", ["-U", "@foo-1.0-1"], local=["foo-1.0-1"],
          prep=_write("usr/share/foo/data", "changed\n")),
        S("U-backup-user-matches-new", ["-U", "@cfg-2.0-1"], local=["cfg-1.0-1"],
          prep=_write("etc/foo.conf", "two\n")),
        S("U-backup-unchanged-upstream", ["-U", "@cfg-1.5-1"], local=["cfg-1.0-1"],
          prep=_write("etc/foo.conf", "mine\n")),
        S("U-backup-dropped-modified", ["-U", "@cfg-3.0-1"], local=["cfg-1.0-1"],
          prep=_write("etc/foo.conf", "mine\n")),
        S("U-backup-moves-between-packages", ["-U", "@cfg-3.0-1", "@cfgnew-1.0-1"],
          local=["cfg-1.0-1"]),
        S("U-backup-moves-modified", ["-U", "@cfg-3.0-1", "@cfgnew-1.0-1"], local=["cfg-1.0-1"],
          prep=_write("etc/foo.conf", "mine\n")),
        S("U-noupgrade-not-backup", ["-U", "@cfg-2.0-1"], local=["cfg-1.0-1"],
          options={"NoUpgrade": "usr/bin/cfg"}),
        S("U-noupgrade-missing-file", ["-U", "@cfg-2.0-1"], local=["cfg-1.0-1"],
          options={"NoUpgrade": "etc/foo.conf"}, prep=_remove("etc/foo.conf")),
        S("U-noextract-negated", ["-U", "@nx-1.0-1"],
          options={"NoExtract": "usr/share/nx/* !usr/share/nx/keep"}),
        S("U-dir-to-symlink", ["-U", "@dl-2.0-1"], local=["dl-1.0-1"]),
        S("U-symlink-to-dir", ["-U", "@sl-2.0-1"], local=["sl-1.0-1"]),
        S("S-asexplicit-installed-dep", ["-S", "--asexplicit", "leaf"], repo=ALL_REPO,
          local_deps=["leaf-1.0-1"]),
        S("S-conflict-ask-yes", ["-S", "--ask", "4", "enemy"], repo=ALL_REPO,
          local=["foo-1.0-1"]),
        S("U-file-to-dir", ["-U", "@fd-2.0-1"], local=["fd-1.0-1"]),
        S("R-shared-dir-stays", ["-R", "shared1"], local=["shared1-1.0-1", "shared2-1.0-1"]),
        S("R-dir-with-unowned-file", ["-R", "foo"], local=["foo-1.0-1"],
          prep=_write("usr/share/foo/user.txt", "mine\n")),
        S("U-dir-in-the-way", ["-U", "@foo-1.0-1"], prep=_mkdir("usr/share/foo/data")),
        S("U-mode-change", ["-U", "@mode-2.0-1"], local=["mode-1.0-1"]),
        S("U-through-symlinked-dir", ["-U", "@foo-1.0-1"], prep=_symlink_dir("usr/share/foo")),
        S("S-group-needed-all-installed", ["-S", "--needed", "grp"], repo=ALL_REPO,
          local=["ga-1.0-1", "gb-1.0-1"]),
        S("S-ignored-dependency", ["-S", "--ignore", "foo", "bar"], repo=ALL_REPO),
        S("S-sysupgrade-pulls-new-dep", ["-Su"], repo=["bar-3.0-1", "leaf-1.0-1", "foo-1.0-1"],
          local=["bar-1.0-1"], local_deps=["foo-1.0-1"]),
        S("S-sysupgrade-breaks-installed", ["-Su"], repo=["foo-1.1-1"],
          local=["legacy-1.0-1", "foo-0.9-1"]),
        S("R-scriptlets-order-with-hook", ["-R", "sdep", "sx"], local=["sx-1.0-1", "sdep-1.0-1"],
          shell=True,
          hooks={"rm.hook": _hook(_trig("Package", "Remove", "s*"), "PreTransaction",
                                  _tee("rm"), "NeedsTargets\n")}),
        S("S-fs-conflict-between-targets", ["-S", "foo", "clash"],
          repo=["foo-1.1-1", "clash-1.0-1"]),
        # pacman 6.0.2 overwrites here whatever the order of the negated pattern; so do we
        S("U-overwrite-negated-first", ["-U", "--overwrite", "!usr/share/foo/data",
                                        "--overwrite", "*", "@foo-1.0-1"],
          prep=_write("usr/share/foo/data", "x\n")),
    ]
    for sc in scenarios:
        sc.expect = EXPECT.get(sc.name, [])
        # the extraction path differs per compression only where files are laid down
        if sc.name not in BOTH_COMPRESSIONS:
            sc.compressions = ("zst",)
    return scenarios


#: What pacman itself must do in a scenario (its log, /hooklog, /scriptlog), so a scenario
#: cannot pass by both sides doing nothing (a chroot without a shell, a hook never matched).
EXPECT: dict[str, list[str]] = {
    "U-scriptlet-install": ["pre_install 1.0-1\n", "post_install 1.0-1 0022\nsaw /usr/share/sx/1",
                            "[ALPM-SCRIPTLET] installed 1.0-1"],
    "U-scriptlet-upgrade": ["pre_upgrade 2.0-1 1.0-1", "upgraded 1.0-1 to 2.0-1"],
    "U-scriptlet-downgrade": ["pre_upgrade 1.0-1 2.0-1", "downgraded sx"],
    "U-scriptlet-reinstall": ["post_upgrade 1.0-1 1.0-1", "reinstalled sx"],
    "R-scriptlet-remove": ["pre_remove 1.0-1\npost_remove 1.0-1", "removed 1.0-1"],
    "R-scriptlet-noscriptlet": ["removed sx"],
    "S-scriptlet-dep-order": ["scriptlog2: pre_install 1.0-1\nsaw /usr/share/sx/2"],
    "S-scriptlet-replaced": ["pre_remove 1.0-1", "removed sx", "installed sheir"],
    "U-scriptlet-pre-install-fails": ["[ALPM-SCRIPTLET] refusing", "installed sprefail"],
    "U-scriptlet-post-install-fails": ["[ALPM-SCRIPTLET] broken"],
    "U-scriptlet-dbonly-skips": ["hooklog: share usr/share/\nshare usr/share/sx/"],
    "hook-path-needstargets": ["share usr/share/foo/data\nshare usr/share/sx/",
                               "post_install 1.0-1"],
    "hook-package-upgrade-only": ["up foo\nup done\ninst lib\ninst done"],
    "hook-pre-remove-sees-files": ["present usr/lib/libx.so", "present usr/share/foo/data"],
    "hook-path-remove-on-upgrade": ["gone usr/lib/real\ngone done"],
    "hook-abort-on-fail": ["[ALPM-SCRIPTLET] hook failing"],
    "hook-pre-fails-without-abort": ["hook failing", "installed foo"],
    "hook-post-fails": ["removed foo", "hook failing"],
    "hook-negated-target": ["neg usr/share/bar/data\nneg done"],
    "hook-order-and-output": ["hooklog: a\nb\n", "[ALPM-SCRIPTLET] hook b says hi"],
    "hook-sysupgrade-targets-sorted": ["all cfg\nall foo\nall done"],
    "S-provider-several-default": ["installed prov (1.0-1)"],
    "S-provider-versioned": ["installed prov2"],
    "S-provider-literal-name-wins": ["installed virt"],
    "U-several-with-provider": ["installed app"],
    "R-provider-alternative": ["removed prov"],
    "S-dep-pulls-upgrade": ["upgraded foo (1.0-1 -> 1.1-1)", "installed bar (2.0-1)"],
    "U-dep-less-than-met": ["installed legacy"],
    "S-d-skips-version": ["installed bar (2.0-1)"],
    "S-dd-skips-deps": ["installed top"],
    "U-assume-installed": ["installed bar"],
    "S-cycle-install": ["installed cycb", "installed cyca"],
    "R-cycle-recursive": ["removed cyca", "removed cycb"],
    "S-conflict-ask-yes": ["removed foo", "installed enemy"],
    "S-replaces-keeps-dep-reason": ["removed old", "installed new"],
    "S-replaces-two": ["removed old2", "removed old (", "installed new2"],
    "S-replaces-takes-files": ["removed old", "installed heir"],
    "S-group-needed": ["installed gb"],
    "S-group-ignore-member": ["installed ga", "installed gb"],
    "S-ignored-explicit-target": ["installed foo (1.1-1)"],
    "S-sysupgrade-ignoregroup": ["upgraded foo"],
    "S-sysupgrade-ignore-glob": ["upgraded foo"],
    "S-Suu-downgrade": ["downgraded foo (1.1-1 -> 1.0-1)"],
    "S-downgrade-explicit-target": ["downgraded foo"],
    "R-cascade-chain": ["removed top", "removed mid", "removed leaf"],
    "R-cascade-recursive": ["removed top", "removed mid", "removed leaf"],
    "R-recursive-shared-dep": ["removed bar"],
    "R-dbonly-recursive": ["removed top", "removed mid", "removed leaf"],
    "R-recursive-nosave": ["removed cfguser", "removed cfg"],
    "U-asdeps-upgrade-explicit": ["upgraded foo", "installed leaf"],
    "U-overwrite-glob": ["installed foo"],
    "U-overwrite-owned": ["installed clash"],
    "U-reinstall-restores-modified": ["reinstalled foo"],
    "U-backup-user-matches-new": ["upgraded cfg"],
    "U-backup-unchanged-upstream": ["upgraded cfg (1.0-1 -> 1.5-1)"],
    "U-backup-dropped-modified": ["etc/foo.conf saved as ROOT/etc/foo.conf.pacsave"],
    "U-backup-moves-between-packages": ["installed cfgnew"],
    "U-backup-moves-modified": ["etc/foo.conf installed as ROOT/etc/foo.conf.pacnew"],
    "U-noupgrade-not-backup": ["usr/bin/cfg installed as ROOT/usr/bin/cfg.pacnew"],
    "U-noupgrade-missing-file": ["upgraded cfg"],
    "U-noextract-negated": ["installed nx"],
    "U-dir-to-symlink": ["upgraded dl"],
    "U-symlink-to-dir": ["upgraded sl"],
    "S-asexplicit-installed-dep": ["reinstalled leaf"],
    "U-file-to-dir": ["upgraded fd"],
    "R-shared-dir-stays": ["removed shared1"],
    "R-dir-with-unowned-file": ["removed foo"],
    "U-mode-change": ["upgraded mode"],
    "S-sysupgrade-pulls-new-dep": ["installed leaf", "upgraded bar (1.0-1 -> 3.0-1)"],
    "R-scriptlets-order-with-hook": ["rm sdep\nrm sx\nrm done", "pre_remove 1.0-1",
                                     "scriptlog2: pre_install 1.0-1"],
}

#: Scenarios whose point is the file system: run on both payload compressions.
BOTH_COMPRESSIONS = {
    "U-overwrite-glob", "U-overwrite-negated", "U-overwrite-negated-first", "U-overwrite-owned",
    "U-reinstall-restores-modified", "U-backup-user-matches-new", "U-backup-unchanged-upstream",
    "U-backup-dropped-modified", "U-backup-moves-between-packages", "U-backup-moves-modified",
    "U-noupgrade-not-backup", "U-noupgrade-missing-file", "U-noextract-negated",
    "U-dir-to-symlink", "U-symlink-to-dir", "U-file-to-dir", "R-shared-dir-stays",
    "R-dir-with-unowned-file", "U-dir-in-the-way", "U-mode-change", "U-through-symlinked-dir",
}


SCENARIOS = [(sc, comp) for sc in _scenarios() for comp in sc.compressions]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """Package archives per compression, built once for the whole module."""
    out: dict[str, dict[str, Path]] = {}
    for comp in ("zst", "xz"):
        pkgs = _fix_specs(_pkgs())
        for p in pkgs:
            p.compression = comp
        out[comp] = build_all(pkgs, tmp_path_factory.mktemp(f"pkgs-{comp}"))
    return out


@pytest.mark.parametrize(("sc", "comp"), SCENARIOS,
                         ids=[f"{sc.name}-{comp}" for sc, comp in SCENARIOS])
def test_transaction_matches_pacman(tmp_path: Path, sc: Scenario, comp: str,
                                    built: dict[str, dict[str, Path]], backend: Store) -> None:
    a, b, paths = setup_twins(tmp_path, sc, built[comp])
    args = expand(sc.cmd, paths)
    before = log_length(a.root)
    ref = a.pacman(*args)
    if sc.expect:
        seen = evidence(a.root, before).replace(str(a.root), "ROOT")
        missing = [e for e in sc.expect if e not in seen]
        assert not missing, f"pacman did not do what {sc.name} is about: {missing}\n{seen}"
    with on_store(b.dbpath, backend):
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
    names = [sc.name for sc in _scenarios()]
    assert len(set(names)) == len(names)
    assert set(EXPECT) <= set(names) and BOTH_COMPRESSIONS <= set(names)
    assert len(names) >= 100
