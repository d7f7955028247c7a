"""``alpmctl``: a D-Bus client of alpmd for people (search, info, updates, install,
remove, upgrade, refresh, history); Ctrl-C cancels a running transaction."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from dbus_fast import DBusError, Message, MessageType
from dbus_fast.signature import Variant

from alpmd import __version__
from alpmd.dbus.bus import connect

DEST, PATH = "org.alpm", "/org/alpm"


async def _call(bus: Any, path: str, iface: str, member: str, sig: str = "",
                body: list[Any] | None = None) -> list[Any]:
    reply = await bus.call(Message(destination=DEST, path=path, interface=iface, member=member,
                                   signature=sig, body=body or []))
    if reply.message_type is MessageType.ERROR:
        raise DBusError(reply.error_name, reply.body[0] if reply.body else "")
    return list(reply.body)


async def _prop(bus: Any, path: str, name: str) -> Any:
    body = await _call(bus, path, "org.freedesktop.DBus.Properties", "Get", "ss",
                       ["org.alpm.Transaction1", name])
    return body[0].value


async def _follow(bus: Any, path: str, *, assume_yes: bool) -> int:
    await _call(bus, path, "org.alpm.Transaction1", "Run")
    last = -1.0
    try:
        while True:
            state = await _prop(bus, path, "State")
            pct = await _prop(bus, path, "Percentage")
            question = await _prop(bus, path, "Question")
            if state == "waiting-answer" and question[0]:
                qid, _kind, text = question[0], question[1], question[2]
                ans = "y" if assume_yes else input(f"\n:: {text} [Y/n] ").strip().lower() or "y"
                await _call(bus, path, "org.alpm.Transaction1", "Answer", "uv",
                            [qid, Variant("b", ans.startswith("y"))])
            if state == "finished":
                break
            if pct != last:
                bar = "#" * int(pct / 5)
                sys.stdout.write(f"\r[{bar:<20}] {pct:5.1f}% {state:<15}")
                sys.stdout.flush()
                last = pct
            await asyncio.sleep(0.2)
    except (KeyboardInterrupt, asyncio.CancelledError):
        await _call(bus, path, "org.alpm.Transaction1", "Cancel")
        print("\ncancelled")
        return 130
    result = await _prop(bus, path, "Result")
    err = await _prop(bus, path, "Error")
    print(f"\n{result}" + (f": {err[1]}" if err[1] else ""))
    return 0 if result == "success" else 1


async def amain(args: argparse.Namespace) -> int:
    bus = await connect(args.address)
    try:
        q = "org.alpm.Query1"
        m = "org.alpm.Manager1"
        if args.cmd == "search":
            rows = (await _call(bus, PATH, q, "Search", "asa{sv}", [args.terms, {}]))[0]
            for _id, name, version, repo, desc, inst in rows:
                print(f"{repo}/{name} {version}{' [installed]' if inst else ''}\n    {desc}")
        elif args.cmd == "info":
            ids = (await _call(bus, PATH, q, "Resolve", "asa{sv}", [args.names, {}]))[0]
            attrs = ["name", "version", "repo", "description", "url", "licenses", "depends",
                     "installed_size", "required_by"]
            for row in (await _call(bus, PATH, q, "GetPackages", "asas", [ids, attrs]))[0]:
                for k in attrs:
                    v = row[k].value
                    print(f"{k:<15}: {' '.join(v) if isinstance(v, list) else v}")
                print()
        elif args.cmd == "updates":
            for row in (await _call(bus, PATH, q, "GetUpdates", "a{sv}", [{}]))[0]:
                print(f"{row['name'].value} {row['old'].value} -> {row['new'].value}")
        elif args.cmd == "history":
            for row in (await _call(bus, PATH, m, "GetHistory", "a{sv}", [{}]))[0]:
                print(" ".join(str(row[k].value) for k in ("time", "action", "package", "detail")
                               if k in row))
        else:
            opts: dict[str, Variant] = {}
            if args.cmd == "refresh":
                path = (await _call(bus, PATH, m, "Refresh", "a{sv}", [opts]))[0]
            elif args.cmd == "upgrade":
                path = (await _call(bus, PATH, m, "Sysupgrade", "a{sv}", [opts]))[0]
            elif args.cmd == "install":
                path = (await _call(bus, PATH, m, "Install", "asa{sv}", [args.names, opts]))[0]
            else:
                path = (await _call(bus, PATH, m, "Remove", "asa{sv}", [args.names, opts]))[0]
            return await _follow(bus, path, assume_yes=args.yes)
        return 0
    except DBusError as exc:
        print(f"error: {exc.text} ({exc.type})", file=sys.stderr)
        return 1
    finally:
        bus.disconnect()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="alpmctl", description="A client of the alpmd daemon: search, info, updates, install, remove, upgrade, refresh, history. Ctrl-C cancels a running transaction.")
    ap.add_argument("--version", action="version", version=f"alpmctl (alpmd) {__version__}")
    ap.add_argument("--address", default=None, help="bus address (default: the system bus)")
    ap.add_argument("-y", "--yes", action="store_true", help="answer questions with yes")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("search").add_argument("terms", nargs="*")
    for name in ("info", "install", "remove"):
        sub.add_parser(name).add_argument("names", nargs="+")
    for name in ("updates", "upgrade", "refresh", "history"):
        sub.add_parser(name)
    args = ap.parse_args(argv)
    try:
        return asyncio.run(amain(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
