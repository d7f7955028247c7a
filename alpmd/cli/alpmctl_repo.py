"""``alpmctl repo …``: a client of ``org.alpm.Repository1`` (busctl cannot pass descriptors).

Each subcommand is one method of the interface: ``add`` opens the package files (and
their ``.sig`` when there is one) here, as the user, and passes the descriptors, so the
daemon reads only what the user could open; a file that cannot be opened is an error
before anything is sent. Every call carries the user's ``locale`` (the daemon's error
texts come in it) and ``interactive`` (polkit may ask for a password when a terminal is
there). Exit status as the rest of alpmctl: 0 done, 1 the daemon refused or the check
found problems, 2 bad usage (a file that cannot be opened included).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dbus_fast import DBusError, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.signature import Variant

from alpmd.i18n import client_locale, ngettext
from alpmd.i18n import gettext as _

REPOSITORY = "org.alpm.Repository1"
#: rows the daemon gives per call at most (List and History are paged through)
PAGE = 10_000
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: the subcommands (one per method; the shell completions offer the same)
COMMANDS = ("add", "remove", "move", "list", "history", "check", "repos")


class FileProblem(Exception):
    """A file named on the command line cannot be passed (a local error: nothing was sent)."""


@dataclass
class Opened:
    """A package file opened for Add: its name, its descriptor, its signature's (if any)."""

    name: str
    fd: int
    sig: int | None


def open_files(paths: Sequence[str]) -> list[Opened]:
    """Open each package file and its ``.sig`` if present, read-only (FileProblem, with the
    ones already opened closed, when one cannot be)."""
    opened: list[Opened] = []
    try:
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise FileProblem(_("cannot open {path}: {error}").format(
                    path=path, error=exc.strerror)) from None
            opened.append(Opened(os.path.basename(path), fd, None))
            try:
                opened[-1].sig = os.open(path + ".sig", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise FileProblem(_("cannot open {path}: {error}").format(
                    path=path + ".sig", error=exc.strerror)) from None
    except FileProblem:
        close_files(opened)
        raise
    return opened


def close_files(opened: Sequence[Opened]) -> None:
    for o in opened:
        for fd in (o.fd, o.sig):
            if fd is not None:
                os.close(fd)


def add_parser(sub: Any) -> None:
    """``repo`` and its subcommands, one per method of Repository1."""
    repo = sub.add_parser("repo", help=_(
        "manage the repository tree the daemon serves (org.alpm.Repository1)"))
    cmds = repo.add_subparsers(dest="repo_cmd", required=True, metavar="COMMAND")
    p = cmds.add_parser("add", help=_(
        "release package files (each with its .sig when there is one)"))
    p.add_argument("repo")
    p.add_argument("files", nargs="+", metavar="FILE")
    _arch(p)
    p.add_argument("-f", "--force", action="store_true", help=_("allow an older version"))
    p = cmds.add_parser("remove", help=_("remove pkgbases"))
    p.add_argument("repo")
    p.add_argument("bases", nargs="+", metavar="PKGBASE")
    _arch(p)
    p = cmds.add_parser("move", help=_("move pkgbases between repositories"))
    p.add_argument("source", metavar="FROM")
    p.add_argument("destination", metavar="TO")
    p.add_argument("bases", nargs="+", metavar="PKGBASE")
    _arch(p)
    p.add_argument("-f", "--force", action="store_true", help=_("allow an older version"))
    p = cmds.add_parser("list", help=_("list packages"))
    p.add_argument("repo", nargs="?", default="")
    p.add_argument("--arch", default="", help=_("only this architecture"))
    p = cmds.add_parser("history", help=_("release history"))
    p.add_argument("base", nargs="?", default="", metavar="PKGBASE")
    p = cmds.add_parser("check", help=_("databases, pool and tracking database agree"))
    p.add_argument("-v", "--verify", action="store_true", help=_("also verify pool checksums"))
    p.add_argument("--repair", action="store_true",
                   help=_("finish an interrupted change and rewrite every database"))
    cmds.add_parser("repos", help=_("the repositories and their architectures"))
    assert tuple(cmds.choices) == COMMANDS


def _arch(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default="any", help=_(
        "the architecture (default: any, every architecture the packages are for)"))


async def _call(bus: MessageBus, member: str, sig: str, body: list[Any],
                fds: Sequence[int] = ()) -> Any:
    """The method's one result (a D-Bus error is raised: alpmctl prints it)."""
    reply = await bus.call(Message(destination="org.alpm", path="/org/alpm",
                                   interface=REPOSITORY, member=member, signature=sig,
                                   body=body, unix_fds=list(fds)))
    assert reply is not None
    if reply.message_type is MessageType.ERROR:
        raise DBusError(reply.error_name or "", str(reply.body[0]) if reply.body else "")
    return reply.body[0]


def _opts(**more: Variant) -> dict[str, Variant]:
    return {"locale": Variant("s", client_locale()),
            "interactive": Variant("b", sys.stdin.isatty()), **more}


def _plain(rows: Sequence[dict[str, Variant]]) -> list[dict[str, Any]]:
    return [{k: v.value for k, v in row.items()} for row in rows]


async def _paged(bus: MessageBus, member: str, sig: str, head: list[Any]) -> list[dict[str, Any]]:
    """Every row of List or History (pages of :data:`PAGE`)."""
    rows: list[dict[str, Any]] = []
    while True:
        page = _plain(await _call(bus, member, sig, [*head, _opts(
            offset=Variant("u", len(rows)), limit=Variant("u", PAGE))]))
        rows += page
        if len(page) < PAGE:
            return rows


async def run(bus: MessageBus, args: argparse.Namespace, opened: Sequence[Opened],
              when: Callable[[float], str]) -> int:
    """One ``repo`` subcommand (``when``: alpmctl's time format); its exit status."""
    cmd = args.repo_cmd
    if cmd == "add":
        force = {"force": Variant("b", True)} if args.force else {}
        files: list[list[Any]] = []
        fds: list[int] = []  # (an h argument is an index into the message's descriptors)
        for o in opened:
            files.append([o.name, len(fds), [] if o.sig is None else [len(fds) + 1]])
            fds += [o.fd] if o.sig is None else [o.fd, o.sig]
        result: Any = _plain(await _call(bus, "Add", "ssa(shah)a{sv}",
                                         [args.repo, args.arch, files, _opts(**force)],
                                         fds))
    elif cmd == "remove":
        result = _plain(await _call(bus, "Remove", "ssasa{sv}",
                                    [args.repo, args.arch, args.bases, _opts()]))
    elif cmd == "move":
        force = {"force": Variant("b", True)} if args.force else {}
        result = _plain(await _call(bus, "Move", "sssasa{sv}",
                                    [args.source, args.destination, args.arch, args.bases,
                                     _opts(**force)]))
    elif cmd == "list":
        result = await _paged(bus, "List", "ssa{sv}", [args.repo, args.arch])
    elif cmd == "history":
        result = await _paged(bus, "History", "sa{sv}", [args.base])
    elif cmd == "check":
        opts = _opts(verify=Variant("b", args.verify), repair=Variant("b", args.repair))
        result = {k: v.value for k, v in (await _call(bus, "Check", "a{sv}",
                                                      [opts])).items()}
    else:
        result = [{"name": n, "arches": list(a), "testing": bool(t)}
                  for n, a, t in await _call(bus, "ListRepositories", "", [])]
    if args.json:
        print(json.dumps(result, indent=1))
        return EXIT_OK if cmd != "check" or result["ok"] else EXIT_FAILED
    if cmd in ("add", "remove", "move"):
        for h in result:
            print(f"{h['action']} {h['repo']} {h['arch']} {h['base']} {h['version']}")
    elif cmd == "list":
        for r in result:
            print(f"{r['repo']} {r['arch']} {r['name']} {r['version']}")
    elif cmd == "history":
        for h in result:
            extra = f" ({h['detail']})" if h["detail"] else ""
            print(f"{when(h['at'])} {h['user']} {h['action']} {h['repo']} {h['arch']} "
                  f"{h['base']} {h['version']}{extra}")
    elif cmd == "check":
        for note in result["notes"]:
            print(_("note: ") + note)
        for problem in result["problems"]:
            print(_("error: ") + problem)
        print(_("tree is consistent") if result["ok"] else ngettext(
            "{n} problem", "{n} problems", len(result["problems"])).format(
                n=len(result["problems"])))
        return EXIT_OK if result["ok"] else EXIT_FAILED
    else:
        for r in result:
            mark = " " + _("(testing)") if r["testing"] else ""
            print(f"{r['name']} {','.join(r['arches'])}{mark}")
    return EXIT_OK
