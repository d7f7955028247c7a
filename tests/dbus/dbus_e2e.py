"""End-to-end pieces for the transaction tests: a small root whose repository is served
by a loopback mirror, a private bus with one daemon on it, and a Python client that
drives transaction objects and records their signals."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbus_fast import DBusError, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.signature import Variant

from alpmd.dbus.bus import connect
from alpmd.engine.formats.desc import PkgMeta
from alpmd.testing.dbusenv import DBusEnv
from alpmd.testing.mirror import MirrorServer
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package, sync_meta

DEST = "org.alpm"
ROOT_PATH = "/org/alpm"
MANAGER = "org.alpm.Manager1"
QUERY = "org.alpm.Query1"
TRANS = "org.alpm.Transaction1"


@dataclass
class Pkg:
    """A test package: ``files`` maps a path to its content."""

    name: str
    version: str = "1.0-1"
    depends: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    files: dict[str, bytes] | None = None
    install: str | None = None

    def build(self, outdir: Path) -> Path:
        files = self.files if self.files is not None else {
            f"usr/share/{self.name}/data": f"{self.name} {self.version}\n".encode()}
        meta = PkgMeta(self.name, self.version, desc=f"{self.name} e2e package",
                       depends=list(self.depends), provides=list(self.provides))
        return build_package(outdir, meta, [FileSpec(p, d) for p, d in files.items()],
                             install=self.install, compression="gz")


def big(name: str, size: int, version: str = "1.0-1", seed: int = 7) -> Pkg:
    """A package with ``size`` incompressible bytes (a download that takes a while)."""
    data = random.Random(seed).randbytes(size)
    return Pkg(name, version, files={f"usr/share/{name}/blob": data})




@dataclass
class E2ERoot:
    """A root, its repository directory (served by the mirror) and the built files."""

    root: PacmanRoot
    srv: Path
    built: dict[str, Path]

    def publish(self, pkgs: Sequence[Pkg], workdir: Path) -> None:
        """(Re)write the repository ``test`` with these packages."""
        from alpmd.testing.repogen import write_sync_db

        for stale in self.srv.iterdir():
            stale.unlink()
        metas = []
        for p in pkgs:
            path = p.build(workdir)
            self.built[f"{p.name}-{p.version}"] = path
            shutil.copyfile(path, self.srv / path.name)
            metas.append(sync_meta(path))
        write_sync_db(metas, self.srv / "test.db")

    def installed(self) -> dict[str, str]:
        local = self.root.dbpath / "local"
        out = {}
        for d in local.iterdir():
            if d.is_dir():
                name, ver, rel = d.name.rsplit("-", 2)
                out[name] = f"{ver}-{rel}"
        return out


def make_root(tmp: Path, repo: Sequence[Pkg], installed: Sequence[Pkg], mirror_url: str
              ) -> E2ERoot:
    """A root with ``installed`` in its local database and ``repo`` on the mirror.

    The live sync database starts as a copy of the mirror's (as after a -Sy)."""
    root = PacmanRoot(tmp / "root")
    srv = tmp / "srv"
    srv.mkdir()
    e = E2ERoot(root, srv, {})
    work = tmp / "pkgs"
    work.mkdir()
    for p in installed:
        path = p.build(work)
        e.built[f"{p.name}-{p.version}"] = path
        _install_file(root, path)
    e.publish(repo, work)
    shutil.copyfile(srv / "test.db", root.dbpath / "sync" / "test.db")
    root.repos.append("test")
    root.write_config()
    conf = root.config.read_text().replace(f"Server = file://{root.root}/srv/test",
                                           f"Server = {mirror_url}")
    root.config.write_text(conf)
    return e


def _install_file(root: PacmanRoot, path: Path) -> None:
    """Install a package file with our own engine (no pacman needed)."""
    from alpmd.engine.config import load_config
    from alpmd.engine.handle import Handle
    from alpmd.engine.trans import Transaction

    handle, _ = Handle.from_config(load_config(str(root.config)))
    try:
        with Transaction(handle) as t:
            t.add_file(str(path))
            t.prepare()
            t.commit()
    finally:
        handle.release()


# -- the daemon ---------------------------------------------------------------------


@contextmanager
def running_daemon(env: DBusEnv, config: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """alpmd on ``env``'s bus for ``config``; killed (with its session) afterwards."""
    proc = start_daemon(env, config, *extra)
    try:
        yield proc
    finally:
        stop_daemon(proc)


def start_daemon(env: DBusEnv, config: Path, *extra: str) -> subprocess.Popen[bytes]:
    proc = env.spawn([sys.executable, "-m", "alpmd.dbus.service", "--config", str(config),
                      "--idle-timeout", "0", "--keep-finished", "30", *extra])
    env.wait_for_name(DEST, proc=proc)
    return proc


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        except ProcessLookupError:
            pass


@contextmanager
def private_bus(tmp: Path) -> Iterator[DBusEnv]:
    """A private system-role bus without polkitd (the tests call as root)."""
    env = DBusEnv(tmp / "bus", polkit=False)
    env.start()
    try:
        yield env
    finally:
        env.stop()


@contextmanager
def mirror(**kwargs: Any) -> Iterator[MirrorServer]:
    """A loopback mirror serving ``root`` (a thread in this process)."""
    server = MirrorServer(**kwargs)
    with server.threaded() as s:
        yield s


@contextmanager
def served_root(tmp: Path, repo: Sequence[Pkg], installed: Sequence[Pkg]
                ) -> Iterator[tuple[E2ERoot, DBusEnv]]:
    """A root whose repository a loopback mirror serves, and a private bus for its daemon."""
    srv = tmp / "srv"
    srv.mkdir()
    with mirror(root=srv) as m:
        srv.rmdir()  # make_root writes the mirror's tree itself
        e = make_root(tmp, repo, installed, m.url)
        with private_bus(tmp) as env:
            yield e, env


async def owned(c: Client) -> None:
    """Wait (bounded) until a daemon started in this process owns org.alpm."""
    deadline = time.monotonic() + 60
    while not (await c.raw("org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "NameHasOwner", "s", ["org.alpm"]))[0]:
        assert time.monotonic() < deadline, "the daemon never took org.alpm"
        await asyncio.sleep(0.05)


# -- the client ---------------------------------------------------------------------


class Client:
    """A root client on the private bus that records every signal of org.alpm."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.signals: list[Message] = []
        self._waiters: list[tuple[Any, asyncio.Future[Message]]] = []

    @classmethod
    async def open(cls, address: str) -> Client:
        bus = await connect(address)
        c = cls(bus)
        bus.add_message_handler(c._on_message)
        await c.raw("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                    "AddMatch", "s", ["type='signal',sender='org.alpm'"])
        return c

    def _on_message(self, msg: Message) -> bool:
        if msg.message_type is MessageType.SIGNAL:
            self.signals.append(msg)
            for pred, fut in list(self._waiters):
                if not fut.done() and pred(msg):
                    fut.set_result(msg)
        return False

    async def raw(self, dest: str, path: str, iface: str, member: str, sig: str = "",
                  body: Sequence[Any] = (), fds: Sequence[int] = ()) -> list[Any]:
        reply = await self.bus.call(Message(destination=dest, path=path, interface=iface,
                                            member=member, signature=sig, body=list(body),
                                            unix_fds=list(fds)))
        assert reply is not None
        if reply.message_type is MessageType.ERROR:
            raise DBusError(reply.error_name, reply.body[0] if reply.body else "")
        return list(reply.body)

    async def manager(self, member: str, sig: str = "", *body: Any) -> Any:
        out = await self.raw(DEST, ROOT_PATH, MANAGER, member, sig, body)
        return out[0] if out else None

    async def query(self, member: str, sig: str = "", *body: Any) -> Any:
        out = await self.raw(DEST, ROOT_PATH, QUERY, member, sig, body)
        return out[0] if out else None

    async def tx(self, path: str, member: str, sig: str = "", *body: Any) -> Any:
        out = await self.raw(DEST, path, TRANS, member, sig, body)
        return out[0] if out else None

    async def prop(self, path: str, name: str, iface: str = TRANS) -> Any:
        out = await self.raw(DEST, path, "org.freedesktop.DBus.Properties", "Get", "ss",
                             [iface, name])
        return out[0].value

    async def props(self, path: str, iface: str = TRANS) -> dict[str, Any]:
        out = await self.raw(DEST, path, "org.freedesktop.DBus.Properties", "GetAll", "s",
                             [iface])
        return {k: v.value for k, v in out[0].items()}

    async def wait_signal(self, pred: Any, timeout: float = 30) -> Message:
        for msg in self.signals:
            if pred(msg):
                return msg
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._waiters.remove((pred, fut))

    async def finished(self, path: str, timeout: float = 60) -> tuple[str, str, str]:
        """Wait for the transaction's Finished signal (or a finished State)."""
        fut = asyncio.ensure_future(self.wait_signal(
            lambda m: m.path == path and m.member == "Finished", timeout))
        deadline = time.monotonic() + timeout
        while not fut.done():
            if await self.prop(path, "State") == "finished":
                fut.cancel()
                res, (err, text) = await self.prop(path, "Result"), await self.prop(path, "Error")
                return res, err, text
            if time.monotonic() > deadline:
                fut.cancel()
                raise TimeoutError(f"{path} did not finish")
            await asyncio.wait({fut}, timeout=0.2)
        msg = fut.result()
        return msg.body[0], msg.body[1], msg.body[2]

    def of(self, path: str, member: str) -> list[list[Any]]:
        return [list(m.body) for m in self.signals if m.path == path and m.member == member]

    def close(self) -> None:
        self.bus.disconnect()


def v(sig: str, value: Any) -> Variant:
    return Variant(sig, value)


def run(coro: Any, timeout: float = 60) -> Any:
    """Run a coroutine in a fresh loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


