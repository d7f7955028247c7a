"""Refreshing the dynamic linker's cache after a transaction, as libalpm's ``_alpm_ldconfig``.

Run when the root has ``etc/ld.so.conf`` and an executable ``/sbin/ldconfig``
(the path Debian's and Arch's libalpm are built with; on Arch it is the
``/usr/bin/ldconfig`` behind the ``/sbin`` symlink), chrooted into the root like
a scriptlet, its output reported and logged as scriptlet output. libalpm runs it
once per transaction, after the last package changed and before the
post-transaction hooks, and skips it when a package failed to install.
"""

from __future__ import annotations

import os

from alpmd.engine.events import EventCallback
from alpmd.engine.handle import Handle
from alpmd.engine.log import LogLevel
from alpmd.engine.scriptlet import run_chroot

__all__ = ["LDCONFIG", "run_ldconfig"]

#: where ldconfig is looked for inside the root
LDCONFIG = "/sbin/ldconfig"


def run_ldconfig(handle: Handle, *, event: EventCallback | None = None) -> int:
    """Run ldconfig in the root if it has one; its exit status (0 when not run)."""
    root = handle.options.root.rstrip("/")
    if not os.path.exists(f"{root}/etc/ld.so.conf"):
        return 0
    if not os.access(f"{root}{LDCONFIG}", os.X_OK):
        return 0
    handle.log(LogLevel.DEBUG, "running ldconfig")
    return run_chroot(handle, ["ldconfig"], path=LDCONFIG, event=event)
