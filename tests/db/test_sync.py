"""Sync databases: the real Arch databases against pacman, snapshots, compressions, damage."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import libarchive
import pytest

from alpmd.engine.db.snapshot import SCHEMA
from alpmd.engine.db.sync import SyncDatabase
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta, write_sync_desc
from alpmd.engine.package import Origin
from alpmd.testing.oracle import PacmanRoot

REPOS = ("core", "extra")
FILTERS = {"gz": "gzip", "xz": "xz", "zst": "zstd", "bz2": "bzip2", "none": None}


def write_db(path: Path, entries: dict[str, dict[str, str | bytes]],
             compression: str = "gz") -> Path:
    """A database archive as repo-add lays it out: a directory per package, then its files."""
    with libarchive.file_writer(str(path), "pax_restricted", FILTERS[compression]) as w:
        for dirname, files in entries.items():
            w.add_file_from_memory(dirname, 0, b"", filetype=0o040000, permission=0o755)
            for fname, content in files.items():
                data = content.encode() if isinstance(content, str) else content
                w.add_file_from_memory(f"{dirname}/{fname}", len(data), data)
    return path


def desc(name: str, version: str, **fields: object) -> dict[str, str | bytes]:
    return {"desc": write_sync_desc(PkgMeta(name, version, **fields))}  # type: ignore[arg-type]


SMALL = {
    "alpha-1.0-1": desc("alpha", "1.0-1", desc="first", groups=["g"], depends=["beta"],
                        csize=10, isize=20),
    "beta-lib-2:3.1-2": desc("beta-lib", "2:3.1-2", desc="second", groups=["g", "h"],
                             provides=["beta=3"]),
}


def metas(db: SyncDatabase) -> dict[str, PkgMeta]:
    return {p.name: p.meta for p in db.packages}


# -- the real Arch databases against pacman --------------------------------------------


@pytest.fixture(scope="module")
def arch_root(tmp_path_factory: pytest.TempPathFactory, arch_sync: Path) -> PacmanRoot:
    root = PacmanRoot(tmp_path_factory.mktemp("arch") / "root")
    for repo in REPOS:
        root.add_repo(repo, arch_sync / f"{repo}.db.tar.gz")
    return root


def _dbs(root: PacmanRoot, snapshot_dir: Path | None = None) -> dict[str, SyncDatabase]:
    sync = root.dbpath / "sync"
    return {r: SyncDatabase(r, str(sync / f"{r}.db"), files_path=str(sync / f"{r}.files"),
                            snapshot_dir=str(snapshot_dir) if snapshot_dir else None)
            for r in REPOS}


_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"]


def _same_size(shown: str, size: int | None) -> bool:
    """Whether pacman's "%.2f <unit>" rendering stands for ``size`` bytes."""
    value, unit = shown.split()
    return abs(float(value) - (size or 0) / 1024 ** _UNITS.index(unit)) <= 0.0051


def _parse_si(out: str) -> dict[tuple[str, str], dict[str, str]]:
    result: dict[tuple[str, str], dict[str, str]] = {}
    for block in out.strip().split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.split("\n"):
            m = re.match(r"^(\S[^:]*?)\s*: ?(.*)$", line)
            if m and not line.startswith(" "):
                key = m.group(1)
                fields[key] = m.group(2)
            else:
                fields[key] += "\n" + line.strip()
        result[(fields["Repository"], fields["Name"])] = fields
    return result


def _none(values: list[str]) -> str:
    return "  ".join(values) if values else "None"


@pytest.mark.oracle
@pytest.mark.parametrize("snapshot", [False, True], ids=["archive", "snapshot"])
def test_real_databases_match_pacman(arch_root: PacmanRoot, tmp_path: Path,
                                     snapshot: bool) -> None:
    dbs = _dbs(arch_root, tmp_path / "snap" if snapshot else None)
    for _ in range(2 if snapshot else 1):  # with a snapshot: build it, then read it
        dbs = _dbs(arch_root, tmp_path / "snap" if snapshot else None)
        for db in dbs.values():
            db.populate()
    if snapshot:
        assert {db.loaded_from for db in dbs.values()} == {"snapshot"}
    targets: list[str] = []
    for repo, db in dbs.items():
        sl = arch_root.pacman("-Sl", repo, check=True).stdout.splitlines()
        assert [f"{repo} {p.name} {p.version}" for p in db.packages] == sl
        targets += [f"{repo}/{p.name}" for p in db.packages]
    assert len(targets) == 261 + 3029
    si = _parse_si(arch_root.pacman("-Si", *targets, check=True).stdout)
    assert len(si) == len(targets)
    for repo, db in dbs.items():
        for pkg in db.packages:
            assert pkg.origin is Origin.SYNCDB and pkg.db is db
            f = si[(repo, pkg.name)]
            want = {
                "Version": pkg.version,
                "Description": pkg.desc or "None",
                "Architecture": pkg.arch or "None",
                "URL": pkg.url or "None",
                "Licenses": _none(pkg.licenses),
                "Groups": _none(pkg.groups),
                "Provides": _none(pkg.provides),
                "Depends On": _none(pkg.depends),
                "Optional Deps": "\n".join(pkg.optdepends) or "None",
                "Conflicts With": _none(pkg.conflicts),
                "Replaces": _none(pkg.replaces),
                "Packager": pkg.packager or "None",
                "Validated By": _none([label for label, have in (
                    ("MD5 Sum", pkg.md5sum), ("SHA-256 Sum", pkg.sha256sum),
                    ("Signature", pkg.base64_sig)) if have]),
            }
            got = {k: re.sub(r" \[installed\]", "", f[k]) for k in want}
            assert got == want, pkg.name
            assert _same_size(f["Download Size"], pkg.csize), pkg.name
            assert _same_size(f["Installed Size"], pkg.isize), pkg.name
    # Groups: pacman lists each group once, in the order the databases meet them.
    names: list[str] = []
    members: dict[str, list[str]] = {}
    for db in dbs.values():
        for group, pkgs in db.groups.items():
            if group not in members:
                names.append(group)
            members.setdefault(group, []).extend(p.name for p in pkgs)
    assert arch_root.pacman("-Sg", check=True).stdout.splitlines() == names
    sg = arch_root.pacman("-Sg", *names, check=True).stdout.splitlines()
    assert sg == [f"{g} {p}" for g in names for p in members[g]]


def test_snapshot_rows_equal_parsed_archive(arch_sync: Path, tmp_path: Path) -> None:
    path = str(arch_sync / "extra.db.tar.gz")
    plain = metas(SyncDatabase("extra", path))
    built = SyncDatabase("extra", path, snapshot_dir=str(tmp_path))
    assert metas(built) == plain and built.loaded_from == "archive"
    warm = SyncDatabase("extra", path, snapshot_dir=str(tmp_path))
    assert warm.get("vim") is not None and warm.loaded_from == "snapshot"
    assert metas(warm) == plain
    assert {g: [p.name for p in ps] for g, ps in warm.groups.items()} == {
        g: [p.name for p in ps] for g, ps in built.groups.items()}


# -- snapshots ------------------------------------------------------------------------------


def test_replaced_database_seen_despite_same_size_time_inode(tmp_path: Path) -> None:
    path = write_db(tmp_path / "r.db", SMALL, "none")
    snap = tmp_path / "snap"
    assert SyncDatabase("r", str(path), snapshot_dir=str(snap)).get("alpha").desc == "first"  # type: ignore[union-attr]
    st = path.stat()
    data = path.read_bytes()
    changed = data.replace(b"first", b"FIRST")
    assert changed != data and len(changed) == len(data)
    with open(path, "r+b") as f:  # same inode, same size ...
        f.write(changed)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... same mtime
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    db = SyncDatabase("r", str(path), snapshot_dir=str(snap))
    assert db.get("alpha").desc == "FIRST"  # type: ignore[union-attr]
    assert db.loaded_from == "archive"
    # A database replaced the usual way (a new file renamed over it).
    other = write_db(tmp_path / "new.db", {"gamma-1-1": desc("gamma", "1-1")})
    os.replace(other, path)
    db.invalidate()
    assert db.versions == {"gamma": "1-1"}
    again = SyncDatabase("r", str(path), snapshot_dir=str(snap))
    assert again.versions == {"gamma": "1-1"} and again.loaded_from == "snapshot"
    # The same bytes downloaded again (new inode, new mtime): the snapshot still serves.
    shutil.copyfile(path, tmp_path / "copy.db")
    os.utime(tmp_path / "copy.db", ns=(1, 1))
    os.replace(tmp_path / "copy.db", path)
    same = SyncDatabase("r", str(path), snapshot_dir=str(snap))
    assert same.versions == {"gamma": "1-1"} and same.loaded_from == "snapshot"


def _corruptions(data: bytes) -> dict[str, bytes]:
    mid = len(data) // 2
    header = bytearray(data)
    header[8:12] = (SCHEMA + 1).to_bytes(4, "little")
    return {
        "flipped": data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:],
        "truncated": data[: len(data) - 7],
        "empty": b"",
        "garbage": b"not a snapshot at all" * 10,
        "schema": bytes(header),
    }


@pytest.mark.parametrize("kind", ["flipped", "truncated", "empty", "garbage", "schema"])
def test_corrupt_snapshot_is_rebuilt(tmp_path: Path, kind: str,
                                     caplog: pytest.LogCaptureFixture) -> None:
    path = write_db(tmp_path / "r.db", SMALL)
    snap = tmp_path / "snap"
    good = metas(SyncDatabase("r", str(path), snapshot_dir=str(snap)))
    snapfile = snap / "r.snapshot"
    snapfile.write_bytes(_corruptions(snapfile.read_bytes())[kind])
    with caplog.at_level(logging.WARNING, logger="alpmd.engine.db"):
        db = SyncDatabase("r", str(path), snapshot_dir=str(snap))
        assert metas(db) == good
    assert db.loaded_from == "archive"
    assert "ignoring snapshot" in caplog.text
    again = SyncDatabase("r", str(path), snapshot_dir=str(snap))
    assert metas(again) == good and again.loaded_from == "snapshot"


def test_unwritable_snapshot_dir_only_warns(tmp_path: Path) -> None:
    path = write_db(tmp_path / "r.db", SMALL)
    blocker = tmp_path / "file"
    blocker.write_text("")
    msgs: list[str] = []
    db = SyncDatabase("r", str(path), snapshot_dir=str(blocker / "snap"),
                      log=lambda level, m: msgs.append(m))
    assert sorted(db.versions) == ["alpha", "beta-lib"]
    assert any("could not write snapshot" in m for m in msgs)


def test_snapshot_leaves_no_temporaries(tmp_path: Path) -> None:
    path = write_db(tmp_path / "r.db", SMALL)
    SyncDatabase("r", str(path), snapshot_dir=str(tmp_path / "snap")).populate()
    assert os.listdir(tmp_path / "snap") == ["r.snapshot"]


# -- archive forms and damage ---------------------------------------------------------------


@pytest.mark.parametrize("compression", sorted(FILTERS))
def test_compressions_detected_by_content(tmp_path: Path, compression: str) -> None:
    path = write_db(tmp_path / "plain.db", SMALL, compression)  # the name says nothing
    db = SyncDatabase("r", str(path))
    assert db.versions == {"alpha": "1.0-1", "beta-lib": "2:3.1-2"}
    alpha = db.get("alpha")
    assert alpha is not None and (alpha.desc, alpha.depends, alpha.csize) == ("first", ["beta"], 10)
    assert [p.name for p in db.groups["g"]] == ["alpha", "beta-lib"]
    assert [p.name for p in db.groups["h"]] == ["beta-lib"]


def test_missing_database_is_empty(tmp_path: Path) -> None:
    msgs: list[str] = []
    db = SyncDatabase("gone", str(tmp_path / "gone.db"), log=lambda lvl, m: msgs.append(m))
    assert db.packages == [] and db.get("x") is None and db.groups == {}
    assert not db.exists and db.valid
    assert msgs == ["database file for 'gone' does not exist (use '-Sy' to download)"]
    with pytest.raises(AlpmError) as err:
        db.populate()
    assert err.value.code is ErrorCode.DB_NOT_FOUND


def test_empty_file_is_an_empty_database(tmp_path: Path) -> None:
    (tmp_path / "e.db").write_bytes(b"")
    db = SyncDatabase("e", str(tmp_path / "e.db"))
    assert db.packages == [] and db.exists


@pytest.mark.parametrize("content", [
    b"garbage that is no archive\n",
    b"#mtree\n./etc/passwd type=file\n",  # libarchive's mtree reader would open host files
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03truncated",
])
def test_damaged_archive_is_db_invalid(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(content)
    db = SyncDatabase("bad", str(path))
    with pytest.raises(AlpmError) as err:
        db.packages  # noqa: B018
    assert err.value.code is ErrorCode.DB_INVALID
    assert str(path) in err.value.message
    assert not db.valid


def test_truncated_real_database_is_db_invalid(arch_sync: Path, tmp_path: Path) -> None:
    data = (arch_sync / "core.db.tar.gz").read_bytes()
    path = tmp_path / "core.db"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AlpmError) as err:
        SyncDatabase("core", str(path)).populate()
    assert err.value.code is ErrorCode.DB_INVALID and str(path) in err.value.message


def test_old_format_with_separate_depends(tmp_path: Path) -> None:
    entries: dict[str, dict[str, str | bytes]] = {"old-1-1": {
        "desc": "%NAME%\nold\n\n%VERSION%\n1-1\n\n%DESC%\nold style\n\n",
        "depends": "%DEPENDS%\nglibc\nbash\n\n%PROVIDES%\nsh\n\n",
    }}
    db = SyncDatabase("o", str(write_db(tmp_path / "o.db", entries)))
    pkg = db.get("old")
    assert pkg is not None and (pkg.desc, pkg.depends, pkg.provides) == (
        "old style", ["glibc", "bash"], ["sh"])


def test_odd_members(tmp_path: Path) -> None:
    msgs: list[str] = []
    entries = dict(SMALL)
    entries["alpha-1.0-1"] = {**SMALL["alpha-1.0-1"], "strange": "x"}
    path = write_db(tmp_path / "o.db", entries)
    db = SyncDatabase("o", str(path), log=lambda lvl, m: msgs.append(m))
    assert sorted(db.versions) == ["alpha", "beta-lib"]
    assert msgs == []  # libalpm says so at debug level only (tests/conformance/test_databases)
    msgs.clear()
    dup = write_db(tmp_path / "d.db", {"alpha-1.0-1": SMALL["alpha-1.0-1"],
                                       "alpha-2.0-1": desc("alpha", "2.0-1"),
                                       "toplevel-1-1": {}})
    with libarchive.file_writer(str(tmp_path / "t.db"), "pax_restricted", "gzip") as w:
        w.add_file_from_memory("stray-1-1", 1, b"x")
    db = SyncDatabase("d", str(dup), log=lambda lvl, m: msgs.append(m))
    assert db.versions == {"alpha": "1.0-1"}  # the first one wins, as in libalpm
    assert msgs == ["d database is inconsistent: duplicated entry 'alpha-2.0-1' ignored"]
    msgs.clear()
    # a file at the top names an empty package, as in libalpm
    stray = SyncDatabase("t", str(tmp_path / "t.db"), log=lambda lvl, m: msgs.append(m))
    assert stray.versions == {"stray": "1-1"}
    assert msgs == ["unknown database file: stray-1-1"]
    bad = write_db(tmp_path / "b.db", {"nohyphen": {"desc": "x"}})
    with pytest.raises(AlpmError) as err:
        SyncDatabase("b", str(bad)).populate()
    assert err.value.code is ErrorCode.DB_INVALID and "nohyphen" in err.value.message


def test_files_database(tmp_path: Path) -> None:
    path = write_db(tmp_path / "f.db", SMALL)
    files_entries = {k: {**v, "files": "%FILES%\nusr/\nusr/bin/\nusr/bin/" + k[:4] + "\n\n"}
                     for k, v in SMALL.items()}
    files = write_db(tmp_path / "f.files", files_entries, "zst")
    db = SyncDatabase("f", str(path), files_path=str(files))
    assert db.get("alpha").files == ["usr/", "usr/bin/", "usr/bin/alph"]  # type: ignore[union-attr]
    assert db.get("beta-lib").files == ["usr/", "usr/bin/", "usr/bin/beta"]  # type: ignore[union-attr]
    nofiles = SyncDatabase("f", str(path), files_path=str(tmp_path / "missing.files"))
    assert nofiles.get("alpha").files == []  # type: ignore[union-attr]


def test_invalidate_reloads(tmp_path: Path) -> None:
    path = write_db(tmp_path / "r.db", SMALL)
    db = SyncDatabase("r", str(path))
    assert len(db) == 2 and "alpha" in db
    shutil.copyfile(write_db(tmp_path / "n.db", {"z-1-1": desc("z", "1-1")}), path)
    assert len(db) == 2  # the cache holds until told
    db.invalidate()
    assert db.versions == {"z": "1-1"}


def test_compact_load_keeps_the_snapshot_form(tmp_path: Path) -> None:
    from alpmd.engine.handle import Handle
    root = tmp_path / "root"
    (root / "var/lib/pacman/sync").mkdir(parents=True)
    write_db(root / "var/lib/pacman/sync/r.db", SMALL)
    plain = SyncDatabase("r", str(root / "var/lib/pacman/sync/r.db"))
    parsed = metas(plain)

    def loaded(compact: bool) -> SyncDatabase:
        h = Handle(root=str(root))
        db = h.register_syncdb("r")
        assert db.snapshot_path is not None
        for leftover in Path(db.snapshot_path).parent.glob("r.snapshot*"):
            leftover.unlink()
        h.load_databases(compact=compact)
        return db

    as_parsed = loaded(False)
    assert as_parsed.loaded_from == "archive"  # the parse wrote the snapshot...
    compacted = loaded(True)
    # ...and a compact load reads the database back from it, with the same contents
    assert compacted.loaded_from == "snapshot"
    assert metas(compacted) == metas(as_parsed) == parsed
