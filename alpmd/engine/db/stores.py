"""Which store holds a root's local database: pacman's files or alpmd's SQLite file.

For an existing root the store that is there decides (so every command and
the daemon keep using what a conversion left); a new root follows alpmd's
configuration. A root holding both is refused: which one is current cannot be
told, and guessing could hide installed packages.
"""

from __future__ import annotations

import enum
import os

from alpmd.engine.db.backend import DatabaseBackend
from alpmd.engine.db.local import TMP_PREFIX, VERSION_FILE, LocalFilesBackend
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.log import LogCallback

__all__ = ["STORE_NAME", "Store", "choose_store", "local_backend", "stores_present"]

#: The SQLite store's file in the database directory (beside pacman's ``local/``).
STORE_NAME = "local.sqlite"


class Store(enum.Enum):
    """A local database layout (the value is what alpmd.conf's ``Backend`` says)."""

    FILES = "files"
    SQLITE = "sqlite"


def _files_present(dbpath: str) -> bool:
    """``local/`` with at least one entry; an empty one (pacman creates it) does not count."""
    try:
        with os.scandir(os.path.join(dbpath, "local")) as it:
            return any(e.name != VERSION_FILE and not e.name.startswith(TMP_PREFIX) for e in it)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise AlpmError(ErrorCode.DB_OPEN, f"could not open local database in {dbpath}: "
                        f"{exc.strerror}", path=dbpath) from exc


def stores_present(dbpath: str) -> list[Store]:
    """The stores holding a local database under ``dbpath``."""
    out = []
    if _files_present(dbpath):
        out.append(Store.FILES)
    if os.path.exists(os.path.join(dbpath, STORE_NAME)):
        out.append(Store.SQLITE)
    return out


def choose_store(dbpath: str, configured: Store) -> Store:
    """The store to use: the one present, else ``configured``; both present is an error."""
    present = stores_present(dbpath)
    if len(present) > 1:
        raise AlpmError(ErrorCode.DB_OPEN, f"{dbpath} holds two local databases, pacman's files "
                        f"(local/) and alpmd's SQLite file ({STORE_NAME}); move the stale one "
                        "aside (alpm -D --convert leaves only one)", path=dbpath)
    return present[0] if present else configured


def local_backend(dbpath: str, store: Store, *, log: LogCallback | None = None,
                  durable: bool = True) -> DatabaseBackend:
    """A backend of the given kind for ``dbpath``'s local database."""
    if store is Store.SQLITE:
        # Imported when chosen: the files store's commands never load sqlite3.
        from alpmd.engine.db.sqlite import LocalSqliteBackend

        return LocalSqliteBackend(dbpath, log=log, durable=durable)
    return LocalFilesBackend(dbpath, log=log, durable=durable)
