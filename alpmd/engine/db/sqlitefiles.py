"""The SQLite files this process opens, noted before it opens them.

SQLite locks with POSIX record locks, and closing *any* descriptor of a file drops every
such lock the process holds on it. A server handed descriptors by others (the daemon: a
client's ``h`` arguments) must never close one of these files in the table its SQLite
connections use; :func:`files` tells them apart. Noted by path, never forgotten: the set
is as small as the set of databases, and a path's current file (a new ``-wal`` or ``-shm``
each time SQLite makes one) is what :func:`files` looks at.
"""

from __future__ import annotations

import os
import threading

#: what SQLite puts beside a database (each locked or written while it is open)
SUFFIXES = ("", "-wal", "-shm", "-journal")

_paths: set[str] = set()
_guard = threading.Lock()


def note(path: str | os.PathLike[str]) -> None:
    """Remember a database this process is about to open (call it before opening)."""
    full = os.path.abspath(os.fspath(path))
    with _guard:
        _paths.add(full)


def files() -> set[tuple[int, int]]:
    """(device, inode) of every file now at a noted database's paths."""
    with _guard:
        paths = list(_paths)
    found: set[tuple[int, int]] = set()
    for path in paths:
        for suffix in SUFFIXES:
            try:
                st = os.stat(path + suffix)
            except OSError:
                continue
            found.add((st.st_dev, st.st_ino))
    return found
