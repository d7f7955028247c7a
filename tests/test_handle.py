"""The Handle: derived defaults, the db.lck lock shared with pacman, pacman.log lines."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle, Options
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package

ALPM = str(Path(sys.executable).with_name("alpm"))
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}\] \[(ALPM|PACMAN|ALPM-SCRIPTLET)\] ")


def test_defaults_follow_the_root(tmp_path: Path) -> None:
    opts = Options(root=str(tmp_path))
    assert opts.dbpath == f"{tmp_path}/var/lib/pacman/"
    assert opts.logfile == f"{tmp_path}/var/log/pacman.log"
    assert opts.cachedirs == [f"{tmp_path}/var/cache/pacman/pkg/"]
    assert opts.lockfile == f"{tmp_path}/var/lib/pacman/db.lck"
    explicit = Options(root=str(tmp_path), dbpath="/elsewhere")
    assert explicit.dbpath == "/elsewhere/"


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    with Handle(root=str(tmp_path)) as first:
        first.lock()
        st = os.stat(first.lockfile)
        assert stat.S_IMODE(st.st_mode) == 0  # created like libalpm: mode 0000
        second = Handle(root=str(tmp_path))
        with pytest.raises(AlpmError) as err:
            second.lock()
        assert err.value.code is ErrorCode.HANDLE_LOCK
        assert first.lockfile in str(err.value)
        second.release()  # never removes a lock it does not hold
        assert os.path.exists(first.lockfile)
    assert not os.path.exists(Options(root=str(tmp_path)).lockfile)


def test_lock_released_when_an_error_unwinds(tmp_path: Path) -> None:
    handle = Handle(root=str(tmp_path))
    with pytest.raises(RuntimeError), handle:
        handle.lock()
        raise RuntimeError("boom")
    assert not os.path.exists(handle.lockfile)


@pytest.fixture
def installed(pacman_root: PacmanRoot, tmp_path: Path) -> PacmanRoot:
    pkg = build_package(tmp_path / "pkgs", PkgMeta("foo", "1.0-1", desc="a package"),
                        [FileSpec("usr/share/foo/README", b"hello\n")])
    res = pacman_root.pacman("-U", "--noscriptlet", str(pkg))
    assert res.returncode == 0, res.stderr
    return pacman_root


def _alpm(root: PacmanRoot, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ALPM, args[0], *root.args(), *args[1:]], capture_output=True,
                          text=True, env={"LC_ALL": "C"}, timeout=60)


@pytest.mark.oracle
def test_pacman_and_alpm_exclude_each_other(installed: PacmanRoot) -> None:
    # We hold the lock: pacman refuses to change the database.
    with Handle(root=str(installed.root), dbpath=str(installed.dbpath)) as handle:
        handle.lock()
        res = installed.pacman("-D", "--asdeps", "foo")
        assert res.returncode == 1
        assert "unable to lock database" in res.stderr
        # ...and so does our own command line, with pacman's wording.
        ours = _alpm(installed, "-D", "--asdeps", "foo")
        assert ours.returncode == 1
        assert "unable to lock database" in ours.stderr
        assert handle.lockfile in ours.stderr
    # A lock left by pacman (a plain db.lck) is reported and never deleted.
    lock = installed.dbpath / "db.lck"
    lock.touch()
    ours = _alpm(installed, "-D", "--asdeps", "foo")
    assert ours.returncode == 1 and lock.exists()
    lock.unlink()
    ours = _alpm(installed, "-D", "--asdeps", "foo")
    assert ours.returncode == 0, ours.stderr
    assert not lock.exists()
    assert "Install Reason  : Installed as a dependency" in installed.pacman("-Qi", "foo").stdout


@pytest.mark.oracle
def test_log_lines_have_pacmans_shape(installed: PacmanRoot) -> None:
    theirs = installed.logfile.read_text().splitlines()
    assert theirs and all(LOG_LINE.match(line) for line in theirs)
    with Handle(root=str(installed.root), dbpath=str(installed.dbpath)) as handle:
        handle.logaction("ALPM", "installed bar (1.0-1)\n")
        handle.logaction("PACMAN", "Running 'alpm -S bar'")
    ours = installed.logfile.read_text().splitlines()[len(theirs):]
    assert [LOG_LINE.sub("", line) for line in ours] == ["installed bar (1.0-1)",
                                                        "Running 'alpm -S bar'"]
    assert all(LOG_LINE.match(line) for line in ours)
    # Same stamp shape as the one pacman itself wrote a moment ago (same zone too).
    assert len(ours[0].split("]")[0]) == len(theirs[0].split("]")[0])
    assert ours[0].split("]")[0][-5:] == theirs[0].split("]")[0][-5:]


def test_lock_holder_names_the_process(tmp_path: Path) -> None:
    handle = Handle(root=str(tmp_path))
    assert handle.lock_holder() == ""
    handle.lock()
    try:
        holder = handle.lock_holder()
        assert holder.startswith(f"pid {os.getpid()} (")
    finally:
        handle.unlock()
    Path(handle.lockfile).touch()  # a lock file nobody has open: left behind by a crash
    assert handle.lock_holder() == "stale"
    assert os.path.exists(handle.lockfile)  # reported, never removed


@pytest.mark.oracle
def test_upgrades_equal_pacman_qu(tmp_path: Path) -> None:
    from alpmd.engine import query
    from alpmd.engine.config import load_config
    from alpmd.testing.repogen import generate_repo, make_local_db, write_sync_db

    root = PacmanRoot(tmp_path / "root")
    metas = generate_repo(3, 400)
    write_sync_db(metas, tmp_path / "extra.db")
    root.add_repo("extra", tmp_path / "extra.db")
    make_local_db(root.dbpath, metas, installed=80, outdated=15, seed=3)
    handle, errors = Handle.from_config(load_config(str(root.config)))
    assert not errors
    ours = [f"{old.name} {old.version} -> {new.version}" for old, new in query.upgrades(handle)]
    theirs = root.pacman("-Qu").stdout.splitlines()
    assert len(ours) == 15 and ours == theirs


def test_a_stale_lock_held_open_by_a_user_is_still_stale() -> None:
    """Anybody may hold a path-only descriptor of a stale lock file (mode 000 included):
    that is no holder, or any user could make repair refuse for ever."""
    import shutil
    import subprocess
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="alpmd-stale-", dir="/tmp"))  # (others may enter)
    try:
        os.chmod(top, 0o755)
        handle = Handle(root=str(top))
        handle.lock()
        handle.unlock()
        Path(handle.lockfile).touch()  # left behind by a crash, mode 000 as pacman makes it
        os.chmod(handle.lockfile, 0o000)
        for parent in Path(handle.lockfile).parents:
            if parent == top:
                break
            os.chmod(parent, 0o755)
        script = (f"import os, time\nfd = os.open({handle.lockfile!r}, os.O_PATH)\n"
                  "print('ok', flush=True)\ntime.sleep(60)\n")
        user = subprocess.Popen(["/usr/bin/python3", "-c", script], stdout=subprocess.PIPE,
                                user=65534, group=65534, extra_groups=[])
        try:
            assert user.stdout is not None and user.stdout.readline() == b"ok\n"
            held = [f for f in os.listdir(f"/proc/{user.pid}/fd")
                    if os.readlink(f"/proc/{user.pid}/fd/{f}") == handle.lockfile]
            assert held, "the scenario needs the user's descriptor of the lock file"
            assert handle.lock_holder() == "stale"
        finally:
            user.kill()
            user.wait(timeout=10)
    finally:
        shutil.rmtree(top)
