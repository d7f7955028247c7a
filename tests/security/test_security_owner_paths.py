"""Owns resolves a caller's paths with the caller's rights, as ``pacman -Qo`` run by that
user does. Before: the daemon resolved them as root, so ``<dir>/x/../../usr/share/tool/data``
had an owner only when ``<dir>/x`` existed, even in a directory the caller may not search:
a test of existence anywhere on the system."""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbus_fast import Message, MessageType

from alpmd.dbus import caller
from alpmd.dbus.bus import connect
from tests.security.secworld import World, build_world

#: a group the test user belongs to besides its own (made once, as the user is)
MEMBERS = "alpmd-sec-members"
TOOL = "tool;2.0-1;any;local"
OWNS = {"iface": "org.alpm.Query1", "member": "Owns", "sig": "as"}


@pytest.fixture
def public_world(user: str) -> Iterator[World]:
    """The default world below a directory every user may enter (pacman, run as the user,
    then reads the same databases the daemon does)."""
    where = Path(tempfile.mkdtemp(prefix="alpmd-owner-"))
    where.chmod(0o755)
    try:
        yield from build_world(where, user)
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may enter (pytest's own are private to root)."""
    where = Path(tempfile.mkdtemp(prefix="alpmd-owner-"))
    where.chmod(0o755)
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def _member_group(user: str) -> int:
    try:
        group = grp.getgrnam(MEMBERS)
    except KeyError:
        subprocess.run(["groupadd", "--system", MEMBERS], check=True, capture_output=True)
        group = grp.getgrnam(MEMBERS)
    if user not in group.gr_mem:
        subprocess.run(["gpasswd", "-a", user, MEMBERS], check=True, capture_output=True)
    return group.gr_gid


def _owns_as_root(w: World, paths: list[str]) -> list[list[str]]:
    async def go() -> list[list[str]]:
        bus = await connect(w.env.address)
        try:
            reply = await bus.call(Message(destination="org.alpm", path="/org/alpm",
                                           interface="org.alpm.Query1", member="Owns",
                                           signature="as", body=[paths]))
            assert reply.message_type is MessageType.METHOD_RETURN, reply.body
            return [list(pair) for pair in reply.body[0]]
        finally:
            bus.disconnect()
    return asyncio.run(asyncio.wait_for(go(), 60))


def _pacman_as(user: str, w: World, path: str) -> subprocess.CompletedProcess[str]:
    """``pacman -Qo path`` run by ``user`` with its login groups."""
    pw = pwd.getpwnam(user)
    return subprocess.run(["pacman", *w.root.root.args(), "-Qo", path], capture_output=True,
                          text=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
                          user=pw.pw_uid, group=pw.pw_gid,
                          extra_groups=os.getgrouplist(pw.pw_name, pw.pw_gid), timeout=60)


def test_owns_resolves_with_the_callers_rights(public_world: World, user: str) -> None:
    w = public_world
    root = w.root.root.root
    data = f"{root}/usr/share/tool/data"
    tool = f"{root}/usr/share/tool"
    (root / "private" / "x").mkdir(parents=True)
    (root / "private").chmod(0o700)
    members = root / "members"
    (members / "x").mkdir(parents=True)
    os.chown(members, 0, _member_group(user))
    members.chmod(0o750)
    (root / "link").symlink_to("usr/share/tool")
    hidden = [f"{root}/private/x/../../usr/share/tool/data",  # <dir>/x exists
              f"{root}/private/y/../../usr/share/tool/data"]  # <dir>/y does not
    reachable = [f"{root}/link/data",                         # a symlinked directory
                 f"{root}/usr/share/../share/tool/data",      # ".."
                 f"{root}/members/x/../../usr/share/tool/data",  # searchable by a group
                 f"{root}/link/../tool/"]               # a directory, through both
    # root resolves everything (its own rights): the oracle is real
    assert _owns_as_root(w, hidden) == [[data, TOOL]]
    results = w.hostile([{**OWNS, "body": [[p]]} for p in hidden + reachable])
    got = [r["ok"][0] for r in results]
    # the caller cannot tell whether private/x exists: both are unowned alike
    assert got[:2] == [[], []], got
    assert got[2:] == [[[data, TOOL]]] * 3 + [
        [[tool + "/", TOOL]]], got
    # pacman -Qo run by the user (with the same groups) says the same of each path
    for path, answer in zip(hidden + reachable, got, strict=True):
        r = _pacman_as(user, w, path)
        if answer:
            assert r.returncode == 0, (path, r.stdout, r.stderr)
            assert r.stdout == f"{answer[0][0]} is owned by tool 2.0-1\n", (path, r.stdout)
        else:
            assert r.returncode == 1 and r.stdout == "", (path, r.stdout, r.stderr)
            assert r.stderr == f"error: No package owns {path}\n", (path, r.stderr)
    # ... and pacman run by root finds what root's Owns found
    r = w.root.root.pacman("-Qo", hidden[0])
    assert r.returncode == 0 and r.stdout == f"{data} is owned by tool 2.0-1\n", r
    w.healthy()


def _thread_status() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with open("/proc/thread-self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups", "CapEff"):
                out[key] = value.split()
    return out


def test_the_identity_is_the_threads_own_and_given_back(open_dir: Path, user: str) -> None:
    """The switch the daemon's worker makes: the thread resolves with the user's uid, gid
    and groups and without root's file capabilities; another thread meanwhile keeps
    root's; afterwards the thread is root's again, capabilities included."""
    pw = pwd.getpwnam(user)
    gid = _member_group(user)
    members = open_dir / "members"
    members.mkdir()
    os.chown(members, 0, gid)
    members.chmod(0o750)
    private = open_dir / "private"
    private.mkdir(mode=0o700)
    who = caller.identity_of(pw.pw_uid)
    assert who == caller.FsIdentity(pw.pw_uid, pw.pw_gid,
                                    tuple(os.getgrouplist(user, pw.pw_gid)))
    assert gid in who.groups
    before = _thread_status()
    inside: dict[str, list[str]] = {}
    other: dict[str, list[str]] = {}
    switched, looked = threading.Event(), threading.Event()

    def elsewhere() -> None:
        switched.wait(30)
        other.update(_thread_status())
        looked.set()
    t = threading.Thread(target=elsewhere)
    t.start()
    with caller.resolving_as(who):
        inside.update(_thread_status())
        assert caller.fs_ids() == (pw.pw_uid, pw.pw_gid)
        os.listdir(members)                   # its group's
        with pytest.raises(PermissionError):
            os.listdir(private)               # root's alone
        switched.set()
        looked.wait(30)
    t.join()
    assert inside["Uid"][3] == str(pw.pw_uid) and inside["Gid"][3] == str(pw.pw_gid)
    assert sorted(map(int, inside["Groups"])) == sorted(set(who.groups))
    dac = 0b110  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    assert int(before["CapEff"][0], 16) & dac == dac
    assert int(inside["CapEff"][0], 16) & dac == 0
    assert other == before and _thread_status() == before
    os.listdir(private)


def test_a_uid_without_a_passwd_entry_resolves_with_no_group(open_dir: Path) -> None:
    """A caller whose uid no passwd entry names: that uid, the overflow group, no others
    (not root's group: a directory only group 0 may search stays closed)."""
    uid = 54329
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    who = caller.identity_of(uid)
    assert who == caller.FsIdentity(uid, caller.NO_GROUP, ())
    closed = open_dir / "closed"
    closed.mkdir()
    closed.chmod(0o750)
    with caller.resolving_as(who):
        assert _thread_status()["Groups"] == []
        with pytest.raises(PermissionError):
            os.listdir(closed)


def test_owns_passes_through_no_magic_link(public_world: World, user: str) -> None:
    """/proc's magic links (``/proc/<pid>/cwd``, ``/proc/<pid>/fd/N``) lead into a directory
    without searching the ones above it. The worker taking a user's file-system ids keeps
    root's other capabilities (``CAP_SYS_PTRACE``), so it could follow them for any
    process: the cwd of a root process inside a directory closed to the user made
    ``Owns(["/proc/<pid>/cwd/data"])`` answer the file's real path and owner (and the
    daemon's own ``/proc/self/fd/N`` are always open to it). Now a user's look-up passes
    through none; root's still does, as pacman run by root."""
    w = public_world
    root = w.root.root.root
    data = f"{root}/usr/share/tool/data"
    (root / "usr" / "share").chmod(0o700)  # closed to the user above the package's dir
    dirfd = os.open(f"{root}/usr/share/tool", os.O_RDONLY | os.O_DIRECTORY)
    sleeper = subprocess.Popen(["sleep", "600"], cwd=f"{root}/usr/share/tool",
                               pass_fds=(dirfd,))
    try:
        via = [f"/proc/{sleeper.pid}/cwd/data", f"/proc/{sleeper.pid}/fd/{dirfd}/data"]
        # the oracle is real: root resolves each one to the package's file
        for path in via:
            assert _owns_as_root(w, [path]) == [[data, TOOL]], path
        got = [r["ok"][0] for r in w.hostile([{**OWNS, "body": [[p]]} for p in via])]
        assert got == [[]] * 2, got
        # pacman -Qo run by the user cannot follow them either
        for path in via:
            r = _pacman_as(user, w, path)
            assert r.returncode == 1 and r.stdout == "", (path, r.stdout, r.stderr)
        # a plain symbolic link is still followed
        (root / "usr" / "share").chmod(0o755)
        (root / "tl").symlink_to("usr/share/tool")
        assert w.hostile([{**OWNS, "body": [[f"{root}/tl/data"]]}])[0]["ok"] == [
            [[data, TOOL]]]
    finally:
        sleeper.kill()
        sleeper.wait()
        os.close(dirfd)
        (root / "usr" / "share").chmod(0o755)
    w.healthy()
