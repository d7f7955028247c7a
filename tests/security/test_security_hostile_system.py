"""A full disk or a read-only file system gives a named error, and the daemon keeps
serving (issue 10, finding 10)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dbus.dbus_e2e import Client, Pkg, big, v
from tests.security.secworld import INSTALLED, World, build_world

REPO = [Pkg("tool", "1.0-1"), big("huge", 3 << 20),
        Pkg("small", "1.0-1", files={"etc/small.conf": b"small\n"})]


@pytest.fixture
def full_world(tmp_path: Path, user: str) -> Iterator[World]:
    yield from build_world(tmp_path, user, repo=REPO, installed=INSTALLED)


def _mount_over(where: Path, *, read_only: bool) -> None:
    """A 1 MiB tmpfs over ``where`` holding what was there: filled up, or read-only."""
    saved = where.with_name(where.name + ".saved")
    shutil.copytree(where, saved, symlinks=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], check=True)
    shutil.copytree(saved, where, symlinks=True, dirs_exist_ok=True)
    if read_only:
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
    else:
        fd = os.open(where / ".filler", os.O_WRONLY | os.O_CREAT)
        try:   # fill it to the last block
            while os.write(fd, bytes(4096)):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)


def _unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], check=False)
    shutil.rmtree(where.with_name(where.name + ".saved"), ignore_errors=True)


def _install(world: World, name: str) -> tuple[str, str, str]:
    async def go() -> tuple[str, str, str]:
        c = await Client.open(world.env.address)
        try:
            path = await c.manager("Install", "asa{sv}", [name],
                                   {"no-sysupgrade": v("b", True), "run": v("b", True)})
            res, err, text = await c.finished(path, timeout=60)
            return res, err, text
        finally:
            c.close()
    return asyncio.run(asyncio.wait_for(go(), 90))


@pytest.mark.parametrize("case", ["full", "read-only"])
def test_disk_full_and_read_only_are_named(full_world: World, case: str) -> None:
    """The local database's directory is full (or read-only) when the package is recorded:
    the transaction fails with a named error and the daemon keeps answering."""
    world = full_world
    local = world.root.root.dbpath / "local"
    try:
        _mount_over(local, read_only=case == "read-only")
        res, err, text = _install(world, "small")
        want = "org.alpm.Error.DiskFull" if case == "full" else "org.alpm.Error.ReadOnly"
        assert (res, err) == ("failed", want), (res, err, text)
        world.healthy()
    finally:
        _unmount(local)
    world.healthy()
