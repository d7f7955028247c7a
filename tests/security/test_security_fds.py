"""File-descriptor arguments from an unprivileged client (issue 10, findings 1, 5 and 6)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

from alpmd.engine.formats.desc import PkgMeta
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.security.secworld import World, named

Q = {"iface": "org.alpm.Query1", "member": "InspectFile", "sig": "h"}
M = {"iface": "org.alpm.Manager1", "member": "InstallFiles", "sig": "aha{sv}"}


def _package(where: Path, name: str = "secret") -> Path:
    return build_package(where, PkgMeta(name=name, version="6.6-6", desc="not yours"),
                         [FileSpec(f"usr/share/{name}/a", b"x")])


def test_fd_index_without_fd_is_invalid_args(world: World) -> None:
    """h / ah values with no descriptor attached are indexes, never the daemon's own fds."""
    calls = [{**Q, "body": [n]} for n in range(0, 40)]
    calls += [{**M, "body": [list(range(n, n + 8)), {}]} for n in range(0, 40, 8)]
    calls += [{**M, "body": [[0, 0], {}], "fds": [{"open": "/etc/hostname"}]}]
    results = world.hostile(calls)
    assert all(named(r) == "org.alpm.Error.InvalidArgs" for r in results), results
    world.healthy()


def test_descriptors_that_are_not_readable_files(world: World) -> None:
    """O_PATH, directories, FIFOs, sockets, devices and write-only descriptors are refused;
    a root-only package file opened with O_PATH gives away nothing."""
    secret_dir = world.public / "root-only"
    secret_dir.mkdir()
    secret_dir.chmod(0o755)
    pkg = _package(secret_dir)
    pkg.chmod(0o600)                       # the user cannot read it...
    writable = world.public / "w.pkg.tar.gz"
    shutil.copy(_package(world.public, "mine"), writable)
    writable.chmod(0o666)
    fifo = world.public / "fifo"
    os.mkfifo(fifo)
    fifo.chmod(0o666)
    specs: list[dict[str, Any]] = [
        {"open": str(pkg), "flags": ["O_PATH"]},          # ...but may name it (O_PATH)
        {"open": "/etc/shadow", "flags": ["O_PATH"]},
        {"open": str(world.public), "flags": ["O_RDONLY", "O_DIRECTORY"]},
        {"fifo": str(fifo)},
        {"socket": True},
        {"open": "/dev/zero"},
        {"pipe": "r"},
        {"open": str(writable), "flags": ["O_WRONLY"]},
    ]
    results = world.hostile([{**Q, "body": [0], "fds": [s]} for s in specs]
                            + [{**M, "body": [[0], {}], "fds": [s]} for s in specs])
    for spec, r in zip(specs + specs, results, strict=True):
        assert named(r) in ("org.alpm.Error.InvalidArgs", "org.alpm.Error.NotAuthorized"), \
            (spec, r)
    assert all(named(r) == "org.alpm.Error.InvalidArgs" for r in results[:len(specs)])
    assert "secret" not in repr(results)
    world.healthy()


def test_inspect_reads_through_the_callers_descriptor(world: World) -> None:
    mine = _package(world.public, "mine")
    mine.chmod(0o644)
    (r,) = world.hostile([{**Q, "body": [0], "fds": [{"open": str(mine)}]}])
    info = {k: v["v"][1] for k, v in r["ok"][0].items()}
    # usr/, usr/share/, usr/share/mine/, usr/share/mine/a
    assert (info["name"], info["version"], info["files"]) == ("mine", "6.6-6", 4)
    world.healthy()


def test_descriptors_are_never_kept_without_authorisation(world: World) -> None:
    """InstallFiles by a caller polkit refuses keeps no descriptor; neither do descriptors
    attached to calls that take none. The daemon's fd table stays put."""
    pkg = _package(world.public, "mine")
    pkg.chmod(0o644)
    before = world.fd_count()
    sixteen = [{"open": str(pkg)}] * 16
    results = world.hostile([{**M, "body": [list(range(16)), {}], "fds": sixteen},
                             {"iface": "org.alpm.Query1", "member": "ListRepos",
                              "fds": sixteen},
                             {"iface": "org.alpm.Query1", "member": "Resolve",
                              "sig": "asa{sv}", "body": [["tool"], {}], "fds": sixteen}],
                            repeat=40)
    refused = results[0::3]
    assert all(named(r) == "org.alpm.Error.NotAuthorized" for r in refused), refused[:3]
    assert all("ok" in r for r in results[1::3])
    world.healthy()
    # a small slack for what the daemon opens for itself (the log, a handle)
    assert world.fds_within(before + 8) <= before + 8, (before, world.fd_count())


def test_unix_socket_path_is_not_a_package(world: World) -> None:
    """A bound unix socket (a path the user owns) is not a regular file either."""
    path = world.public / "sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    path.chmod(0o666)
    try:
        (r,) = world.hostile([{**Q, "body": [0], "fds": [{"open": str(path),
                                                          "flags": ["O_PATH"]}]}])
    finally:
        s.close()
    assert named(r) == "org.alpm.Error.InvalidArgs"


def test_descriptors_sent_with_signals_are_closed(world: World) -> None:
    """A unicast signal to the daemon carrying descriptors: nobody handles it, and its
    descriptors must not stay open in the daemon (else any user fills its table)."""
    world.hostile([{**Q, "body": [0], "fds": [{"open": "/etc/hostname"}]}])  # warm up
    before = world.fd_count()
    sig = {"signal": True, "iface": "org.alpm.Manager1", "member": "Poke", "sig": "h",
           "body": [0]}
    results = world.hostile([{**sig, "fds": [{"open": "/etc/hostname"}] * 4}] * 40)
    assert results == [{"sent": True}] * 40, results[:3]
    world.probe()  # (the daemon has read them: it answered a later call)
    assert world.fds_within(before + 15) < before + 16, (before, world.fd_count())
    world.healthy()
