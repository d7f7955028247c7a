"""D-Bus strings are UTF-8; package metadata need not be (pacman keeps a latin-1
``.PKGINFO`` value byte for byte in the local database). What is not UTF-8 reaches a client
as U+FFFD, and the rest of the answer with it; it used to fail the call (an internal error,
``UnicodeEncodeError``) for every client asking about such a package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dbus_e2e import Client, Pkg, run, served_root, start_daemon, stop_daemon, v

from alpmd.dbus.bus import utf8_text
from alpmd.testing.dbusenv import have_tools
from alpmd.testing.rootfs import shell_root

pytestmark = pytest.mark.skipif(have_tools() is not None, reason=f"no private bus: {have_tools()}")


def test_text_that_is_not_utf8_reaches_clients_replaced(tmp_path: Path) -> None:
    with served_root(tmp_path, [Pkg("p1")], [Pkg("p2")]) as (e, env):
        desc = next((e.root.dbpath / "local").glob("p2-*")) / "desc"
        # (as pacman writes a latin-1 description it was given)
        desc.write_bytes(desc.read_bytes().replace(b"p2 e2e package", b"caf\xe9 package"))
        proc = start_daemon(env, e.root.config)
        try:
            async def go() -> tuple[Any, Any]:
                c = await Client.open(env.address)
                try:
                    ids = await c.query("Resolve", "asa{sv}", ["p2", "p1"], {})
                    rows = await c.query("GetPackages", "asas", ids, ["name", "description"])
                    return ids, rows
                finally:
                    c.close()
            ids, rows = run(go())
        finally:
            stop_daemon(proc)
    assert ids == ["p2;1.0-1;any;local", "p1;1.0-1;any;test"], ids
    assert [{k: x.value for k, x in r.items()} for r in rows] == [
        {"name": "p2", "description": "caf\ufffd package"},
        {"name": "p1", "description": "p1 e2e package"}], rows


def test_utf8_text() -> None:
    assert utf8_text("café") == "café"
    assert utf8_text(b"caf\xe9".decode("utf-8", "surrogateescape")) == "caf\ufffd"
    assert utf8_text("a\ud800b") == "a?b"  # (a lone surrogate not from bytes)


def test_a_nul_in_a_scriptlet_line_reaches_clients_replaced(tmp_path: Path) -> None:
    """A scriptlet prints a NUL (``find -print0`` output, binary junk). D-Bus strings hold
    no NUL: the line's Log signal was lost and every GetLog of the transaction failed for
    everybody (dbus-fast refuses to marshal it: an internal error). Now the NUL reaches
    clients as U+FFFD, the rest of the log with it."""
    script = "post_install() {\n  printf 'before\\000after\\n'\n  echo next\n}\n"
    with served_root(tmp_path, [Pkg("p1", install=script)], []) as (e, env):
        why = shell_root(e.root.root)
        assert why is None, why
        proc = start_daemon(env, e.root.config)
        try:
            async def go() -> tuple[Any, list[str]]:
                c = await Client.open(env.address)
                try:
                    path = await c.manager("Install", "asa{sv}", ["p1"],
                                           {"no-sysupgrade": v("b", True)})
                    await c.tx(path, "Run")
                    res = await c.finished(path)
                    return res, [r[3] for r in await c.tx(path, "GetLog")]
                finally:
                    c.close()
            res, log = run(go())
        finally:
            stop_daemon(proc)
    assert res[0] == "success", res
    assert "p1" in e.installed()
    assert "before\ufffdafter" in log and "next" in log, log
    assert utf8_text("a\0b") == "a\ufffdb"
