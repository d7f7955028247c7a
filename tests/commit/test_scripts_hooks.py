"""Scriptlets and hooks under a real chroot, compared with pacman's runs on a twin root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alpmd.engine.archive import load_package_file
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import Event, HookRun, ScriptletInfo
from alpmd.engine.extract import extract_package
from alpmd.engine.hooks import TransactionInfo, load_hooks, run_hooks
from alpmd.engine.remove import remove_package_files
from alpmd.engine.scriptlet import run_scriptlet
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec

from .support import OurRoot, mkpkg, shell_root

pytestmark = pytest.mark.oracle

SCRIPT = """\
log() { echo "$*" >> /scriptlog; }
pre_install() { log pre_install "$@"; }
post_install() { log post_install "$@" "$(umask)" "$(pwd)"; for f in /usr/share/s/*; do log "$f"; done; }
pre_upgrade() { log pre_upgrade "$@"; }
post_upgrade() { log post_upgrade "$@"; for f in /usr/share/s/*; do log "$f"; done; }
pre_remove() { log pre_remove "$@"; }
post_remove() { log post_remove "$@"; echo "to the log"; }
"""


def _pkg(tmp: Path, version: str, script: str = SCRIPT) -> Path:
    return mkpkg(tmp / "pkgs", "s", version, [FileSpec(f"usr/share/s/{version}", b"x")],
                 install=script)


def _ours_upgrade(ours: OurRoot, path: Path, events: list[Event]) -> None:
    h = ours.handle()
    try:
        new = load_package_file(path)
        old = h.localdb.get(new.name)
        script = new.scriptlet or b""
        if old is None:
            run_scriptlet(h, script, "pre_install", new.version, None, event=events.append)
        else:
            run_scriptlet(h, script, "pre_upgrade", new.version, old.version, event=events.append)
            remove_package_files(h, old, new=new)
        fl = extract_package(h, new, old)
        h.localdb.add(new.meta, fl, scriptlet=new.scriptlet)
        if old is None:
            run_scriptlet(h, script, "post_install", new.version, None, event=events.append)
        else:
            run_scriptlet(h, script, "post_upgrade", new.version, old.version,
                          event=events.append)
    finally:
        h.release()


def _ours_remove(ours: OurRoot, name: str, events: list[Event]) -> None:
    h = ours.handle()
    try:
        old = h.localdb.get(name)
        assert old is not None
        script = old.scriptlet or b""
        run_scriptlet(h, script, "pre_remove", old.version, None, event=events.append)
        remove_package_files(h, old)
        h.localdb.remove(name)
        run_scriptlet(h, script, "post_remove", old.version, None, event=events.append)
    finally:
        h.release()


def test_scriptlets_like_pacman(tmp_path: Path) -> None:
    pac = PacmanRoot(tmp_path / "pacman")
    ours = OurRoot(tmp_path / "ours")
    shell_root(pac.root)
    shell_root(ours.root)
    events: list[Event] = []
    for version in ("1.0-1", "2.0-1"):
        path = _pkg(tmp_path, version)
        pac.pacman("-U", str(path), check=True)
        _ours_upgrade(ours, path, events)
    pac.pacman("-R", "s", check=True)
    _ours_remove(ours, "s", events)
    theirs = (pac.root / "scriptlog").read_text()
    assert (ours.root / "scriptlog").read_text() == theirs
    assert "post_install 1.0-1 0022 /" in theirs and "pre_upgrade 2.0-1 1.0-1" in theirs
    assert [e.line for e in events if isinstance(e, ScriptletInfo)] == ["to the log"]
    assert "[ALPM-SCRIPTLET] to the log" in (ours.root / "var/log/pacman.log").read_text()
    assert os.listdir(ours.root / "tmp") == []  # the script's temporary directory is gone


def test_scriptlet_that_signals_its_parent(tmp_path: Path) -> None:
    ours = OurRoot(tmp_path / "ours")
    shell_root(ours.root)
    events: list[Event] = []
    h = ours.handle()
    try:
        script = b"post_install() { kill -TERM $PPID; kill -HUP $PPID; echo survived; }\n"
        assert run_scriptlet(h, script, "post_install", "1", None, event=events.append) == 0
        assert ScriptletInfo(line="survived") in events
        for _ in range(20):  # the guard ignores signals before the command can send one
            script = b"post_install() { kill -TERM $PPID; }\n"
            assert run_scriptlet(h, script, "post_install", "1", None) == 0
        # ...while the command itself gets default dispositions, not the guard's SIG_IGN
        events.clear()
        script = b"post_install() { kill -TERM $$; echo not reached; }\n"
        assert run_scriptlet(h, script, "post_install", "1", None, event=events.append) == 128 + 15
        assert ScriptletInfo(line="not reached") not in events
        script = b"post_install() { kill -KILL $$; }\n"
        assert run_scriptlet(h, script, "post_install", "1", None) == 128 + 9
        script = b"post_install() { echo failing; exit 3; }\n"
        assert run_scriptlet(h, script, "post_install", "1", None) == 3
    finally:
        h.release()


def _hook(trigger: str, when: str, exec_: str, extra: str = "") -> str:
    return f"[Trigger]\n{trigger}\n[Action]\nWhen = {when}\nExec = {exec_}\n{extra}"


LOG = "/bin/sh -c 'while read -r l; do echo \"{tag} $l\" >> /hooklog; done; echo {tag} >> /hooklog'"


def _hooks(root: Path) -> list[str]:
    h1 = root / "etc/pacman.d/hooks"
    h2 = root / "etc/hooks2"
    h1.mkdir(parents=True, exist_ok=True)
    h2.mkdir(parents=True, exist_ok=True)
    path_t = "Type = Path\nOperation = Install\nOperation = Upgrade\nTarget = usr/share/s/*"
    (h1 / "10-path.hook").write_text(_hook(path_t, "PostTransaction", LOG.format(tag="path"),
                                           "NeedsTargets\n"))
    pkg_t = "Type = Package\nOperation = Install\nOperation = Upgrade\nOperation = Remove\nTarget = s"
    (h1 / "20-pkg.hook").write_text(_hook(pkg_t, "PreTransaction", LOG.format(tag="pre-pkg"),
                                          "NeedsTargets\n"))
    (h1 / "30-masked.hook").write_text(_hook(pkg_t, "PostTransaction",
                                             LOG.format(tag="masked")))
    os.symlink("/dev/null", h2 / "30-masked.hook")
    rm_t = "Type = File\nOperation = Remove\nTarget = usr/share/s/*\nTarget = !*/2.0-1"
    (h1 / "40-remove.hook").write_text(_hook(rm_t, "PostTransaction",
                                             LOG.format(tag="removed"), "NeedsTargets\n"))
    (h1 / "50-over.hook").write_text(_hook(pkg_t, "PostTransaction", LOG.format(tag="h1")))
    (h2 / "50-over.hook").write_text(_hook(pkg_t, "PostTransaction", LOG.format(tag="h2")))
    (h1 / "not-a-hook.txt").write_text("ignored")
    return [str(h1), str(h2)]


def test_hooks_like_pacman(tmp_path: Path) -> None:
    pac = PacmanRoot(tmp_path / "pacman", options={"HookDir": str(tmp_path / "pacman/etc/hooks2")})
    ours = OurRoot(tmp_path / "ours")
    for root in (pac.root, ours.root):
        shell_root(root)
    _hooks(pac.root)
    dirs = _hooks(ours.root)
    h = ours.handle(hookdirs=dirs)
    assert [x.name for x in load_hooks(h)] == ["10-path.hook", "20-pkg.hook", "30-masked.hook",
                                               "40-remove.hook", "50-over.hook"]
    h.release()
    events: list[Event] = []
    old = None
    for version in ("1.0-1", "2.0-1"):
        path = _pkg(tmp_path, version, script="")
        pac.pacman("-U", str(path), check=True)
        h = ours.handle(hookdirs=dirs)
        new = load_package_file(path)
        old = h.localdb.get("s")
        info = TransactionInfo(installed=[new] if old is None else [],
                               upgraded=[] if old is None else [(new, old)])
        run_hooks(h, "PreTransaction", info, event=events.append)
        h.release()
        ours.upgrade(path)
        h = ours.handle(hookdirs=dirs)
        run_hooks(h, "PostTransaction", info, event=events.append)
        h.release()
    pac.pacman("-R", "s", check=True)
    h = ours.handle(hookdirs=dirs)
    gone = h.localdb.get("s")
    assert gone is not None
    info = TransactionInfo(removed=[gone])
    run_hooks(h, "PreTransaction", info)
    h.release()
    ours.remove("s")
    h = ours.handle(hookdirs=dirs)
    run_hooks(h, "PostTransaction", info)
    h.release()
    theirs = (pac.root / "hooklog").read_text()
    assert (ours.root / "hooklog").read_text() == theirs
    assert "masked" not in theirs and "h2" in theirs and "h1" not in theirs
    assert "removed usr/share/s/1.0-1" in theirs
    runs = [e for e in events if isinstance(e, HookRun) and not e.done]
    assert runs[0].name == "20-pkg.hook" and runs[0].position == 1 and runs[0].total == 1


def test_abort_on_fail(tmp_path: Path) -> None:
    pac = PacmanRoot(tmp_path / "pacman")
    ours = OurRoot(tmp_path / "ours")
    for root in (pac.root, ours.root):
        shell_root(root)
        (root / "etc/pacman.d/hooks").mkdir(parents=True, exist_ok=True)
        (root / "etc/pacman.d/hooks/fail.hook").write_text(_hook(
            "Type = Package\nOperation = Install\nTarget = *", "PreTransaction",
            "/bin/sh -c 'echo nope; exit 1'", "AbortOnFail\n"))
    path = _pkg(tmp_path, "1.0-1", script="")
    got = pac.pacman("-U", str(path))
    assert got.returncode != 0 and not (pac.root / "usr/share/s").exists()
    h = ours.handle(hookdirs=[str(ours.root / "etc/pacman.d/hooks")])
    try:
        with pytest.raises(AlpmError) as info:
            run_hooks(h, "PreTransaction", TransactionInfo(installed=[load_package_file(path)]))
        assert info.value.code is ErrorCode.TRANS_HOOK_FAILED
        assert "failed to run transaction hooks" in got.stderr + got.stdout
    finally:
        h.release()
