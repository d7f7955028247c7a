"""vercmp against pacman itself: Debian's /usr/bin/vercmp and libalpm.so.13.

Expected orderings come from pacman (its binary, its library, or the cases of
pacman's own test/util/vercmptest.sh), never from our implementation.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import os
import random
import subprocess
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpmd.engine import version as version_mod
from alpmd.engine.version import split_evr, vercmp

VERCMP_BIN = "/usr/bin/vercmp"
HAVE_BIN = os.access(VERCMP_BIN, os.X_OK)


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


def _c_bytes(s: str) -> bytes:
    """What a C program receives for ``s`` (as Python itself passes argv)."""
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass")


def _load_libalpm_vercmp() -> Callable[[bytes, bytes], int] | None:
    for name in ("libalpm.so.13", ctypes.util.find_library("alpm")):
        if not name:
            continue
        try:
            fn = ctypes.CDLL(name).alpm_pkg_vercmp
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        fn.restype = ctypes.c_int
        return lambda a, b: _sign(fn(a, b))  # noqa: B023 - returned at once
    return None


LIBALPM_VERCMP = _load_libalpm_vercmp()

needs_bin = pytest.mark.skipif(not HAVE_BIN, reason="Debian's /usr/bin/vercmp is not installed")
needs_lib = pytest.mark.skipif(LIBALPM_VERCMP is None, reason="libalpm.so.13 is not installed")


def run_vercmp_bin(a: str, b: str) -> int:
    """pacman's own answer, from the vercmp program (which links version.c statically)."""
    assert a not in ("-h", "--help"), "vercmp would print its usage instead"
    out = subprocess.run(
        [VERCMP_BIN.encode(), _c_bytes(a), _c_bytes(b)],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    return _sign(int(out))


def run_libalpm(a: str, b: str) -> int:
    assert LIBALPM_VERCMP is not None
    return LIBALPM_VERCMP(_c_bytes(a), _c_bytes(b))


# --- pacman's own test suite (test/util/vercmptest.sh): expected values are pacman's ---

UPSTREAM_CASES = [
    ("1.5.0", "1.5.0", 0),
    ("1.5.1", "1.5.0", 1),
    ("1.5.1", "1.5", 1),
    ("1.5.0-1", "1.5.0-1", 0),
    ("1.5.0-1", "1.5.0-2", -1),
    ("1.5.0-1", "1.5.1-1", -1),
    ("1.5.0-2", "1.5.1-1", -1),
    ("1.5-1", "1.5.1-1", -1),
    ("1.5-2", "1.5.1-1", -1),
    ("1.5-2", "1.5.1-2", -1),
    ("1.5", "1.5-1", 0),
    ("1.5-1", "1.5", 0),
    ("1.1-1", "1.1", 0),
    ("1.0-1", "1.1", -1),
    ("1.1-1", "1.0", 1),
    ("1.5b-1", "1.5-1", -1),
    ("1.5b", "1.5", -1),
    ("1.5b-1", "1.5", -1),
    ("1.5b", "1.5.1", -1),
    ("1.0a", "1.0alpha", -1),
    ("1.0alpha", "1.0b", -1),
    ("1.0b", "1.0beta", -1),
    ("1.0beta", "1.0rc", -1),
    ("1.0rc", "1.0", -1),
    ("1.5.a", "1.5", 1),
    ("1.5.b", "1.5.a", 1),
    ("1.5.1", "1.5.b", 1),
    ("1.5.b-1", "1.5.b", 0),
    ("1.5-1", "1.5.b", -1),
    # epochs (from later versions of the same script)
    ("0:1.0", "0:1.0", 0),
    ("0:1.0", "0:1.1", -1),
    ("1:1.0", "0:1.0", 1),
    ("1:1.0", "0:1.1", 1),
    ("1:1.0", "2:1.1", -1),
    ("0:1.0", "1.0", 0),
    ("0:1.0", "1.1", -1),
    ("0:1.1", "1.0", 1),
    ("1:1.0", "1.0", 1),
    ("1:1.0", "1.1", 1),
    ("1:1.1", "1.1", 1),
]


@pytest.mark.parametrize(("a", "b", "expected"), UPSTREAM_CASES)
def test_upstream_cases(a: str, b: str, expected: int) -> None:
    assert vercmp(a, b) == expected
    assert vercmp(b, a) == -expected


# --- hand-picked edge cases: the answer is whatever pacman says ---

EDGE_CASES = [
    # epochs
    ("1:1.0", "2.0"),
    ("01:1.0", "1:1.0"),
    (":1.0", "1.0"),
    (":1.0", "0:1.0"),
    ("1:", "1:0"),
    ("1:", ""),
    ("a:1.0", "1.0"),
    ("1:2:3", "1:2"),
    ("10:1", "9:2"),
    ("1.0:2", "1.0"),
    # trailing alpha / dotted alpha
    ("1.0a", "1.0"),
    ("1.0.a", "1.0"),
    ("1.0a", "1.0.a"),
    ("1.0", "1.0."),
    ("1.0.", "1.0a"),
    ("1.0", "1.0.0"),
    ("1.0_", "1.0"),
    ("1a", "1"),
    ("a", "1"),
    ("a", "b"),
    ("A", "a"),
    ("1.0RC1", "1.0rc1"),
    # pkgrel handling
    ("1.0", "1.0-1"),
    ("1.0-1", "1.0-2"),
    ("1.0-2", "1.0"),
    ("1.0-1.1", "1.0-1"),
    ("1.0-", "1.0"),
    ("1.0-", "1.0-1"),
    ("1-2-3", "1-2"),
    ("1-2-3", "1.2-3"),
    ("-1", "1"),
    ("-", ""),
    # leading zeros and long numbers
    ("1.01", "1.1"),
    ("1.001", "1.01"),
    ("1.0010", "1.01"),
    ("00", "0"),
    ("1.000", "1.0"),
    ("12345678901234567890123", "12345678901234567890124"),
    ("99999999999999999999", "100000000000000000000"),
    # separators: kind never matters, length does
    ("1..0", "1.0"),
    ("1..0", "1.1"),
    ("1._0", "1.._0"),
    ("1_0", "1.0"),
    ("1+0", "1.0"),
    ("1~0", "1.0"),
    ("1.0~rc1", "1.0"),
    ("1.0~rc1", "1.0rc1"),
    ("1.0+git1", "1.0"),
    ("1.0+1", "1.0.1"),
    ("1.0 1", "1.0.1"),
    ("...", ""),
    ("..", "."),
    (".1", "1"),
    ("1.", "1"),
    # empty strings
    ("", ""),
    ("", "0"),
    ("", "a"),
    ("", "1"),
    ("", ":"),
    ("", "-1"),
    # non-ASCII: separators as many bytes long as their UTF-8 form
    ("1é0", "1..0"),
    ("1é0", "1.0"),
    ("1.0é", "1.0"),
    ("1.0ä", "1.0a"),
    ("日本", ""),
    ("1ß", "1.1"),
    ("1.0\u00a0", "1.0"),
    ("١٢٣", "123"),
    # realistic
    ("2.38.1-1", "2.38-2"),
    ("r1234.gabcdef0-1", "r1235.g0000000-1"),
    ("20231201", "2023.12.01"),
    ("1.2.3.r4.g5", "1.2.3"),
    ("5.15.arch1-1", "5.15.1.arch1-1"),
    ("1:2.3.4-5", "1:2.3.4-10"),
]


@needs_bin
@pytest.mark.oracle
@pytest.mark.parametrize(("a", "b"), EDGE_CASES)
def test_edge_cases_against_vercmp_binary(a: str, b: str) -> None:
    assert vercmp(a, b) == run_vercmp_bin(a, b)
    assert vercmp(b, a) == run_vercmp_bin(b, a)


@needs_lib
@pytest.mark.oracle
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1\x002", "1\x003"),
        ("1.0\x00", "1.0"),
        ("\x00", ""),
        ("1.0-\x001", "1.0-2"),
        ("\ud800", ""),
        ("1\udcff0", "1.0"),
        ("1\udcff0", "1..0"),
    ],
)
def test_c_string_corners_against_libalpm(a: str, b: str) -> None:
    """NUL ends the string and lone surrogates count as their encoded bytes, as in C."""
    assert vercmp(a, b) == run_libalpm(a, b)
    assert vercmp(b, a) == run_libalpm(b, a)


# --- split_evr: libalpm's parseEVR rules ---


@pytest.mark.parametrize(
    ("v", "expected"),
    [
        ("1.0", ("0", "1.0", None)),
        ("1.0-1", ("0", "1.0", "1")),
        ("2:1.0-1", ("2", "1.0", "1")),
        ("02:1.0", ("02", "1.0", None)),
        (":1.0", ("0", "1.0", None)),
        ("1:", ("1", "", None)),
        ("a:1.0", ("0", "a:1.0", None)),
        ("1:2:3", ("1", "2:3", None)),
        ("1-2-3", ("0", "1-2", "3")),
        ("1:2-3-4", ("1", "2-3", "4")),
        ("1.0-", ("0", "1.0", "")),
        ("-", ("0", "", "")),
        ("", ("0", "", None)),
        ("1-2:3", ("0", "1", "2:3")),
        ("١:2", ("0", "١:2", None)),
    ],
)
def test_split_evr(v: str, expected: tuple[str, str, str | None]) -> None:
    assert split_evr(v) == expected


@given(st.text(alphabet="0123456789abc._+~ é", max_size=12))
def test_split_evr_plain_pkgver(v: str) -> None:
    assert split_evr(v) == ("0", v, None)


# --- properties ---

version_text = st.text(alphabet="0123456789abzAZ.-:_+~é ", max_size=14)
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=20)


@given(any_text | version_text)
def test_reflexive(a: str) -> None:
    assert vercmp(a, a) == 0


@given(any_text | version_text, any_text | version_text)
def test_antisymmetric_and_total(a: str, b: str) -> None:
    r = vercmp(a, b)
    assert r in (-1, 0, 1)
    assert vercmp(b, a) == -r


@given(version_text, version_text)
def test_pkgrel_ignored_when_one_side_lacks_it(a: str, b: str) -> None:
    if "-" in a or "-" in b:
        return
    assert vercmp(a + "-1", b) == vercmp(a, b) == vercmp(a, b + "-7")


@needs_lib
@pytest.mark.oracle
@settings(max_examples=500)
@given(version_text | any_text, version_text | any_text)
def test_hypothesis_against_libalpm(a: str, b: str) -> None:
    assert vercmp(a, b) == run_libalpm(a, b)


def test_cache_is_bounded() -> None:
    info = version_mod._vercmp_cached.cache_info()
    assert info.maxsize is not None and info.maxsize <= 1 << 16


# --- the big differential run ---

_WORDS = ["a", "b", "c", "alpha", "beta", "rc", "pre", "git", "svn", "r", "p", "Z", "RC", "dev"]
_SEPS = [".", ".", ".", ".", "_", "+", "~", "", "..", "-", "é", ":", " ", ".."]


def _segment(rnd: random.Random) -> str:
    r = rnd.random()
    if r < 0.45:
        return str(rnd.randint(0, 20))
    if r < 0.55:
        return "0" * rnd.randint(1, 3) + str(rnd.randint(0, 99))
    if r < 0.60:
        return str(rnd.randint(0, 10**25))
    if r < 0.80:
        return rnd.choice(_WORDS)
    if r < 0.90:
        return rnd.choice(_WORDS) + str(rnd.randint(0, 12))
    if r < 0.95:
        return str(rnd.randint(0, 9)) + rnd.choice(_WORDS)
    return f"r{rnd.randint(1, 3000)}.g{rnd.getrandbits(28):07x}"


def gen_version(rnd: random.Random) -> str:
    """A realistic or deliberately odd version string."""
    if rnd.random() < 0.08:
        return "".join(rnd.choice("0123456789ab.-:_+~é0") for _ in range(rnd.randint(0, 9)))
    text = ""
    r = rnd.random()
    if r < 0.15:
        text = f"{rnd.randint(0, 3)}:"
    elif r < 0.19:
        text = rnd.choice(["", "0", "00", "01", "10", "a"]) + ":"
    text += _segment(rnd)
    for _ in range(rnd.randint(0, 4)):
        text += rnd.choice(_SEPS) + _segment(rnd)
    r = rnd.random()
    if r < 0.55:
        text += f"-{rnd.randint(1, 12)}"
    elif r < 0.65:
        text += f"-{rnd.randint(0, 3)}.{rnd.randint(0, 3)}"
    elif r < 0.68:
        text += rnd.choice(["-", "-a", "-1a", "-01", "-1-1"])
    return text


def mutate(rnd: random.Random, v: str) -> str:
    """A close neighbour of ``v``: what version bumps and typos look like."""
    for _ in range(rnd.randint(1, 2)):
        r = rnd.random()
        pos = rnd.randint(0, len(v))
        if r < 0.25 and v:
            i = rnd.randrange(len(v))
            if v[i].isdigit():
                v = v[:i] + str((int(v[i]) + rnd.choice((1, 9))) % 10) + v[i + 1 :]
            else:
                v = v[:i] + rnd.choice("0a.Z_-") + v[i + 1 :]
        elif r < 0.45:
            v = v[:pos] + rnd.choice("0123456789abz.._-:~+é") + v[pos:]
        elif r < 0.6 and v:
            i = rnd.randrange(len(v))
            v = v[:i] + v[i + 1 :]
        elif r < 0.7:
            v += rnd.choice([".0", "a", ".a", "-1", "-2", "rc1", ".", "0", "1"])
        elif r < 0.8:
            v = rnd.choice(["1:", "0:", ":", "2:"]) + v
        elif r < 0.9:
            v = v.rsplit("-", 1)[0] if "-" in v else v + "-1"
        else:
            v = v.replace(".", rnd.choice(["_", "..", "", "+"]), 1)
    return v


def gen_pairs(seed: int, n: int) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    pairs = []
    for _ in range(n):
        a = gen_version(rnd)
        b = gen_version(rnd) if rnd.random() < 0.35 else mutate(rnd, a)
        if rnd.random() < 0.5:
            a, b = b, a
        pairs.append((a, b))
    return pairs


def _diff(pairs: list[tuple[str, str]], oracle: Callable[[str, str], int]) -> list[str]:
    bad = []
    for a, b in pairs:
        want = oracle(a, b)
        got = version_mod._vercmp_cached.__wrapped__(a, b) if a != b else vercmp(a, b)
        if got != want:
            bad.append(f"vercmp({a!r}, {b!r}) = {got}, pacman says {want}")
    return bad


def test_generator_is_varied() -> None:
    """The differential run is only as good as its pairs: make sure they cover the cases."""
    pairs = gen_pairs(12345, 5000)
    flat = [v for p in pairs for v in p]
    assert len(set(flat)) > 4000
    assert sum(":" in v for v in flat) > 500
    assert sum("-" in v for v in flat) > 3000
    assert sum("é" in v for v in flat) > 100
    assert sum(v == "" for v in flat) > 5
    results = [vercmp(a, b) for a, b in pairs]
    assert min(results.count(-1), results.count(0), results.count(1)) > 300


@needs_lib
@pytest.mark.oracle
def test_differential_small_against_libalpm() -> None:
    bad = _diff(gen_pairs(7, 5000), run_libalpm)
    assert not bad, "\n".join(bad[:20])


@pytest.mark.slow
@pytest.mark.oracle
def test_differential_100k_against_pacman() -> None:
    """100,000 generated pairs, all compared with libalpm's alpm_pkg_vercmp.

    Spawning the vercmp program costs ~1.1 ms a pair even with 8 workers on
    this 2-core machine (~110 s for 100k), so the full set goes through
    ctypes into libalpm.so.13, the library whose version.c the program links,
    and a spread-out 3,000-pair subset goes through the program itself.
    """
    if not HAVE_BIN:
        pytest.skip("Debian's /usr/bin/vercmp is not installed")
    if LIBALPM_VERCMP is None:
        pytest.skip("libalpm.so.13 is not installed")
    pairs = gen_pairs(20240601, 100_000)
    assert len(pairs) == 100_000
    t0 = time.perf_counter()
    bad = _diff(pairs, run_libalpm)
    t1 = time.perf_counter()
    assert not bad, f"{len(bad)} differences:\n" + "\n".join(bad[:20])

    subset = [p for p in pairs[::33] if p[0] not in ("-h", "--help")][:3000]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        want = list(pool.map(lambda p: run_vercmp_bin(*p), subset))
    t2 = time.perf_counter()
    bad = [
        f"vercmp({a!r}, {b!r}) = {vercmp(a, b)}, /usr/bin/vercmp says {w}"
        for (a, b), w in zip(subset, want, strict=True)
        if vercmp(a, b) != w
    ]
    assert not bad, f"{len(bad)} differences:\n" + "\n".join(bad[:20])
    print(f"100k via libalpm: {t1 - t0:.2f}s; {len(subset)} via /usr/bin/vercmp: {t2 - t1:.2f}s")
