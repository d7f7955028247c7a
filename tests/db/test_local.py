"""The local database against Debian's pacman: same tree, same answers, both directions."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path

import pytest

from alpmd.engine.db.backend import Entry, EntryKey, split_entry_name
from alpmd.engine.db.local import TMP_PREFIX, LocalDatabase, LocalFilesBackend
from alpmd.engine.db.sqlite import LocalSqliteBackend
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import Backup, PkgMeta, Reason
from alpmd.engine.formats.files import FileList
from alpmd.engine.package import Origin, Part
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package

INSTALL = "post_install() {\n  :\n}\n"


def _metas() -> list[tuple[PkgMeta, list[FileSpec], list[str]]]:
    app = PkgMeta(
        "app", "1:2.5.1-3", base="app-base", desc="An  application: with  spaces",
        url="https://example.org/app", licenses=["GPL", "MIT"], groups=["tools", "extras"],
        depends=["libfoo>=1.0", "libfoo.so=1-64"], optdepends=["vim: for editing", "emacs"],
        provides=["application=2.5", "appd"], conflicts=["app-git"], replaces=["oldapp<2"],
    )
    files = [FileSpec("etc/app/app.conf", b"key=value\n"), FileSpec("etc/app/other.conf", b"x"),
             FileSpec("usr/bin/app", b"#!/bin/sh\n", mode=0o755),
             FileSpec("usr/share/app/data", b"d" * 3000),
             FileSpec("usr/bin/app-link", kind="link", target="app")]
    lib = PkgMeta("libfoo", "1.2-1", desc="The foo library", groups=["tools"],
                  provides=["libfoo.so=1-64"])
    lib_files = [FileSpec("usr/lib/libfoo.so.1", b"\x7fELF")]
    return [(app, files, ["etc/app/app.conf", "etc/app/other.conf"]), (lib, lib_files, [])]


@pytest.fixture
def installed(pacman_root: PacmanRoot, tmp_path: Path) -> PacmanRoot:
    """A root where the real pacman installed two packages (libfoo as a dependency)."""
    pkgs = [build_package(tmp_path / "pkgs", meta, files, backup=backup, compression="gz")
            for meta, files, backup in _metas()]
    pacman_root.pacman("-U", "--asdeps", str(pkgs[1]), check=True)
    pacman_root.pacman("-U", str(pkgs[0]), check=True)
    return pacman_root


def _qi(root: PacmanRoot, *names: str) -> dict[str, dict[str, str]]:
    """``pacman -Qii`` parsed: package → field → text (continuation lines joined by \\n)."""
    out = root.pacman("-Qii", *names, check=True).stdout
    result: dict[str, dict[str, str]] = {}
    for block in out.strip().split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            m = re.match(r"^(\S[^:]*?)\s*: ?(.*)$", line)
            if m and not line.startswith(" "):
                key = m.group(1)
                fields[key] = m.group(2)
            else:
                fields[key] += "\n" + line.strip()
        result[fields["Name"]] = fields
    return result


def _ql(root: PacmanRoot, name: str) -> list[str]:
    out = root.pacman("-Ql", name, check=True).stdout
    prefix = f"{name} {root.root}/"
    return [line[len(prefix):] for line in out.splitlines()]


def _none(values: list[str]) -> str:
    return "  ".join(values) if values else "None"


@pytest.mark.oracle
def test_reads_what_pacman_installed(installed: PacmanRoot) -> None:
    db = LocalDatabase(str(installed.dbpath))
    assert [(p.name, p.version) for p in db.packages] == [("app", "1:2.5.1-3"),
                                                          ("libfoo", "1.2-1")]
    q = installed.pacman("-Q", check=True).stdout.split()
    assert q == ["app", "1:2.5.1-3", "libfoo", "1.2-1"]
    info = _qi(installed, "app", "libfoo")
    for pkg in db.packages:
        assert pkg.origin is Origin.LOCALDB and pkg.db is db
        qi = info[pkg.name]
        assert qi["Version"] == pkg.version
        assert qi["Description"] == (pkg.desc or "None")
        assert qi["URL"] == (pkg.url or "None")
        assert qi["Architecture"] == pkg.arch
        assert qi["Licenses"] == _none(pkg.licenses)
        assert qi["Groups"] == _none(pkg.groups)
        assert qi["Provides"] == _none(pkg.provides)
        assert qi["Depends On"] == _none(pkg.depends)
        assert qi["Optional Deps"].split("\n") == (
            [o + (" [installed]" if o.split(":")[0] in db else "") for o in pkg.optdepends]
            or ["None"])
        assert qi["Conflicts With"] == _none(pkg.conflicts)
        assert qi["Replaces"] == _none(pkg.replaces)
        assert qi["Packager"] == pkg.packager
        assert qi["Install Script"] == "No" and not pkg.has_scriptlet
        reason = {Reason.EXPLICIT: "Explicitly installed",
                  Reason.DEPEND: "Installed as a dependency for another package"}
        assert qi["Install Reason"] == reason[pkg.reason]
        assert pkg.installdate is not None and pkg.isize is not None
        assert pkg.files == _ql(installed, pkg.name)
        assert pkg.files == sorted(pkg.files)
        backups = [line.split("\t")[1] for line in qi["Backup Files"].split("\n")
                   if line and line != "(none)"]
        assert [str(installed.root / b.path) for b in pkg.backup] == backups
        for b in pkg.backup:
            assert b.md5 == hashlib.md5((installed.root / b.path).read_bytes()).hexdigest()
        assert pkg.mtree is not None and pkg.mtree[:2] == b"\x1f\x8b"  # stored gzip, as is
    assert db.get("libfoo").reason is Reason.DEPEND  # type: ignore[union-attr]
    assert db.get("app").base == "app-base"  # type: ignore[union-attr]
    assert db.get("nope") is None
    assert {g: [p.name for p in ps] for g, ps in db.groups.items()} == {
        "extras": ["app"], "tools": ["app", "libfoo"]}
    assert list(db.groups) == ["tools", "extras"]  # libalpm's order: first seen along names


def _copy_root_files(src: Path, dst: Path, files: list[str]) -> None:
    for f in files:
        s, d = src / f, dst / f
        if f.endswith("/"):
            d.mkdir(parents=True, exist_ok=True)
        elif s.is_symlink():
            os.symlink(os.readlink(s), d)
            st = s.lstat()
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        else:
            shutil.copy2(s, d)


@pytest.mark.oracle
def test_entries_we_write_are_pacmans(installed: PacmanRoot, tmp_path: Path) -> None:
    """Copy every entry through our reader and writer: pacman sees no difference."""
    ours = PacmanRoot(tmp_path / "ours")
    src = LocalDatabase(str(installed.dbpath))
    dst = LocalDatabase(str(ours.dbpath))
    for pkg in src.packages:
        dst.add(pkg.meta, pkg.filelist, mtree=pkg.mtree, scriptlet=pkg.scriptlet)
        _copy_root_files(installed.root, ours.root, pkg.files)
    local_a, local_b = installed.dbpath / "local", ours.dbpath / "local"
    assert (local_b / "ALPM_DB_VERSION").read_text() == "9\n"
    for entry in sorted(os.listdir(local_a)):
        if entry == "ALPM_DB_VERSION":
            continue
        assert sorted(os.listdir(local_b / entry)) == sorted(os.listdir(local_a / entry))
        for f in os.listdir(local_a / entry):
            assert (local_b / entry / f).read_bytes() == (local_a / entry / f).read_bytes(), f
    assert ours.pacman("-Q").stdout == installed.pacman("-Q").stdout
    assert (ours.pacman("-Qi", "app", "libfoo").stdout
            == installed.pacman("-Qi", "app", "libfoo").stdout)
    for name in ("app", "libfoo"):
        assert _ql(ours, name) == _ql(installed, name)
    kk = ours.pacman("-Qkk", "app")
    assert kk.returncode == 0, kk.stdout + kk.stderr
    # pacman removes what we wrote, files and entry, without a complaint.
    r = ours.pacman("-R", "app", "libfoo")
    assert r.returncode == 0 and "error" not in r.stderr and "warning" not in r.stderr, r.stderr
    assert os.listdir(local_b) == ["ALPM_DB_VERSION"]
    assert not (ours.root / "usr/bin/app").exists()
    assert ours.pacman("-Q").stdout == ""


@pytest.mark.oracle
def test_scriptlet_reason_and_update_seen_by_pacman(pacman_root: PacmanRoot) -> None:
    db = LocalDatabase(str(pacman_root.dbpath))
    meta = PkgMeta("tool", "1.0-1", desc="A tool", arch="any", installdate=1_700_000_000,
                   packager="Me <me@example.org>", isize=1234)
    db.add(meta, FileList(["usr/", "usr/bin/", "usr/bin/tool"]), scriptlet=INSTALL.encode())
    qi = _qi(pacman_root, "tool")["tool"]
    assert qi["Install Script"] == "Yes"
    assert qi["Install Reason"] == "Explicitly installed"
    assert qi["Installed Size"] == "1234.00 B"
    db.set_reason("tool", Reason.DEPEND)
    assert _qi(pacman_root, "tool")["tool"]["Install Reason"].startswith("Installed as a dep")
    assert LocalDatabase(str(pacman_root.dbpath)).get("tool").reason is Reason.DEPEND  # type: ignore[union-attr]
    # An upgrade replaces the entry: one directory, the new version, no scriptlet left.
    new = PkgMeta("tool", "1.1-1", desc="A newer tool", arch="any")
    pkg = db.add(new, FileList(["usr/", "usr/bin/", "usr/bin/tool2"]))
    assert db.get("tool") is pkg and pkg.version == "1.1-1"
    assert pacman_root.pacman("-Q").stdout == "tool 1.1-1\n"
    assert _qi(pacman_root, "tool")["tool"]["Install Script"] == "No"
    assert sorted(os.listdir(pacman_root.dbpath / "local")) == ["ALPM_DB_VERSION", "tool-1.1-1"]
    # Reinstalling the same version rewrites the parts in place.
    db.add(new, FileList(["usr/", "usr/bin/", "usr/bin/tool3"]), scriptlet=b"# s\n")
    fresh = LocalDatabase(str(pacman_root.dbpath)).get("tool")
    assert fresh is not None and fresh.files == ["usr/", "usr/bin/", "usr/bin/tool3"]
    assert fresh.scriptlet == b"# s\n" and fresh.mtree is None
    db.remove("tool")
    assert db.get("tool") is None and db.packages == []
    assert pacman_root.pacman("-Q").stdout == ""


# -- validation and odd trees --------------------------------------------------------------


def _local(tmp_path: Path) -> Path:
    local = tmp_path / "local"
    local.mkdir(parents=True, exist_ok=True)
    return local


@pytest.mark.parametrize("content", ["8\n", "10\n", "garbage\n", ""])
def test_other_versions_refused(tmp_path: Path, content: str) -> None:
    local = _local(tmp_path)
    (local / "ALPM_DB_VERSION").write_text(content)
    (local / "foo-1-1").mkdir()
    with pytest.raises(AlpmError) as err:
        LocalDatabase(str(tmp_path)).packages  # noqa: B018
    assert err.value.code is ErrorCode.DB_VERSION
    assert str(local) in err.value.message
    if content.strip().isdigit():
        assert f"version {content.strip()}" in err.value.message


def test_old_database_without_version_file_refused(tmp_path: Path) -> None:
    (_local(tmp_path) / "foo-1-1").mkdir()
    with pytest.raises(AlpmError) as err:
        LocalDatabase(str(tmp_path)).get("foo")
    assert err.value.code is ErrorCode.DB_VERSION
    assert "pacman-db-upgrade" in err.value.message


def test_version_file_with_blanks_accepted(tmp_path: Path) -> None:
    (_local(tmp_path) / "ALPM_DB_VERSION").write_text("  9")
    assert LocalDatabase(str(tmp_path)).packages == []


def test_missing_and_empty_databases(tmp_path: Path) -> None:
    missing = LocalDatabase(str(tmp_path / "nowhere"))
    assert missing.packages == [] and missing.groups == {} and missing.get("x") is None
    assert not (tmp_path / "nowhere").exists()  # reading never creates anything
    local = _local(tmp_path)
    db = LocalDatabase(str(tmp_path))
    assert db.packages == [] and len(db) == 0
    assert os.listdir(local) == []
    db.add(PkgMeta("a", "1-1"), None)
    assert (local / "ALPM_DB_VERSION").read_text() == "9\n"
    # A database that did not exist at all is created on the first write.
    missing.add(PkgMeta("b", "2-1"), FileList(["b/"]))
    assert (tmp_path / "nowhere/local/ALPM_DB_VERSION").read_text() == "9\n"
    assert LocalDatabase(str(tmp_path / "nowhere")).get("b").files == ["b/"]  # type: ignore[union-attr]


def test_scan_reads_names_only_and_skips_invalid(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    local = _local(tmp_path)
    (local / "ALPM_DB_VERSION").write_text("9\n")
    for name in ("foo-bar-1.0-1", "nohyphen", "one-1", "-1-1"):
        (local / name).mkdir()
    (local / "afile-1-1").write_text("not a dir")
    (local / "link-1-1").symlink_to(local / "foo-bar-1.0-1")
    messages: list[str] = []
    with caplog.at_level(logging.WARNING, logger="alpmd.engine.db"):
        db = LocalDatabase(str(tmp_path), log=lambda level, msg: messages.append(msg))
        assert db.versions == {"foo-bar": "1.0-1"}
    assert sum("invalid name for database entry" in m for m in messages) == 3
    assert "invalid name for database entry 'nohyphen'" in caplog.text
    # Nothing was read: a missing desc only shows when a field is used.
    pkg = db.get("foo-bar")
    assert pkg is not None and pkg.name == "foo-bar"
    with pytest.raises(AlpmError) as err:
        pkg.desc  # noqa: B018
    assert err.value.code is ErrorCode.DB_INVALID and "desc" in err.value.message


def test_split_entry_name_as_libalpm() -> None:
    assert split_entry_name("foo-bar-1.0-1") == EntryKey("foo-bar", "1.0-1")
    assert split_entry_name("foo-1:2.0-3/desc") == EntryKey("foo", "1:2.0-3")
    assert split_entry_name("a-b-c-d") == EntryKey("a-b", "c-d")
    for bad in ("foo", "foo-1", "-1-1", "", "/x-1-1"):
        assert split_entry_name(bad) is None


def test_duplicate_entries_keep_the_newer(tmp_path: Path) -> None:
    local = _local(tmp_path)
    (local / "ALPM_DB_VERSION").write_text("9\n")
    msgs: list[str] = []
    for v in ("1.10-1", "1.9-1"):
        (local / f"dup-{v}").mkdir()
        (local / f"dup-{v}" / "desc").write_text(f"%NAME%\ndup\n\n%VERSION%\n{v}\n\n")
    db = LocalDatabase(str(tmp_path), log=lambda level, m: msgs.append(m))
    assert db.get("dup").version == "1.10-1"  # type: ignore[union-attr]
    assert any("duplicated database entry 'dup'" in m for m in msgs)


def test_sqlite_duplicate_entries_keep_the_newer(tmp_path: Path) -> None:
    """Names read in one query when unique; two entries of a name still go the
    careful way (the newer wins, and it is said)."""
    backend = LocalSqliteBackend(str(tmp_path), durable=False)
    for name, v in (("dup", "1.10-1"), ("dup", "1.9-1"), ("one", "1-1")):
        backend.write(Entry(PkgMeta(name, v), FileList()))
    assert backend.unique_versions() is None
    msgs: list[str] = []
    db = LocalDatabase(str(tmp_path), backend=backend, log=lambda level, m: msgs.append(m))
    assert db.versions == {"dup": "1.10-1", "one": "1-1"}
    assert any("duplicated database entry 'dup'" in m for m in msgs)
    backend.remove(EntryKey("dup", "1.9-1"))
    assert backend.unique_versions() == {"dup": "1.10-1", "one": "1-1"}


def test_desc_name_mismatch_reported_dir_wins(tmp_path: Path) -> None:
    local = _local(tmp_path)
    (local / "ALPM_DB_VERSION").write_text("9\n")
    (local / "real-1-1").mkdir()
    (local / "real-1-1" / "desc").write_text("%NAME%\nother\n\n%VERSION%\n2-2\n\n%DESC%\nd\n")
    msgs: list[str] = []
    pkg = LocalDatabase(str(tmp_path), log=lambda level, m: msgs.append(m)).get("real")
    assert pkg is not None and pkg.desc == "d"
    assert (pkg.meta.name, pkg.meta.version) == ("real", "1-1")
    assert any("name mismatch" in m for m in msgs) and any("version mismatch" in m for m in msgs)


def test_invalid_names_refused_on_write(tmp_path: Path) -> None:
    db = LocalDatabase(str(tmp_path))
    for name, version in (("../evil", "1-1"), ("ok", "1"), (".hidden", "1-1"), ("a", "1/2-1"),
                          ("a\nb", "1-1")):
        with pytest.raises(AlpmError) as err:
            db.add(PkgMeta(name, version), None)
        assert err.value.code is ErrorCode.PKG_INVALID_NAME
    assert not (tmp_path / "local").exists() or os.listdir(tmp_path / "local") == []
    with pytest.raises(AlpmError) as err:
        db.remove("nothere")
    assert err.value.code is ErrorCode.PKG_NOT_FOUND


def test_caches_follow_writes(tmp_path: Path) -> None:
    db = LocalDatabase(str(tmp_path))
    a = db.add(PkgMeta("a", "1-1", groups=["g"]), None)
    assert db.packages == [a] and db.groups == {"g": [a]}
    b = db.add(PkgMeta("b", "1-1", groups=["g"]), None)
    assert db.packages == [a, b] and db.groups == {"g": [a, b]}
    db.remove("a")
    assert db.packages == [b] and db.groups == {"g": [b]} and "a" not in db
    # Another writer changed the tree: invalidate() rescans.
    other = LocalDatabase(str(tmp_path))
    other.add(PkgMeta("c", "1-1"), None)
    assert [p.name for p in db.packages] == ["b"]
    db.invalidate()
    assert [p.name for p in db.packages] == ["b", "c"]


def test_partial_reads(tmp_path: Path) -> None:
    db = LocalDatabase(str(tmp_path))
    db.add(PkgMeta("p", "1-1", desc="x"), FileList(["etc/", "etc/p"], [Backup("etc/p", "ab")]),
           mtree=b"\x1f\x8bMTREE", scriptlet=b"s")
    backend = LocalFilesBackend(str(tmp_path))
    backend.open()
    key = EntryKey("p", "1-1")
    got = backend.read(key, Part.FILES)
    assert got.meta is None and got.files is not None and got.files.backup == [Backup("etc/p", "ab")]
    got = backend.read(key, Part.MTREE | Part.SCRIPTLET)
    assert (got.mtree, got.scriptlet, got.has_scriptlet, got.files) == (b"\x1f\x8bMTREE", b"s",
                                                                        True, None)
    got = backend.read(key, Part.DESC)
    assert got.meta is not None and got.meta.desc == "x"
    backend.write(Entry(PkgMeta("p", "1-1", desc="y")), Part.DESC)
    assert backend.read(key, Part.DESC).meta.desc == "y"  # type: ignore[union-attr]
    assert backend.read(key, Part.MTREE).mtree == b"\x1f\x8bMTREE"  # untouched parts stay


# -- crashes -------------------------------------------------------------------------------


@pytest.mark.oracle
def test_leftovers_of_a_crash_are_ignored_then_swept(pacman_root: PacmanRoot) -> None:
    dbpath = pacman_root.dbpath
    db = LocalDatabase(str(dbpath))
    db.add(PkgMeta("kept", "1-1", desc="old"), FileList(["kept/"]))
    local = dbpath / "local"
    # What a crash at each step leaves: a half-assembled entry in the staging directory,
    # a temporary file inside an entry being updated, a temporary file in local/.
    half = dbpath / f"{TMP_PREFIX}abc123"
    half.mkdir()
    (half / "desc").write_text("%NAME%\nhalf\n")
    (local / "kept-1-1" / f"{TMP_PREFIX}x1").write_text("%NAME%\nkept\n\n%VERSION%\n1-1\n%DESC")
    (local / f"{TMP_PREFIX}ver").write_text("9")
    fresh = LocalDatabase(str(dbpath))
    assert fresh.versions == {"kept": "1-1"} and fresh.get("kept").desc == "old"  # type: ignore[union-attr]
    r = pacman_root.pacman("-Q")
    assert (r.stdout, r.stderr) == ("kept 1-1\n", "")
    fresh.add(PkgMeta("new", "1-1"), None)
    assert not half.exists() and not (local / f"{TMP_PREFIX}ver").exists()
    fresh.add(PkgMeta("kept", "1-1", desc="new"), FileList(["kept/"]))
    assert sorted(os.listdir(local / "kept-1-1")) == ["desc", "files"]


def test_crash_while_creating_leaves_no_entry(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    db = LocalDatabase(str(tmp_path))
    db.add(PkgMeta("base", "1-1"), None)

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("alpmd.engine.db.local.fsync_dir", boom)
    with pytest.raises(AlpmError) as err:
        db.add(PkgMeta("half", "1-1", desc="d"), FileList(["x"]))
    assert err.value.code is ErrorCode.DB_WRITE
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path / "local")) == ["ALPM_DB_VERSION", "base-1-1"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(TMP_PREFIX)]
    assert LocalDatabase(str(tmp_path)).versions == {"base": "1-1"}
    assert db.versions == {"base": "1-1"}  # the cache did not record the failed write


def test_crash_while_updating_keeps_old_file(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    db = LocalDatabase(str(tmp_path))
    db.add(PkgMeta("p", "1-1", desc="old"), None)
    real_replace = os.replace

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(AlpmError):
        db.add(PkgMeta("p", "1-1", desc="new"), None)
    monkeypatch.setattr(os, "replace", real_replace)
    assert LocalDatabase(str(tmp_path)).get("p").desc == "old"  # type: ignore[union-attr]
    assert sorted(os.listdir(tmp_path / "local" / "p-1-1")) == ["desc", "files"]


def test_remove_does_not_follow_symlinks(tmp_path: Path) -> None:
    db = LocalDatabase(str(tmp_path))
    db.add(PkgMeta("a", "1-1"), None)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    (tmp_path / "local" / "a-1-1" / "link").symlink_to(outside)
    db.remove("a")
    assert (outside / "precious").read_text() == "keep me"
    assert os.listdir(tmp_path / "local") == ["ALPM_DB_VERSION"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(TMP_PREFIX)]


@pytest.mark.parametrize("text", [
    "%NAME%\nreal\n\n%VERSION%\n1-1\n\n%DESC%\nd\n",              # pacman's order
    "%DESC%\nd\n\n%VERSION%\n1-1\n\n%NAME%\nreal\n",              # another order
    "%NAME%\nreal\n\n%VERSION%\n2-2\n",                           # version differs
    "%NAME%\nother\n\n%VERSION%\n1-1\n",                          # name differs
    "%NAME%\nreal\n\n%VERSION%\n1-1\n\n%NAME%\nother\n",          # repeated: the last counts
    "%NAME%\nreal\n\n%VERSION%\n1-1\n\n%DESC%\n%NAME%\n",         # the header text as a value
    "%DESC%\n%NAME%\nreal\n\n%VERSION%\n1-1\n",                   # %NAME% is the description
    "%NAME%\r\nreal\r\n\r\n%VERSION%\r\n1-1\r\n",                 # CRLF
    "%NAME%\nreal\n%VERSION%\n1-1\n",                             # no blank line between
])
def test_identity_check_agrees_with_full_parse(tmp_path: Path, text: str) -> None:
    """The byte test bulk readers use reports exactly what a full read reports."""
    from alpmd.engine.db.backend import EntryKey
    from alpmd.engine.db.local import identity_errors

    local = _local(tmp_path)
    (local / "ALPM_DB_VERSION").write_text("9\n")
    (local / "real-1-1").mkdir()
    (local / "real-1-1" / "desc").write_text(text)
    msgs: list[str] = []
    pkg = LocalDatabase(str(tmp_path), log=lambda level, m: msgs.append(m)).get("real")
    assert pkg is not None
    try:
        pkg.meta  # noqa: B018 - the full read reports
    except AlpmError as exc:  # no %NAME% at all: the entry's own error, nothing else
        assert exc.code is ErrorCode.DB_INVALID
        assert msgs == []
    assert identity_errors(text.encode(), EntryKey("real", "1-1")) == msgs
