"""``alpmd``: own org.alpm on the system bus and serve until told to stop.

Honours DBUS_SYSTEM_BUS_ADDRESS (``--address`` wins) and ``--config PATH``.
"""

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from dbus_fast import Message, MessageType, RequestNameReply

from alpmd import __version__
from alpmd.dbus import limits, notify
from alpmd.dbus.bus import connect_daemon
from alpmd.dbus.daemon import KEEP_FINISHED, Daemon
from alpmd.dbus.manager import Manager1
from alpmd.dbus.query import Query1
from alpmd.dbus.repository import Repository1

BUS_NAME = "org.alpm"
PATH = "/org/alpm"
log = logging.getLogger("alpmd")


async def serve(config: str, *, address: str | None = None, keep_finished: float = KEEP_FINISHED,
                idle_timeout: float = 0, caps: limits.Limits = limits.LIMITS) -> int:
    ledger = limits.Ledger(caps)  # (the relay admits each message with it from the start)
    bus, relay = await connect_daemon(address, ledger.admit, cap=caps.reply_bytes)
    daemon = Daemon(bus, config, keep_finished=keep_finished, idle_timeout=idle_timeout,
                    caps=caps, ledger=ledger)
    manager = Manager1(daemon)
    bus.export(PATH, manager)
    bus.export(PATH, Query1(daemon))
    repository = Repository1(daemon)
    bus.export(PATH, repository)

    def on_name_lost(msg: Message) -> bool:
        if (msg.message_type is MessageType.SIGNAL and msg.member == "NameOwnerChanged"
                and msg.sender == "org.freedesktop.DBus" and msg.body[2] == ""
                and msg.body[0].startswith(":")):
            daemon.client_gone(msg.body[0])
        return False

    bus.add_message_handler(on_name_lost)
    await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                           interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                           body=["type='signal',sender='org.freedesktop.DBus',"
                                 "member='NameOwnerChanged',arg2=''"]))
    # Repair what a killed commit left before anyone can ask (the engine's journal).
    try:
        await asyncio.to_thread(daemon.recover)
    except Exception:
        log.exception("start-up recovery failed")
    # the databases read in a thread, before anyone can ask
    try:
        await daemon.reload()
    except Exception:
        log.exception("could not open the databases")
    daemon.watcher.lock_holder = daemon.handle.lock_holder()
    # what pacman did while we were not running
    await daemon.record.import_log()
    reply = await bus.request_name(BUS_NAME)
    if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
        log.error("could not own %s (%s)", BUS_NAME, reply)
        bus.disconnect()
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stopping.set)
    tasks = [asyncio.ensure_future(daemon.writer()), asyncio.ensure_future(daemon.watcher.run())]
    notify.notify("READY=1")
    notify.notify("STATUS=idle")
    log.info("alpmd %s serving %s (config %s)", __version__, BUS_NAME, config)
    disconnected = asyncio.ensure_future(bus.wait_for_disconnect())  # type: ignore[no-untyped-call]
    stop = asyncio.ensure_future(daemon.stopping.wait())
    await asyncio.wait([disconnected, stop], return_when=asyncio.FIRST_COMPLETED)
    notify.notify("STOPPING=1")
    if daemon.current is not None and daemon.current.state in ("committing", "hooks"):
        log.info("waiting for the running commit to finish")
        await daemon.current.done.wait()
    for task in [*tasks, disconnected, stop]:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    # a finished transaction's history row is written in a thread: not lost to the stop
    await daemon.record.stopping(30)
    with contextlib.suppress(Exception):
        bus.disconnect()
    daemon.handle.release()
    repository.close()
    await asyncio.to_thread(relay.join, 5.0)
    if relay.failure is not None:  # (its connection lost: a service manager restarts us)
        log.error("the bus relay failed: %r", relay.failure)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="alpmd", description="The alpmd package-management daemon: owns org.alpm on the system bus.")
    ap.add_argument("--version", action="version", version=f"alpmd {__version__}")
    ap.add_argument("--config", default="/etc/pacman.conf")
    ap.add_argument("--address", default=None, help="bus address (default: the system bus)")
    ap.add_argument("--keep-finished", type=float, default=KEEP_FINISHED,
                    help="seconds a finished transaction stays on the bus")
    ap.add_argument("--idle-timeout", type=float, default=300,
                    help="exit after this many idle seconds (0: never)")
    ap.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                    help="change one of the caps (alpmd.dbus.limits.Limits), e.g. "
                         "search_deadline=5")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    notify.setup_logging(args.verbose)
    try:
        return asyncio.run(serve(args.config, address=args.address,
                                 keep_finished=args.keep_finished,
                                 idle_timeout=args.idle_timeout,
                                 caps=limits.parse(args.limit)))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        log.error("alpmd failed: %s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
