"""Work an unprivileged client can ask for without authorisation must not stall the daemon
(issue 10, findings 2 and 3): hostile regular expressions, hostile package files."""

from __future__ import annotations

import concurrent.futures
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dbus.dbus_e2e import Pkg
from tests.security.secworld import INSTALLED, REPO, World, build_world, named

LONG = "a" * 48
DEADLINES = ("--limit", "search_deadline=4", "--limit", "inspect_deadline=4",
             "--limit", "simulate_deadline=4")


@pytest.fixture
def long_world(tmp_path: Path, user: str) -> Iterator[World]:
    yield from build_world(tmp_path, user, installed=[*INSTALLED, Pkg(LONG)], repo=REPO,
                           daemon_args=DEADLINES)


def _while_hostile(world: World, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the hostile calls in the background; meanwhile a root client must get answers."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(world.hostile, calls, timeout=120)
        for _ in range(3):
            world.probe()
        return fut.result()


def test_catastrophic_regex_does_not_stall_the_daemon(long_world: World) -> None:
    search = {"iface": "org.alpm.Query1", "member": "Search", "sig": "asa{sv}"}
    calls = [{**search, "body": [["((.+)+)+!"], {"scope": {"v": ["s", "installed"]}}]},
             {**search, "body": [["(a|aa)+$x", "tool"], {"scope": {"v": ["s", "installed"]}}]},
             {**search, "body": [["(a+)+!"], {"fields": {"v": ["as", ["name"]]},
                                              "scope": {"v": ["s", "installed"]}}]},
             # a plain and a harmless regular search still work
             {**search, "body": [["tool"], {"scope": {"v": ["s", "installed"]}}]},
             {**search, "body": [["^t.ol$"], {"scope": {"v": ["s", "installed"]}}]},
             {**search, "body": [["[[:bad"], {}]},
             {**search, "body": [["(a|aa)+!"], {"fields": {"v": ["as", ["name"]]},
                                                "scope": {"v": ["s", "installed"]}}]}]
    results = _while_hostile(long_world, calls)
    # Patterns catastrophic for a backtracking matcher: each ends in time, either answered
    # correctly (the bounded matcher saw that nothing can match: no row has a "!") or
    # refused by name at the deadline; (a|aa)+ backtracks in every matcher, so that one
    # must be the named Timeout (the bound really fires).
    for r in results[:3]:
        assert r == {"ok": [[]]} or named(r) == "org.alpm.Error.Timeout", results
    assert named(results[1]) == named(results[6]) == "org.alpm.Error.Timeout", results
    assert "pattern-too-costly" in results[1]["text"], results
    assert [row[1] for row in results[3]["ok"][0]] == ["tool"]
    assert [row[1] for row in results[4]["ok"][0]] == ["tool"]
    assert named(results[5]) == "org.alpm.Error.InvalidArgs"
    long_world.healthy()


def _bomb(where: Path, gib: int) -> Path:
    """A package whose one member inflates to ``gib`` GiB of zeros: a gzip member with the
    tar headers, then the same 64 MiB-of-zeros gzip member over and over (~1 MB per GiB)."""
    info = b"pkgname = bomb\npkgver = 1.0-1\narch = any\nsize = 1\n"
    meta = tarfile.TarInfo(".PKGINFO")
    meta.size = len(info)
    big = tarfile.TarInfo("usr/share/bomb/zeros")
    big.size = gib << 30
    head = (meta.tobuf(tarfile.PAX_FORMAT) + info + b"\0" * (-len(info) % 512)
            + big.tobuf(tarfile.PAX_FORMAT))

    def member(data: bytes) -> bytes:
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()
    zeros = member(bytes(64 << 20))
    out = where / "bomb-1.0-1-any.pkg.tar.gz"
    with open(out, "wb") as fh:
        fh.write(member(head))
        for _ in range(gib * 16):
            fh.write(zeros)
        fh.write(member(bytes(1024)))  # the end-of-archive blocks
    return out


def test_package_bomb_does_not_stall_the_daemon(long_world: World) -> None:
    bomb = _bomb(long_world.public, 32)
    bomb.chmod(0o644)
    calls = [{"iface": "org.alpm.Query1", "member": "InspectFile", "sig": "h", "body": [0],
              "fds": [{"open": str(bomb)}]}]
    results = _while_hostile(long_world, calls)
    assert named(results[0]) in ("org.alpm.Error.Timeout", "org.alpm.Error.InvalidArgs",
                                 "org.alpm.Error.LimitExceeded"), results
    long_world.healthy()
