"""Dependency parsing and satisfaction, checked against libalpm.so.13 through ctypes.

libalpm is driven directly: ``alpm_dep_from_string``/``alpm_dep_compute_string``
for parsing, and a throw-away local database plus ``alpm_find_satisfier`` (what
``pacman -T`` calls) for satisfaction.  Hand-written expectations follow
libalpm's deps.c, never our implementation.
"""

from __future__ import annotations

import ctypes
import random
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpmd.engine.depend import (
    Depend,
    DepMod,
    find_satisfier,
    satisfies,
    satisfies_literal,
)
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.package import Origin, Package

# --- libalpm through ctypes ---


class _CDepend(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("version", ctypes.c_char_p),
        ("desc", ctypes.c_char_p),
        ("name_hash", ctypes.c_ulong),
        ("mod", ctypes.c_int),
    ]


class _CList(ctypes.Structure):
    pass


_CList._fields_ = [
    ("data", ctypes.c_void_p),
    ("prev", ctypes.POINTER(_CList)),
    ("next", ctypes.POINTER(_CList)),
]

# alpm_depmod_t values (ALPM_DEP_MOD_ANY = 1, ...)
_C_MODS = {1: DepMod.ANY, 2: DepMod.EQ, 3: DepMod.GE, 4: DepMod.LE, 5: DepMod.GT, 6: DepMod.LT}


def _load() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL("libalpm.so.13")
    except OSError:
        return None
    lib.alpm_dep_from_string.restype = ctypes.POINTER(_CDepend)
    lib.alpm_dep_from_string.argtypes = [ctypes.c_char_p]
    lib.alpm_dep_compute_string.restype = ctypes.c_void_p
    lib.alpm_dep_compute_string.argtypes = [ctypes.POINTER(_CDepend)]
    lib.alpm_dep_free.argtypes = [ctypes.POINTER(_CDepend)]
    lib.alpm_initialize.restype = ctypes.c_void_p
    lib.alpm_initialize.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    lib.alpm_release.argtypes = [ctypes.c_void_p]
    lib.alpm_get_localdb.restype = ctypes.c_void_p
    lib.alpm_get_localdb.argtypes = [ctypes.c_void_p]
    lib.alpm_db_get_pkgcache.restype = ctypes.POINTER(_CList)
    lib.alpm_db_get_pkgcache.argtypes = [ctypes.c_void_p]
    lib.alpm_find_satisfier.restype = ctypes.c_void_p
    lib.alpm_find_satisfier.argtypes = [ctypes.POINTER(_CList), ctypes.c_char_p]
    lib.alpm_pkg_get_name.restype = ctypes.c_char_p
    lib.alpm_pkg_get_name.argtypes = [ctypes.c_void_p]
    return lib


LIB = _load()
_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]

needs_lib = pytest.mark.skipif(LIB is None, reason="libalpm.so.13 is not installed")


def c_parse(s: str) -> tuple[str, DepMod, str | None, str | None, str]:
    """libalpm's parse of ``s`` and its alpm_dep_compute_string of the result."""
    assert LIB is not None
    ptr = LIB.alpm_dep_from_string(s.encode())
    assert ptr
    try:
        d = ptr.contents
        text = LIB.alpm_dep_compute_string(ptr)
        try:
            computed = ctypes.string_at(text).decode()
        finally:
            _libc.free(text)

        def dec(b: bytes | None) -> str | None:
            return None if b is None else b.decode()

        return (d.name or b"").decode(), _C_MODS[d.mod], dec(d.version), dec(d.desc), computed
    finally:
        LIB.alpm_dep_free(ptr)


@dataclass
class Pkg:
    name: str
    version: str
    provides: list[str] = field(default_factory=list)


@contextmanager
def alpm_localdb(tmp: Path, pkgs: Sequence[Pkg]) -> Iterator[tuple[ctypes.c_void_p, list[str]]]:
    """A libalpm handle over a local database holding ``pkgs``; yields the pkgcache and its order."""
    assert LIB is not None
    local = tmp / "db" / "local"
    local.mkdir(parents=True)
    (local / "ALPM_DB_VERSION").write_text("9\n")
    for p in pkgs:
        entry = local / f"{p.name}-{p.version}"
        entry.mkdir()
        desc = f"%NAME%\n{p.name}\n\n%VERSION%\n{p.version}\n\n"
        if p.provides:
            desc += "%PROVIDES%\n" + "".join(f"{x}\n" for x in p.provides) + "\n"
        (entry / "desc").write_text(desc)
    err = ctypes.c_int()
    handle = LIB.alpm_initialize(str(tmp).encode(), str(tmp / "db").encode(), ctypes.byref(err))
    assert handle, f"alpm_initialize failed: {err.value}"
    try:
        cache = LIB.alpm_db_get_pkgcache(LIB.alpm_get_localdb(handle))
        order = []
        node = cache
        while node:
            order.append(LIB.alpm_pkg_get_name(node.contents.data).decode())
            node = node.contents.next
        assert sorted(order) == sorted(p.name for p in pkgs)
        yield cache, order
    finally:
        LIB.alpm_release(handle)


def c_find_satisfier(cache: ctypes.c_void_p, dep: str) -> str | None:
    assert LIB is not None
    pkg = LIB.alpm_find_satisfier(cache, dep.encode())
    return LIB.alpm_pkg_get_name(pkg).decode() if pkg else None


# --- parsing ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("foo", Depend("foo")),
        ("foo=1.0", Depend("foo", DepMod.EQ, "1.0")),
        ("foo>=1.0-2", Depend("foo", DepMod.GE, "1.0-2")),
        ("foo<=2:1.0", Depend("foo", DepMod.LE, "2:1.0")),
        ("foo>1", Depend("foo", DepMod.GT, "1")),
        ("foo<1", Depend("foo", DepMod.LT, "1")),
        ("foo: for bar", Depend("foo", desc="for bar")),
        ("foo>=1: a: b", Depend("foo", DepMod.GE, "1", "a: b")),
        ("foo: ", Depend("foo", desc="")),
        ("foo:", Depend("foo:")),
        ("foo>=", Depend("foo", DepMod.GE, "")),
        ("foo=", Depend("foo", DepMod.EQ, "")),
        ("foo<=: x", Depend("foo", DepMod.LE, "", "x")),
        ("foo>=1<2", Depend("foo>=1", DepMod.LT, "2")),
        ("foo=1>2", Depend("foo=1", DepMod.GT, "2")),
        ("foo<=1=2", Depend("foo", DepMod.LE, "1=2")),
        ("foo=>1", Depend("foo=", DepMod.GT, "1")),
        ("foo==1", Depend("foo", DepMod.EQ, "=1")),
        ("foo>=1: x<2", Depend("foo", DepMod.GE, "1", "x<2")),
        ("foo :x", Depend("foo :x")),
        ("lib32-foo.so=1-64", Depend("lib32-foo.so", DepMod.EQ, "1-64")),
        ("sh: optional: ", Depend("sh", desc="optional: ")),
    ],
)
def test_parse(text: str, expected: Depend) -> None:
    dep = Depend.parse(text)
    assert dep == expected
    assert str(dep) == text
    if LIB is not None:
        name, mod, version, desc, computed = c_parse(text)
        assert (dep.name, dep.mod, dep.version, dep.desc) == (name, mod, version, desc)
        assert str(dep) == computed


@pytest.mark.parametrize("text", ["", ">=1", "=1", "<2: x", ": desc", ": ", "a\0b", "\0"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(AlpmError) as info:
        Depend.parse(text)
    assert info.value.code is ErrorCode.WRONG_ARGS
    assert repr(text) in info.value.message


@pytest.mark.parametrize("value", [None, b"foo", 3])
def test_parse_refuses_non_text(value: object) -> None:
    with pytest.raises(AlpmError) as info:
        Depend.parse(value)  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.WRONG_ARGS


def test_depmod_ops() -> None:
    assert [m.op for m in DepMod] == ["", "=", ">=", "<=", ">", "<"]


@needs_lib
@pytest.mark.oracle
@settings(max_examples=400)
@given(st.text(alphabet="ab<>=: -1.", max_size=12) | st.text(max_size=16))
def test_parse_matches_libalpm(text: str) -> None:
    if "\0" in text:
        return
    name, mod, version, desc, computed = c_parse(text)
    if not name:
        with pytest.raises(AlpmError):
            Depend.parse(text)
        return
    dep = Depend.parse(text)
    assert (dep.name, dep.mod, dep.version, dep.desc) == (name, mod, version, desc)
    assert str(dep) == computed


@given(st.text())
def test_parse_arbitrary_text(text: str) -> None:
    try:
        dep = Depend.parse(text)
    except AlpmError as exc:
        assert exc.code is ErrorCode.WRONG_ARGS
        return
    assert dep.name
    assert str(dep) == text
    assert Depend.parse(str(dep)) == dep
    assert (dep.version is None) == (dep.mod is DepMod.ANY)


dep_names = st.from_regex(r"[a-z0-9@_+][a-z0-9@._+-]{0,20}", fullmatch=True)
dep_versions = st.from_regex(r"([0-9]+:)?[A-Za-z0-9._+~]{1,10}(-[0-9.]{1,4})?", fullmatch=True)


@st.composite
def depends(draw: st.DrawFn) -> Depend:
    name = draw(dep_names)
    mod = draw(st.sampled_from(DepMod))
    version = None if mod is DepMod.ANY else draw(dep_versions)
    desc = draw(st.none() | st.text().filter(lambda s: "\0" not in s))
    return Depend(name, mod, version, desc)


@given(depends())
def test_round_trip(dep: Depend) -> None:
    assert Depend.parse(str(dep)) == dep


def test_str_of_hand_built_depend() -> None:
    """alpm_dep_compute_string prints no version for ANY and only the operator without one."""
    assert str(Depend("foo", DepMod.ANY, "1.0")) == "foo"
    assert str(Depend("foo", DepMod.GE, None)) == "foo>="
    assert str(Depend("foo", DepMod.GE, None, "why")) == "foo>=: why"


def test_depend_is_frozen_and_hashable() -> None:
    dep = Depend.parse("foo>=1")
    with pytest.raises(AttributeError):
        dep.name = "bar"  # type: ignore[misc]
    assert {dep, Depend.parse("foo>=1")} == {dep}


# --- satisfaction: hand-written cases, each also asked of libalpm ---

SATISFACTION_CASES = [
    # (package name, version, provides, dependency, satisfied?)
    ("foo", "1.0-1", [], "foo", True),
    ("foo", "1.0-1", [], "bar", False),
    ("foo", "1.0-1", [], "foo=1.0", True),  # no pkgrel in the dep: any pkgrel matches
    ("foo", "1.0-1", [], "foo=1.0-1", True),
    ("foo", "1.0-1", [], "foo=1.0-2", False),
    ("foo", "1.0-1", [], "foo>=1.0-2", False),
    ("foo", "1.0-3", [], "foo>=1.0-2", True),
    ("foo", "1.0-3", [], "foo<1.0", False),
    ("foo", "1.0-3", [], "foo<=1.0", True),
    ("foo", "1.0-3", [], "foo>1.0", False),
    ("foo", "1.1-1", [], "foo>1.0", True),
    ("foo", "1:0.5-1", [], "foo>=2.0", True),  # the epoch wins
    ("foo", "1:0.5-1", [], "foo<1:0.6", True),
    ("foo", "0.5-1", [], "foo=0:0.5", True),
    ("foo", "1.0a-1", [], "foo>=1.0", False),
    ("foo", "1.0-1", [], "foo>=", True),  # empty version: anything is newer
    ("foo", "1.0-1", [], "foo=", False),
    ("foo", "1.0-1", [], "foo: with description", True),
    ("foo", "1.0-1", [], "foo<2: with description", True),
    # provisions
    ("bar", "5-1", ["foo"], "foo", True),
    ("bar", "5-1", ["foo"], "foo>=1", False),  # unversioned provision, versioned dep
    ("bar", "5-1", ["foo=2"], "foo>=1", True),
    ("bar", "5-1", ["foo=2"], "foo", True),
    ("bar", "5-1", ["foo=2"], "foo>2", False),
    ("bar", "5-1", ["foo=2"], "foo=2-1", True),  # provision without pkgrel
    ("bar", "5-1", ["foo=2-1"], "foo=2", True),
    ("bar", "5-1", ["foo=2-1"], "foo=2-2", False),
    ("bar", "5-1", ["foo>=2"], "foo>=1", False),  # only '=' provisions carry a version
    ("bar", "5-1", ["foo>=2"], "foo", True),
    ("bar", "5-1", ["foo<2"], "foo", True),
    ("bar", "5-1", ["foo=1:1"], "foo>5", True),
    ("bar", "5-1", ["foo=2: the reason"], "foo=2", True),
    ("bar", "5-1", ["foobar=2"], "foo", False),
    ("bar", "5-1", ["fo=2"], "foo", False),
    ("bar", "5-1", ["foo=1", "foo=3"], "foo>2", True),
    ("bar", "5-1", ["libfoo.so=1-64"], "libfoo.so=1-64", True),
    ("bar", "5-1", ["libfoo.so=1-64"], "libfoo.so=1-32", False),
    ("bar", "5-1", ["bar=9"], "bar>6", True),  # a provision can out-version the package
    ("bar", "5-1", ["foo="], "foo>=", True),
    ("bar", "5-1", ["foo="], "foo", True),
]


def _satisfied(name: str, version: str, provides: list[str], dep: str) -> bool:
    parsed = Depend.parse(dep)
    result = satisfies(name, version, provides, parsed)
    assert parsed.satisfied_by(Pkg(name, version, provides)) is result
    assert satisfies(name, version, [Depend.parse(p) for p in provides], parsed) is result
    return result


@pytest.mark.parametrize(("name", "version", "provides", "dep", "expected"), SATISFACTION_CASES)
def test_satisfaction(
    name: str, version: str, provides: list[str], dep: str, expected: bool, tmp_path: Path
) -> None:
    assert _satisfied(name, version, provides, dep) is expected
    if LIB is not None:
        with alpm_localdb(tmp_path, [Pkg(name, version, provides)]) as (cache, _order):
            assert (c_find_satisfier(cache, dep) == name) is expected


def test_satisfies_literal_ignores_provisions() -> None:
    assert satisfies_literal("foo", "1.0-1", Depend.parse("foo<2"))
    assert not satisfies_literal("foo", "1.0-1", Depend.parse("foo>2"))
    assert not satisfies_literal("bar", "1.0-1", Depend.parse("foo"))


def test_versionless_hand_built_depend() -> None:
    """A versioned mod with no version acts as libalpm's NULL: older than any version."""
    assert satisfies("foo", "1", [], Depend("foo", DepMod.GT, None))
    assert not satisfies("foo", "1", [], Depend("foo", DepMod.EQ, None))
    assert satisfies("bar", "1", ["foo=1"], Depend("foo", DepMod.GE, None))


class _LiteralOnly:
    name = "foo"
    version = "1.0-1"

    @property
    def provides(self) -> Iterable[str]:
        raise AssertionError("provides read for a literal match")


def test_literal_match_does_not_load_provides() -> None:
    assert Depend.parse("foo>=1").satisfied_by(_LiteralOnly())


def test_with_package_model() -> None:
    meta = PkgMeta("bar", "2.0-1", provides=["foo=1.5", "libbar.so=2-64"])
    pkg = Package("bar", "2.0-1", Origin.LOCALDB, meta=meta)
    assert Depend.parse("foo>1").satisfied_by(pkg)
    assert not Depend.parse("foo>2").satisfied_by(pkg)
    assert find_satisfier([pkg], "libbar.so=2-64") is pkg


# --- find_satisfier ---


def test_find_satisfier_is_list_order() -> None:
    """alpm_find_satisfier takes the first package that satisfies, by name or provision."""
    provider = Pkg("aaa", "1-1", ["foo=1"])
    literal = Pkg("foo", "1-1")
    assert find_satisfier([provider, literal], "foo") is provider
    assert find_satisfier([literal, provider], "foo") is literal
    assert find_satisfier([provider, literal], Depend.parse("foo>=1")) is provider
    assert find_satisfier([provider, literal], "foo>1") is None
    assert find_satisfier([], "foo") is None


def test_find_satisfier_prefer_literal() -> None:
    provider = Pkg("aaa", "1-1", ["foo=2"])
    literal = Pkg("foo", "1-1")
    other = Pkg("zzz", "1-1", ["foo=3"])
    pkgs = [provider, literal, other]
    assert find_satisfier(pkgs, "foo", prefer_literal=True) is literal
    # the literal package does not fit: fall back to the first provider
    assert find_satisfier(pkgs, "foo>=2", prefer_literal=True) is provider
    assert find_satisfier(pkgs, "foo>2", prefer_literal=True) is other
    # a same-named package satisfying through its own provision is not a provider here
    self_provider = Pkg("foo", "1-1", ["foo=5"])
    assert find_satisfier([self_provider], "foo>4", prefer_literal=True) is None
    assert find_satisfier([self_provider], "foo>4") is self_provider
    assert find_satisfier(iter(pkgs), "foo>2", prefer_literal=True) is other


def test_find_satisfier_refuses_bad_text() -> None:
    with pytest.raises(AlpmError):
        find_satisfier([Pkg("foo", "1-1")], "")


# --- random databases against libalpm's alpm_find_satisfier ---

_NAMES = ["foo", "bar", "baz", "qux", "libfoo.so", "sh", "foo-git", "python", "python3", "fo"]
_VERSIONS = ["1.0", "1.0.1", "1.0a", "1:0.9", "0:1.0", "2.0", "1.0.0", "10", "1.0~rc1", "2"]
_RELS = ["1", "2", "1.1", "10"]
_OPS = ["", "=", ">=", "<=", ">", "<"]


def _version(rnd: random.Random, rel: bool) -> str:
    v = rnd.choice(_VERSIONS)
    if rel or rnd.random() < 0.4:
        v += "-" + rnd.choice(_RELS)
    return v


def _depstring(rnd: random.Random) -> str:
    op = rnd.choice(_OPS)
    text = rnd.choice(_NAMES) + op
    if op:
        text += "" if rnd.random() < 0.03 else _version(rnd, rel=False)
    if rnd.random() < 0.1:
        text += ": " + rnd.choice(["why", "a: b", ""])
    return text


def _random_db(rnd: random.Random) -> list[Pkg]:
    names = rnd.sample(_NAMES + [f"p{i}" for i in range(12)], rnd.randint(3, 14))
    return [
        Pkg(n, _version(rnd, rel=True), [_depstring(rnd) for _ in range(rnd.randint(0, 3))])
        for n in names
    ]


@needs_lib
@pytest.mark.oracle
@pytest.mark.parametrize("seed", range(12))
def test_find_satisfier_against_libalpm(seed: int, tmp_path: Path) -> None:
    rnd = random.Random(seed)
    pkgs = _random_db(rnd)
    queries = [_depstring(rnd) for _ in range(400)]
    by_name = {p.name: p for p in pkgs}
    with alpm_localdb(tmp_path, pkgs) as (cache, order):
        ordered = [by_name[n] for n in order]
        bad = []
        hits = 0
        for q in queries:
            want = c_find_satisfier(cache, q)
            got = find_satisfier(ordered, q)
            hits += want is not None
            if (got.name if got else None) != want:
                bad.append(f"{q!r}: ours {got}, libalpm {want}")
    assert not bad, f"db {ordered}\n" + "\n".join(bad[:20])
    assert 0 < hits < len(queries)
