"""systemd integration: sd_notify and journald, both optional.

Without NOTIFY_SOCKET (or with a dead one) notifications are dropped; without
journald the log goes to stderr. Neither ever stops the daemon.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

try:
    from systemd import daemon as _sd_daemon
    from systemd import journal as _sd_journal
except ImportError:  # pragma: no cover - systemd-python is a dependency
    _sd_daemon = None
    _sd_journal = None

JOURNAL_SOCKET = "/run/systemd/journal/socket"
log = logging.getLogger("alpmd")


def notify(state: str) -> bool:
    """Send ``state`` (``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``) if we can."""
    if _sd_daemon is None or not os.environ.get("NOTIFY_SOCKET"):
        return False
    try:
        return bool(_sd_daemon.notify(state))
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


class _JournalHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {k.upper(): str(v) for k, v in
                                  getattr(record, "fields", {}).items()}
        prio = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4,
                logging.ERROR: 3, logging.CRITICAL: 2}.get(record.levelno, 6)
        try:
            assert _sd_journal is not None
            _sd_journal.send(self.format(record), PRIORITY=str(prio),
                             SYSLOG_IDENTIFIER="alpmd", **fields)
        except OSError:
            sys.stderr.write(self.format(record) + "\n")


def setup_logging(verbose: bool = False) -> None:
    """journald with structured fields when it is there, stderr otherwise."""
    handler: logging.Handler
    if _sd_journal is not None and os.path.exists(JOURNAL_SOCKET) and not sys.stderr.isatty():
        handler = _JournalHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("alpmd: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False


def event(message: str, **fields: object) -> None:
    """An info line with structured fields (transaction id, uid, kind, result)."""
    log.info(message, extra={"fields": fields})
