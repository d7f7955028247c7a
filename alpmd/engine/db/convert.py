"""Moving a root's local database from one store to the other (``alpm -D --convert``).

The new store is assembled beside the old one (in a staging directory inside
dbpath), put in place, and only then is the old store renamed aside (never
deleted): a crash in between leaves both, which the next start refuses with a
clear message instead of showing an empty database. Parts are moved as bytes,
so files → SQLite → files gives back identical ``desc``, ``files``, ``mtree``,
``install`` and ``changelog``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alpmd.engine.db.backend import DatabaseBackend, RawEntry
from alpmd.engine.db.local import LocalFilesBackend
from alpmd.engine.db.sqlite import STORE_NAME, LocalSqliteBackend
from alpmd.engine.db.stores import Store, local_backend, stores_present
from alpmd.engine.durable import fsync_dir
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.journal import read_journal

if TYPE_CHECKING:
    from alpmd.engine.handle import Handle

__all__ = ["ConvertResult", "convert", "convert_dbpath"]

#: Where each store lives inside dbpath.
_STORE_PATHS = {Store.FILES: "local", Store.SQLITE: STORE_NAME}
_STAGING = ".alpmd-convert"


@dataclass
class ConvertResult:
    """What a conversion did."""

    source: Store
    target: Store
    entries: int
    #: The new store's path.
    path: str
    #: Where the old store was moved (``None`` when there was nothing to move).
    moved_aside: str | None


def _aside(path: str) -> str:
    """A free name beside ``path`` for the old store."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = f"{path}.alpmd-old-{stamp}"
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{path}.alpmd-old-{stamp}-{n}"
    return candidate


def _raw_entries(source: DatabaseBackend) -> Iterator[RawEntry]:
    for key in sorted(set(source.scan())):
        yield source.read_raw(key)


def convert_dbpath(dbpath: str, target: Store) -> ConvertResult:
    """Convert the local database under ``dbpath`` to ``target`` (the caller holds the lock).

    Refused: when ``target`` is already in use (``DB_NOT_NULL``), when both
    stores exist (``DB_OPEN``), when a journal of an interrupted transaction is
    waiting for repair (``TRANS_ABORT``). Errors reading the old store or
    writing the new one leave the old store in place and untouched.
    """
    dbpath = dbpath if dbpath.endswith("/") else dbpath + "/"
    journal = read_journal(dbpath)
    if journal is not None and not journal.finished:  # an ended one: nothing to repair
        raise AlpmError(ErrorCode.TRANS_ABORT, "an interrupted transaction must be repaired "
                        "before the database is converted (alpm --repair)", path=dbpath)
    present = stores_present(dbpath)
    if len(present) > 1:
        raise AlpmError(ErrorCode.DB_OPEN, f"{dbpath} holds both a files and an SQLite local "
                        "database; move the stale one aside first", path=dbpath)
    if present == [target]:
        raise AlpmError(ErrorCode.DB_NOT_NULL, f"the local database in {dbpath} already "
                        f"uses the {target.value} backend", path=dbpath)
    source_store = present[0] if present else (
        Store.SQLITE if target is Store.FILES else Store.FILES)
    source = local_backend(dbpath, source_store)
    staging = dbpath + _STAGING
    final = dbpath + _STORE_PATHS[target]
    try:
        source.open()
        if os.path.lexists(staging):
            _discard_staging(staging)
        os.mkdir(staging, 0o755)
        # Durability comes from one sync before the swap, not an fsync per file.
        staged: DatabaseBackend = (LocalSqliteBackend(staging, durable=False)
                                   if target is Store.SQLITE
                                   else LocalFilesBackend(staging, durable=False))
        count = 0

        def counted() -> Iterator[RawEntry]:
            nonlocal count
            for raw in _raw_entries(source):
                count += 1
                yield raw

        try:
            staged.write_raw(counted())
            if isinstance(staged, LocalSqliteBackend):
                staged.checkpoint()
        finally:
            staged.close()
        os.sync()
    except OSError as exc:
        with contextlib.suppress(OSError):
            _discard_staging(staging)
        raise AlpmError(ErrorCode.DB_WRITE, f"could not convert {dbpath}: {exc.strerror}",
                        path=dbpath) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            _discard_staging(staging)
        raise
    finally:
        source.close()
    # The swap: the new store in place first (a crash now leaves both: refused, not empty).
    old = dbpath + _STORE_PATHS[source_store]
    moved: str | None = None
    try:
        if target is Store.FILES and os.path.lexists(final):
            # An empty local/ (pacman makes one) is in the way: moved aside too.
            os.rename(final, _aside(final))
        os.rename(os.path.join(staging, _STORE_PATHS[target]), final)
        fsync_dir(dbpath)
        if os.path.lexists(old):
            moved = _aside(old)
            os.rename(old, moved)
            for suffix in ("-wal", "-shm"):
                if source_store is Store.SQLITE and os.path.lexists(old + suffix):
                    os.rename(old + suffix, moved + suffix)
        fsync_dir(dbpath)
        _discard_staging(staging)
    except OSError as exc:
        raise AlpmError(ErrorCode.DB_WRITE, f"could not put the converted database in place "
                        f"in {dbpath}: {exc.strerror}; both stores may now exist, move the "
                        "stale one aside", path=dbpath) from exc
    return ConvertResult(source_store, target, count, final, moved)


def _discard_staging(staging: str) -> None:
    """Remove a staging directory of ours (an interrupted conversion's, or this one's)."""
    import shutil

    shutil.rmtree(staging)


def convert(handle: Handle, target: Store) -> ConvertResult:
    """Convert ``handle``'s local database to ``target``, under the database lock.

    The engine entry point for ``alpm -D --convert`` and the daemon; afterwards
    the handle (and every new one) uses the new store.
    """
    locked_here = not handle.locked
    if locked_here:
        handle.lock()
    try:
        handle.drop_localdb()
        return convert_dbpath(handle.dbpath, target)
    finally:
        handle.drop_localdb()
        if locked_here:
            handle.unlock()
