"""The API is stable: the live introspection must equal data/org.alpm.xml."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from alpmd.testing.dbusenv import DATA, DBusEnv

OURS = ("org.alpm.Manager1", "org.alpm.Query1", "org.alpm.Repository1")


def _shape(xml: str) -> dict[str, list[tuple[str, ...]]]:
    root = ET.fromstring(xml)
    out: dict[str, list[tuple[str, ...]]] = {}
    for iface in root.iter("interface"):
        name = iface.get("name", "")
        if not name.startswith("org.alpm."):
            continue
        members = []
        for m in iface:
            if m.tag == "annotation":  # documentation (data/org.alpm.xml only)
                continue
            args = tuple(f"{a.get('direction', '')}{a.get('type')}" for a in m.iter("arg"))
            members.append((m.tag, m.get("name", ""), m.get("type", ""), m.get("access", ""),
                            *args))
        out[name] = sorted(members)
    return out


def test_live_introspection_matches_committed_xml(daemon: DBusEnv) -> None:
    live = daemon.busctl("call", "org.alpm", "/org/alpm", "org.freedesktop.DBus.Introspectable",
                         "Introspect", "--json=short").stdout
    import json
    xml = json.loads(live)["data"][0]
    committed = (DATA / "org.alpm.xml").read_text()
    got, want = _shape(xml), _shape(committed)
    for iface in OURS:
        assert got.get(iface) == want.get(iface), iface
    assert "org.alpm.Transaction1" in want
    assert Path(DATA / "org.alpm.xml").exists()
