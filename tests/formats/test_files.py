"""The files format: local ``files`` entries and ``.files`` databases, against pacman and repo-add."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import Backup
from alpmd.engine.formats.files import FileList, parse_files, write_files, write_sync_files

from . import build_package, makepkg_package, need, pacman_install, repo_add

LOCAL = """\
%FILES%
etc/
etc/foo.conf
usr/
usr/bin/
usr/bin/foo bar

%BACKUP%
etc/foo.conf\td41d8cd98f00b204e9800998ecf8427e

"""


def test_local_files_round_trip() -> None:
    fl = parse_files(LOCAL)
    assert fl.files == ["etc/", "etc/foo.conf", "usr/", "usr/bin/", "usr/bin/foo bar"]
    assert fl.backup == [Backup("etc/foo.conf", "d41d8cd98f00b204e9800998ecf8427e")]
    assert write_files(fl) == LOCAL


def test_sync_files_entry() -> None:
    text = "%FILES%\nusr/\nusr/lib/\nusr/lib/libx.so\n"
    fl = parse_files(text)
    assert fl.files == ["usr/", "usr/lib/", "usr/lib/libx.so"] and fl.backup == []
    assert write_sync_files(fl) == text
    assert write_sync_files(FileList()) == "%FILES%\n"


def test_empty_and_odd_entries() -> None:
    assert parse_files("") == FileList()
    assert write_files(FileList()) == ""
    # A backup line without a tab has no recorded hash; CRLF and junk are tolerated.
    fl = parse_files("junk\r\n%BACKUP%\r\netc/a\r\netc/b\tabc\r\n\r\n%FILES%  \r\nx\r\n")
    assert fl.backup == [Backup("etc/a", ""), Backup("etc/b", "abc")] and fl.files == ["x"]


def test_writer_refuses_unwritable_entries() -> None:
    for fl in (FileList(["a\nb"]), FileList([""]), FileList(backup=[Backup("a\tb", "x")]),
               FileList(backup=[Backup("", "x")]), FileList(backup=[Backup("a", "x\n")])):
        with pytest.raises(AlpmError) as info:
            write_files(fl)
        assert info.value.code is ErrorCode.WRONG_ARGS


line = st.text(st.characters(exclude_characters="\n\r\0"), max_size=16)
path = line.filter(bool)


@settings(max_examples=300, deadline=None)
@given(st.text() | st.lists(st.sampled_from(["%FILES%", "%BACKUP%", "", "a\tb"]) | line).map("\n".join))
def test_any_text_parses_or_raises(text: str) -> None:
    try:
        fl = parse_files(text)
    except AlpmError as exc:
        assert exc.code is ErrorCode.DB_INVALID
    else:
        assert all(fl.files)


@settings(max_examples=200, deadline=None)
@given(st.lists(path), st.lists(st.builds(Backup, path.filter(lambda p: "\t" not in p), line)))
def test_round_trip(files: list[str], backup: list[Backup]) -> None:
    # paths read from bytes hold no surrogates but escaped bytes; sorted as pacman keeps them
    assume(all(not 0xD800 <= ord(c) < 0xDC80 and not 0xDD00 <= ord(c) < 0xE000
               for p in files for c in p))
    files.sort(key=lambda p: p.encode("utf-8", "surrogateescape"))
    fl = FileList(files, backup)
    assert parse_files(write_files(fl)) == fl
    assert parse_files(write_sync_files(fl)) == FileList(files)


def test_paths_read_sorted_bytewise() -> None:
    """libalpm sorts a list on reading (``strcmp``); a hand-edited one may not be sorted
    (tests/conformance/test_databases.py compares -Ql with pacman's)."""
    text = "%FILES%\nusr/b\n/usr/a\nusr/\udcff\nusr/\u00e9\nusr/a\n\n"
    assert parse_files(text).files == ["/usr/a", "usr/a", "usr/b", "usr/\u00e9", "usr/\udcff"]


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    need("bsdtar", "gzip")
    base = tmp_path_factory.mktemp("pkgs")
    pkginfo = "pkgname = fmt-files\npkgver = 1-1\narch = any\nsize = 3\nbackup = etc/b.conf\nbackup = etc/a.conf\n"
    made = [build_package(base, "fmt-files-1-1-any.pkg.tar.gz", pkginfo, {
        "etc/a.conf": "a\n", "etc/b.conf": "b\n", "usr/share/f/x y": "x\n", "usr/share/f/é": "e\n",
        "usr/share/f/Z": "z\n",
    }, {"usr/share/f/link": "Z"})]
    try:
        made.append(makepkg_package())
    except pytest.skip.Exception:
        pass
    return made


@pytest.mark.oracle
def test_local_files_identical_to_pacman(packages: list[Path], tmp_path: Path) -> None:
    for n, pkg in enumerate(packages):
        entry = pacman_install(pkg, tmp_path / f"root{n}")
        written = (entry / "files").read_text()
        fl = parse_files(written)
        assert fl.files and fl.backup
        assert write_files(fl) == written


@pytest.mark.oracle
def test_sync_files_identical_to_repo_add(packages: list[Path], tmp_path: Path) -> None:
    _, files_db = repo_add(packages, tmp_path / "repo")
    assert len(files_db) == len(packages)
    for entry in files_db.values():
        written = entry["files"]
        fl = parse_files(written)
        assert fl.files == sorted(fl.files, key=lambda p: p.encode())
        assert write_sync_files(fl) == written
