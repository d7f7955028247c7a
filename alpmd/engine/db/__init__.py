"""Package databases: the local one (what is installed) and the sync ones (repositories).

Both offer the same queries (``packages``, ``get``, ``groups``) over lazily
loaded :class:`~alpmd.engine.package.Package` objects; storage sits behind
:class:`~alpmd.engine.db.backend.DatabaseBackend`. The local database lives in
pacman's files layout (:class:`LocalFilesBackend`) or in one SQLite file
(:class:`LocalSqliteBackend`); :mod:`~alpmd.engine.db.stores` picks one and
:mod:`~alpmd.engine.db.convert` moves a root from one to the other. Sync
databases are read from their archives through a parsed snapshot.
"""

from __future__ import annotations

from alpmd.engine.db.backend import (
    PART_NAMES,
    DatabaseBackend,
    Entry,
    EntryKey,
    RawEntry,
    split_entry_name,
)
from alpmd.engine.db.local import LocalDatabase, LocalFilesBackend
from alpmd.engine.db.sqlite import LocalSqliteBackend
from alpmd.engine.db.stores import Store
from alpmd.engine.db.sync import SyncArchiveBackend, SyncDatabase

__all__ = [
    "PART_NAMES",
    "DatabaseBackend",
    "Entry",
    "EntryKey",
    "LocalDatabase",
    "LocalFilesBackend",
    "LocalSqliteBackend",
    "RawEntry",
    "Store",
    "SyncArchiveBackend",
    "SyncDatabase",
    "split_entry_name",
]
