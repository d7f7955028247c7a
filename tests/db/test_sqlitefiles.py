"""The daemon's SQLite files are known by what they are, not only where they are: a store
renamed under its open connection still holds the process's locks, and a client's
descriptor of it must not be closed in the daemon's table (alpmd/dbus/relay.py)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from alpmd.engine.db import sqlitefiles


def _id(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_a_renamed_store_is_known_while_it_is_open(tmp_path: Path) -> None:
    db = tmp_path / "local.sqlite"
    sqlitefiles.note(db)
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()
        assert _id(db) in sqlitefiles.files()
        moved = tmp_path / "local.sqlite.old"
        os.rename(db, moved)  # (its connection, and its locks, stay with the moved file)
        assert _id(moved) in sqlitefiles.files()
        conn.execute("SELECT * FROM t").fetchall()
    finally:
        conn.close()
    # closed: a file of that name is nothing of ours any more (its inode may be reused)
    assert _id(moved) not in sqlitefiles.files()


def test_a_store_found_only_after_it_moved_is_not_claimed(tmp_path: Path) -> None:
    db = tmp_path / "later.sqlite"
    sqlitefiles.note(db)  # (noted before it exists, as a store about to be made)
    other = tmp_path / "elsewhere.sqlite"
    sqlite3.connect(other).close()
    os.rename(other, db)
    assert _id(db) in sqlitefiles.files()  # (at the noted path: ours, open or not)
    os.rename(db, other)
    assert _id(other) not in sqlitefiles.files()  # (moved away, and nobody has it open)
