"""A root daemon as an unprivileged user meets it: a private system bus, the real polkitd
with the shipped policy (no rules unless a test adds one), a small root whose repository
is served by a loopback mirror. After each test the daemon must still be running, still
answer a root client, and its log must hold no traceback."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from alpmd.dbus.bus import connect
from alpmd.testing.dbusenv import (
    CLIENT_USER,
    SHIPPED_RULES,
    DBusEnv,
    ensure_user,
    have_polkit,
    have_tools,
)
from tests.dbus.dbus_e2e import E2ERoot, Pkg, make_root, mirror
from tests.security import hostile

REPO = [Pkg("tool", "1.0-1"), Pkg("editor", "1.0-1", depends=["sh-provider"]),
        Pkg("prov-a", "1.0-1", provides=["sh-provider"]),
        Pkg("prov-b", "1.0-1", provides=["sh-provider"])]
INSTALLED = [Pkg("tool", "2.0-1")]
PROBE_BOUND = 20.0


@dataclass
class World:
    env: DBusEnv
    root: E2ERoot
    proc: Any
    log: Path
    user: str
    public: Path  # a directory the unprivileged user can read

    def hostile(self, calls: Sequence[dict[str, Any]], *, repeat: int = 1, linger: float = 0,
                timeout: float = 300, **extra: Any) -> list[dict[str, Any]]:
        """Send ``calls`` as the unprivileged user (one connection); their results."""
        script = {"calls": list(calls), "repeat": repeat, "linger": linger, **extra}
        address = self.env.address

        def client() -> Any:
            return asyncio.run(asyncio.wait_for(hostile.run(address, script), timeout))
        result: list[dict[str, Any]] = as_user(self.user, client)
        return result

    def probe(self) -> None:
        """A root client gets its answers (a hang detector, not a timing assertion)."""
        async def go() -> None:
            bus = await connect(self.env.address)
            try:
                from dbus_fast import Message, MessageType
                for iface, member, sig, body in (
                        ("org.alpm.Query1", "ListRepos", "", []),
                        ("org.freedesktop.DBus.Properties", "Get", "ss",
                         ["org.alpm.Manager1", "State"])):
                    reply = await bus.call(Message(destination="org.alpm", path="/org/alpm",
                                                   interface=iface, member=member,
                                                   signature=sig, body=body))
                    assert reply.message_type is MessageType.METHOD_RETURN, reply.body
            finally:
                bus.disconnect()
        asyncio.run(asyncio.wait_for(go(), PROBE_BOUND))

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def fds_within(self, bound: int, wait: float = 10.0) -> int:
        """The daemon's descriptor count, once it is at most ``bound`` (or after ``wait``
        seconds): a worker may hold one for a moment after a call's answer went out, and
        what matters is that none is *kept*."""
        deadline = time.monotonic() + wait
        while (count := self.fd_count()) > bound and time.monotonic() < deadline:
            time.sleep(0.05)
        return count

    def healthy(self) -> None:
        assert self.proc.poll() is None, "the daemon died"
        self.probe()
        text = self.log.read_text(errors="replace")
        assert "Traceback" not in text, text[-4000:]


def as_user(user: str, fn: Callable[[], Any]) -> Any:
    """``fn()``'s JSON result, computed in a forked child running as ``user`` (its bus
    connection then authenticates as that uid; no interpreter needs to be exec'd)."""
    pw = pwd.getpwnam(user)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: whatever happens, it ends here (never back into pytest)
        code = 1
        try:
            os.close(r)
            try:
                os.setgroups([])
                os.setgid(pw.pw_gid)
                os.setuid(pw.pw_uid)
                data = json.dumps({"result": fn()})
                code = 0
            except BaseException:
                data = json.dumps({"failure": traceback.format_exc()})
            with os.fdopen(w, "w") as fh:
                fh.write(data)
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    got = json.loads(data)
    assert "result" in got, got.get("failure")
    return got["result"]


async def send_descriptors(bus: MessageBus, path: str | os.PathLike[str], count: int = 8) -> None:
    """Send the daemon a signal carrying ``count`` fresh read-only descriptors of ``path``,
    then close ours: what a client does to make the daemon hold one of its own files."""
    sent = [os.open(path, os.O_RDONLY) for _ in range(count)]
    try:
        await bus.send(Message(destination="org.alpm", path="/org/alpm",
                               interface="org.alpm.Manager1", member="Poke",
                               message_type=MessageType.SIGNAL, unix_fds=sent))
    finally:
        for fd in sent:
            os.close(fd)


def named(result: dict[str, Any]) -> str:
    """The error name of a result; every error must be one of the daemon's own."""
    name = result.get("error", "")
    assert re.fullmatch(r"org\.alpm\.Error\.[A-Za-z]+", name), result
    return str(name)


@pytest.fixture(scope="session")
def user() -> str:
    why = have_tools() or have_polkit()
    if why:
        pytest.fail(f"the security tests need a private bus with polkitd: {why}")
    ensure_user(CLIENT_USER)
    return CLIENT_USER


def build_world(tmp: Path, user: str, *, rules: str = SHIPPED_RULES,
                repo: Sequence[Pkg] = REPO, installed: Sequence[Pkg] = INSTALLED,
                daemon_args: Sequence[str] = (),
                prepare: Callable[[E2ERoot], None] | None = None) -> Iterator[World]:
    public = Path(tempfile.mkdtemp(prefix="alpmd-sec-"))
    public.chmod(0o755)
    srv = tmp / "srv"
    srv.mkdir()
    env = DBusEnv(rules=rules)
    try:
        with mirror(root=srv) as m:
            srv.rmdir()
            e = make_root(tmp, list(repo), list(installed), m.url)
            if prepare is not None:
                prepare(e)
            env.start()
            proc = env.spawn([sys.executable, "-m", "alpmd.dbus.service", "--config",
                              str(e.root.config), "--idle-timeout", "0",
                              "--keep-finished", "30", *daemon_args], log_name="alpmd.log")
            env.wait_for_name("org.alpm", proc=proc)
            w = World(env, e, proc, env.workdir / "alpmd.log", user, public)
            yield w
            w.healthy()
    finally:
        env.stop()
        shutil.rmtree(public, ignore_errors=True)


@pytest.fixture
def world(tmp_path: Path, user: str) -> Iterator[World]:
    yield from build_world(tmp_path, user)


def sqlite_store(e: E2ERoot) -> None:
    """A world's ``prepare``: the local database converted to the SQLite store."""
    from alpmd.engine.db.convert import convert_dbpath
    from alpmd.engine.db.stores import Store

    convert_dbpath(str(e.root.dbpath), Store.SQLITE)
    (e.root.root / "etc" / "alpmd.conf").write_text("[options]\nBackend = sqlite\n")


def sqlite_worlds(user: str, **kwargs: Any) -> Iterator[World]:
    """A world on the SQLite store (``kwargs`` as for :func:`build_world`), its root in a
    directory every user may enter (as /var/lib/pacman is)."""
    where = Path(tempfile.mkdtemp(prefix="alpmd-sqlite-"))
    where.chmod(0o755)
    try:
        yield from build_world(where, user, prepare=sqlite_store, **kwargs)
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def sqlite_world(user: str) -> Iterator[World]:
    """The default world on the SQLite store."""
    yield from sqlite_worlds(user)


def manager_property(w: World, name: str) -> Any:
    """A Manager1 property as a root client reads it."""
    async def go() -> Any:
        bus = await connect(w.env.address)
        try:
            reply = await bus.call(Message(
                destination="org.alpm", path="/org/alpm",
                interface="org.freedesktop.DBus.Properties", member="Get", signature="ss",
                body=["org.alpm.Manager1", name]))
            assert reply.message_type is MessageType.METHOD_RETURN, reply.body
            return reply.body[0].value
        finally:
            bus.disconnect()
    return asyncio.run(asyncio.wait_for(go(), 60))
