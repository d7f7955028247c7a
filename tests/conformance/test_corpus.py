"""Issue 11's corpus: package files made by other tools, installed, upgraded and removed
by pacman 6.0.2 and by ``alpm`` on twin roots; invalid ones refused by both.

Every step asserts what pacman did (its exit status) before comparing: two failures
never count as agreement.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alpmd.testing.oracle import PacmanRoot
from tests.conformance.corpus import (
    COMPRESSIONS,
    INVALID,
    LAYOUTS,
    PKGINFOS,
    SCRIPTLET_LAYOUTS,
    TOOLS,
    Case,
    Entry,
    build,
    build_invalid,
    mtree_data,
    twins,
    valid_cases,
    write_archive,
)
from tests.trans.harness import run_alpm, snapshot

pytestmark = pytest.mark.oracle

CASES = valid_cases()


def test_corpus_covers_every_tool_compression_and_shape() -> None:
    assert len(CASES) >= 50
    assert {c.tool for c in CASES} == set(TOOLS)
    assert {c.comp for c in CASES} == set(COMPRESSIONS)
    assert {c.pkginfo for c in CASES} == set(PKGINFOS)
    assert {c.layout for c in CASES} == set(LAYOUTS)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Every case's two package files, written once for the module."""
    out = tmp_path_factory.mktemp("corpus")
    return {case.id: build(case, out) for case in CASES}


@pytest.fixture(scope="module")
def built_invalid(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("invalid")
    return {kind: build_invalid(kind, out) for kind in INVALID}


def _step(a: PacmanRoot, b: PacmanRoot, args: list[str], what: str) -> None:
    """One command on both roots: pacman succeeds, alpm too, and the roots stay equal."""
    ref = a.pacman(*args)
    assert ref.returncode == 0, f"pacman {what}: {ref.stdout}{ref.stderr}"
    code, out, err = run_alpm(b, args)
    assert code == 0, f"alpm {what}: {out}{err}"
    want, got = snapshot(a.root), snapshot(b.root)
    for part in ("db", "fs", "log"):
        assert got[part] == want[part], f"{what}: {part} differs"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.id}-{c.tool}-{c.comp}-{c.pkginfo}-{c.layout}"
                                             for c in CASES])
def test_install_upgrade_remove_like_pacman(tmp_path: Path, case: Case,
                                            built: dict[str, tuple[Path, Path]]) -> None:
    v1, v2 = built[case.id]
    a, b = twins(tmp_path, shell=case.layout in SCRIPTLET_LAYOUTS)
    _step(a, b, ["-U", str(v1)], "install")
    _step(a, b, ["-U", str(v2)], "upgrade")
    _step(a, b, ["-R", case.name], "remove")
    assert not (a.dbpath / "local" / f"{case.name}-{case.versions()[1]}").exists()


#: What pacman 6.0.2 says of each (libalpm's error code, as ``alpm_strerror`` words it).
EXPECTED = {kind: "invalid or corrupted package" for kind in INVALID} | {
    "truncated": "libarchive error",
    "tar-header-checksum": "libarchive error",
    "garbage": "cannot open package file",
}


#: Refused with another reason logged first: libarchive's read errors (pacman reads in
#: other blocks) and ``./.PKGINFO`` (alpm refuses the path before missing the metadata).
LOGGED_OTHERWISE = {"truncated", "tar-header-checksum", "dot-slash"}


@pytest.mark.parametrize("kind", INVALID)
def test_invalid_refused_like_pacman(tmp_path: Path, kind: str,
                                     built_invalid: dict[str, Path]) -> None:
    path = built_invalid[kind]
    a, b = twins(tmp_path)
    ref = a.pacman("-U", str(path))
    assert ref.returncode == 1, ref.stdout + ref.stderr
    verdict = [line for line in ref.stderr.splitlines() if line.startswith(f"error: '{path}': ")]
    assert verdict and verdict[0].endswith(EXPECTED[kind]), ref.stderr
    code, out, err = run_alpm(b, ["-U", str(path)])
    assert code == 1, out + err
    assert verdict[0] in err.splitlines(), out + err  # the same kind of error
    if kind not in LOGGED_OTHERWISE:
        assert err == ref.stderr  # libalpm's reason first ("missing package name in ...")
    assert snapshot(b.root) == snapshot(a.root)
    assert not any((b.dbpath / "local").glob("bad-*"))


@pytest.mark.parametrize("name, pkgver", [
    ("crlf\r", "1.0-1\r"),     # a .PKGINFO with CRLF lines: libalpm keeps the carriage return
    ("Bad/Name", "1.0-1"),
    (".dot", "1.0-1"),
    ("ok", "1.0-1-1"),
])
def test_pacman7_rules_where_pacman6_installs(tmp_path: Path, name: str, pkgver: str) -> None:
    """Names and versions pacman 7 refuses (issue 11 §2.11): pacman 6.0.2 still installs
    some of them (and a ``/`` in a name breaks its own database); alpm refuses them all,
    before anything is written, as invalid packages."""
    text = f"pkgname = {name}\npkgver = {pkgver}\n"
    path = write_archive([Entry(".PKGINFO", data=text.encode()),
                          Entry("usr/", "dir", mode=0o755), Entry("usr/odd", data=b"x\n")],
                         "py-pax", "zst", tmp_path / "odd-1.0-1-x86_64.pkg.tar.zst", tmp_path)
    a, b = twins(tmp_path)
    ref = a.pacman("-U", str(path))
    if name == "crlf\r":
        assert ref.returncode == 0, ref.stdout + ref.stderr  # pacman 6.0.2 takes it
    code, out, err = run_alpm(b, ["-U", str(path)])
    assert code == 1, out + err
    assert f"error: '{path}': invalid or corrupted package" in err.splitlines(), out + err
    assert snapshot(b.root)["db"] == {}
    assert snapshot(b.root)["fs"] == snapshot(PacmanRoot(tmp_path / "c").root)["fs"]


def test_file_list_is_the_archive_not_the_mtree(tmp_path: Path) -> None:
    """A .MTREE that disagrees with the payload: libalpm takes its file list from the
    .MTREE (a member it does not name is not extracted, a name without a member is
    recorded as owned, and could later be removed from under another owner); alpm
    lists, extracts and records the archive's members, so what it owns is what it wrote."""
    files = [Entry("usr/", "dir", mode=0o755), Entry("usr/shipped", data=b"x\n"),
             Entry("usr/unlisted", data=b"y\n")]
    named = [Entry("usr/", "dir", mode=0o755), Entry("usr/shipped", data=b"x\n"),
             Entry("usr/ghost", data=b"z\n")]
    meta = Entry(".PKGINFO", data=b"pkgname = m\npkgver = 1.0-1\n")
    path = write_archive([meta, Entry(".MTREE", data=mtree_data(named)), *files], "bsdtar-pax", "gz",
                         tmp_path / "m-1.0-1-any.pkg.tar.gz", tmp_path)
    a, b = twins(tmp_path)
    ref = a.pacman("-U", str(path))
    assert ref.returncode == 0, ref.stdout + ref.stderr
    assert "skipping extraction of usr/unlisted" in ref.stdout + ref.stderr
    code, out, err = run_alpm(b, ["-U", str(path)])
    assert code == 0, out + err
    theirs = (a.dbpath / "local/m-1.0-1/files").read_text().splitlines()
    mine = (b.dbpath / "local/m-1.0-1/files").read_text().splitlines()
    assert "usr/ghost" in theirs and "usr/unlisted" not in theirs
    assert "usr/ghost" not in mine and "usr/unlisted" in mine
    assert not (a.root / "usr/unlisted").exists() and (b.root / "usr/unlisted").is_file()
