"""A finished transaction keeps nothing of the engine once its object is dropped.

The daemon runs in this process (``serve`` on a private bus) so that the
objects it holds can be counted: after an install has finished and its
object left the bus, no engine ``Transaction`` and no ``TransactionObject``
is alive, and the daemon holds as many engine handles as before (its query
handle was replaced, the commit's own handle released).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
import weakref
from pathlib import Path

from dbus_e2e import (
    MANAGER,
    ROOT_PATH,
    Client,
    Pkg,
    owned,
    run,
    served_root,
    v,
)

from alpmd.dbus.service import serve
from alpmd.dbus.transaction import TransactionObject
from alpmd.engine.handle import Handle
from alpmd.engine.trans import Transaction


def _alive(kind: type) -> list[object]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, kind)]


def test_a_dropped_transaction_leaves_no_engine_objects(tmp_path: Path) -> None:
    repo = [Pkg("lib"), Pkg("app", depends=["lib"])]
    with served_root(tmp_path, repo, []) as (e, env):
        async def scenario() -> tuple[int, int, list[str], list[object], list[object]]:
            server = asyncio.ensure_future(serve(str(e.root.config), address=env.address,
                                                 keep_finished=2.0))
            c = await Client.open(env.address)
            try:
                await owned(c)
                await c.query("Search", "asa{sv}", ["app"], {})
                handles_before = len(_alive(Handle))
                path = await c.manager("Install", "asa{sv}", ["app"],
                                       {"no-sysupgrade": v("b", True)})
                await c.tx(path, "Run")
                result = await c.finished(path)
                assert result[0] == "success", result
                objs = [o for o in _alive(TransactionObject)
                        if isinstance(o, TransactionObject) and o.path == path]
                gone = weakref.ref(objs[0]) if objs else None
                del objs
                deadline = time.monotonic() + 30
                while path in await c.prop(ROOT_PATH, "Transactions", MANAGER):
                    assert time.monotonic() < deadline, "the finished object stayed"
                    await asyncio.sleep(0.1)
                await c.manager("GetHistory", "a{sv}", {})  # waits for its own writes
                await c.query("Search", "asa{sv}", ["app"], {})
                engine = _alive(Transaction)
                objects = _alive(TransactionObject)
                handles_after = len(_alive(Handle))
                assert gone is not None and gone() is None, gc.get_referrers(gone())
                return handles_before, handles_after, sorted(e.installed()), engine, \
                    objects
            finally:
                c.close()
                os.kill(os.getpid(), signal.SIGTERM)  # serve's handler: stop
                assert await asyncio.wait_for(server, 30) == 0

        before, after, installed, engine, objects = run(scenario(), timeout=120)
    assert installed == ["app", "lib"]
    assert engine == [], engine
    assert objects == [], objects
    assert after == before, (before, after)
