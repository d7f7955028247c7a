"""The API is stable: what the running daemon exports equals data/org.alpm.xml.

The committed XML also carries the descriptions (``org.gtk.GDBus.DocString``
annotations, from which org.alpm(7) is generated) and names every argument; the
daemon exports neither, so the comparison is of what a caller depends on: the
interfaces, each member's kind and name, every argument's direction and type in
order, the names of the methods' input arguments, and the properties' types and
access.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from alpmd.testing.dbusenv import DATA, DBusEnv
from tests.dbus.dbus_e2e import DEST, ROOT_PATH, Client, run

Shape = dict[str, list[tuple[str, ...]]]
INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"


def _shape(xml: str, *, with_names: bool) -> Shape:
    """Interface -> its members, sorted; arguments as (direction, type[, name])."""
    out: Shape = {}
    for iface in ET.fromstring(xml).iter("interface"):
        name = iface.get("name", "")
        if not name.startswith("org.alpm."):
            continue
        members = []
        for m in iface:
            if m.tag == "annotation":
                continue
            args = []
            for a in m.findall("arg"):
                direction = a.get("direction", "out" if m.tag == "signal" else "in")
                named = with_names and m.tag == "method" and direction == "in"
                args.append(f"{direction} {a.get('type')}" + (f" {a.get('name')}" if named
                                                               else ""))
            members.append((m.tag, m.get("name", ""), m.get("type", ""), m.get("access", ""),
                            *args))
        out[name] = sorted(members)
    return out


def _live(address: str) -> tuple[str, str]:
    """The introspection of /org/alpm and of a transaction object."""
    async def go() -> tuple[str, str]:
        c = await Client.open(address)
        try:
            root = (await c.raw(DEST, ROOT_PATH, INTROSPECTABLE, "Introspect"))[0]
            path = await c.manager("Remove", "asa{sv}", ["tool"], {})
            tx = (await c.raw(DEST, path, INTROSPECTABLE, "Introspect"))[0]
            await c.tx(path, "Cancel")
            return str(root), str(tx)
        finally:
            c.close()
    result: tuple[str, str] = run(go())
    return result


def test_live_introspection_matches_committed_xml(daemon: DBusEnv) -> None:
    root, tx = _live(daemon.address)
    want = _shape((DATA / "org.alpm.xml").read_text(), with_names=True)
    got = {**_shape(root, with_names=True), **_shape(tx, with_names=True)}
    assert {"org.alpm.Manager1", "org.alpm.Query1", "org.alpm.Transaction1"} <= set(want)
    assert set(got) == set(want)
    for iface in sorted(want):
        assert got[iface] == want[iface], iface
    # the root object has the two service interfaces, a transaction object the third
    assert set(_shape(tx, with_names=False)) == {"org.alpm.Transaction1"}
