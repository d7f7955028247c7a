"""``alpmctl``: the daemon's client for people (and, with ``--json``, for scripts).

Queries (search, list, info, updates, pacnew, history) print what the daemon answers. Changes
(install, remove, upgrade, refresh, trust-key) create a transaction object, subscribe to its
signals, run it and follow it until ``Finished``: per-file download bars with speed
and ETA, overall progress, scriptlet and hook output as it streams. Questions are
asked at the terminal while the event loop goes on; Ctrl-C cancels. Exit status:
0 success, 1 failed, 2 bad usage, 130 cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from dbus_fast import DBusError, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.signature import Variant
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from alpmd import __version__
from alpmd.cli import alpmctl_repo
from alpmd.dbus.bus import connect
from alpmd.engine.query import SCOPE_NAMES
from alpmd.i18n import N_, client_locale, is_yes
from alpmd.i18n import gettext as _

DEST, PATH = "org.alpm", "/org/alpm"
MANAGER, QUERY, TRANS = "org.alpm.Manager1", "org.alpm.Query1", "org.alpm.Transaction1"
PROPS = "org.freedesktop.DBus.Properties"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130

#: what a transaction's State and Result say, for people (the D-Bus values stay English)
WORDS = {"setup": N_("setup"), "queued": N_("queued"), "waiting-auth": N_("waiting for authorization"),
         "waiting-lock": N_("waiting for the database lock"), "resolving": N_("resolving"),
         "waiting-answer": N_("waiting for an answer"), "downloading": N_("downloading"),
         "checking": N_("checking"), "committing": N_("committing"), "hooks": N_("running hooks"),
         "failed": N_("failed"), "cancelled": N_("cancelled"), "success": N_("success")}


def word(value: str) -> str:
    """A state or result in the user's language (unknown values as they are)."""
    msgid = WORDS.get(value)
    return _(msgid) if msgid else value


async def call(bus: MessageBus, path: str, iface: str, member: str, sig: str = "",
               body: list[Any] | None = None, *, dest: str = DEST) -> list[Any]:
    reply = await bus.call(Message(destination=dest, path=path, interface=iface, member=member,
                                   signature=sig, body=body or []))
    assert reply is not None
    if reply.message_type is MessageType.ERROR:
        raise DBusError(reply.error_name or "", reply.body[0] if reply.body else "")
    return list(reply.body)


def plain(value: Any) -> Any:
    """A D-Bus value with its Variants unwrapped (for JSON)."""
    if isinstance(value, Variant):
        return plain(value.value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


# -- the views of a running transaction ----------------------------------------------------


class _Bytes(DownloadColumn):
    """Sizes for download bars only (packages being installed count percent)."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.fields.get("download") else Text("")


class _Speed(TransferSpeedColumn):
    def render(self, task: Task) -> Text:
        return super().render(task) if task.fields.get("download") else Text("")


@dataclass
class Question:
    """A question the daemon asked this client, as its signal carried it."""

    qid: int
    kind: str
    text: str
    choices: list[str]
    default: Any


class View:
    """What a follower tells its user; :class:`TermView` and :class:`JsonView` say it."""

    def state(self, state: str) -> None: ...
    def percentage(self, value: float) -> None: ...
    def download(self, file: str, done: int, total: int, rate: float) -> None: ...
    def item(self, name: str, percent: int, current: int, total: int) -> None: ...
    def log(self, level: str, source: str, text: str) -> None: ...
    def question(self, q: Question) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def note(self, text: str) -> None: ...
    def finished(self, result: str, error: str, message: str) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...


class JsonView(View):
    """One JSON object per line, for scripts: ``{"event": ..., ...}``."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def emit(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"event": event, **fields}) + "\n")
        self.out.flush()

    def state(self, state: str) -> None:
        self.emit("state", state=state)

    def percentage(self, value: float) -> None:
        self.emit("progress", percentage=round(value, 1))

    def download(self, file: str, done: int, total: int, rate: float) -> None:
        self.emit("download", file=file, done=done, total=total, rate=rate)

    def item(self, name: str, percent: int, current: int, total: int) -> None:
        self.emit("item", name=name, percent=percent, current=current, total=total)

    def log(self, level: str, source: str, text: str) -> None:
        self.emit("log", level=level, source=source, text=text)

    def question(self, q: Question) -> None:
        self.emit("question", id=q.qid, kind=q.kind, text=q.text, choices=q.choices)

    def note(self, text: str) -> None:
        self.emit("note", text=text)

    def finished(self, result: str, error: str, message: str) -> None:
        self.emit("finished", result=result, error=error, message=message)


class TermView(View):
    """rich progress bars on a terminal; plain lines otherwise."""

    SHOWN_SOURCES = ("scriptlet", "hook")

    def __init__(self, console: Console, *, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"), BarColumn(bar_width=30),
            TaskProgressColumn(), _Bytes(), _Speed(),
            TimeRemainingColumn(), console=console, transient=False,
            disable=not console.is_terminal, auto_refresh=True, refresh_per_second=8)
        self.overall: TaskID | None = None
        self.files: dict[str, TaskID] = {}
        self.items: dict[str, TaskID] = {}
        self.last_state = ""

    def start(self) -> None:
        self.progress.start()
        self.overall = self.progress.add_task("[bold]" + escape(_("total")), total=100.0)

    def stop(self) -> None:
        self.progress.stop()

    def state(self, state: str) -> None:
        if state != self.last_state and state != "finished":
            self.last_state = state
            if self.overall is not None:
                self.progress.update(self.overall, description=f"[bold]{escape(word(state))}")
            if not self.console.is_terminal:
                self.console.print(f":: {word(state)}", markup=False, highlight=False)

    def percentage(self, value: float) -> None:
        if self.overall is not None:
            self.progress.update(self.overall, completed=value)

    def download(self, file: str, done: int, total: int, rate: float) -> None:
        task = self.files.get(file)
        if task is None:
            task = self.progress.add_task(file, total=total or None, download=True)
            self.files[file] = task
        self.progress.update(task, completed=done, total=total or None)

    def item(self, name: str, percent: int, current: int, total: int) -> None:
        key = name
        if not key:
            return
        task = self.items.get(key)
        if task is None:
            label = f"({current}/{total}) {key}" if total else key
            task = self.progress.add_task(label, total=100)
            self.items[key] = task
        self.progress.update(task, completed=percent)

    def log(self, level: str, source: str, text: str) -> None:
        if level in ("warning", "error"):
            head = _("warning: ") if level == "warning" else _("error: ")
            self.console.print(f"{head}{text}", style="yellow" if level == "warning" else "red",
                               markup=False, highlight=False)
        elif source in self.SHOWN_SOURCES or self.verbose:
            self.console.print(text, markup=False, highlight=False)

    def pause(self) -> None:
        self.progress.stop()

    def resume(self) -> None:
        self.progress.start()

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def finished(self, result: str, error: str, message: str) -> None:
        for task in self.files.values():
            t = self.progress.tasks[task]
            if t.total:
                self.progress.update(task, completed=t.total)
        self.progress.stop()
        if result == "success":
            self.console.print(f"[green]{escape(_('done'))}[/green]")
        else:
            err = Console(stderr=True, highlight=False)
            err.print(f"{word(result)}: {message or error}", markup=False)


# -- following one transaction -------------------------------------------------------------


@dataclass
class Follower:
    """Drive one transaction object from its signals until it finishes."""

    bus: MessageBus
    path: str
    view: View
    assume_yes: bool = False
    interactive: bool = True
    finished: asyncio.Future[tuple[str, str, str]] = field(init=False)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.finished = asyncio.get_running_loop().create_future()

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_message(self, msg: Message) -> bool:
        if msg.message_type is not MessageType.SIGNAL or msg.path != self.path:
            return False
        body = msg.body
        if msg.interface == PROPS and msg.member == "PropertiesChanged":
            changed = body[1]
            if "State" in changed:
                self.view.state(changed["State"].value)
            if "Percentage" in changed:
                self.view.percentage(float(changed["Percentage"].value))
        elif msg.interface == TRANS:
            if msg.member == "DownloadProgress":
                self.view.download(body[0], int(body[1]), int(body[2]), float(body[3]))
            elif msg.member == "ItemProgress":
                self.view.item(body[0], int(body[1]), int(body[2]), int(body[3]))
            elif msg.member == "Log":
                self.view.log(body[1], body[2], body[3])
            elif msg.member == "QuestionAsked":
                default = body[4].get("default")
                q = Question(int(body[0]), body[1], body[2], list(body[3]),
                             default.value if isinstance(default, Variant) else None)
                self.spawn(self.answer(q))
            elif msg.member == "Finished" and not self.finished.done():
                self.finished.set_result((body[0], body[1], body[2]))
        return False

    async def answer(self, q: Question) -> None:
        self.view.question(q)
        if not self.assume_yes and not self.interactive:
            return                  # the daemon takes the default (question-timeout 0)
        if self.assume_yes:
            value = _yes(q)
            self.view.note(f":: {q.text} " + _("yes (--yes)"))
        else:
            self.view.pause()
            try:
                value = await ask_terminal(q)
            finally:
                self.view.resume()
        try:
            await call(self.bus, self.path, TRANS, "Answer", "uv", [q.qid, value])
        except DBusError as exc:
            self.view.note(_("the answer was not taken: {error}").format(error=exc.text))

    async def cancel(self) -> None:
        """Ctrl-C: ask the daemon to cancel; it says when it cannot (committing)."""
        self.view.note(_("cancelling..."))
        try:
            await call(self.bus, self.path, TRANS, "Cancel")
        except DBusError as exc:
            self.view.note(_("cannot cancel now: {error}").format(error=exc.text))

    async def run(self) -> tuple[str, str, str]:
        rule = f"type='signal',sender='{DEST}',path='{self.path}'"
        await call(self.bus, "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s",
                   [rule], dest="org.freedesktop.DBus")
        self.bus.add_message_handler(self.on_message)
        try:
            # questions, errors and log lines in the user's language
            hints = {"interactive": Variant("b", self.interactive and not self.assume_yes),
                     "locale": Variant("s", client_locale())}
            if not self.interactive and not self.assume_yes:
                # nobody to ask: the engine's default at once, not after the daemon's deadline
                hints["question-timeout"] = Variant("d", 0.0)
            await call(self.bus, self.path, TRANS, "SetHints", "a{sv}", [hints])
            await call(self.bus, self.path, TRANS, "Run")
            # a transaction refused at once, or finished before our match rule saw it
            state = (await call(self.bus, self.path, PROPS, "Get", "ss", [TRANS, "State"]))[0]
            if state.value == "finished" and not self.finished.done():
                got = await call(self.bus, self.path, PROPS, "GetAll", "s", [TRANS])
                props = got[0]
                self.finished.set_result((props["Result"].value, *props["Error"].value))
            return await self.finished
        finally:
            self.bus.remove_message_handler(self.on_message)


def _yes(q: Question) -> Variant:
    if q.choices and q.choices != ["yes", "no"]:
        if q.kind == "SelectProvider":
            return Variant("u", 0)
        return Variant("au", list(range(len(q.choices))))
    return Variant("b", True)


async def ask_terminal(q: Question) -> Variant:
    """Ask on the terminal, reading stdin from the event loop (no thread, cancellable)."""
    loop = asyncio.get_running_loop()
    yesno = not q.choices or q.choices == ["yes", "no"]
    if yesno:
        default_yes = q.default is not False
        prompt = f":: {q.text} {_('[Y/n]') if default_yes else _('[y/N]')} "
    else:
        listing = "  ".join(f"{i}) {c}" for i, c in enumerate(q.choices))
        prompt = f":: {q.text}\n   {listing}\n" + _("Enter a number (default 0): ")
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line: asyncio.Future[str] = loop.create_future()
    fd = sys.stdin.fileno()
    buf = bytearray()

    def readable() -> None:
        data = os.read(fd, 4096)
        buf.extend(data)
        if (not data or b"\n" in buf) and not line.done():
            line.set_result(buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip())

    loop.add_reader(fd, readable)
    try:
        text = await line
    finally:
        loop.remove_reader(fd)
    if yesno:
        if not text:
            return Variant("b", default_yes)
        return Variant("b", is_yes(text))
    picks = [int(w) for w in text.replace(",", " ").split() if w.isdigit()] or [0]
    if q.kind == "SelectProvider":
        return Variant("u", picks[0])
    return Variant("au", picks)


# -- commands -------------------------------------------------------------------------------


async def follow(bus: MessageBus, path: str, args: argparse.Namespace) -> int:
    view: View = JsonView(sys.stdout) if args.json else TermView(Console(), verbose=args.verbose)
    interactive = not args.json and sys.stdin.isatty()
    follower = Follower(bus, path, view, assume_yes=args.yes, interactive=interactive)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, lambda: follower.spawn(follower.cancel()))
    view.start()
    try:
        result, error, message = await follower.run()
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        view.stop()
    view.finished(result, error, message)
    return {"success": EXIT_OK, "cancelled": EXIT_CANCELLED}.get(result, EXIT_FAILED)


def _when(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _date(text: str) -> float:
    """``YYYY-MM-DD[ HH:MM[:SS]]`` (local time) or seconds since the epoch."""
    try:
        return float(text)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        with contextlib.suppress(ValueError):
            return datetime.datetime.strptime(text, fmt).timestamp()
    raise argparse.ArgumentTypeError(_("not a date: {text} (YYYY-MM-DD[ HH:MM])").format(
        text=repr(text)))


def print_history(rows: list[dict[str, Any]], console: Console) -> None:
    """One line per transaction (when, kind, targets, result, who, duration), then its
    package changes. Rows of an older daemon (time/action/package/detail) print as they are."""
    for row in rows:
        if "started" not in row:
            console.print("  ".join(str(row[k]) for k in ("time", "action", "package", "detail")
                                    if row.get(k)), markup=False, highlight=False)
            continue
        uid = int(row.get("uid", -1))
        who = "pacman.log" if row.get("source") == "pacman.log" else (
            _("uid {uid}").format(uid=uid) + (f" ({row['client']})" if row.get("client") else ""))
        head = (f"{_when(float(row['started']))}  {row.get('kind', '')}  "
                f"{' '.join(row.get('targets', []))}  {word(row.get('result', ''))}  {who}  "
                f"{float(row.get('duration', 0)):.1f}s")
        console.print(head, markup=False, highlight=False)
        if row.get("error"):
            console.print("    " + _("error: ") + row["error"], markup=False, highlight=False)
        for name, old, new in row.get("changes", []):
            move = f"{old} -> {new}" if old and new else (
                _("{version} (installed)").format(version=new) if new
                else _("{version} (removed)").format(version=old))
            console.print(f"    {name} {move}", markup=False, highlight=False)


async def amain(args: argparse.Namespace, opened: Sequence[alpmctl_repo.Opened] = ()) -> int:
    bus = await connect(args.address)
    out = Console(highlight=False)
    try:
        if args.cmd == "repo":
            return await alpmctl_repo.run(bus, args, opened, _when)
        if args.cmd in ("search", "list"):
            sopts = {"scope": Variant("s", args.scope)} if args.cmd == "list" else {}
            terms = args.terms if args.cmd == "search" else []
            rows = (await call(bus, PATH, QUERY, "Search", "asa{sv}", [terms, sopts]))[0]
            if args.json:
                keys = ("id", "name", "version", "repo", "description", "installed")
                print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=1))
            for _id, name, version, repo, desc, inst in [] if args.json else rows:
                mark = f" [cyan]\\[{escape(_('installed'))}][/cyan]" if inst else ""
                out.print(f"[bold]{escape(repo)}/{escape(name)}[/bold] "
                          f"[green]{escape(version)}[/green]{mark}")
                out.print(f"    {desc}", markup=False)
        elif args.cmd == "info":
            ids = (await call(bus, PATH, QUERY, "Resolve", "asa{sv}", [args.names, {}]))[0]
            attrs = ["name", "version", "repo", "description", "url", "licenses", "depends",
                     "installed_size", "required_by"]
            rows = (await call(bus, PATH, QUERY, "GetPackages", "asas", [ids, attrs]))[0]
            if args.json:
                print(json.dumps(plain(rows), indent=1))
            for row in [] if args.json else rows:
                for k in attrs:
                    v = row[k].value
                    out.print(f"{k:<15}: {' '.join(v) if isinstance(v, list) else v}",
                              markup=False)
                out.print()
        elif args.cmd == "updates":
            rows = (await call(bus, PATH, QUERY, "GetUpdates", "a{sv}", [{}]))[0]
            if args.json:
                print(json.dumps(plain(rows), indent=1))
            for row in [] if args.json else rows:
                out.print(f"{row['name'].value} {row['old'].value} -> {row['new'].value}",
                          markup=False)
        elif args.cmd == "pacnew":
            pairs = (await call(bus, PATH, QUERY, "GetPacnew"))[0]
            if args.json:
                print(json.dumps([{"path": p, "package": n} for p, n in pairs], indent=1))
            for path, name in [] if args.json else pairs:
                out.print(f"{path} ({name})", markup=False)
        elif args.cmd == "history":
            opts = {"offset": Variant("u", args.offset), "limit": Variant("u", args.limit)}
            if args.package:
                opts["package"] = Variant("s", args.package)
            if args.since is not None:
                opts["since"] = Variant("t", int(args.since))
            if args.until is not None:
                opts["until"] = Variant("t", int(args.until))
            rows = plain((await call(bus, PATH, MANAGER, "GetHistory", "a{sv}", [opts]))[0])
            if args.json:
                print(json.dumps(rows, indent=1))
            else:
                print_history(rows, out)
        else:
            opts = {}
            if args.cmd == "refresh":
                if args.force:
                    opts["force"] = Variant("b", True)
                path = (await call(bus, PATH, MANAGER, "Refresh", "a{sv}", [opts]))[0]
            elif args.cmd == "trust-key":
                path = (await call(bus, PATH, MANAGER, "TrustKey", "sa{sv}",
                                   [args.fingerprint, opts]))[0]
            elif args.cmd == "upgrade":
                path = (await call(bus, PATH, MANAGER, "Sysupgrade", "a{sv}", [opts]))[0]
            elif args.cmd == "install":
                path = (await call(bus, PATH, MANAGER, "Install", "asa{sv}",
                                   [args.names, opts]))[0]
            else:
                path = (await call(bus, PATH, MANAGER, "Remove", "asa{sv}",
                                   [args.names, opts]))[0]
            if args.no_wait:
                await call(bus, path, TRANS, "Run")
                print(path)
                return EXIT_OK
            return await follow(bus, path, args)
        return EXIT_OK
    except DBusError as exc:
        if args.json:
            print(json.dumps({"event": "error", "error": exc.type, "message": exc.text}))
        else:
            print(_("error: ") + f"{exc.text} ({exc.type})", file=sys.stderr)
        return EXIT_FAILED
    finally:
        bus.disconnect()


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="alpmctl", description=_(
            "The alpmd daemon's client: search, list, info, updates, pacnew and history ask it; "
            "install, remove, upgrade, refresh and trust-key change the system through it, "
            "with progress bars and questions at the terminal (Ctrl-C cancels); repo manages "
            "the repository tree it serves. Exit status: "
            "0 success, 1 failed, 2 bad usage, 130 cancelled."))
    ap.add_argument("--version", action="version", version=f"alpmctl (alpmd) {__version__}")
    ap.add_argument("--address", default=None, help=_("bus address (default: the system bus)"))
    ap.add_argument("-y", "--yes", action="store_true", help=_("answer every question with yes"))
    ap.add_argument("--json", action="store_true", help=_(
        "JSON output (one event per line while a transaction runs)"))
    ap.add_argument("-v", "--verbose", action="store_true", help=_("show every log line"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("search", help=_("search the repositories")).add_argument("terms", nargs="*")
    sub.add_parser("list", help=_("list installed packages (or those of the repositories)")
                   ).add_argument("--scope", default="installed",
                                  choices=["available", *SCOPE_NAMES],
                                  help=_("which ones (default: installed)"))
    sub.add_parser("info", help=_("show packages")).add_argument("names", nargs="+")
    sub.add_parser("pacnew", help=_("configuration files left to merge (.pacnew, .pacsave)"))
    sub.add_parser("updates", help=_("list the available updates (after refresh)"))
    hist = sub.add_parser("history", help=_("the transactions, newest first"))
    hist.add_argument("--limit", type=int, default=20,
                      help=_("how many transactions to show (default: 20)"))
    hist.add_argument("--offset", type=int, default=0,
                      help=_("how many of the newest transactions to skip"))
    hist.add_argument("--package", default=None, help=_("only transactions that changed it"))
    hist.add_argument("--since", type=_date, default=None, help="YYYY-MM-DD[ HH:MM]")
    hist.add_argument("--until", type=_date, default=None, help="YYYY-MM-DD[ HH:MM]")
    for name, help_text in (("install", N_("install packages (with a system upgrade)")),
                            ("remove", N_("remove packages")),
                            ("upgrade", N_("upgrade the system")),
                            ("refresh", N_("download fresh package databases")),
                            ("trust-key", N_("import (asking) and locally sign a packager key"))):
        p = sub.add_parser(name, help=_(help_text))
        if name in ("install", "remove"):
            p.add_argument("names", nargs="+")
        if name == "trust-key":
            p.add_argument("fingerprint")
        if name == "refresh":
            p.add_argument("--force", action="store_true", help=_("even when up to date"))
        wait = p.add_mutually_exclusive_group()
        wait.add_argument("--wait", action="store_true", default=True,
                          help=_("follow the transaction to its end (the default); the exit "
                                 "status says how it ended"))
        wait.add_argument("--no-wait", action="store_true",
                          help=_("start it and print its path"))
    alpmctl_repo.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.cmd == "history" and (args.limit < 0 or args.offset < 0):
        print(_("error: ") + _("--limit and --offset must not be negative"), file=sys.stderr)
        return EXIT_USAGE
    opened: list[alpmctl_repo.Opened] = []
    if args.cmd == "repo" and args.repo_cmd == "add":
        try:  # (before the bus: a file that cannot be opened is the caller's mistake)
            opened = alpmctl_repo.open_files(args.files)
        except alpmctl_repo.FileProblem as exc:
            print(_("error: ") + str(exc), file=sys.stderr)
            return EXIT_USAGE
    try:
        return asyncio.run(amain(args, opened))
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    except (OSError, ConnectionError) as exc:
        print(_("error: ") + _("cannot reach the daemon: {error}").format(error=exc),
              file=sys.stderr)
        return EXIT_FAILED
    finally:
        alpmctl_repo.close_files(opened)


if __name__ == "__main__":
    sys.exit(main())

