"""No partial upgrades: an install is a full upgrade unless ``no-sysupgrade`` is given, and
that option is its own polkit action. The real polkitd decides with rules that allow
installing but not skipping the upgrade; the caller is an unprivileged user (busctl)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbus_e2e import Pkg, make_root, mirror, running_daemon

from alpmd.testing.dbusenv import DBusEnv, have_polkit, have_tools

pytestmark = pytest.mark.skipif((have_tools() or have_polkit()) is not None,
                                reason=f"no private bus with polkitd: {have_tools() or have_polkit()}")

M = ("org.alpm", "/org/alpm", "org.alpm.Manager1")
#: install (and the rest) allowed; skipping the upgrade refused; the package names reach the
#: rules as details, so a rule can refuse one by name
RULES = """\
polkit.addRule(function(action, subject) {
    if (action.id == "org.alpm.no-sysupgrade") { return polkit.Result.NO; }
    if (action.id == "org.alpm.install"
        && action.lookup("org.alpm.targets").split(" ").indexOf("prov-b") >= 0) {
        return polkit.Result.NO;
    }
    if (action.id.indexOf("org.alpm.") == 0) { return polkit.Result.YES; }
});
"""


@pytest.fixture
def polkit_bus() -> Iterator[DBusEnv]:
    # its own directory under /tmp (world-readable), so the unprivileged caller reaches it
    env = DBusEnv(rules=RULES)
    try:
        env.start()
        yield env
    finally:
        env.stop()


def _finished(env: DBusEnv, path: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = env.busctl("get-property", "org.alpm", path, "org.alpm.Transaction1", "State",
                         "Result", "Error", check=False)
        if out.returncode == 0 and '"finished"' in out.stdout:
            return out.stdout
        time.sleep(0.1)
    raise AssertionError(f"{path} did not finish")


def test_install_is_a_full_upgrade_unless_authorised(polkit_bus: DBusEnv, client_user: str,
                                                     tmp_path: Path) -> None:
    repo = [Pkg("tool", "1.0-1"), Pkg("prov-a", "1.0-1"), Pkg("prov-b", "1.0-1")]
    srv = tmp_path / "srv"
    srv.mkdir()
    with mirror(root=srv) as m:
        srv.rmdir()
        e = make_root(tmp_path, repo, [Pkg("tool", "1.0-1")], m.url)
        # the mirror moves on; the live sync database (an hour old) does not know tool 1.1
        e.publish([Pkg("tool", "1.1-1"), *repo[1:]], tmp_path / "newpkgs")
        live = e.root.dbpath / "sync" / "test.db"
        os.utime(live, (time.time() - 3600, time.time() - 3600))
        with running_daemon(polkit_bus, e.root.config):
            refused = polkit_bus.busctl(
                "call", *M, "Install", "asa{sv}", "1", "prov-a", "2", "run", "b", "true",
                "no-sysupgrade", "b", "true", user=client_user, check=False)
            by_name = polkit_bus.busctl(
                "call", *M, "Install", "asa{sv}", "1", "prov-b", "1", "run", "b", "true",
                user=client_user, check=False)
            untouched = e.installed()
            out = polkit_bus.busctl("call", *M, "Install", "asa{sv}", "1", "prov-a", "1",
                                    "run", "b", "true", user=client_user)
            path = re.search(r'"(/org/alpm/transaction/\d+)"', out.stdout)
            assert path, out.stdout
            props = _finished(polkit_bus, path.group(1))
    assert refused.returncode != 0 and "org.alpm.no-sysupgrade" in refused.stderr, refused
    assert by_name.returncode != 0 and "org.alpm.install" in by_name.stderr, by_name
    assert untouched == {"tool": "1.0-1"}
    assert '"success"' in props, props
    # the allowed install brought the whole system up to date with it
    assert e.installed() == {"tool": "1.1-1", "prov-a": "1.0-1"}
    # ... after refreshing the real sync database inside the transaction
    assert live.read_bytes() == (e.srv / "test.db").read_bytes()
