"""Logging: the front ends' log callback, pacman.log lines, and syslog.

pacman.log lines look like ``[2024-01-31T12:00:00+0100] [ALPM] installed foo (1.0-1)``:
local time with its UTC offset, then the prefix naming who speaks (``ALPM`` for the
library, ``ALPM-SCRIPTLET`` for scriptlet output, ``PACMAN`` for the front end).
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable


class LogLevel(enum.IntFlag):
    """libalpm's log levels (``alpm_loglevel_t``)."""

    ERROR = 1
    WARNING = 2
    DEBUG = 4
    FUNCTION = 8


LogCallback = Callable[[LogLevel, str], None]


def python_log(level: LogLevel, message: str, name: str = "alpmd.engine") -> None:
    """Also tell Python's logging; imported on the first message (queries rarely log).

    The "alpmd" logger gets a NullHandler unless the program gave it a handler, so a
    command line that never configured logging prints nothing twice (people read the
    handle's callbacks); records still propagate to the root logger's handlers.
    """
    import logging

    top = logging.getLogger("alpmd")
    if not top.handlers:
        top.addHandler(logging.NullHandler())
    logging.getLogger(name).log(
        logging.ERROR if level & LogLevel.ERROR else
        logging.WARNING if level & LogLevel.WARNING else logging.DEBUG, "%s", message)


def format_line(prefix: str, message: str, when: float | None = None) -> str:
    """One pacman.log line (``message`` already ends with a newline or gets one)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(when))
    if not message.endswith("\n"):
        message += "\n"
    return f"[{stamp}] [{prefix}] {message}"


class LogWriter:
    """Appends to pacman.log (opened on first use) and mirrors to syslog when asked."""

    def __init__(self, path: str | None, *, use_syslog: bool = False) -> None:
        self.path = path
        self.use_syslog = use_syslog
        self._fd: int | None = None
        self._syslog_open = False

    def write(self, prefix: str, message: str) -> None:
        """Log one action; a log that cannot be opened never fails the operation."""
        if self.use_syslog:
            import syslog  # a shared library: loaded only when UseSyslog is set

            if not self._syslog_open:
                syslog.openlog("alpm", 0, syslog.LOG_USER)
                self._syslog_open = True
            syslog.syslog(syslog.LOG_NOTICE, message.rstrip("\n"))
        if self.path is None:
            return
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                                   0o644)
            except OSError:
                return
        # One write call per line, so concurrent writers never interleave within a line.
        try:
            os.write(self._fd, format_line(prefix, message).encode("utf-8", "surrogateescape"))
        except OSError:
            pass  # a full disk: the log loses a line, the operation goes on (as pacman)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._syslog_open:
            import syslog

            syslog.closelog()
            self._syslog_open = False
