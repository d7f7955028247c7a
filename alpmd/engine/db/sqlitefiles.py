"""The SQLite files this process opens, noted before it opens them.

SQLite locks with POSIX record locks, and closing *any* descriptor of a file drops every
such lock the process holds on it. A server handed descriptors by others (the daemon: a
client's ``h`` arguments) must never close one of these files in the table its SQLite
connections use; :func:`files` tells them apart. Noted by path, never forgotten: the set
is as small as the set of databases, and a path's current file (a new ``-wal`` or ``-shm``
each time SQLite makes one) is what :func:`files` looks at. A file once found at a noted
path stays known while this process still has it open, wherever it has gone since (a store
renamed under its open connections, as ``alpm -D --convert`` does, keeps its locks).
"""

from __future__ import annotations

import os
import threading

#: what SQLite puts beside a database (each locked or written while it is open)
SUFFIXES = ("", "-wal", "-shm", "-journal")

_paths: set[str] = set()
#: (device, inode) of every file once found at a noted path, until seen closed
_seen: set[tuple[int, int]] = set()
_guard = threading.Lock()


def note(path: str | os.PathLike[str]) -> None:
    """Remember a database this process is about to open (call it before opening)."""
    full = os.path.abspath(os.fspath(path))
    now = _at(full)
    with _guard:
        _paths.add(full)
        _seen.update(now)


def files() -> set[tuple[int, int]]:
    """(device, inode) of every file now at a noted database's paths, and of every file
    once there that this process still holds open."""
    with _guard:
        paths = list(_paths)
    found: set[tuple[int, int]] = set()
    for path in paths:
        found |= _at(path)
    with _guard:
        _seen.update(found)
        moved = _seen - found
    if moved:
        still = moved & _open_files()
        with _guard:
            _seen.difference_update(moved - still)
        found |= still
    return found


def _at(path: str) -> set[tuple[int, int]]:
    """The files now at a database's paths."""
    out: set[tuple[int, int]] = set()
    for suffix in SUFFIXES:
        try:
            st = os.stat(path + suffix)
        except OSError:
            continue
        out.add((st.st_dev, st.st_ino))
    return out


def _open_files() -> set[tuple[int, int]]:
    """The files the process's main descriptor table holds (``/proc/self`` is the thread
    group's leader, whose table SQLite's connections share, whichever thread asks)."""
    out: set[tuple[int, int]] = set()
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for name in names:
        try:
            st = os.stat(f"/proc/self/fd/{name}")
        except OSError:
            continue
        out.add((st.st_dev, st.st_ino))
    return out
