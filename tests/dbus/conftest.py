"""The D-Bus fixtures: one private system-role bus with the real polkitd per session,
one daemon on a generated sandbox root, and a Python client connected as root."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest

from alpmd.testing.dbusenv import (
    ALLOW_ALL_RULES,
    CLIENT_USER,
    DBusEnv,
    ensure_user,
    have_polkit,
    have_tools,
)
from alpmd.testing.oracle import PacmanRoot


@pytest.fixture(scope="session")
def bus_env() -> Iterator[DBusEnv]:
    why = have_tools() or have_polkit()
    if why:
        pytest.skip(f"no private system bus with polkitd here: {why}")
    env = DBusEnv(rules=ALLOW_ALL_RULES)
    try:
        env.start()
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="session")
def client_user() -> str:
    ensure_user(CLIENT_USER)
    return CLIENT_USER


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> PacmanRoot:
    from alpmd.testing.sandbox import build
    return build(tmp_path_factory.mktemp("sb") / "sandbox", count=400, installed=60, seed=3)


@pytest.fixture(scope="session")
def daemon(bus_env: DBusEnv, sandbox: PacmanRoot) -> Iterator[DBusEnv]:
    proc = bus_env.spawn([sys.executable, "-m", "alpmd.dbus.service", "--config",
                          str(sandbox.config), "--idle-timeout", "0", "--keep-finished", "5"])
    bus_env.wait_for_name("org.alpm", proc=proc)
    yield bus_env
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def arun() -> object:
    """Run a coroutine with a hard time bound."""
    def run(coro: object, timeout: float = 60) -> object:
        assert asyncio.iscoroutine(coro)
        return asyncio.run(asyncio.wait_for(coro, timeout))
    return run
