"""Bulk field reads (``CachedDatabase.columns``) and the indexes built on them.

The fast paths (snapshot columns, local desc sections found with ``str.find``)
must give exactly what reading every package's full metadata gives.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpmd.engine import query
from alpmd.engine.db.convert import convert_dbpath
from alpmd.engine.db.local import LocalDatabase, _find_lists, _list_specs
from alpmd.engine.db.snapshot import SCHEMA
from alpmd.engine.db.sqlite import LocalSqliteBackend
from alpmd.engine.db.stores import Store
from alpmd.engine.db.sync import SyncDatabase
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import Reason
from alpmd.engine.formats.sections import scan
from alpmd.engine.handle import Handle
from alpmd.engine.package import Package
from alpmd.testing.repogen import generate_repo, make_local_db, write_sync_db

DEP_FIELDS = ("depends", "optdepends", "provides")
#: -Qs: one-line text (%DESC%) beside lists.
SEARCH_FIELDS = ("desc", "provides", "groups")
SYNC_FIELDS = ("desc", "groups", "provides", "replaces", "depends", "optdepends")


def _full(pkgs: list[Package], fields: tuple[str, ...]) -> dict[str, dict[str, list[str]]]:
    """The fields as the full metadata has them (lists, tuples made lists)."""
    return {p.name: {f: _plain(getattr(p.meta, f)) for f in fields} for p in pkgs}


def _plain(value: object) -> object:
    return list(value) if isinstance(value, (list, tuple)) else value


def _as_dict(names: list[str], cols: dict[str, list[object]]) -> dict[str, dict[str, object]]:
    return {n: {f: _plain(cols[f][i]) for f in cols} for i, n in enumerate(names)}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A generated repository (400 packages) and an installed system of 120 of them."""
    base = tmp_path_factory.mktemp("columns")
    metas = generate_repo(3, 400)
    write_sync_db(metas, base / "db" / "sync" / "extra.db")
    local = make_local_db(base / "db", metas, installed=120, outdated=20, seed=3,
                          with_files=False)
    return base, [m.name for m in local]


@pytest.mark.parametrize("fields", [DEP_FIELDS, SEARCH_FIELDS], ids=["deps", "search"])
def test_local_columns_match_full_metadata(repo: tuple[Path, list[str]],
                                           fields: tuple[str, ...]) -> None:
    base, installed = repo
    db = LocalDatabase(str(base / "db"))
    names, cols = db.columns(fields)
    assert names == sorted(installed)
    assert all(any(cols[f]) for f in fields)  # the fixture has values in every field
    fresh = LocalDatabase(str(base / "db"))
    assert _as_dict(names, cols) == _full(fresh.packages, fields)
    # Nothing was parsed whole for it.
    assert not any(p.desc_loaded for p in db.packages)


def test_local_columns_prefer_loaded_metadata(repo: tuple[Path, list[str]]) -> None:
    base, _ = repo
    db = LocalDatabase(str(base / "db"))
    pkg = next(p for p in db.packages if p.depends)
    pkg.meta.depends.append("injected-in-memory")
    names, cols = db.columns(("depends",))
    assert cols["depends"][names.index(pkg.name)][-1] == "injected-in-memory"


def test_sync_snapshot_columns_match_archive(repo: tuple[Path, list[str]],
                                             tmp_path: Path) -> None:
    base, _ = repo
    path = str(base / "db" / "sync" / "extra.db")
    snap = SyncDatabase("extra", path, snapshot_dir=str(tmp_path))
    snap.populate()  # builds the snapshot
    again = SyncDatabase("extra", path, snapshot_dir=str(tmp_path))
    names, cols = again.columns(SYNC_FIELDS)
    assert again.loaded_from == "snapshot"
    plain = SyncDatabase("extra", path)
    assert _as_dict(names, cols) == _full(plain.packages, SYNC_FIELDS)
    assert not any(p.desc_loaded for p in again.packages)


def test_indexes_follow_changes(repo: tuple[Path, list[str]], tmp_path: Path) -> None:
    base, _ = repo
    dbpath = tmp_path / "db"
    shutil.copytree(base / "db" / "local", dbpath / "local")
    db = LocalDatabase(str(dbpath), durable=False)
    target = next(p for p in db.packages if p.depends)
    dep = query._dep_name(target.depends[0])
    provider = query.find_satisfier(db, dep)
    assert provider is not None
    before = query.required_by(Handle(root=str(tmp_path), dbpath=str(dbpath)), provider)
    meta = target.meta
    db.remove(target.name)
    meta.reason = Reason.EXPLICIT
    db.add(meta, None)
    # Same answer after a remove and an add (the index was rebuilt, not stale).
    h = Handle(root=str(tmp_path), dbpath=str(dbpath))
    h._localdb = db
    assert query.required_by(h, provider) == before
    db.remove(target.name)
    assert target.name not in query.required_by(h, provider)


def test_owner_scan_and_index_agree(tmp_path: Path) -> None:
    from alpmd.engine.formats.desc import PkgMeta
    from alpmd.engine.formats.files import FileList

    root = tmp_path / "root"
    (root / "usr" / "share").mkdir(parents=True)
    (root / "usr" / "share" / "b").write_text("")
    db = LocalDatabase(str(tmp_path / "db"), durable=False)
    for name, files in (("one", ["usr/", "usr/share/", "usr/share/a"]),
                        ("two", ["usr/", "usr/share/", "usr/share/b"]),
                        ("zed", ["usr/", "usr/share/b"])):
        db.add(PkgMeta(name, "1-1"), FileList(files))
    answers = []
    for _ in range(2):  # the first answer scans, the second builds the index
        h = Handle(root=str(root), dbpath=str(tmp_path / "db"))
        h._localdb = db
        got = [[p.name for p in query.find_owner(h, str(root / t)).owners]
               for t in ("usr/share", "usr/share/b", "usr")]
        answers.append(got)
    assert answers[0] == answers[1] == [["one", "two"], ["two"], ["one", "two", "zed"]]


def test_older_snapshot_schema_rebuilt_quietly(repo: tuple[Path, list[str]], tmp_path: Path,
                                               ) -> None:
    base, _ = repo
    path = str(base / "db" / "sync" / "extra.db")
    SyncDatabase("extra", path, snapshot_dir=str(tmp_path)).populate()
    snapfile = tmp_path / "extra.snapshot"
    data = bytearray(snapfile.read_bytes())
    struct.pack_into("<I", data, 8, SCHEMA - 1)
    snapfile.write_bytes(bytes(data))
    messages: list[str] = []
    db = SyncDatabase("extra", path, snapshot_dir=str(tmp_path),
                      log=lambda level, msg: messages.append(f"{level!r} {msg}"))
    db.populate()
    assert db.loaded_from == "archive"
    assert all("WARNING" not in m for m in messages), messages
    assert os.path.getsize(snapfile) > 0


# -- the str.find section reader against the scanner ----------------------------------

_PIECES = ["%DEPENDS%", "%PROVIDES%", "%OPTDEPENDS%", "%DESC%", "%NAME%", "%GROUPS%",
           "%XYZ%", "", "foo", "bar>=1", "%DEPENDS% ", "a: b", "x\r", "%SIZE%", "12",
           "%PROVIDES%\t", "%DESC% ", "a b"]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14), st.booleans(),
       st.sampled_from([DEP_FIELDS, SEARCH_FIELDS]))
def test_find_lists_agrees_with_scan(lines: list[str], final_newline: bool,
                                     fields: tuple[str, ...]) -> None:
    text = "\n".join(lines) + ("\n" if final_newline else "")
    specs = _list_specs(fields)
    assert specs is not None
    fast = _find_lists(text, specs)
    try:
        got = scan(text, specs, "test", ErrorCode.DB_INVALID)
    except AlpmError:
        assert fast is None  # a header without its value line is the scanner's to refuse
        return
    if fast is None:
        return  # left to the scanner
    assert fast == {f: got.get(f) if f == "desc" else got.get(f) or [] for f in fields}


def test_find_lists_reads_empty_and_missing_descriptions() -> None:
    specs = _list_specs(SEARCH_FIELDS)
    assert specs is not None
    assert _find_lists("%NAME%\nfoo\n\n%DESC%\n\n%GROUPS%\ng\n\n", specs) == {
        "desc": "", "provides": [], "groups": ["g"]}
    assert _find_lists("%NAME%\nfoo\n\n%GROUPS%\ng\n\n", specs) == {
        "desc": None, "provides": [], "groups": ["g"]}
    assert _find_lists("%NAME%\nfoo\n\n%DESC%\n", specs) is None


def test_find_lists_reads_a_pacman_desc() -> None:
    text = ("%NAME%\nfoo\n\n%VERSION%\n1-1\n\n%DESC%\n%DEPENDS%\n\n%DEPENDS%\nglibc\nbash>=5\n\n"
            "%PROVIDES%\nsh\n\n%OPTDEPENDS%\n\n")
    specs = _list_specs(DEP_FIELDS)
    assert specs is not None
    # %DESC%'s value is the text "%DEPENDS%": not a header, so the scanner decides.
    assert _find_lists(text, specs) is None
    clean = text.replace("%DESC%\n%DEPENDS%\n", "%DESC%\nabout\n")
    assert _find_lists(clean, specs) == {"depends": ["glibc", "bash>=5"], "provides": ["sh"],
                                         "optdepends": []}


@pytest.mark.parametrize("fields", [DEP_FIELDS, SEARCH_FIELDS], ids=["deps", "search"])
def test_sqlite_columns_match_files(repo: tuple[Path, list[str]], tmp_path: Path,
                                    fields: tuple[str, ...]) -> None:
    """The SQLite store answers the same columns in one query (relations from its index,
    the rest from its stored descs) as the files store does entry by entry."""
    base, installed = repo
    shutil.copytree(base / "db" / "local", tmp_path / "local")
    convert_dbpath(str(tmp_path), Store.SQLITE)
    db = LocalDatabase(str(tmp_path), backend=LocalSqliteBackend(str(tmp_path)))
    got = db.backend.columns(fields)
    assert got is not None  # the store's own bulk path, not the per-entry fallback
    names, cols = got
    assert names == sorted(installed)
    files = LocalDatabase(str(base / "db"))
    assert _as_dict(names, cols) == _as_dict(*files.columns(fields))
