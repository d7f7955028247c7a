"""Both local database stores behind one interface: same answers, same guarantees.

Every test here runs once on pacman's files layout and once on alpmd's SQLite
file (the ``backend`` fixture); the SQLite-only tests at the end feed it bad
files and failing writes.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
from pathlib import Path

import pytest

from alpmd.engine.db.backend import Entry, EntryKey
from alpmd.engine.db.local import LocalDatabase
from alpmd.engine.db.sqlite import STORE_NAME, LocalSqliteBackend
from alpmd.engine.db.stores import Store, choose_store, local_backend
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import Backup, PkgMeta, Reason
from alpmd.engine.formats.files import FileList
from alpmd.engine.package import Part

MTREE = b"\x1f\x8b\x08\x00fake-gzip-bytes"
INSTALL = b"post_install() {\n  :\n}\n"
CHANGELOG = b"1.0-1: first\n\xff not utf-8\n"


def _db(dbpath: Path, store: Store) -> LocalDatabase:
    return LocalDatabase(str(dbpath), backend=local_backend(str(dbpath), store, durable=False))


def _app(version: str = "1.0-1") -> tuple[PkgMeta, FileList]:
    meta = PkgMeta("app", version, desc="An application for tests", url="https://x.org",
                   depends=["lib>=1", "sh"], provides=["application=1"], groups=["tools"],
                   optdepends=["vim: editing"], conflicts=["app-git"], reason=Reason.EXPLICIT,
                   installdate=1700000000)
    files = FileList(files=["etc/", "etc/app.conf", "usr/", "usr/bin/", "usr/bin/app"],
                     backup=[Backup("etc/app.conf", "d41d8cd98f00b204e9800998ecf8427e")])
    return meta, files


def _lib() -> tuple[PkgMeta, FileList]:
    return (PkgMeta("lib", "2.0-1", desc="A library", provides=["libx.so=1-64"],
                    groups=["tools", "libs"], reason=Reason.DEPEND),
            FileList(files=["usr/", "usr/lib/", "usr/lib/libx.so.1"]))


def test_parts_round_trip(tmp_path: Path, backend: Store) -> None:
    db = _db(tmp_path, backend)
    meta, files = _app()
    db.add(meta, files, mtree=MTREE, scriptlet=INSTALL, changelog=CHANGELOG)
    db.add(*_lib())
    db.close()
    again = _db(tmp_path, backend)
    assert again.versions == {"app": "1.0-1", "lib": "2.0-1"}
    app = again.get("app")
    assert app is not None
    assert app.meta == meta
    assert app.filelist == files
    assert (app.mtree, app.scriptlet, app.changelog) == (MTREE, INSTALL, CHANGELOG)
    assert app.has_scriptlet
    lib = again.get("lib")
    assert lib is not None and lib.changelog is None and lib.scriptlet is None
    assert not lib.has_scriptlet and lib.reason is Reason.DEPEND
    assert {g: [p.name for p in ps] for g, ps in again.groups.items()} == {
        "tools": ["app", "lib"], "libs": ["lib"]}
    names, cols = again.columns(["depends", "provides"])
    assert names == ["app", "lib"]
    assert cols == {"depends": [["lib>=1", "sh"], []],
                    "provides": [["application=1"], ["libx.so=1-64"]]}
    assert again.check() == []
    if backend is Store.FILES:
        assert again.owners(["usr/bin/app"]) is None  # no index: callers scan file lists
    again.close()


def test_upgrade_remove_and_reason(tmp_path: Path, backend: Store) -> None:
    db = _db(tmp_path, backend)
    meta, files = _app()
    db.add(meta, files, changelog=CHANGELOG)
    meta2, files2 = _app("2.0-1")
    files2.files.append("usr/bin/app2")
    db.add(meta2, files2)
    assert db.stored_versions("app") == ["2.0-1"]
    db.set_reason("app", Reason.DEPEND)
    db.close()
    again = _db(tmp_path, backend)
    app = again.get("app")
    assert app is not None and app.version == "2.0-1" and app.reason is Reason.DEPEND
    assert app.files[-1] == "usr/bin/app2" and app.changelog is None
    again.remove("app")
    with pytest.raises(AlpmError) as exc:
        again.remove("app")
    assert exc.value.code is ErrorCode.PKG_NOT_FOUND
    with pytest.raises(AlpmError) as exc:
        again.backend.remove(EntryKey("app", "2.0-1"))
    assert exc.value.code is ErrorCode.DB_REMOVE
    again.close()
    assert _db(tmp_path, backend).versions == {}


def test_bad_names_refused_before_anything_is_written(tmp_path: Path, backend: Store) -> None:
    db = _db(tmp_path, backend)
    db.add(*_lib())
    for name, version in (("../evil", "1-1"), ("x", "1"), (".hidden", "1-1")):
        with pytest.raises(AlpmError) as exc:
            db.add(PkgMeta(name, version), FileList())
        assert exc.value.code is ErrorCode.PKG_INVALID_NAME
    db.close()
    assert _db(tmp_path, backend).versions == {"lib": "2.0-1"}


def test_raw_entries_are_bytes_as_stored(tmp_path: Path, backend: Store) -> None:
    db = _db(tmp_path, backend)
    meta, files = _app()
    db.add(meta, files, mtree=MTREE, scriptlet=INSTALL, changelog=CHANGELOG)
    raw = db.backend.read_raw(EntryKey("app", "1.0-1"))
    assert raw.parts["mtree"] == MTREE and raw.parts["changelog"] == CHANGELOG
    assert raw.parts["install"] == INSTALL
    assert raw.parts["desc"].startswith(b"%NAME%\napp\n")
    assert set(raw.parts) == {"desc", "files", "mtree", "install", "changelog"}
    other = tmp_path / "other"
    target = local_backend(str(other), backend, durable=False)
    target.write_raw(iter([raw]))
    assert target.read_raw(raw.key) == raw
    target.close()
    db.close()


def test_entry_without_file_list_is_reported(tmp_path: Path, backend: Store) -> None:
    b = local_backend(str(tmp_path), backend, durable=False)
    meta, _files = _app()
    b.write(Entry(meta), Part.DESC)
    msgs = b.check()
    assert [str(m) for m in msgs] == ["'app-1.0-1': file list is missing"]
    b.close()


def test_store_choice(tmp_path: Path) -> None:
    assert choose_store(str(tmp_path), Store.SQLITE) is Store.SQLITE
    (tmp_path / "local").mkdir()
    (tmp_path / "local/ALPM_DB_VERSION").write_text("9\n")  # what pacman makes on a new root
    assert choose_store(str(tmp_path), Store.SQLITE) is Store.SQLITE
    _db(tmp_path, Store.FILES).add(*_lib())
    assert choose_store(str(tmp_path), Store.SQLITE) is Store.FILES
    _db(tmp_path, Store.SQLITE).add(*_lib())
    with pytest.raises(AlpmError) as exc:
        choose_store(str(tmp_path), Store.FILES)
    assert exc.value.code is ErrorCode.DB_OPEN and "two local databases" in exc.value.message


# -- SQLite: bad files, failing writes ---------------------------------------------------------


def _filled(tmp_path: Path, n: int = 40) -> Path:
    db = _db(tmp_path, Store.SQLITE)
    for i in range(n):
        db.add(PkgMeta(f"p{i:03}", "1.0-1", desc="x" * 200),
               FileList(files=[f"usr/share/p{i:03}/f{j}" for j in range(50)]))
    db.close()
    return tmp_path / STORE_NAME


def _read_everything(dbpath: Path) -> None:
    db = _db(dbpath, Store.SQLITE)
    try:
        for pkg in db.packages:
            _ = pkg.meta, pkg.files
    finally:
        db.close()


def test_not_a_database(tmp_path: Path) -> None:
    (tmp_path / STORE_NAME).write_bytes(b"this is not SQLite\n" * 100)
    with pytest.raises(AlpmError) as exc:
        _read_everything(tmp_path)
    assert exc.value.code is ErrorCode.DB_INVALID
    assert (tmp_path / STORE_NAME).read_bytes() == b"this is not SQLite\n" * 100


def test_another_programs_sqlite_file(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / STORE_NAME) as conn:
        conn.execute("CREATE TABLE pkg(x)")
    with pytest.raises(AlpmError) as exc:
        _read_everything(tmp_path)
    assert exc.value.code is ErrorCode.DB_INVALID and "not an alpmd" in exc.value.message


def test_truncated_file(tmp_path: Path) -> None:
    path = _filled(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(AlpmError) as exc:
        _read_everything(tmp_path)
    assert exc.value.code is ErrorCode.DB_INVALID
    assert "damaged" in exc.value.message


def test_newer_schema(tmp_path: Path) -> None:
    path = _filled(tmp_path, 2)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(AlpmError) as exc:
        _read_everything(tmp_path)
    assert exc.value.code is ErrorCode.DB_VERSION and "newer" in exc.value.message


def test_locked_by_another_writer(tmp_path: Path) -> None:
    _filled(tmp_path, 2)
    other = sqlite3.connect(tmp_path / STORE_NAME, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    db = _db(tmp_path, Store.SQLITE)
    try:
        with pytest.raises(AlpmError) as exc:
            db.add(*_lib())
        assert exc.value.code is ErrorCode.HANDLE_LOCK and "locked" in exc.value.message
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert "lib" not in db.versions
    db.close()
    assert sorted(_db(tmp_path, Store.SQLITE).versions) == ["p000", "p001"]


def test_write_refused_by_the_system_leaves_nothing_half_written(tmp_path: Path) -> None:
    """A write the kernel refuses (file size limit: EFBIG) in the middle of a transaction."""
    path = _filled(tmp_path, 5)
    pid = os.fork()
    if pid == 0:  # the child: writes under a file size limit, reports the error code
        code = 3
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            db = _db(tmp_path, Store.SQLITE)
            db.versions  # noqa: B018 - open before the limit (the -shm file)
            limit = max(os.path.getsize(path), 1 << 16) + (1 << 16)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            big = FileList(files=[f"usr/share/big/{'x' * 200}{j}" for j in range(5000)])
            try:
                db.add(PkgMeta("big", "1.0-1"), big)
                code = 2
            except AlpmError as exc:
                code = 0 if exc.code in (ErrorCode.DB_WRITE, ErrorCode.DISK_SPACE) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    db = _db(tmp_path, Store.SQLITE)
    assert sorted(db.versions) == [f"p{i:03}" for i in range(5)]
    assert all(p.files for p in db.packages)
    db.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_sqlite_backend_reports_its_indexes(tmp_path: Path) -> None:
    db = _db(tmp_path, Store.SQLITE)
    meta, files = _app()
    db.add(meta, files)
    db.add(*_lib())
    b = db.backend
    assert isinstance(b, LocalSqliteBackend)
    assert b.owners(["usr/bin/app", "usr/lib/libx.so.1", "nope"]) == {
        "usr/bin/app": [EntryKey("app", "1.0-1")],
        "usr/lib/libx.so.1": [EntryKey("lib", "2.0-1")]}
    assert b.required_by("lib") == ["app"]
    assert b.search_text("library") == [EntryKey("lib", "2.0-1")]
    assert b.search_text("application OR library") == [EntryKey("app", "1.0-1"),
                                                       EntryKey("lib", "2.0-1")]
    owned = db.owners(["usr/bin/app", "usr/", "nope"])
    assert owned is not None
    assert {k: [p.name for p in v] for k, v in owned.items()} == {
        "usr/bin/app": ["app"], "usr/": ["app", "lib"]}
    db.remove("lib")
    assert b.owners(["usr/lib/libx.so.1"]) == {}
    assert b.search_text("library") == []
    db.close()


def test_walks_over_many_entries_see_later_writes(tmp_path: Path, backend: Store) -> None:
    """Reading every entry (SQLite fetches them in bulk after a few) never serves old data."""
    db = _db(tmp_path, backend)
    for i in range(80):
        db.add(PkgMeta(f"p{i:02}", "1.0-1", desc=f"first {i}"), FileList())
    db.close()
    reader = _db(tmp_path, backend)
    assert [p.desc for p in reader.packages[:40]] == [f"first {i}" for i in range(40)]
    writer = _db(tmp_path, backend)
    writer.add(PkgMeta("p70", "2.0-1", desc="second"), FileList())
    writer.close()
    reader.invalidate()  # what a watcher does when the store changed behind its back
    descs = {p.name: (p.version, p.desc) for p in reader.packages}
    assert descs["p70"] == ("2.0-1", "second")
    assert descs["p79"] == ("1.0-1", "first 79") and len(descs) == 80
    reader.close()
