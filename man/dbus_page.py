"""org.alpm(7) from the introspection XML alone: every interface, method, argument, signal
and property, with the description the XML carries.

Each element of data/org.alpm.xml documents itself with an ``org.gtk.GDBus.DocString``
annotation (gdbus-codegen's convention; the value is inline reStructuredText, and line
breaks in it are plain spaces). An element without one is an error, so the page
cannot drift from the API: a new member is documented where it is declared. Only the
page's frame (what the daemon is, how transactions and errors work, see also) is
written here, because it is not about any one element.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

DOCSTRING = "org.gtk.GDBus.DocString"
BUS_NAME = "org.alpm"
KINDS = (("method", "Methods"), ("signal", "Signals"), ("property", "Properties"))

INTRO = """\
**alpmd** owns the name **org.alpm** on the system bus. Reading (the *Query1*
interface and every property) is open to every local user. Changing the system
goes through a transaction: a *Manager1* method creates a transaction object,
the client may set hints (*SetHints*), look at the plan (*Simulate*), then calls
*Run*; polkit(8) decides then (actions **org.alpm.refresh**, **org.alpm.sysupgrade**,
**org.alpm.install**, **org.alpm.install-file**, **org.alpm.remove**,
**org.alpm.downgrade**, **org.alpm.no-sysupgrade**, **org.alpm.set-reason**,
**org.alpm.clean-cache**, **org.alpm.trust-key**, **org.alpm.cancel-foreign**,
**org.alpm.convert-database**). Transactions that change the system run one at a
time, in the order they were run.

Packages are named by ids of the form *name;version;arch;repo* (repo **local**
for an installed package). Options are passed as a{sv} dictionaries; an option
of the wrong type is refused with **org.alpm.Error.InvalidArgs**, an unknown one
is ignored.

Errors are named **org.alpm.Error.**\\ *Name* (NotAuthorized, Busy, Locked,
NotFound, InvalidArgs, WrongState, Cancelled, DepResolution, Conflict,
FileConflict, Signature, Download, DiskSpace, DiskFull, ReadOnly, LimitExceeded,
Timeout, Internal);
the message starts with the engine's stable error code, for example
``pkg-not-found: target not found: foo``. The rest of the message is in the
language the client set with *SetHints* (**locale**), else in English."""

SEE_ALSO = ("**alpmd**\\ (8), **alpmctl**\\ (1), **alpm**\\ (8), **busctl**\\ (1), "
            "**polkit**\\ (8), **gdbus-codegen**\\ (1)")


class DocError(Exception):
    """An element of the XML has no description."""


def _doc(element: ET.Element) -> str:
    """The element's own DocString, whitespace folded (empty when it has none)."""
    for ann in element.findall("annotation"):
        if ann.get("name") == DOCSTRING:
            return " ".join(str(ann.get("value", "")).split())
    return ""


def _direction(member: ET.Element, arg: ET.Element) -> str:
    return arg.get("direction", "out" if member.tag == "signal" else "in")


def _signature(member: ET.Element) -> str:
    """``Name(type arg, ...) → type result`` (signals list what they carry; properties
    ``Name type (access)``)."""
    if member.tag == "property":
        return f"{member.get('name')} {member.get('type')} ({member.get('access')})"
    ins = [f"{a.get('type')} {a.get('name', '')}".strip() for a in member.findall("arg")
           if member.tag == "signal" or _direction(member, a) == "in"]
    outs = [f"{a.get('type')} {a.get('name', '')}".strip() for a in member.findall("arg")
            if member.tag == "method" and _direction(member, a) == "out"]
    text = f"{member.get('name')}({', '.join(ins)})"
    return text + (f" → {', '.join(outs)}" if outs else "")


def _member(iface: str, member: ET.Element, missing: list[str]) -> list[str]:
    """A member's lines: its signature, its description, then one entry per argument."""
    where = f"{iface.rsplit('.', 1)[1]}.{member.get('name')}"
    doc = _doc(member)
    if not doc:
        missing.append(where)
    out = [f"``{_signature(member)}``", f"    {doc}", ""]
    for n, arg in enumerate(member.findall("arg")):
        arg_doc = _doc(arg)
        name = arg.get("name") or f"arg{n}"
        if not arg_doc:
            missing.append(f"{where}({name})")
        result = member.tag == "method" and _direction(member, arg) == "out"
        out += [f"    {'→ ' if result else ''}*{name}* ({arg.get('type')})",
                f"        {arg_doc}", ""]
    return out


def page(xml: str) -> str:
    """The page's reStructuredText; DocError names every undocumented element."""
    root = ET.fromstring(xml)
    interfaces = list(root.iter("interface"))
    subtitle = "the D-Bus interface of the alpmd package daemon"
    names = ", ".join(f"``{i.get('name')}``" for i in interfaces)
    out = ["========", "org.alpm", "========", "",
           "-" * len(subtitle), subtitle, "-" * len(subtitle), "",
           ":Manual section: 7", ":Manual group: alpmd", "",
           "SYNOPSIS", "========", "",
           f"Bus name **{BUS_NAME}** on the system bus, object **{root.get('name')}**; "
           f"interfaces {names}.", "",
           "DESCRIPTION", "===========", "", INTRO, ""]
    missing: list[str] = []
    for iface in interfaces:
        name = str(iface.get("name"))
        title = f"INTERFACE {name}"
        out += [title, "=" * len(title), ""]
        doc = _doc(iface)
        if not doc:
            missing.append(name)
        out += [doc, ""]
        for tag, heading in KINDS:
            members = sorted(iface.findall(tag), key=lambda m: str(m.get("name")))
            if not members:
                continue
            out += [heading, "-" * len(heading), ""]
            for member in members:
                out += _member(name, member, missing)
    if missing:
        raise DocError(f"data/org.alpm.xml: no {DOCSTRING} on {', '.join(missing)}")
    out += ["SEE ALSO", "========", "", SEE_ALSO, ""]
    return "\n".join(out)
