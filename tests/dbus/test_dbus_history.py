"""The daemon's history: its own transactions (who asked, what moved) and what pacman did
behind its back, read from pacman.log; all of it survives a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dbus_e2e import (
    Client,
    Pkg,
    run,
    served_root,
    start_daemon,
    stop_daemon,
    v,
)

from alpmd.testing.dbusenv import have_tools

pytestmark = pytest.mark.skipif(have_tools() is not None, reason=f"no private bus: {have_tools()}")


def _rows(hist: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: x.value for k, x in r.items()} for r in hist]


def test_history_survives_restart_and_shows_pacman(tmp_path: Path) -> None:
    with served_root(tmp_path, [Pkg("p1"), Pkg("p2")], []) as (e, env):
        proc = start_daemon(env, e.root.config)
        try:
            async def install() -> str:
                c = await Client.open(env.address)
                try:
                    path = await c.manager("Install", "asa{sv}", ["p1"],
                                           {"no-sysupgrade": v("b", True)})
                    await c.tx(path, "Run")
                    res = await c.finished(path)
                    assert res[0] == "success", res
                    return str(c.bus.unique_name)
                finally:
                    c.close()
            me = run(install())
            # behind the daemon's back, while it runs
            done = e.root.pacman("-U", str(e.built["p2-1.0-1"]))
            assert done.returncode == 0, done.stderr
            assert e.installed() == {"p1": "1.0-1", "p2": "1.0-1"}
        finally:
            stop_daemon(proc)
        proc = start_daemon(env, e.root.config)
        try:
            async def read() -> tuple[list[dict[str, Any]], ...]:
                c = await Client.open(env.address)
                try:
                    every = await c.manager("GetHistory", "a{sv}", {})
                    p2 = await c.manager("GetHistory", "a{sv}", {"package": v("s", "p2")})
                    paged = await c.manager("GetHistory", "a{sv}",
                                            {"offset": v("u", 1), "limit": v("u", 1)})
                    return _rows(every), _rows(p2), _rows(paged)
                finally:
                    c.close()
            every, p2, paged = run(read())
        finally:
            stop_daemon(proc)
    # pacman's -U and the daemon's install (which is not read a second time from the log);
    # pacman.log's times are whole seconds, so both may start "at once": no order asserted
    assert sorted((r["source"], r["kind"]) for r in every) == [("alpmd", "install"),
                                                               ("pacman.log", "pacman")], every
    assert [r["started"] for r in every] == sorted((r["started"] for r in every), reverse=True)
    theirs, ours = sorted(every, key=lambda r: r["source"] == "alpmd")
    assert [list(c) for c in theirs["changes"]] == [["p2", "", "1.0-1"]]
    assert theirs["uid"] == -1 and theirs["result"] == "success"
    assert "-U" in theirs["targets"][0]
    assert [list(c) for c in ours["changes"]] == [["p1", "", "1.0-1"]]
    assert ours["targets"] == ["p1"] and ours["result"] == "success" and ours["client"] == me
    assert int(ours["started"]) <= theirs["started"] and ours["duration"] >= 0
    assert [r["id"] for r in p2] == [theirs["id"]]
    assert [r["id"] for r in paged] == [every[1]["id"]]


def test_queued_transactions_each_record_their_own_changes(tmp_path: Path) -> None:
    """What a transaction moved is read when its commit ends, not when its row is written:
    the next queued transaction may commit in between."""
    with served_root(tmp_path, [Pkg("p1"), Pkg("p2"), Pkg("p3")], []) as (e, env):
        proc = start_daemon(env, e.root.config)
        try:
            async def go() -> list[dict[str, Any]]:
                c = await Client.open(env.address)
                try:
                    paths = [await c.manager("Install", "asa{sv}", [name],
                                             {"no-sysupgrade": v("b", True)})
                             for name in ("p1", "p2", "p3")]
                    for path in paths:  # (all queued before the first has committed)
                        await c.tx(path, "Run")
                    for path in paths:
                        res = await c.finished(path)
                        assert res[0] == "success", res
                    return _rows(await c.manager("GetHistory", "a{sv}", {}))
                finally:
                    c.close()
            rows = run(go())
        finally:
            stop_daemon(proc)
    assert e.installed() == {"p1": "1.0-1", "p2": "1.0-1", "p3": "1.0-1"}
    ours = sorted((r for r in rows if r["source"] == "alpmd"), key=lambda r: r["id"])
    assert [(r["targets"], [list(c) for c in r["changes"]]) for r in ours] == [
        (["p1"], [["p1", "", "1.0-1"]]),
        (["p2"], [["p2", "", "1.0-1"]]),
        (["p3"], [["p3", "", "1.0-1"]])], ours
