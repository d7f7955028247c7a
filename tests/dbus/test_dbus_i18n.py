"""Each client's language (SetHints locale): its errors come in that language, while
another client of the same daemon keeps English. The error code stays first."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from dbus_e2e import (
    Client,
    Pkg,
    make_root,
    mirror,
    private_bus,
    run,
    served_root,
    start_daemon,
    stop_daemon,
    v,
)

from alpmd.testing.dbusenv import have_tools

pytestmark = pytest.mark.skipif(have_tools() is not None, reason=f"no private bus: {have_tools()}")

ROOT = Path(__file__).resolve().parents[2]
# the catalogs are built, not committed
subprocess.run(["make", "-s", "mo"], cwd=ROOT, check=True, capture_output=True, timeout=120)


def test_errors_in_each_clients_language(tmp_path: Path) -> None:
    with served_root(tmp_path, [Pkg("p1")], []) as (e, env):
        proc = start_daemon(env, e.root.config)
        try:
            async def attempt(locale: str | None) -> tuple[str, str, str]:
                c = await Client.open(env.address)
                try:
                    path = await c.manager("Install", "asa{sv}", ["nonexistent"],
                                           {"no-sysupgrade": v("b", True)})
                    if locale is not None:
                        await c.tx(path, "SetHints", "a{sv}", {"locale": v("s", locale)})
                    await c.tx(path, "Run")
                    res: tuple[str, str, str] = await c.finished(path)
                    return res
                finally:
                    c.close()

            async def both() -> list[tuple[str, str, str]]:
                return [await attempt("de"), await attempt(None), await attempt("de_DE.UTF-8")]
            german, english, german_too = run(both())
        finally:
            stop_daemon(proc)
    assert german == ("failed", "org.alpm.Error.NotFound",
                      "pkg-not-found: Ziel nicht vorhanden: nonexistent"), german
    assert english == ("failed", "org.alpm.Error.NotFound",
                       "pkg-not-found: target not found: nonexistent"), english
    assert german_too == german


def test_log_lines_in_each_clients_language(tmp_path: Path) -> None:
    """The runner's Log signal speaks the locale its client set; another client keeps English."""
    srv = tmp_path / "srv"
    srv.mkdir()
    with mirror(root=srv) as m:
        srv.rmdir()
        e = make_root(tmp_path, [Pkg("p1"), Pkg("p2")], [], m.url)
        with private_bus(tmp_path) as env:
            proc = start_daemon(env, e.root.config)
            try:
                async def install(name: str, locale: str | None) -> tuple[str, list[str]]:
                    c = await Client.open(env.address)
                    try:
                        path = await c.manager("Install", "asa{sv}", [name],
                                               {"no-sysupgrade": v("b", True)})
                        if locale is not None:
                            await c.tx(path, "SetHints", "a{sv}", {"locale": v("s", locale)})
                        await c.tx(path, "Run")
                        result = (await c.finished(path))[0]
                        return result, [row[3] for row in c.of(path, "Log")]
                    finally:
                        c.close()

                async def both() -> list[tuple[str, list[str]]]:
                    return [await install("p1", "de_DE.UTF-8"), await install("p2", None)]
                (de_result, german), (en_result, english) = run(both())
            finally:
                stop_daemon(proc)
        assert e.installed() == {"p1": "1.0-1", "p2": "1.0-1"}
    assert de_result == en_result == "success", (german, english)
    assert "starting install p2" in english and "installed p2 (1.0-1)" in english, english
    assert "resolving dependencies..." in english and "Processing package changes..." in english
    assert "install beginnt: p1" in german and "p1 (1.0-1) installiert" in german, german
    assert "Abhängigkeiten werden aufgelöst …" in german
    assert "resolving dependencies..." not in german and "installed p1 (1.0-1)" not in german
    # the same kinds of lines, one for one
    assert len(german) == len(english)
