"""Authorisation by the real polkitd, decided by JavaScript rules, at Run time."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from alpmd.testing.dbusenv import ALLOW_ALL_RULES, ROOT_ONLY_RULES, DBusEnv

M = ("org.alpm", "/org/alpm", "org.alpm.Manager1")


def _tx_props(env: DBusEnv, path: str) -> tuple[str, str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        out = env.busctl("get-property", "org.alpm", path, "org.alpm.Transaction1", "State",
                         "Error", check=False)
        if out.returncode == 0 and '"finished"' in out.stdout:
            return out.stdout, path
        time.sleep(0.1)
    raise AssertionError(f"{path} did not finish")


@pytest.fixture
def root_only(daemon: DBusEnv) -> Iterator[DBusEnv]:
    daemon.set_rules(ROOT_ONLY_RULES)
    time.sleep(1.0)  # polkitd reloads its rules on an inotify event
    yield daemon
    daemon.set_rules(ALLOW_ALL_RULES)
    time.sleep(1.0)


def test_unauthorised_caller_refused(root_only: DBusEnv, client_user: str) -> None:
    out = root_only.busctl("call", *M, "Remove", "asa{sv}", "1", "bash", "1", "run", "b", "true",
                           user=client_user, check=False)
    assert out.returncode != 0
    assert "not-authorized" in out.stderr
    # and nothing was removed
    q = root_only.busctl("call", "org.alpm", "/org/alpm", "org.alpm.Query1", "Resolve",
                         "asa{sv}", "1", "local/bash", "0")
    assert "bash;" in q.stdout


def test_authorised_caller_passes_polkit(daemon: DBusEnv, client_user: str) -> None:
    out = daemon.busctl("call", *M, "SetReason", "assa{sv}", "1", "no-such-package-zz",
                        "dependency", "1", "run", "b", "true", user=client_user)
    path = re.search(r'"(/org/alpm/transaction/\d+)"', out.stdout)
    assert path
    props, _ = _tx_props(daemon, path.group(1))
    # authorised: it got as far as the database, which does not know the package
    assert "NotAuthorized" not in props
    assert "org.alpm.Error.NotFound" in props
