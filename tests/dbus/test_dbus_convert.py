"""Manager1.ConvertDatabase: an administrator moves the local database to alpmd's SQLite
store and back (pacman reads the result); anybody else is refused by polkit."""

from __future__ import annotations

import sys
from pathlib import Path

from dbus_e2e import Client, Pkg, make_root, mirror, run

from alpmd.engine.db.sqlite import STORE_NAME
from alpmd.testing.dbusenv import ROOT_ONLY_RULES, DBusEnv, ensure_user, have_polkit, have_tools

CLIENT = "alpmd-client"


def test_convert_database_there_and_back(tmp_path: Path) -> None:
    why = have_tools() or have_polkit()
    assert why is None, why
    ensure_user(CLIENT)
    srv = tmp_path / "srv"
    srv.mkdir()
    with mirror(root=srv) as m:
        srv.rmdir()
        e = make_root(tmp_path, [Pkg("p3")], [Pkg("p1"), Pkg("p2")], m.url)
        env = DBusEnv(rules=ROOT_ONLY_RULES)     # its own world-readable dir (polkitd reads it)
        env.start()
        try:
            proc = env.spawn([sys.executable, "-m", "alpmd.dbus.service", "--config",
                              str(e.root.config), "--idle-timeout", "0"])
            env.wait_for_name("org.alpm", proc=proc)
            refused = env.busctl("call", "org.alpm", "/org/alpm", "org.alpm.Manager1",
                                 "ConvertDatabase", "sa{sv}", "sqlite", "1", "run", "b", "true",
                                 user=CLIENT, check=False)
            assert refused.returncode != 0 and "not-authorized" in refused.stderr, refused
            assert not (e.root.dbpath / STORE_NAME).exists()

            async def convert(backend: str) -> tuple[tuple[str, str, str], list[str]]:
                c = await Client.open(env.address)
                try:
                    path = await c.manager("ConvertDatabase", "sa{sv}", backend, {})
                    await c.tx(path, "Run")
                    res = await c.finished(path)
                    rows = await c.query("Search", "asa{sv}", [], {"scope": _v("installed")})
                    return res, sorted(r[1] for r in rows)
                finally:
                    c.close()

            async def bad() -> str:
                c = await Client.open(env.address)
                try:
                    await c.manager("ConvertDatabase", "sa{sv}", "berkeleydb", {})
                except Exception as exc:  # noqa: BLE001 - the error's name is the point
                    return str(getattr(exc, "type", exc))
                finally:
                    c.close()
                return "accepted"

            assert run(bad()) == "org.alpm.Error.InvalidArgs"
            res, names = run(convert("sqlite"))
            assert res[0] == "success", res
            assert names == ["p1", "p2"]          # the query handle was re-opened
            assert (e.root.dbpath / STORE_NAME).is_file()
            assert not (e.root.dbpath / "local").exists()
            res, names = run(convert("files"))
            assert res[0] == "success", res
            assert names == ["p1", "p2"]
            assert not (e.root.dbpath / STORE_NAME).exists()
            pac = e.root.pacman("-Q")
            assert pac.returncode == 0, pac.stderr
            assert pac.stdout.split() == ["p1", "1.0-1", "p2", "1.0-1"]
        finally:
            env.stop()


def _v(value: str) -> object:
    from dbus_fast.signature import Variant
    return Variant("s", value)
