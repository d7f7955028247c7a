"""The update list clients see: what the last Refresh offers over what is installed.

Working it out reads every shadow sync database (the last Refresh's copies) and
looks into the package cache: tens to hundreds of milliseconds with Arch-sized
repositories. It is done in a worker thread, once per change of the databases
(a new query handle, a Refresh), and kept until the next change, so GetUpdates,
the UpdatesAvailable property and the UpdatesChanged signal only read the list.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from dbus_fast.signature import Variant

from alpmd.dbus.packages import package_id, repo_name
from alpmd.engine import download
from alpmd.engine.handle import Handle
from alpmd.engine.query import upgrades

Rows = list[dict[str, Variant]]


def update_rows(handle: Handle, shadow: Handle) -> Rows:
    """One row per installed package a newer version in the shadow databases replaces."""
    rows: Rows = []
    if not any(os.path.exists(db.path) for db in shadow.syncdbs):
        return rows
    for old, new in upgrades(handle, shadow):
        rows.append({
            "name": Variant("s", old.name),
            "old": Variant("s", old.version),
            "new": Variant("s", new.version),
            "repo": Variant("s", repo_name(new)),
            "id": Variant("s", package_id(new)),
            "download_size": Variant("t", max(0, new.csize or 0)),
            "installed_size": Variant("t", max(0, new.isize or 0)),
            "downloaded": Variant("b", download.find_cached(handle, new) is not None),
        })
    return rows


class Updates:
    """The list for the current query handle and the last Refresh.

    Only the event loop changes it; :meth:`work_out` runs in a worker thread and its
    result is kept only if no newer change came in meanwhile (a list of an older
    handle or an older Refresh never replaces a newer one's).
    """

    def __init__(self, shadow: Callable[[], Handle]) -> None:
        self._shadow = shadow
        #: None until worked out for the latest change.
        self.rows: Rows | None = None
        #: The count last sent in UpdatesChanged (None: none sent yet).
        self.announced: int | None = None
        #: Bumped at every change of the databases (a new query handle, a Refresh).
        self.latest = 0

    def stale(self) -> None:
        """The databases changed: the list must be worked out again."""
        self.latest += 1
        self.rows = None

    def work_out(self, handle: Handle) -> Rows:
        """The list for ``handle`` against the shadow databases (in a worker thread)."""
        shadow = self._shadow()
        try:
            return update_rows(handle, shadow)
        finally:
            shadow.release()

    def keep(self, rows: Rows, change: int) -> bool:
        """Keep ``rows``, worked out at ``change``, unless a newer change came since."""
        if change != self.latest:
            return False
        self.rows = rows
        return True

    @property
    def count(self) -> int:
        """How many updates: the known list's length, else the count last announced."""
        if self.rows is not None:
            return len(self.rows)
        return self.announced or 0

    def to_announce(self, *, always: bool) -> int | None:
        """The count to send in UpdatesChanged; None when unknown, or unchanged and not
        ``always``."""
        if self.rows is None or (not always and len(self.rows) == self.announced):
            return None
        self.announced = len(self.rows)
        return self.announced
