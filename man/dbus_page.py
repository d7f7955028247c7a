"""org.alpm(7) from the introspection XML: every interface, method, signal and property.

The descriptions come from org.alpm.7.docs (``== key`` blocks: ``intro``, an interface
name, or ``Interface.Member``). A member of the XML without a description, or a
description of a member the XML does not have, is an error: the page cannot drift
from the API.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

KINDS = (("method", "Methods"), ("signal", "Signals"), ("property", "Properties"))


class DocError(Exception):
    """The descriptions and the XML disagree."""


def parse_docs(text: str) -> dict[str, str]:
    """``== key`` blocks -> their text (reStructuredText, dedented by the page)."""
    docs: dict[str, str] = {}
    key = ""
    lines: list[str] = []
    for line in text.splitlines() + ["== "]:
        if line.startswith("== "):
            if key:
                docs[key] = "\n".join(lines).strip("\n")
            key, lines = line[3:].strip(), []
        elif key:
            lines.append(line)
    return docs


def _signature(member: ET.Element) -> str:
    if member.tag == "property":
        return f"{member.get('name')} {member.get('type')} ({member.get('access')})"
    args = []
    for arg in member.iter("arg"):
        direction = arg.get("direction", "out" if member.tag == "signal" else "in")
        name = arg.get("name")
        if member.tag == "signal" or direction == "in":
            args.append(f"{arg.get('type')} {name}" if name else str(arg.get("type")))
    outs = [str(a.get("type")) for a in member.iter("arg")
            if member.tag == "method" and a.get("direction") == "out"]
    text = f"{member.get('name')}({', '.join(args)})"
    return text + (f" → {', '.join(outs)}" if outs else "")


def _indent(text: str) -> str:
    return "\n".join(("    " + line) if line.strip() else "" for line in text.splitlines())


def page(xml: str, docs_text: str) -> str:
    """The page's reStructuredText."""
    docs = parse_docs(docs_text)
    used = {"intro", "see-also"}
    root = ET.fromstring(xml)
    subtitle = "the D-Bus interface of the alpmd package daemon"
    out = ["========", "org.alpm", "========", "",
           "-" * len(subtitle), subtitle, "-" * len(subtitle), "",
           ":Manual section: 7", ":Manual group: alpmd", "",
           "SYNOPSIS", "========", "",
           f"Bus name **org.alpm** on the system bus; object **{root.get('name')}** "
           "(``org.alpm.Manager1``, ``org.alpm.Query1``, ``org.alpm.Repository1``); one "
           "object per transaction "
           "(``org.alpm.Transaction1``).", "",
           "DESCRIPTION", "===========", "", docs.get("intro", ""), ""]
    missing: list[str] = []
    for iface in root.iter("interface"):
        name = str(iface.get("name"))
        if not name.startswith("org.alpm."):
            continue
        used.add(name)
        title = f"INTERFACE {name}"
        out += [title, "=" * len(title), ""]
        if name in docs:
            out += [docs[name], ""]
        else:
            missing.append(name)
        for tag, heading in KINDS:
            members = sorted((m for m in iface if m.tag == tag), key=lambda m: str(m.get("name")))
            if not members:
                continue
            out += [heading, "-" * len(heading), ""]
            for member in members:
                key = f"{name.rsplit('.', 1)[1]}.{member.get('name')}"
                used.add(key)
                if key not in docs:
                    missing.append(key)
                    continue
                out += [f"``{_signature(member)}``", _indent(docs[key]), ""]
    stale = sorted(set(docs) - used)
    if missing or stale:
        raise DocError(f"org.alpm.7.docs: undocumented {missing}, not in the XML {stale}")
    out += ["SEE ALSO", "========", "", docs.get("see-also", ""), ""]
    return "\n".join(out)
