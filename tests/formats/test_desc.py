"""The desc format: local (alpm-db v9) and sync (repo-add) entries, against pacman and repo-add."""

from __future__ import annotations

import dataclasses
import random
import tarfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import (
    PkgMeta,
    Reason,
    metadata_problem,
    parse_local_desc,
    parse_sync_desc,
    repo_add_normalize,
    repo_add_value,
    write_local_desc,
    write_sync_desc,
)
from alpmd.engine.formats.pkginfo import parse_pkginfo

from . import build_package, digests, makepkg_package, member, need, pacman_install, repo_add, run

ARCH_SYNC = Path(__file__).resolve().parents[1] / "data" / "arch-sync-2022"

LOCAL = """\
%NAME%
foo

%VERSION%
1:2.0-1

%BASE%
foo-base

%DESC%
The foo  tool\t

%URL%
https://foo.example

%ARCH%
x86_64

%BUILDDATE%
1700000000

%INSTALLDATE%
1700000100

%PACKAGER%
Someone <s@example.org>

%SIZE%
12345

%REASON%
1

%GROUPS%
g1
g2

%LICENSE%
GPL

%VALIDATION%
sha256
pgp

%REPLACES%
oldfoo

%DEPENDS%
glibc>=2.30
bar: not an optdep

%OPTDEPENDS%
baz: for the baz feature

%CONFLICTS%
foo-git

%PROVIDES%
libfoo.so=1-64

%XDATA%
pkgtype=pkg

"""


def invalid(code: ErrorCode = ErrorCode.DB_INVALID) -> pytest.RaisesExc[AlpmError]:
    return pytest.raises(AlpmError, check=lambda e: e.code == code)


# -- hand-written cases ---------------------------------------------------------------


def test_local_desc_round_trip_and_fields() -> None:
    meta = parse_local_desc(LOCAL)
    assert meta.name == "foo" and meta.version == "1:2.0-1" and meta.base == "foo-base"
    assert meta.desc == "The foo  tool\t"
    assert meta.builddate == 1700000000 and meta.installdate == 1700000100
    assert meta.isize == 12345 and meta.csize is None
    assert meta.reason is Reason.DEPEND
    assert meta.validation == ["sha256", "pgp"]
    assert meta.depends == ["glibc>=2.30", "bar: not an optdep"]
    assert meta.xdata == ["pkgtype=pkg"]
    assert write_local_desc(meta) == LOCAL


def test_local_desc_empty_strings_are_kept() -> None:
    # pacman writes an empty pkgdesc/url as a section with an empty line.
    text = "%NAME%\nx\n\n%VERSION%\n1-1\n\n%DESC%\n\n\n%URL%\n\n\n%ARCH%\nany\n\n"
    meta = parse_local_desc(text)
    assert meta.desc == "" and meta.url == "" and meta.arch == "any"
    assert write_local_desc(meta) == text


def test_local_writer_omits_what_pacman_omits() -> None:
    meta = PkgMeta("x", "1-1", builddate=0, isize=0, reason=Reason.EXPLICIT, csize=5,
                   md5sum="m", makedepends=["gcc"], checkdepends=["check"], filename="f")
    assert write_local_desc(meta) == "%NAME%\nx\n\n%VERSION%\n1-1\n\n"


def test_validation_is_a_bitmask() -> None:
    text = "%NAME%\nx\n\n%VERSION%\n1\n\n%VALIDATION%\npgp\nmd5\nbogus\nmd5\nnone\n\n"
    meta = parse_local_desc(text)
    assert meta.validation == ["none", "md5", "pgp"]
    assert "%VALIDATION%\nnone\nmd5\npgp\n\n" in write_local_desc(meta)


def test_tolerates_crlf_trailing_blanks_unknown_sections_and_junk() -> None:
    text = (
        "%NAME%  \r\nfoo\r\n\r\n%FORCE%\r\n\r\n%VERSION%\t\r\n1.0-1\r\n\r\n"
        "%UNKNOWN%\r\n%DEPENDS%\r\nnot a dep\r\n\r\nstray line\r\n%DEPENDS%\r\na\r\nb\r\n"
    )
    meta = parse_local_desc(text)
    assert (meta.name, meta.version, meta.depends) == ("foo", "1.0-1", ["a", "b"])


def test_old_local_entries_parse() -> None:
    # pacman 3.x wrote %REASON% 0 explicitly and knew %FORCE%; both are fine to read.
    text = "%NAME%\nold\n\n%VERSION%\n0.1-1\n\n%FORCE%\n\n%REASON%\n0\n\n%SIZE%\n10\n\n"
    meta = parse_local_desc(text)
    assert meta.reason is Reason.EXPLICIT and meta.isize == 10
    assert write_local_desc(meta) == "%NAME%\nold\n\n%VERSION%\n0.1-1\n\n%SIZE%\n10\n\n"


def test_repeated_list_sections_add_up() -> None:
    text = "%NAME%\nx\n\n%VERSION%\n1\n\n%DEPENDS%\na\n\n%DEPENDS%\nb\n\n"
    assert parse_sync_desc(text).depends == ["a", "b"]


def test_sync_desc_merges_legacy_depends_file() -> None:
    desc = "%NAME%\nx\n\n%VERSION%\n1-1\n\n%CSIZE%\n10\n\n"
    depends = "%DEPENDS%\nglibc\n\n%CONFLICTS%\ny\n\n%PROVIDES%\nz=1\n\n"
    meta = parse_sync_desc(desc, depends)
    assert meta.csize == 10 and meta.depends == ["glibc"]
    assert meta.conflicts == ["y"] and meta.provides == ["z=1"]


@pytest.mark.parametrize(
    "text, what",
    [
        ("%VERSION%\n1\n\n", "%NAME%"),
        ("%NAME%\nx\n\n", "%VERSION%"),
        ("%NAME%\n\n\n%VERSION%\n1\n\n", "%NAME%"),
        ("%NAME%\nx\n\n%VERSION%\n1\n\n%REASON%\n7\n\n", "%REASON%"),
        ("%NAME%\nx\n\n%VERSION%\n1\n\n%XDATA%\nnoequals\n\n", "%XDATA%"),
        ("%NAME%\nx\n\n%VERSION%\n", "no value"),
    ],
)
def test_local_invalid(text: str, what: str) -> None:
    with invalid() as info:
        parse_local_desc(text)
    assert what in str(info.value)


def test_sync_odd_numbers_are_not_numbers() -> None:
    """Non-ASCII digits or a bare sign: libalpm's -1, never Python's int() leniency."""
    assert parse_sync_desc("%NAME%\nx\n\n%VERSION%\n1\n\n%CSIZE%\n١٢\n\n").csize == -1
    assert parse_sync_desc("%NAME%\nx\n\n%VERSION%\n1\n\n", "%ISIZE%\n-\n\n").isize == -1


def test_writers_refuse_what_the_format_cannot_hold() -> None:
    for meta in (PkgMeta("", "1"), PkgMeta("a\nb", "1"), PkgMeta("a", "1", depends=["x\ny"]),
                 PkgMeta("a", "1", desc="two\nlines")):
        with invalid(ErrorCode.WRONG_ARGS):
            write_local_desc(meta)
        with invalid(ErrorCode.WRONG_ARGS):
            write_sync_desc(meta)
    with invalid(ErrorCode.WRONG_ARGS):
        write_sync_desc(PkgMeta("a", "1", depends=[""]))


def test_local_writer_empty_items_as_libalpm() -> None:
    """``license = `` in a .PKGINFO: libalpm writes the empty line, which ends the list;
    nothing after it is written (it could only be misread as sections)."""
    text = write_local_desc(PkgMeta("a", "1-1", licenses=[""], depends=["x", "", "%REASON%"]))
    assert "%LICENSE%\n\n\n" in text and "%DEPENDS%\nx\n\n\n" in text
    assert "%REASON%" not in text
    meta = parse_local_desc(text)
    assert (meta.licenses, meta.depends, meta.reason) == ([], ["x"], 0)


# -- properties -----------------------------------------------------------------------

line = st.text(st.characters(exclude_characters="\n\r\0"), max_size=12)
item = line.filter(bool)
items = st.lists(item, max_size=4)
xdata = st.lists(st.builds(lambda k, v: f"{k}={v}", line, line), max_size=3)
canonical = ("none", "md5", "sha256", "pgp")


@st.composite
def local_meta(draw: st.DrawFn) -> PkgMeta:
    opt = st.none() | line
    num = st.none() | st.integers(1, 2**63 - 1)
    chosen = draw(st.sets(st.sampled_from(canonical)))
    return PkgMeta(
        name=draw(item), version=draw(item), base=draw(opt), desc=draw(opt), url=draw(opt),
        arch=draw(opt), builddate=draw(num), installdate=draw(num), packager=draw(opt),
        isize=draw(num), reason=draw(st.sampled_from(Reason)),
        validation=[v for v in canonical if v in chosen], licenses=draw(items),
        groups=draw(items), replaces=draw(items), depends=draw(items), optdepends=draw(items),
        conflicts=draw(items), provides=draw(items), xdata=draw(xdata),
    )


@st.composite
def sync_meta(draw: st.DrawFn) -> PkgMeta:
    opt = st.none() | item
    num = st.none() | st.integers(0, 2**63 - 1)
    # names, versions and file names as pacman 7 takes them in a sync database
    name = st.from_regex(r"[A-Za-z0-9@_+][A-Za-z0-9@._+-]{0,12}", fullmatch=True)
    version = st.from_regex(r"[^-/\s\x00]{1,8}(-[^-/\s\x00]{1,4})?", fullmatch=True)
    filename = st.none() | st.from_regex(r"[^./\s\x00][^/\s\x00]{0,15}", fullmatch=True)
    return PkgMeta(
        name=draw(name), version=draw(version), filename=draw(filename), base=draw(opt),
        desc=draw(opt), csize=draw(num), isize=draw(num), md5sum=draw(opt),
        sha256sum=draw(opt), base64_sig=draw(opt), url=draw(opt), arch=draw(opt),
        builddate=draw(num), packager=draw(opt), licenses=draw(items), groups=draw(items),
        replaces=draw(items), conflicts=draw(items), provides=draw(items), depends=draw(items),
        optdepends=draw(items), makedepends=draw(items), checkdepends=draw(items),
    )


HEADERS = ["%NAME%", "%VERSION%", "%DESC%", "%DEPENDS%", "%SIZE%", "%CSIZE%", "%REASON%",
           "%VALIDATION%", "%XDATA%", "%BUILDDATE%", "%FILENAME%", "%OTHER%", "", "1", "x=y"]
structured = st.lists(st.sampled_from(HEADERS) | line, max_size=30).map("\n".join)


@settings(max_examples=300, deadline=None)
@given(st.text() | structured, st.none() | st.text() | structured)
def test_any_text_parses_or_raises_db_invalid(text: str, depends: str | None) -> None:
    for parse in (parse_local_desc, lambda t: parse_sync_desc(t, depends)):
        try:
            meta = parse(text)
        except AlpmError as exc:
            assert exc.code is ErrorCode.DB_INVALID
        else:
            assert meta.name and meta.version


@settings(max_examples=200, deadline=None)
@given(local_meta())
def test_local_round_trip(meta: PkgMeta) -> None:
    text = write_local_desc(meta)
    assert parse_local_desc(text) == meta
    assert parse_local_desc(text.replace("\n", "\r\n")) == meta


@settings(max_examples=200, deadline=None)
@given(sync_meta())
def test_sync_round_trip(meta: PkgMeta) -> None:
    text = write_sync_desc(meta)
    assert parse_sync_desc(text) == meta


# -- speed ----------------------------------------------------------------------------


def typical_entries(count: int) -> list[str]:
    """Sync entries shaped like Arch's: checksums, a signature, a dozen dependencies."""
    rng = random.Random(7)
    words = [f"lib{w}" for w in ("foo", "bar", "baz", "qux", "ssl", "xml2", "png", "glib2", "gtk3")]
    out = []
    for i in range(count):
        meta = PkgMeta(
            name=f"pkg{i}", version=f"{rng.randint(0, 9)}.{rng.randint(0, 99)}-{rng.randint(1, 3)}",
            filename=f"pkg{i}-1.0-1-x86_64.pkg.tar.zst", base=f"pkg{i}",
            desc="A typical package description of moderate length for testing",
            csize=rng.randint(10**4, 10**8), isize=rng.randint(10**4, 10**9),
            md5sum=f"{rng.getrandbits(128):032x}", sha256sum=f"{rng.getrandbits(256):064x}",
            base64_sig="iQIzBAABCAAdFiEE" + "A" * 540, url="https://example.org/project",
            licenses=["GPL"], arch="x86_64", builddate=1662286475,
            packager="Some Packager <packager@example.org>",
            depends=rng.sample(words, rng.randint(0, 9)) + [f"dep{i % 50}>=1.0"],
            optdepends=[f"opt{i % 7}: optional support"] if i % 3 == 0 else [],
            makedepends=rng.sample(words, rng.randint(0, 5)),
            provides=[f"lib{i}.so=1-64"] if i % 4 == 0 else [],
        )
        out.append(write_sync_desc(meta))
    return out


def test_parse_sync_desc_speed() -> None:
    entries = typical_entries(15_000)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for text in entries:
            parse_sync_desc(text)
        best = min(best, time.perf_counter() - start)
    print(f"\nparse_sync_desc: 15,000 typical entries in {best:.3f} s")
    assert best < 1.0  # ~0.15 s on the development machine; the bound only catches regressions


# -- against the real tools -----------------------------------------------------------

SPARSE_PKGINFO = """\
# Generated by hand
pkgname = fmt-sparse
pkgbase = fmt-sparse
pkgver = 2.0-3
pkgdesc = {empty}
url = {empty}
builddate = 1700000000
packager = Unknown Packager
size = 42
arch = any
backup = etc/x.conf
depend = glibc>=2.0
optdepend = foo:  bar   baz
""".format(empty="")

ODD_PKGINFO = """\
pkgname = fmt-odd
pkgbase = fmt-odd-base
pkgver = 1:0.1-1
pkgdesc =   spaces   and\ttabs  \t
url = https://example.org/x=y
builddate = 0
packager = A. Packager <a@example.org>
size = 0
arch = any
license = custom
group = a-group
conflict = fmt-odd-git
provides = fmt-odd=0.1
provides = libodd.so=1-64
replaces = fmt-ancient
depend = b>=1
depend = c<2
depend = d=3
depend = e:  described  dependency
optdepend = opt
makedepend = make  me
checkdepend = check=
"""


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    need("bsdtar", "gzip")
    base = tmp_path_factory.mktemp("pkgs")
    made = [
        build_package(base, "fmt-sparse-2.0-3-any.pkg.tar.gz", SPARSE_PKGINFO,
                      {"etc/x.conf": "a=1\n", "usr/share/x/file one": "data\n"}),
        build_package(base, "fmt-odd-1:0.1-1-any.pkg.tar.gz", ODD_PKGINFO,
                      {"usr/share/odd/f": "f\n"}, {"usr/share/odd/l": "f"}),
    ]
    try:
        made.append(makepkg_package())
    except pytest.skip.Exception:
        pass
    return made


@pytest.mark.oracle
def test_local_desc_identical_to_pacman(packages: list[Path], tmp_path: Path) -> None:
    for n, pkg in enumerate(packages):
        entry = pacman_install(pkg, tmp_path / f"root{n}")
        written = (entry / "desc").read_text()
        meta = parse_local_desc(written)
        assert write_local_desc(meta) == written, pkg.name
        # What an installer of ours writes for the same package: the .PKGINFO plus
        # the install date and validation pacman records.
        ours = parse_pkginfo(member(pkg, ".PKGINFO").decode()).meta
        ours.installdate = meta.installdate
        ours.validation = ["none"]
        assert write_local_desc(ours) == written, pkg.name


@pytest.mark.oracle
def test_sync_desc_identical_to_repo_add(packages: list[Path], tmp_path: Path) -> None:
    db, _ = repo_add(packages, tmp_path / "repo")
    assert len(db) == len(packages)
    for pkg in packages:
        info = parse_pkginfo(member(pkg, ".PKGINFO").decode()).meta
        written = db[f"{info.name}-{info.version}"]["desc"]
        assert write_sync_desc(parse_sync_desc(written)) == written, pkg.name
        md5, sha256 = digests(pkg)
        ours = dataclasses.replace(repo_add_normalize(info), filename=pkg.name,
                                   csize=pkg.stat().st_size, md5sum=md5, sha256sum=sha256)
        assert write_sync_desc(ours) == written, pkg.name


@pytest.mark.oracle
def test_repo_add_value_matches_bash() -> None:
    need("bash")
    rng = random.Random(3)
    values = ["", " ", "=", "==", "a", "foo=", "foo==", "foo = ", "a = b =", "=foo", " =foo",
              "a  b", "\ta b\t", "a\t\tb", "foo= =", "x y=", "a =", "a  =  "]
    values += ["".join(rng.choice(" =\tab#\\") for _ in range(rng.randint(0, 8))) for _ in range(400)]
    script = (
        "shopt -s extglob\n"
        "while read -r line; do\n"
        "  [[ ${line:0:1} = '#' ]] && { printf '#\\0'; continue; }\n"
        "  IFS=' =' read -r var val < <(printf '%s\\n' \"$line\")\n"
        "  printf '%s\\0' \"${val//+([[:space:]])/ }\"\n"
        "done\n"
    )
    lines = "".join(f"key = {v}\n" for v in values).encode()
    got = run(["bash", "-c", script], input=lines).split(b"\0")[:-1]
    assert len(got) == len(values)
    for value, bash in zip(values, got, strict=True):
        assert repo_add_value(value) == bash.decode(), repr(value)


def real_sync_entries() -> list[str]:
    entries = []
    for name in ("core.db.tar.gz", "extra.db.tar.gz"):
        path = ARCH_SYNC / name
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                if m.isfile() and m.name.endswith("/desc"):
                    f = tar.extractfile(m)
                    assert f is not None
                    entries.append(f.read().decode())
    return entries


def test_real_arch_sync_entries_round_trip_byte_for_byte() -> None:
    entries = real_sync_entries()
    assert len(entries) > 3000
    for text in entries:
        assert write_sync_desc(parse_sync_desc(text)) == text


@pytest.mark.parametrize(
    "value, size, date",
    [
        # libalpm: sizes through _alpm_strtoofft (-1 unless bare digits), dates through
        # _alpm_parsedate (0 unless a whole signed number); seen from pacman 6.0.2 itself.
        ("", -1, 0),
        ("yesterday", -1, 0),
        ("1_000", -1, 0),
        ("+12", -1, 12),
        ("-5", -1, -5),
        (" 12", -1, 12),
        ("12abc", -1, 0),
        ("007", 7, 7),
        ("99999999999999999999", -1, 0),
    ],
)
def test_odd_numbers_read_like_libalpm(value: str, size: int, date: int) -> None:
    local = parse_local_desc(f"%NAME%\nx\n\n%VERSION%\n1-1\n\n%SIZE%\n{value}\n\n"
                             f"%BUILDDATE%\n{value}\n\n%INSTALLDATE%\n{value}\n\n")
    assert (local.isize, local.builddate, local.installdate) == (size, date, date)
    sync = parse_sync_desc(f"%NAME%\nx\n\n%VERSION%\n1-1\n\n%CSIZE%\n{value}\n\n"
                           f"%ISIZE%\n{value}\n\n%BUILDDATE%\n{value}\n\n")
    assert (sync.csize, sync.isize, sync.builddate) == (size, size, date)


@pytest.mark.parametrize("filename", ["../../etc/cron.d/evil", "sub/pkg.pkg.tar.zst",
                                      ".hidden.pkg.tar.zst", "x" * 4097])
def test_sync_filename_is_a_file_name(filename: str) -> None:
    """%FILENAME% becomes a path in the cache: libalpm 7 refuses paths and dot files."""
    with invalid(ErrorCode.DB_INVALID) as info:
        parse_sync_desc(f"%NAME%\nx\n\n%VERSION%\n1-1\n\n%FILENAME%\n{filename}\n\n")
    assert "%FILENAME%" in str(info.value)
    ok = parse_sync_desc("%NAME%\nx\n\n%VERSION%\n1-1\n\n%FILENAME%\nx-1-1-any.pkg.tar.zst\n\n")
    assert ok.filename == "x-1-1-any.pkg.tar.zst"


@pytest.mark.parametrize("name, version", [
    (".dot", "1-1"), ("-dash", "1-1"), ("a/b", "1-1"), ("sp ace", "1-1"), ("ok", "1-2-3"),
    ("ok", "1/2-3"),
])
def test_sync_names_pacman7_refuses(name: str, version: str) -> None:
    """pacman 7 refuses such entries (``_alpm_pkg_check_meta``): the database is invalid."""
    with invalid(ErrorCode.DB_INVALID) as info:
        parse_sync_desc(f"%NAME%\n{name}\n\n%VERSION%\n{version}\n\n")
    assert "invalid metadata for package" in str(info.value)


def test_real_arch_names_all_pass_pacman7_rules() -> None:
    for text in real_sync_entries():
        meta = parse_sync_desc(text)
        assert metadata_problem(meta.name, meta.version) is None, meta.name
