"""Hand-written sync databases and local entries (Python's ``tarfile``, no repo-add):
pacman 6.0.2 and ``alpm`` read them alike.

Each case is read by ``-Sl``, ``-Si`` and ``-Ss`` (or ``-Q``/``-Qi`` for local
entries), twice, so the second ``alpm`` run answers from its snapshot: what
pacman says on every load (a ``desc`` naming another package) must be said
again. pacman's exit code and the message the case is about are asserted
first: two failures are not agreement.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from alpmd.testing.oracle import PACMAN, PacmanRoot
from tests.behaviours.twin import ALPM, run_tool
from tests.conformance.corpus import Entry, twins, write_archive
from tests.trans.harness import snapshot

pytestmark = pytest.mark.oracle


def _desc(name: str, version: str, extra: str = "") -> str:
    return (f"%FILENAME%\n{name}-{version}-any.pkg.tar.zst\n\n%NAME%\n{name}\n\n"
            f"%VERSION%\n{version}\n\n%DESC%\n{name} desc\n\n%CSIZE%\n100\n\n%ISIZE%\n200\n\n"
            f"%ARCH%\nany\n\n%BUILDDATE%\n1662000000\n\n%PACKAGER%\nme\n\n{extra}")


def _tar_db(members: list[tuple[str, bytes | None]], out: Path) -> Path:
    """A gzip tar written by Python's tarfile; ``None`` content is a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    out.write_bytes(buf.getvalue())
    return out


def _entry(dirname: str, **files: str) -> list[tuple[str, bytes | None]]:
    return [(dirname, None), *((f"{dirname}/{k}", v.encode()) for k, v in files.items())]


OK = _entry("ok-1.0-1", desc=_desc("ok", "1.0-1"))

#: case -> (archive members, a line pacman's stderr must hold, or "" for a silent load)
SYNC_CASES: dict[str, tuple[list[tuple[str, bytes | None]], str]] = {
    # libalpm names a package after its directory: %NAME%/%VERSION% are only compared
    "no-name": (_entry("nn-1.0-1", desc=_desc("nn", "1.0-1").replace("%NAME%\nnn\n\n", "")), ""),
    "no-version": (_entry("nv-1.0-1",
                          desc=_desc("nv", "1.0-1").replace("%VERSION%\n1.0-1\n\n", "")), ""),
    "empty-name": (_entry("en-1.0-1", desc=_desc("en", "1.0-1").replace("%NAME%\nen\n",
                                                                         "%NAME%\n\n")),
                   "error: test database is inconsistent: name mismatch on package en"),
    "empty-desc-file": (_entry("ed-1.0-1", desc=""), ""),
    "other-name-and-version": (
        _entry("mm-1.0-1", desc=_desc("other", "2.0-1")),
        "error: test database is inconsistent: version mismatch on package mm"),
    # files other than desc/depends make the package too, quietly
    "unknown-file": (_entry("uf-1.0-1", desc=_desc("uf", "1.0-1"), weird="x"), ""),
    "files-only": (_entry("fo-1.0-1", files="%FILES%\nusr/\n\n"), ""),
    "dir-without-files": ([("nd-1.0-1", None), *OK], ""),
    # a file at the top named like an entry is an empty package, with a warning
    "top-level-file": ([("tl-1.0-1", b"x"), *OK], "warning: unknown database file: tl-1.0-1"),
    # the part after the last slash says what a file is
    "nested-desc": ([("ne-1.0-1/sub/desc", _desc("ne", "1.0-1").encode()), *OK], ""),
    # libalpm's numbers: a size that is not one is -1, a date 0 (printed as the epoch)
    "odd-numbers": (_entry("on-1.0-1", desc=_desc("on", "1.0-1").replace("%CSIZE%\n100",
                                                                          "%CSIZE%\n12abc")
                           .replace("1662000000", "x")), ""),
}


@pytest.mark.parametrize("case", SYNC_CASES)
def test_sync_database_read_like_pacman(tmp_path: Path, case: str) -> None:
    members, said = SYNC_CASES[case]
    root = PacmanRoot(tmp_path / "root")
    root.add_repo("test", _tar_db(members, tmp_path / "test.db"))
    for _ in range(2):  # the second alpm run reads its snapshot
        for args in (["-Sl"], ["-Si"], ["-Ss"]):
            ref = run_tool(PACMAN, root, args, None)
            assert ref.code == 0 and ref.stdout, (args, ref)
            if said:
                assert said in ref.stderr.splitlines(), (args, ref.stderr)
            else:
                assert ref.stderr == "", (args, ref.stderr)
            ours = run_tool(ALPM, root, args, None)
            assert (ours.code, ours.stdout, ours.stderr) == (ref.code, ref.stdout, ref.stderr), args


#: entries libalpm cannot parse -> the line pacman's load logs for them
BROKEN = {
    "value-missing-at-end": ([*_entry("ve-1.0-1", desc="%NAME%\nve\n\n%DESC%"), *OK],
                             "could not parse package description file 've-1.0-1/desc' from db "
                             "'test'"),
    "entry-without-version": ([*_entry("nohyphen", desc=_desc("nohyphen", "1.0-1")), *OK],
                              "invalid name for database entry 'nohyphen/desc'"),
    "illegal-filename": ([*_entry("bf-1.0-1", desc=_desc("bf", "1.0-1").replace(
        "bf-1.0-1-any.pkg.tar.zst", "../bf.pkg.tar.zst")), *OK],
        "test database is inconsistent: filename of package bf is illegal"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_sync_database_refused_with_pacmans_reason(tmp_path: Path, case: str) -> None:
    """libalpm logs why and then leaves the repository empty (``-Sl`` exits 0 showing
    nothing); alpm says the same and refuses the database (exit 1): a broken
    repository is not an empty one."""
    members, said = BROKEN[case]
    root = PacmanRoot(tmp_path / "root")
    root.add_repo("test", _tar_db(members, tmp_path / "test.db"))
    ref = run_tool(PACMAN, root, ["-Sl"], None)
    assert (ref.code, ref.stdout) == (0, ""), ref
    assert f"error: {said}" in ref.stderr.splitlines(), ref
    ours = run_tool(ALPM, root, ["-Sl"], None)
    assert (ours.code, ours.stdout) == (1, "")
    assert ours.stderr == ref.stderr + ("error: database 'test' is not valid (invalid or "
                                        "corrupted database)\n")


def _installed(tmp_path: Path, names: list[str]) -> PacmanRoot:
    root = PacmanRoot(tmp_path / "root")
    for name in names:
        pkg = write_archive([Entry(".PKGINFO", data=f"pkgname = {name}\npkgver = 1.0-1\n".encode()),
                             Entry("usr/", "dir", mode=0o755), Entry(f"usr/{name}", data=b"x\n")],
                            "py-pax", "zst", tmp_path / f"{name}-1.0-1-any.pkg.tar.zst", tmp_path)
        done = root.pacman("-U", str(pkg))
        assert done.returncode == 0, done.stdout + done.stderr
    return root


def test_local_entries_named_by_their_directory(tmp_path: Path) -> None:
    """A local ``desc`` without (or with an empty) %NAME%/%VERSION%: pacman reads the
    package under its directory's name; the empty one is reported as a mismatch."""
    root = _installed(tmp_path, ["a", "b", "c", "d"])
    local = root.dbpath / "local"
    edits = {"a": ("%NAME%\na\n\n", ""), "b": ("%VERSION%\n1.0-1\n\n", ""),
             "c": ("%NAME%\nc\n", "%NAME%\n\n")}
    for name, (old, new) in edits.items():
        desc = local / f"{name}-1.0-1" / "desc"
        desc.write_text(desc.read_text().replace(old, new))
    (local / "d-1.0-1" / "desc").write_text("")
    for args in (["-Q"], ["-Qi", "a"], ["-Qi", "b"], ["-Qi", "c"], ["-Qi", "d"], ["-Qk"]):
        ref = run_tool(PACMAN, root, args, None)
        assert ref.code == 0, (args, ref)
        if args[0] == "-Qi":
            assert f"Name            : {args[1]}" in ref.stdout.splitlines()
            assert ("error: local database is inconsistent: name mismatch on package c"
                    in ref.stderr.splitlines())
        ours = run_tool(ALPM, root, args, None)
        assert (ours.code, ours.stdout, ours.stderr) == (ref.code, ref.stdout, ref.stderr), args


def test_unknown_validation_word_is_warned_about(tmp_path: Path) -> None:
    root = _installed(tmp_path, ["p"])
    desc = root.dbpath / "local" / "p-1.0-1" / "desc"
    desc.write_text(desc.read_text().replace("%VALIDATION%\nnone\n", "%VALIDATION%\nfoo\nsha256\n"))
    for args in (["-Qi", "p"], ["-Qs", "p"]):
        ref = run_tool(PACMAN, root, args, None)
        assert ref.code == 0, (args, ref)
        assert ref.stderr == "warning: unknown validation type for package p: foo\n", ref
        ours = run_tool(ALPM, root, args, None)
        assert (ours.code, ours.stdout, ours.stderr) == (ref.code, ref.stdout, ref.stderr), args


def test_dates_of_zero_are_the_epoch(tmp_path: Path) -> None:
    """No builddate (or installdate): pacman 6.0.2 prints 1970, not "None"."""
    root = _installed(tmp_path, ["nodate"])
    desc = root.dbpath / "local" / "nodate-1.0-1" / "desc"
    text = desc.read_text()
    start = text.index("%INSTALLDATE%")
    desc.write_text(text[:start] + text[text.index("\n\n", start) + 2:])
    pkg = tmp_path / "nodate-1.0-1-any.pkg.tar.zst"
    for args in (["-Qi", "nodate"], ["-Qip", str(pkg)]):
        ref = run_tool(PACMAN, root, args, None)
        assert ref.code == 0, (args, ref)
        assert "Build Date      : Thu Jan  1 00:00:00 1970" in ref.stdout.splitlines(), ref.stdout
        ours = run_tool(ALPM, root, args, None)
        assert (ours.code, ours.stdout, ours.stderr) == (ref.code, ref.stdout, ref.stderr), args


#: a local ``files`` entry edited by hand (old text, new text, the queries pacman fails)
FILES_EDITS = {
    "unsorted": ("usr/a\nusr/b\n", "usr/b\nusr/a\n", ()),
    "absolute-path": ("usr/a\n", "/usr/a\n", ("-Qo",)),  # ROOT//usr/a is not ROOT/usr/a
    "duplicate": ("usr/a\n", "usr/a\nusr/a\n", ()),
    "directory-without-slash": ("usr/\n", "usr\n", ("-Qk",)),  # a file, not a dir
    "backup-with-two-tabs": ("etc/p.conf\t", "etc/p.conf\tx\t", ()),
}


@pytest.mark.parametrize("edit", FILES_EDITS)
def test_local_files_list_read_like_pacman(tmp_path: Path, edit: str) -> None:
    root = PacmanRoot(tmp_path / "root")
    info = "pkgname = p\npkgver = 1.0-1\nbackup = etc/p.conf\n"
    pkg = write_archive([Entry(".PKGINFO", data=info.encode()), Entry("etc/", "dir", mode=0o755),
                         Entry("etc/p.conf", data=b"c\n"), Entry("usr/", "dir", mode=0o755),
                         Entry("usr/a", data=b"a\n"), Entry("usr/b", data=b"b\n")],
                        "bsdtar-pax", "xz", tmp_path / "p-1.0-1-any.pkg.tar.xz", tmp_path)
    done = root.pacman("-U", str(pkg))
    assert done.returncode == 0, done.stdout + done.stderr
    files = root.dbpath / "local" / "p-1.0-1" / "files"
    old, new, failing = FILES_EDITS[edit]
    assert old in files.read_text()
    files.write_text(files.read_text().replace(old, new, 1))
    for args in (["-Ql", "p"], ["-Qk", "p"], ["-Qkk", "p"], ["-Qo", str(root.root / "usr/a")],
                 ["-Qii", "p"]):
        ref = run_tool(PACMAN, root, args, None)
        assert ref.code == (1 if args[0] in failing else 0), (args, ref)
        ours = run_tool(ALPM, root, args, None)
        assert (ours.code, ours.stdout, ours.stderr) == (ref.code, ref.stdout, ref.stderr), args


#: a repository entry edited by hand -> what pacman's -Sp and -S say (exit codes, a line)
SYNC_INSTALL = {
    # libalpm's compute_download_size: no %FILENAME%, no download (prepare fails)
    "no-filename": (lambda d, sha: d.replace("%FILENAME%\nq-1.0-1-any.pkg.tar.zst\n\n", ""),
                    1, 1, "error: failed to prepare transaction (package filename is not valid)"),
    "sha256": (lambda d, sha: d + f"%SHA256SUM%\n{sha}\n\n", 0, 0, "installing q..."),
    # libalpm compares lower-case hex with strcmp
    "sha256-upper-case": (lambda d, sha: d + f"%SHA256SUM%\n{sha.upper()}\n\n", 0, 1,
                          "is corrupted (invalid or corrupted package (checksum))."),
    "md5-mismatch": (lambda d, sha: d + "%MD5SUM%\n" + "0" * 32 + "\n\n", 0, 1,
                     "is corrupted (invalid or corrupted package (checksum))."),
}


@pytest.mark.parametrize("case", SYNC_INSTALL)
def test_sync_install_from_hand_written_entry(tmp_path: Path, case: str) -> None:
    edit, print_code, code, said = SYNC_INSTALL[case]
    a, b = twins(tmp_path)
    for root in (a, b):
        served = root.root / "srv/test"
        served.mkdir(parents=True)
        pkg = write_archive([Entry(".PKGINFO", data=b"pkgname = q\npkgver = 1.0-1\nsize = 9\n"),
                             Entry("usr/", "dir", mode=0o755), Entry("usr/q", data=b"q\n")],
                            "bsdtar-restricted", "zst", served / "q-1.0-1-any.pkg.tar.zst", tmp_path)
        text = _desc("q", "1.0-1").replace("%CSIZE%\n100", f"%CSIZE%\n{pkg.stat().st_size}")
        sha = hashlib.sha256(pkg.read_bytes()).hexdigest()
        members = _entry("q-1.0-1", desc=edit(text, sha))
        root.add_repo("test", _tar_db(members, tmp_path / f"{root.root.name}.db"))
    for args, want in ((["-Sp", "q"], print_code), (["-S", "q"], code)):
        ref = run_tool(PACMAN, a, args, None)
        assert ref.code == want, (args, ref)
        if args[0] == "-S":
            assert said in ref.stdout + ref.stderr, ref
        ours = run_tool(ALPM, b, args, None)
        assert (ours.code, ours.stdout, ours.stderr) == (ref.code, ref.stdout, ref.stderr), args
    want_state, got = snapshot(a.root), snapshot(b.root)
    for part in ("db", "fs", "log"):
        assert got[part] == want_state[part], part
