"""systemd integration: sd_notify and journald, both optional.

systemd-python is an optional extra (``pip install alpmd[systemd]``), imported
only when used. Without it, without NOTIFY_SOCKET (or with a dead one)
notifications are dropped; without it or journald the log goes to stderr.
Neither ever stops the daemon.
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType

JOURNAL_SOCKET = "/run/systemd/journal/socket"
log = logging.getLogger("alpmd")


def _sd_daemon() -> ModuleType | None:
    """``systemd.daemon``, or None without the optional systemd-python."""
    try:
        from systemd import daemon
    except ImportError:
        return None
    mod: ModuleType = daemon
    return mod


def notify(state: str) -> bool:
    """Send ``state`` (``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``) if we can."""
    sd = _sd_daemon() if os.environ.get("NOTIFY_SOCKET") else None
    if sd is None:
        return False
    try:
        return bool(sd.notify(state))
    except OSError:
        return False


def watchdog_interval() -> float | None:
    """Half of WatchdogSec when systemd asked us for keep-alives."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None


def journal_handler() -> logging.Handler | None:
    """systemd-python's JournalHandler when the system runs systemd with a journal, else
    None (no systemd-python, another init, or a terminal to write to)."""
    sd = _sd_daemon()
    if sd is None or not sd.booted() or not os.path.exists(JOURNAL_SOCKET) \
            or sys.stderr.isatty():
        return None
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return None
    handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="alpmd")
    return handler


def setup_logging(verbose: bool = False) -> None:
    """journald with structured fields when it is there, stderr otherwise."""
    handler = journal_handler()
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("alpmd: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def event(message: str, **fields: object) -> None:
    """An info line with structured fields (transaction id, uid, kind, result): journald
    field names are upper case (JournalHandler sends a record's extra attributes)."""
    log.info(message, extra={k.upper(): str(v) for k, v in fields.items()})
