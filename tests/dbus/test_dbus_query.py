"""Query1 over the private system bus, called as an unprivileged user and checked
against Debian's pacman on the same root."""

from __future__ import annotations

import re
from typing import Any

import pytest
from dbus_fast import DBusError, Message, MessageType

from alpmd.dbus.bus import connect
from alpmd.testing.dbusenv import DBusEnv
from alpmd.testing.oracle import PacmanRoot

Q = ("org.alpm", "/org/alpm", "org.alpm.Query1")


def _strings(out: str) -> list[str]:
    return re.findall(r'"((?:[^"\\]|\\.)*)"', out)


@pytest.mark.oracle
@pytest.mark.parametrize("term", ["^lib", "lib", "[[:digit:]]$", "^(py|lib).*-", "x{2,}|q"])
def test_search_matches_pacman(daemon: DBusEnv, sandbox: PacmanRoot, client_user: str,
                               term: str) -> None:
    """Plain words (matched at once) and regular expressions (the engine's bounded matcher,
    in a worker) find what pacman -Ss finds."""
    out = daemon.busctl("call", *Q, "Search", "asa{sv}", "1", term, "0", user=client_user)
    ids = _strings(out.stdout)[0::5]
    names = sorted(i.split(";")[0] for i in ids)
    pac = sandbox.pacman("-Ss", term)
    want = sorted(line.split()[0].split("/", 1)[1] for line in pac.stdout.splitlines()
                  if line and not line.startswith(" "))
    assert want and names == want


@pytest.mark.oracle
def test_installed_scope_and_versions_match_pacman(daemon: DBusEnv, sandbox: PacmanRoot,
                                                    client_user: str) -> None:
    out = daemon.busctl("call", *Q, "Search", "asa{sv}", "0", "1", "scope", "s", "installed",
                        user=client_user)
    ids = _strings(out.stdout)[0::5]
    got = sorted((i.split(";")[0], i.split(";")[1]) for i in ids)
    pac = sandbox.pacman("-Q").stdout.split()
    want = sorted(zip(pac[0::2], pac[1::2], strict=True))
    assert got == want


@pytest.mark.oracle
def test_get_packages_matches_pacman_si(daemon: DBusEnv, sandbox: PacmanRoot,
                                        client_user: str, arun: Any) -> None:
    pac = sandbox.pacman("-Si", "glibc").stdout
    fields = dict(re.findall(r"^(\w[\w ]*?)\s*: (.*)$", pac, re.M))

    async def go() -> dict[str, Any]:
        bus = await connect(daemon.address)
        try:
            ids = await _call(bus, "Resolve", "asa{sv}", [["glibc"], {"prefer": _v("s", "sync")}])
            rows = await _call(bus, "GetPackages", "asas",
                               [[ids[0]], ["name", "version", "depends", "description"]])
            return {k: v.value for k, v in rows[0][0].items()}
        finally:
            bus.disconnect()
    row = arun(go())
    assert row["version"] == fields["Version"]
    assert row["description"] == fields["Description"]
    deps = fields["Depends On"].split() if fields["Depends On"] != "None" else []
    assert row["depends"] == deps


def test_errors_are_named(daemon: DBusEnv, arun: Any) -> None:
    async def go() -> list[str]:
        bus = await connect(daemon.address)
        names = []
        try:
            for member, sig, body in (("Resolve", "asa{sv}", [["no-such-pkg-zz"], {}]),
                                      ("Search", "asa{sv}", [["[unclosed"], {}]),
                                      ("Search", "asa{sv}", [[], {"scope": _v("s", "bogus")}]),
                                      ("GetPackages", "asas", [["not-an-id"], []])):
                try:
                    await _call(bus, member, sig, body)
                    names.append("no error")
                except DBusError as exc:
                    names.append(f"{exc.type} {exc.text.split(':')[0]}")
        finally:
            bus.disconnect()
        return names
    assert arun(go()) == ["org.alpm.Error.NotFound pkg-not-found",
                          "org.alpm.Error.InvalidArgs invalid-regex",
                          "org.alpm.Error.InvalidArgs wrong-args",
                          "org.alpm.Error.InvalidArgs wrong-args"]


def test_owns_and_files(daemon: DBusEnv, sandbox: PacmanRoot, arun: Any) -> None:
    async def go() -> tuple[list[str], list[Any]]:
        bus = await connect(daemon.address)
        try:
            ids = await _call(bus, "Resolve", "asa{sv}", [["bash"], {}])
            files = (await _call(bus, "GetFiles", "s", [ids[0]]))[0]
            target = str(sandbox.root) + "/" + next(f for f in files if not f.endswith("/"))
            owners = (await _call(bus, "Owns", "as", [[target]]))[0]
            return [ids[0]], owners
        finally:
            bus.disconnect()
    ids, owners = arun(go())
    # pacman -Qo needs the file on disk; ours answers from the database like -Qo on a path
    # inside the root; the owner must be the package whose file list it came from.
    assert owners and owners[0][1] == ids[0]


def test_inspect_file_takes_a_descriptor(daemon: DBusEnv, tmp_path: Any, arun: Any) -> None:
    from alpmd.engine.formats.desc import PkgMeta
    from alpmd.testing.pkgbuild import FileSpec, build_package
    path = build_package(tmp_path, PkgMeta(name="fdpkg", version="1.2-3"),
                         [FileSpec("usr/share/fdpkg/a", b"x")])

    async def go() -> dict[str, Any]:
        bus = await connect(daemon.address)
        fd = open(path, "rb")  # noqa: SIM115
        try:
            reply = await bus.call(Message(destination=Q[0], path=Q[1], interface=Q[2],
                                           member="InspectFile", signature="h", body=[0],
                                           unix_fds=[fd.fileno()]))
            assert reply.message_type is MessageType.METHOD_RETURN, reply.body
            return {k: v.value for k, v in reply.body[0].items()}
        finally:
            fd.close()
            bus.disconnect()
    info = arun(go())
    assert (info["name"], info["version"]) == ("fdpkg", "1.2-3")


def _v(sig: str, value: Any) -> Any:
    from dbus_fast.signature import Variant
    return Variant(sig, value)


async def _call(bus: Any, member: str, sig: str, body: list[Any]) -> Any:
    reply = await bus.call(Message(destination=Q[0], path=Q[1], interface=Q[2], member=member,
                                   signature=sig, body=body))
    if reply.message_type is MessageType.ERROR:
        raise DBusError(reply.error_name, reply.body[0] if reply.body else "")
    return reply.body[0] if member == "Resolve" else reply.body


@pytest.mark.oracle
@pytest.mark.parametrize(("scope", "flags"), [("explicit", "-Qeq"), ("deps", "-Qdq"),
                                              ("dependencies", "-Qdq"), ("orphans", "-Qdtq"),
                                              ("foreign", "-Qmq"), ("native", "-Qnq")])
def test_installed_scopes_match_pacman(daemon: DBusEnv, sandbox: PacmanRoot, client_user: str,
                                       scope: str, flags: str) -> None:
    out = daemon.busctl("call", *Q, "Search", "asa{sv}", "0", "1", "scope", "s", scope,
                        user=client_user)
    got = sorted(i.split(";")[0] for i in _strings(out.stdout)[0::5])
    pac = sandbox.pacman(flags)
    want = sorted(pac.stdout.split())
    # pacman -Q exits 1 when its filter keeps nothing
    assert pac.returncode == (0 if want else 1), pac.stderr
    assert got == want
