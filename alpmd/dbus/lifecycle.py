"""The daemon's life: systemd notifications, the watchdog, shutdown inhibition, idle exit."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

from alpmd.dbus import logind, notify

log = logging.getLogger("alpmd")


class Lifecycle:
    """When to ping the watchdog, when to leave, what to hold off while committing."""

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self.last_activity = time.monotonic()
        self.watchdog = notify.watchdog_interval()
        self._last_ping = time.monotonic()
        self.inhibitor: int | None = None

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def status(self, state: str) -> None:
        notify.notify(f"STATUS={state}")

    def tick(self) -> None:
        """Ping the watchdog when it is due."""
        if self.watchdog is not None and time.monotonic() - self._last_ping >= self.watchdog:
            notify.notify("WATCHDOG=1")
            self._last_ping = time.monotonic()

    def idle_expired(self, busy: bool) -> bool:
        """True once the daemon has had nothing to do for the idle timeout."""
        if not self.idle_timeout or busy:
            return False
        if time.monotonic() - self.last_activity > self.idle_timeout:
            log.info("idle for %d s; exiting", int(self.idle_timeout))
            return True
        return False

    @contextlib.asynccontextmanager
    async def inhibited(self) -> AsyncIterator[None]:
        """Hold off shutdown and sleep (logind) while a commit runs."""
        self.inhibitor = await logind.inhibit("shutdown:sleep", "alpmd",
                                              "a package transaction is being committed")
        try:
            yield
        finally:
            logind.release(self.inhibitor)
            self.inhibitor = None
