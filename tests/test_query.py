"""The engine's query API: POSIX regex semantics, search, satisfiers, reverse dependencies.

Answers are checked against brute force over the same packages (the libalpm
definitions), and the warm-engine speed on a generated 15,000-package
repository is measured.
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest

from alpmd.engine.db.local import LocalDatabase
from alpmd.engine.db.sync import SyncDatabase
from alpmd.engine.depend import Depend
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import write_sync_desc
from alpmd.engine.package import Package
from alpmd.engine.query import find_satisfier, missing_deps, search, search_rows, what_provides
from alpmd.engine.regex import PosixRegex, c_compile, compile_posix, is_literal
from alpmd.testing.repogen import generate_repo, make_local_db

# -- regular expressions -------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["a(", "[", "[[:nope:]]", "x{2,1}", "(", "a\\"])
def test_invalid_regex_is_refused_like_the_c_library(pattern: str) -> None:
    with pytest.raises(AlpmError) as err:
        compile_posix(pattern)
    assert err.value.code is ErrorCode.INVALID_REGEX


PATTERNS = ["c++", "^lib", "so$", "[[:digit:]]+", "a|b", "x{2}", "^(py|perl)-", "\\<gtk",
            "[^a-z]", "ZLIB", "lib.*2$", "\\.so", "a**", "[]x]", "q?", "\\d"]
TEXTS = ["c++ compiler", "libfoo2", "libbar.so", "python-x", "perl-y", "GTK3 toolkit",
         "xx", "a", "ZLIB", "zlib", "123", "d", "]", "", "foo\\dbar"]


def _c_only(pattern: str) -> PosixRegex:
    """``pattern`` matched by the C library alone (regcomp and regexec)."""
    c_only = PosixRegex(pattern)
    c_only.py = None
    if c_only._c is None:  # a plain word is matched in Python only; compare it with C too
        assert is_literal(pattern)
        c_only._c = c_compile(pattern)
    return c_only


@pytest.mark.parametrize("pattern", PATTERNS)
def test_python_translation_agrees_with_the_c_library(pattern: str) -> None:
    reg = compile_posix(pattern)
    c_only = _c_only(pattern)
    for text in TEXTS:
        assert reg.search(text) == c_only.search(text), (pattern, text)


def test_matching_lines_scans_a_blob() -> None:
    lines = ["alpha", "beta", "gamma", "alphabet"]
    blob = "\n".join(lines)
    starts = [0, 6, 11, 17]
    assert list(compile_posix("^a").matching_lines(blob, starts)) == [0, 3]
    assert list(compile_posix("a$").matching_lines(blob, starts)) == [0, 1, 2]
    assert list(compile_posix("x*").matching_lines(blob, starts)) == [0, 1, 2, 3]
    assert list(compile_posix("[^a]").matching_lines(blob, starts)) == [0, 1, 2, 3]


# -- a generated repository ----------------------------------------------------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> SyncDatabase:
    metas = generate_repo(seed=7, count=15000)
    path = tmp_path_factory.mktemp("bigrepo") / "extra.db"
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for meta in metas:
            data = write_sync_desc(meta).encode()
            info = tarfile.TarInfo(f"{meta.name}-{meta.version}/desc")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    db = SyncDatabase("extra", str(path))
    assert len(db.packages) == 15000
    return db


def _brute_search(pkgs: list[Package], pattern: str) -> list[Package]:
    reg = compile_posix(pattern)
    out = []
    for p in pkgs:
        if (reg.search(p.name) or pattern in p.name or (p.desc and reg.search(p.desc))
                or any(reg.search(Depend.parse(x).name) for x in p.provides)
                or any(reg.search(g) for g in p.groups)):
            out.append(p)
    return out


@pytest.mark.parametrize("pattern", ["python", "^lib.*5$", "qt", "Library", "[[:digit:]]{3}"])
def test_search_matches_brute_force(big: SyncDatabase, pattern: str) -> None:
    assert search(big, [pattern]) == _brute_search(big.packages, pattern)


@pytest.mark.parametrize("patterns", [["lib"], ["LIB", "a"], ["^lib"], ["[[:digit:]]{2}"], [],
                                      ["zzzzzz"]])
def test_installed_search_rows_are_what_search_finds(tmp_path: Path,
                                                     patterns: list[str]) -> None:
    """-Qs prints rows read by the search itself: the same packages, in the same order,
    with the same version, description and groups as the packages search returns, on
    the first search (a scan of the stored entries) and on a later one (the index)."""
    metas = generate_repo(seed=5, count=600)
    make_local_db(tmp_path / "db", metas, installed=300, outdated=30, seed=5)
    dbpath = str(tmp_path / "db")
    pkgs = search(LocalDatabase(dbpath), patterns)
    brute = LocalDatabase(dbpath).packages
    want = [(p.name, p.version, p.desc, p.groups) for p in pkgs]
    if patterns:
        assert [p.name for p in pkgs] == [
            p.name for p in brute if all(p in _brute_search(brute, pat) for pat in patterns)]
    assert bool(want) == (patterns != ["zzzzzz"])
    db = LocalDatabase(dbpath)
    assert search_rows(db, patterns) == want  # first search: scanned
    assert search_rows(db, patterns) == want  # then from the index
    assert search(db, patterns) == search(db, patterns)


def test_search_terms_are_anded(big: SyncDatabase) -> None:
    both = search(big, ["python", "lib"])
    lib = {id(p) for p in search(big, ["lib"])}
    assert both == [p for p in search(big, ["python"]) if id(p) in lib]
    assert both


def test_satisfier_and_providers_match_brute_force(big: SyncDatabase) -> None:
    pkgs = big.packages
    names = sorted({Depend.parse(d).name for p in pkgs[:400] for d in p.depends})
    for name in names[::max(1, len(names) // 25)]:
        dep = Depend.parse(name)
        want = next((p for p in pkgs if dep.satisfied_by(p)), None)
        assert find_satisfier(big, name) is want
        assert what_provides([big], name) == [p for p in pkgs if dep.satisfied_by(p)]


def test_generated_repository_is_consistent(big: SyncDatabase) -> None:
    assert missing_deps(big.packages) == []


def test_warm_queries_are_fast(big: SyncDatabase) -> None:
    search(big, ["warmup"])
    find_satisfier(big, "glibc")
    best_search = best_lookup = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        found = search(big, ["python"])
        t1 = time.perf_counter()
        find_satisfier(big, "sh")
        big.get("bash")
        t2 = time.perf_counter()
        best_search = min(best_search, t1 - t0)
        best_lookup = min(best_lookup, t2 - t1)
    assert found
    print(f"warm search over 15,000 packages: {best_search * 1000:.2f} ms; "
          f"lookup: {best_lookup * 1e6:.0f} us")
    assert best_search < 0.05
    assert best_lookup < 0.005


def test_missing_file_is_empty(tmp_path: Path) -> None:
    db = SyncDatabase("none", str(tmp_path / "none.db"))
    assert search(db, ["x"]) == []


# -- bounded searches (a daemon serving anyone) --------------------------------------------

GNU_PATTERNS = [*(p for p in PATTERNS if p != "\\d"), "\\wlib", "\\W", "\\bso\\b", "\\<gtk\\>",
                "\\s", "(x)\\1", "a+?", "x{2}*", "(ab)**", "^\\`c", "zlib\\'"]


@pytest.mark.parametrize("pattern", GNU_PATTERNS)
def test_bounded_matcher_agrees_with_the_c_library(pattern: str) -> None:
    bounded = compile_posix(pattern, bounded=True)
    c_only = _c_only(pattern)
    deadline = time.monotonic() + 30
    for text in TEXTS:
        assert bounded.search(text, deadline) == c_only.search(text), (pattern, text)


def _long_desc_db(tmp_path: Path, descs: list[str]) -> SyncDatabase:
    import dataclasses

    metas = generate_repo(seed=3, count=len(descs))
    path = tmp_path / "evil.db"
    with tarfile.open(path, "w:gz") as tar:
        for meta, desc in zip(metas, descs, strict=True):
            data = write_sync_desc(dataclasses.replace(meta, desc=desc)).encode()
            info = tarfile.TarInfo(f"{meta.name}-{meta.version}/desc")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return SyncDatabase("evil", str(path))


@pytest.mark.timeout(120)
def test_catastrophic_pattern_ends_with_a_named_error(tmp_path: Path) -> None:
    """``(a|aa)+!`` backtracks exponentially on a line of a's: the bounded search stops
    at its deadline with PATTERN_TOO_COSTLY instead of running for ages."""
    db = _long_desc_db(tmp_path, ["a" * 200, "plain words"])
    with pytest.raises(AlpmError) as err:
        search(db, ["(a|aa)+!"], deadline=time.monotonic() + 2)
    assert err.value.code is ErrorCode.PATTERN_TOO_COSTLY
    # the pattern: answered (nothing matches), or refused by name; never a hang
    try:
        assert search(db, ["((.+)+)+!"], deadline=time.monotonic() + 2) == []
    except AlpmError as exc:
        assert exc.code is ErrorCode.PATTERN_TOO_COSTLY
    # an ordinary search on the same database still works, bounded or not
    assert [p.desc for p in search(db, ["words"], deadline=time.monotonic() + 30)] == \
        ["plain words"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pattern", ["(.{1,1000}){1,1000}", "((a{1,200}){1,200}){1,200}",
                                     "x" * 5000, "\\d"])
def test_patterns_too_large_to_compile_are_refused_before_the_c_library(pattern: str) -> None:
    with pytest.raises(AlpmError) as err:
        compile_posix(pattern, bounded=True)
    assert err.value.code is ErrorCode.PATTERN_TOO_COSTLY


def test_a_passed_deadline_is_a_named_error(tmp_path: Path) -> None:
    db = _long_desc_db(tmp_path, ["alpha"])
    with pytest.raises(AlpmError) as err:
        search(db, ["alp"], deadline=time.monotonic() - 1)
    assert err.value.code is ErrorCode.PATTERN_TOO_COSTLY


@pytest.mark.parametrize("pattern", ["python", "^lib.*5$", "qt", "Library", "[[:digit:]]{3}",
                                     "\\<lib", "x*"])
def test_bounded_search_finds_what_the_unbounded_one_finds(big: SyncDatabase,
                                                          pattern: str) -> None:
    assert search(big, [pattern], deadline=time.monotonic() + 60) == search(big, [pattern])
