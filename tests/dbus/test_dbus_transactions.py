"""Transactions end to end through the private system-role bus: refresh into the shadow
databases, install with progress and log signals, a question answered, cancel during a
download, remove, and the Transaction1 property set."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbus_e2e import (
    Client,
    E2ERoot,
    Pkg,
    big,
    make_root,
    mirror,
    private_bus,
    run,
    running_daemon,
    v,
)

from alpmd.testing.dbusenv import DBusEnv, have_tools

pytestmark = pytest.mark.skipif(have_tools() is not None, reason=f"no private bus: {have_tools()}")

REPO = [Pkg("hello", "1.0-1", depends=["libgreet"]), Pkg("libgreet", "2.0-1"),
        Pkg("tool", "1.1-1"),
        Pkg("editor", "1.0-1", depends=["sh-provider"]),
        Pkg("prov-a", "1.0-1", provides=["sh-provider"]),
        Pkg("prov-b", "1.0-1", provides=["sh-provider"])]
INSTALLED = [Pkg("tool", "1.0-1")]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[DBusEnv, E2ERoot, Any]]:
    srv = tmp_path / "srv"
    srv.mkdir()
    with mirror(root=srv) as m:
        srv.rmdir()
        e = make_root(tmp_path, REPO, INSTALLED, m.url)
        with private_bus(tmp_path) as env, running_daemon(env, e.root.config):
            yield env, e, m


def test_refresh_goes_to_the_shadow_databases(world: Any) -> None:
    env, e, m = world
    live = e.root.dbpath / "sync" / "test.db"
    before = live.read_bytes()
    os.utime(live, (time.time() - 3600, time.time() - 3600))   # an hour old
    e.publish([*REPO, Pkg("hello", "1.1-1", depends=["libgreet"])], e.root.root / "newpkgs")

    async def go() -> tuple[Any, list[dict[str, Any]], int, str]:
        c = await Client.open(env.address)
        try:
            path = await c.manager("Refresh", "a{sv}", {})
            await c.tx(path, "Run")
            res = await c.finished(path)
            updates = await c.query("GetUpdates", "a{sv}", {})
            count = await c.prop("/org/alpm", "UpdatesAvailable", "org.alpm.Manager1")
            log = [r[3] for r in await c.tx(path, "GetLog")]
            return res, [{k: x.value for k, x in u.items()} for u in updates], count, "\n".join(log)
        finally:
            c.close()
    res, updates, count, log = run(go())
    assert res[0] == "success", res
    # the live sync database is untouched (no partial upgrade); the shadow one is new
    assert live.read_bytes() == before
    shadow = e.root.root / "var/lib/alpmd/shadow/sync/test.db"
    assert shadow.read_bytes() == (e.srv / "test.db").read_bytes()
    got = {u["name"]: (u["old"], u["new"]) for u in updates}
    assert got == {"tool": ("1.0-1", "1.1-1")}   # hello is not installed
    assert count == 1
    assert "test" in log
    assert m.hits("test.db")


def test_install_with_progress_and_log(world: Any) -> None:
    env, e, m = world

    async def go() -> tuple[Any, dict[str, Any], Client]:
        c = await Client.open(env.address)
        try:
            path = await c.manager("Install", "asa{sv}", ["hello"], {})
            plan = await c.tx(path, "Simulate")
            await c.tx(path, "Run")
            res = await c.finished(path)
            props = await c.props(path)
            props["simulated"] = [{k: x.value for k, x in r.items()} for r in plan]
            props["path"] = path
            gen = await c.prop("/org/alpm", "Generation", "org.alpm.Manager1")
            props["generation"] = gen
            return res, props, c
        finally:
            c.close()
    res, props, c = run(go())
    assert res[0] == "success", res
    assert e.installed() == {"hello": "1.0-1", "libgreet": "2.0-1", "tool": "1.1-1"}
    assert (e.root.root / "usr/share/hello/data").read_bytes() == b"hello 1.0-1\n"
    plan = {(r["action"], r["name"], r["old"], r["new"]) for r in props["simulated"]}
    assert plan == {("install", "hello", "", "1.0-1"), ("install", "libgreet", "", "2.0-1"),
                    ("upgrade", "tool", "1.0-1", "1.1-1")}
    assert props["Percentage"] == 100.0 and props["State"] == "finished"
    assert props["Items"][1] == 3
    path = props["path"]
    # signals: log lines (sequence numbers increasing), item progress for each package,
    # percentage changes that never go down, InstalledChanged for the new generation
    logs = c.of(path, "Log")
    seqs = [row[0] for row in logs]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)) and len(seqs) >= 3
    assert {row[0] for row in c.of(path, "ItemProgress")} >= {"hello", "libgreet", "tool"}
    pct = [m.body[1]["Percentage"].value for m in c.signals if m.path == path
           and m.member == "PropertiesChanged" and "Percentage" in m.body[1]]
    assert pct == sorted(pct) and pct[-1] == 100.0
    assert any(m.member == "InstalledChanged" for m in c.signals)
    assert props["generation"] > 1
    # pacman.log as pacman writes it
    text = e.root.logfile.read_text()
    assert "[ALPM] installed hello (1.0-1)" in text
    assert "[ALPM] upgraded tool (1.0-1 -> 1.1-1)" in text


def test_question_answered_by_the_client(world: Any) -> None:
    env, e, m = world

    async def go() -> tuple[Any, list[Any]]:
        c = await Client.open(env.address)
        try:
            path = await c.manager("Install", "asa{sv}", ["editor"], {"no-sysupgrade": v("b", True)})
            await c.tx(path, "Run")
            q = await c.wait_signal(lambda msg: msg.path == path
                                    and msg.member == "QuestionAsked")
            qid, kind, _text, choices, _details = q.body
            assert await c.prop(path, "State") == "waiting-answer"
            assert (await c.prop(path, "Question"))[0] == qid
            await c.tx(path, "Answer", "uv", qid, v("u", choices.index("prov-b-1.0-1")))
            res = await c.finished(path)
            return res, [kind, choices]
        finally:
            c.close()
    res, (kind, choices) = run(go())
    assert kind == "SelectProvider"
    assert choices == ["prov-a-1.0-1", "prov-b-1.0-1"]
    assert res[0] == "success", res
    got = e.installed()
    assert "prov-b" in got and "prov-a" not in got and "editor" in got
    assert got["tool"] == "1.0-1"   # no-sysupgrade: nothing else changed


def test_preseeded_answer_and_remove(world: Any) -> None:
    env, e, m = world

    async def go() -> tuple[Any, Any, list[Any]]:
        c = await Client.open(env.address)
        try:
            path = await c.manager("Install", "asa{sv}", ["editor"], {"no-sysupgrade": v("b", True)})
            await c.tx(path, "SetHints", "a{sv}",
                       {"answers": v("a{sv}", {"SelectProvider": v("u", 1)})})
            await c.tx(path, "Run")
            first = await c.finished(path)
            asked = c.of(path, "QuestionAsked")
            rm = await c.manager("Remove", "asa{sv}", ["editor", "prov-b"], {})
            await c.tx(rm, "Run")
            second = await c.finished(rm)
            return first, second, asked
        finally:
            c.close()
    first, second, asked = run(go())
    assert first[0] == "success" and second[0] == "success", (first, second)
    assert asked == []
    assert "editor" not in e.installed() and "prov-b" not in e.installed()
    assert not (e.root.root / "usr/share/editor").exists()


def test_failures_are_named_with_details(world: Any) -> None:
    env, e, m = world

    async def go() -> tuple[Any, Any, Any]:
        c = await Client.open(env.address)
        try:
            path = await c.manager("Install", "asa{sv}", ["no-such-thing"], {})
            await c.tx(path, "Run")
            res = await c.finished(path)
            details = await c.prop(path, "ErrorDetails")
            try:
                await c.tx(path, "Cancel")
                late = "accepted"
            except Exception as exc:
                late = str(getattr(exc, "type", exc))
            return res, {k: x.value for k, x in details.items()}, late
        finally:
            c.close()
    res, details, late = run(go())
    assert res[0] == "failed"
    assert res[1] == "org.alpm.Error.NotFound" and res[2].startswith("pkg-not-found:")
    assert details["code"] == "pkg-not-found"
    assert late == "org.alpm.Error.WrongState"


def test_transaction_properties_match_the_committed_interface(world: Any) -> None:
    import xml.etree.ElementTree as ET

    from alpmd.testing.dbusenv import DATA
    env, e, m = world
    committed = ET.fromstring((DATA / "org.alpm.xml").read_text())
    want = {p.get("name"): p.get("type") for i in committed.iter("interface")
            if i.get("name") == "org.alpm.Transaction1" for p in i.iter("property")}

    async def go() -> tuple[dict[str, str], list[str]]:
        c = await Client.open(env.address)
        try:
            path = await c.manager("Remove", "asa{sv}", ["tool"], {})
            xml = (await c.raw("org.alpm", path, "org.freedesktop.DBus.Introspectable",
                               "Introspect"))[0]
            props = await c.raw("org.alpm", path, "org.freedesktop.DBus.Properties", "GetAll",
                                "s", ["org.alpm.Transaction1"])
            live = {p.get("name"): p.get("type") for i in ET.fromstring(xml).iter("interface")
                    if i.get("name") == "org.alpm.Transaction1" for p in i.iter("property")}
            sigs = {k: x.signature for k, x in props[0].items()}
            await c.tx(path, "Cancel")
            return {**live, **{"__getall__" + k: s for k, s in sigs.items()}}, list(live)
        finally:
            c.close()
    got, names = run(go())
    assert {k: got[k] for k in names} == want
    assert {k[len("__getall__"):]: s for k, s in got.items() if k.startswith("__getall__")} == want


def test_cancel_during_download(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir()
    # 2 MiB at 256 KiB/s: eight seconds if nobody cancels
    with mirror(root=srv, rate=256 * 1024) as m:
        srv.rmdir()
        e = make_root(tmp_path, [big("blob", 2 << 20)], [], m.url)
        with private_bus(tmp_path) as env, running_daemon(env, e.root.config):
            async def go() -> tuple[Any, list[Any], bool]:
                c = await Client.open(env.address)
                try:
                    path = await c.manager("Install", "asa{sv}", ["blob"],
                                           {"no-sysupgrade": v("b", True)})
                    await c.tx(path, "Run")
                    await c.wait_signal(lambda msg: msg.path == path
                                        and msg.member == "DownloadProgress", 20)
                    assert await c.prop(path, "State") == "downloading"
                    can = await c.prop(path, "CanCancel")
                    await c.tx(path, "Cancel")
                    res = await c.finished(path, 20)
                    return res, c.of(path, "DownloadProgress"), can
                finally:
                    c.close()
            res, progress, can = run(go())
    assert can is True
    assert res[0] == "cancelled" and res[1] == "org.alpm.Error.Cancelled", res
    assert progress and all(0 < row[1] < row[2] for row in progress)
    assert "blob" not in e.installed()
    cache = e.root.cachedir
    assert not [p for p in cache.iterdir() if p.name.endswith(".pkg.tar.gz")]
