"""Package databases: the local one (what is installed) and the sync ones (repositories).

Both offer the same queries (``packages``, ``get``, ``groups``) over lazily
loaded :class:`~alpmd.engine.package.Package` objects; storage sits behind
:class:`~alpmd.engine.db.backend.DatabaseBackend`.
"""

from __future__ import annotations

from alpmd.engine.db.backend import DatabaseBackend, Entry, EntryKey, split_entry_name
from alpmd.engine.db.local import LocalDatabase, LocalFilesBackend
from alpmd.engine.db.sync import SyncArchiveBackend, SyncDatabase

__all__ = [
    "DatabaseBackend",
    "Entry",
    "EntryKey",
    "LocalDatabase",
    "LocalFilesBackend",
    "SyncArchiveBackend",
    "SyncDatabase",
    "split_entry_name",
]
