"""Reading package files: round trips, makepkg's own packages, and hostile archives."""

from __future__ import annotations

import io
import os
import pwd
import random
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alpmd.engine.archive import (
    INFLATE_FREE,
    MAX_INFLATE_RATIO,
    MAX_METADATA_SIZE,
    EntryKind,
    iter_archive_members,
    load_package_file,
    read_package_archive,
)
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import Backup, PkgMeta
from alpmd.engine.formats.mtree import parse_mtree
from alpmd.engine.package import Origin
from alpmd.testing.pkgbuild import COMPRESSIONS, FileSpec, build_package

COMPRESSION_NAMES = sorted(COMPRESSIONS)

META = PkgMeta(
    name="demo",
    version="1.2.3-4",
    base="demo-base",
    desc="A demo package = with an equals sign",
    url="https://example.org/demo",
    arch="x86_64",
    builddate=1_650_000_000,
    packager="Test Packager <test@example.org>",
    licenses=["MIT", "custom:Foo"],
    groups=["demo-group"],
    replaces=["old-demo"],
    depends=["glibc", "bash>=5.0"],
    optdepends=["python: for the helper script"],
    conflicts=["demo-git"],
    provides=["demo-impl=1.2.3", "libdemo.so=1-64"],
    makedepends=["gcc"],
    checkdepends=["check"],
)

FILES = [
    FileSpec("usr/bin/demo", b"#!/bin/sh\necho demo\n", mode=0o755),
    FileSpec("usr/lib/libdemo.so.1", b"\x7fELF" + bytes(range(256)) * 4, mode=0o755),
    FileSpec("usr/lib/libdemo.so", kind="link", target="libdemo.so.1"),
    FileSpec("etc/demo.conf", b"answer=42\n"),
    FileSpec("usr/share/demo/empty", kind="dir"),
    FileSpec("usr/share/doc/demo/README", b"read me\n", mtime=1_234_567_890),
    FileSpec("usr/share/demo/ünïcödé.txt", b"unicode name\n"),
    FileSpec("var/lib/demo", kind="dir", mode=0o750, uid=0, gid=0),
]

EXPECTED_FILES = sorted([
    "etc/", "etc/demo.conf",
    "usr/", "usr/bin/", "usr/bin/demo",
    "usr/lib/", "usr/lib/libdemo.so", "usr/lib/libdemo.so.1",
    "usr/share/", "usr/share/demo/", "usr/share/demo/empty/", "usr/share/demo/ünïcödé.txt",
    "usr/share/doc/", "usr/share/doc/demo/", "usr/share/doc/demo/README",
    "var/", "var/lib/", "var/lib/demo/",
], key=lambda p: p.encode())

INSTALL = "post_install() {\n  echo installed\n}\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo package in every compression."""
    out = tmp_path_factory.mktemp("pkgs")
    return {
        comp: build_package(out / comp, META, FILES, backup=["etc/demo.conf"], install=INSTALL,
                            compression=comp)
        for comp in COMPRESSION_NAMES
    }


# -- round trip ----------------------------------------------------------------------


@pytest.mark.parametrize("comp", COMPRESSION_NAMES)
def test_round_trip(built: dict[str, Path], comp: str) -> None:
    path = built[comp]
    pkg = load_package_file(path)
    assert pkg.origin is Origin.FILE
    assert pkg.path == str(path)
    assert (pkg.name, pkg.version) == ("demo", "1.2.3-4")
    for field in ("base", "desc", "url", "arch", "builddate", "packager", "licenses", "groups",
                  "replaces", "depends", "optdepends", "conflicts", "provides", "makedepends",
                  "checkdepends"):
        assert getattr(pkg.meta, field) == getattr(META, field), field
    assert pkg.isize == sum(len(f.data) for f in FILES if f.kind == "file")
    assert pkg.csize == path.stat().st_size
    assert pkg.filename == path.name
    assert pkg.files == EXPECTED_FILES
    assert pkg.backup == [Backup("etc/demo.conf", "")]
    assert pkg.has_scriptlet and pkg.scriptlet == INSTALL.encode()

    assert pkg.mtree is not None and pkg.mtree[:2] == b"\x1f\x8b"  # gzip, as makepkg writes it
    entries = {e.path.removeprefix("./"): e for e in parse_mtree(pkg.mtree)}
    assert set(entries) == {".BUILDINFO", ".INSTALL", ".PKGINFO"} | {
        p.rstrip("/") for p in EXPECTED_FILES}
    demo = entries["usr/bin/demo"]
    assert (demo.type, demo.mode, demo.size, demo.time) == ("file", 0o755, 20, 1_600_000_000)
    link = entries["usr/lib/libdemo.so"]
    assert (link.type, link.link) == ("link", "libdemo.so.1")
    assert entries["var/lib/demo"].type == "dir" and entries["var/lib/demo"].mode == 0o750
    assert entries["usr/share/doc/demo/README"].time == 1_234_567_890

    archive = read_package_archive(path)
    info = archive.buildinfo()
    assert info is not None and info.pkgname == "demo" and info.pkgver == "1.2.3-4"


def test_metadata_only_load_reads_the_files_later(built: dict[str, Path]) -> None:
    archive = read_package_archive(built["zst"], full=False)
    assert archive.files is None and archive.meta.name == "demo"
    assert archive.scriptlet == INSTALL.encode() and archive.mtree is not None
    pkg = load_package_file(built["zst"], full=False)
    assert pkg.files == EXPECTED_FILES  # read again on first use
    assert pkg.backup == [Backup("etc/demo.conf", "")]


def test_no_optional_members(tmp_path: Path) -> None:
    path = build_package(tmp_path, PkgMeta("bare", "1-1"), with_mtree=False,
                         with_buildinfo=False, compression="none")
    archive = read_package_archive(path)
    assert archive.files is not None and archive.files.files == []
    assert archive.mtree is None and archive.buildinfo() is None and archive.scriptlet is None
    assert not load_package_file(path).has_scriptlet


KINDS: list[Literal["file", "dir", "link"]] = ["file", "dir", "link"]
_SEGMENT = st.sampled_from(["a", "b", "é", "c d", "x.y", "-", "\u65e5"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(paths=st.lists(st.lists(_SEGMENT, min_size=1, max_size=4).map("/".join), unique=True,
                      max_size=12),
       kinds=st.lists(st.sampled_from(KINDS), min_size=12, max_size=12),
       comp=st.sampled_from(COMPRESSION_NAMES))
def test_round_trip_any_tree(tmp_path: Path, paths: list[str],
                             kinds: list[Literal["file", "dir", "link"]], comp: str) -> None:
    specs = []
    for name, kind in zip(paths, kinds, strict=False):
        if any(q.startswith(name + "/") for q in paths):
            kind = "dir"
        specs.append(FileSpec(name, name.encode() * 3 if kind == "file" else b"",
                              kind=kind, target="elsewhere" if kind == "link" else None))
    expected: set[str] = set()
    for spec in specs:
        parts = spec.path.split("/")
        expected.update("/".join(parts[:i]) + "/" for i in range(1, len(parts)))
        expected.add(spec.path + "/" if spec.kind == "dir" else spec.path)
    path = build_package(tmp_path / "any", PkgMeta("tree", "1-1"), specs, compression=comp)
    pkg = load_package_file(path)
    assert pkg.files == sorted(expected, key=lambda p: p.encode())
    mtree = {e.path for e in parse_mtree(pkg.mtree or b"")}
    assert mtree == {p.rstrip("/") for p in expected} | {".BUILDINFO", ".PKGINFO"}


def test_iter_archive_members_bytes_and_path(built: dict[str, Path]) -> None:
    path = built["xz"]
    from_path = list(iter_archive_members(path, max_member_size=1 << 20))
    from_bytes = list(iter_archive_members(path.read_bytes(), max_member_size=1 << 20))
    assert from_path == from_bytes
    names = [name.rstrip("/") for name, _, _ in from_path]
    assert names[:4] == [".BUILDINFO", ".INSTALL", ".MTREE", ".PKGINFO"]  # makepkg's order
    members = {name.rstrip("/"): (data, kind) for name, data, kind in from_path}
    assert members["usr/bin/demo"] == (FILES[0].data, EntryKind.FILE)
    assert members["usr/lib/libdemo.so"] == (None, EntryKind.SYMLINK)
    assert members["usr/share/demo/empty"] == (None, EntryKind.DIR)
    with pytest.raises(AlpmError) as err:
        list(iter_archive_members(path, max_member_size=100, error_code=ErrorCode.DB_INVALID))
    assert err.value.code is ErrorCode.ARCHIVE_LIMIT and err.value.details["entry"] == ".BUILDINFO"


# -- makepkg's own packages ------------------------------------------------------------

PKGBUILD = """\
pkgname=mkhello
pkgver=2.3
pkgrel=4
pkgdesc="A makepkg-built test package"
arch=('x86_64')
url="https://example.org"
license=('MIT')
depends=('glibc' 'bash>=5')
provides=('hello-impl=2.3')
conflicts=('oldhello')
backup=('etc/mkhello.conf')
install=mkhello.install
options=(!strip !debug)
package() {
  install -Dm755 /dev/stdin "$pkgdir/usr/bin/mkhello" <<<'#!/bin/sh
echo hi'
  install -Dm644 /dev/stdin "$pkgdir/etc/mkhello.conf" <<<'x=1'
  ln -s mkhello "$pkgdir/usr/bin/hello-link"
  mkdir -p "$pkgdir/usr/share/mkhello/empty"
}
"""

BUILD_USER = "alpmd-test"


def _ensure_build_user() -> str | None:
    """makepkg refuses root: a throwaway system user to run it as (None if impossible)."""
    try:
        pwd.getpwnam(BUILD_USER)
        return BUILD_USER
    except KeyError:
        pass
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        return None
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    BUILD_USER], check=False, capture_output=True)
    try:
        pwd.getpwnam(BUILD_USER)
    except KeyError:
        return None
    return BUILD_USER


@pytest.fixture(scope="module")
def makepkg_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A package built by the real makepkg (once per module: it takes about two seconds)."""
    if shutil.which("makepkg") is None or shutil.which("fakeroot") is None:
        pytest.skip("makepkg (and fakeroot) not installed: `apt-get install makepkg fakeroot`")
    if os.geteuid() == 0:
        user = _ensure_build_user()
        if user is None or shutil.which("runuser") is None:
            pytest.skip("running as root and no unprivileged user to run makepkg as")
        prefix = ["runuser", "-u", user, "--"]
    else:
        user, prefix = None, []
    out = tmp_path_factory.mktemp("makepkg")
    with tempfile.TemporaryDirectory(prefix="alpmd-makepkg-") as tmp:
        build = Path(tmp)  # not under pytest's 0700 tree: the build user must reach it
        build.chmod(0o755)
        (build / "PKGBUILD").write_text(PKGBUILD)
        (build / "mkhello.install").write_text(INSTALL)
        if user is not None:
            info = pwd.getpwnam(user)
            for p in (build, build / "PKGBUILD", build / "mkhello.install"):
                os.chown(p, info.pw_uid, info.pw_gid)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "HOME": str(build),
               "PKGEXT": ".pkg.tar.zst", "SOURCE_DATE_EPOCH": "1600000000"}
        proc = subprocess.run([*prefix, "env", *[f"{k}={v}" for k, v in env.items()],
                               "makepkg", "--nodeps", "--noconfirm", "--noprogressbar"],
                              cwd=build, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        name = "mkhello-2.3-4-x86_64.pkg.tar.zst"
        shutil.copyfile(build / name, out / name)
    return out / name


def _pacman_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^(\S[^:]*?)\s*: (.*)$", line)
        if m:
            fields[m.group(1)] = m.group(2).strip()
    return fields


def _none_list(value: str) -> list[str]:
    return [] if value == "None" else value.split()


def _pacman_size(value: str) -> float:
    number, unit = value.split()
    return float(number) * {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}[unit]


@pytest.mark.oracle
@pytest.mark.slow
def test_makepkg_package_matches_pacman(makepkg_package: Path) -> None:
    env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    info = subprocess.run(["pacman", "-Qip", str(makepkg_package)], capture_output=True,
                          text=True, env=env, check=True).stdout
    listing = subprocess.run(["pacman", "-Qlp", str(makepkg_package)], capture_output=True,
                             text=True, env=env, check=True).stdout
    fields = _pacman_fields(info)
    pkg = load_package_file(makepkg_package)
    assert pkg.name == fields["Name"]
    assert pkg.version == fields["Version"]
    assert pkg.desc == fields["Description"]
    assert pkg.arch == fields["Architecture"]
    assert pkg.url == fields["URL"]
    assert pkg.licenses == _none_list(fields["Licenses"])
    assert pkg.depends == _none_list(fields["Depends On"])
    assert pkg.provides == _none_list(fields["Provides"])
    assert pkg.conflicts == _none_list(fields["Conflicts With"])
    assert pkg.packager == fields["Packager"]
    assert pkg.isize is not None and abs(pkg.isize - _pacman_size(fields["Installed Size"])) < 11
    assert pkg.csize == makepkg_package.stat().st_size
    assert abs(pkg.csize - _pacman_size(fields["Compressed Size"])) < pkg.csize / 100 + 1
    assert pkg.has_scriptlet == (fields["Install Script"] == "Yes")
    assert pkg.scriptlet == INSTALL.encode()
    assert pkg.backup == [Backup("etc/mkhello.conf", "")]
    theirs = [line.split(" ", 1)[1].removeprefix("/") for line in listing.splitlines()]
    assert pkg.files == theirs
    archive = read_package_archive(makepkg_package)
    info_bi = archive.buildinfo()
    assert info_bi is not None and info_bi.pkgname == "mkhello" and info_bi.buildtool == "makepkg"
    mtree_paths = {e.path.removeprefix("./") for e in parse_mtree(archive.mtree or b"")}
    assert mtree_paths == {".BUILDINFO", ".INSTALL", ".PKGINFO"} | {p.rstrip("/") for p in theirs}


# -- hostile and broken archives -------------------------------------------------------

PKGINFO = b"pkgname = evil\npkgver = 1.0-1\narch = any\n"


@dataclass
class M:
    """One raw tar member for hand-made archives."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    link: str = ""


def _tar(members: list[M]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            ti = tarfile.TarInfo(m.name)
            ti.type = m.type
            ti.linkname = m.link
            ti.mode = 0o755 if m.type == tarfile.DIRTYPE else 0o644
            ti.size = len(m.data) if m.type == tarfile.REGTYPE else 0
            tar.addfile(ti, io.BytesIO(m.data) if ti.size else None)
    return buf.getvalue()


def _write(tmp_path: Path, members: list[M], *, pkginfo: bool = True) -> Path:
    data = _tar(([M(".PKGINFO", PKGINFO)] if pkginfo else []) + members)
    path = tmp_path / "evil-1.0-1-any.pkg.tar.zst"
    path.write_bytes(zstandard.ZstdCompressor(level=1).compress(data))
    return path


def _invalid(path: Path, entry: str | None, *, code: ErrorCode = ErrorCode.PKG_INVALID,
             full: bool = True) -> AlpmError:
    with pytest.raises(AlpmError) as err:
        load_package_file(path, full=full)
    assert err.value.code is code, err.value
    if entry is not None:
        assert err.value.details.get("entry") == entry, err.value.details
        assert entry in str(err.value)
    return err.value


HOSTILE = {
    "absolute": ([M("/etc/passwd", b"root::0:0::/:/bin/sh\n")], "/etc/passwd"),
    "dotdot-first": ([M("../evil", b"x")], "../evil"),
    "dotdot-inside": ([M("usr/../../etc/shadow", b"x")], "usr/../../etc/shadow"),
    "dotdot-dir": ([M("usr/..", type=tarfile.DIRTYPE)], "usr/../"),
    "empty-component": ([M("usr//bin", b"x")], "usr//bin"),
    "dot-component": ([M("usr/./bin", b"x")], "usr/./bin"),
    "duplicate-pkginfo": ([M(".PKGINFO", b"pkgname = other\npkgver = 2-1\n")], ".PKGINFO"),
    "duplicate-mtree": ([M(".MTREE", b"x"), M(".MTREE", b"y")], ".MTREE"),
    "duplicate-file": ([M("usr/a", b"1"), M("usr/a", b"2")], "usr/a"),
    "duplicate-dir": ([M("usr/", type=tarfile.DIRTYPE), M("usr", type=tarfile.DIRTYPE)], "usr/"),
    "hardlink-escapes": ([M("usr/x", type=tarfile.LNKTYPE, link="../../etc/shadow")], "usr/x"),
    "hardlink-absolute": ([M("usr/x", type=tarfile.LNKTYPE, link="/etc/shadow")], "usr/x"),
    "hardlink-to-host-file": ([M("usr/x", type=tarfile.LNKTYPE, link="etc/shadow")], "usr/x"),
    "hardlink-forward": ([M("usr/x", type=tarfile.LNKTYPE, link="usr/y"), M("usr/y", b"y")],
                         "usr/x"),
    "hardlink-to-metadata": ([M("usr/x", type=tarfile.LNKTYPE, link=".PKGINFO")], "usr/x"),
    "below-symlink": ([M("usr/lib", type=tarfile.SYMTYPE, link="/etc"),
                       M("usr/lib/passwd", b"x")], "usr/lib/passwd"),
    "symlink-over-populated-dir": ([M("usr/lib/x", b"x"),
                                    M("usr/lib", type=tarfile.SYMTYPE, link="/etc"),
                                    M("usr/y", type=tarfile.LNKTYPE, link="usr/lib/x")],
                                   "usr/lib"),
    "file-over-populated-dir": ([M("usr/lib/x", b"x"), M("usr/lib", b"x")], "usr/lib"),
    "char-device": ([M("dev/mem", type=tarfile.CHRTYPE)], "dev/mem"),
    "block-device": ([M("dev/sda", type=tarfile.BLKTYPE)], "dev/sda"),
    "fifo": ([M("run/fifo", type=tarfile.FIFOTYPE)], "run/fifo"),
    "install-is-dir": ([M(".INSTALL", type=tarfile.DIRTYPE)], ".INSTALL/"),
    "install-is-symlink": ([M(".INSTALL", type=tarfile.SYMTYPE, link="/etc/shadow")], ".INSTALL"),
    "symlink-without-target": ([M("usr/l", type=tarfile.SYMTYPE, link="")], "usr/l"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive(tmp_path: Path, case: str) -> None:
    members, entry = HOSTILE[case]
    _invalid(_write(tmp_path, members), entry)


def test_legitimate_links_are_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, [
        M("usr/", type=tarfile.DIRTYPE), M("usr/a", b"data"),
        M("usr/b", type=tarfile.LNKTYPE, link="usr/a"),
        M("usr/abs", type=tarfile.SYMTYPE, link="/etc/os-release"),
        M("usr/up", type=tarfile.SYMTYPE, link="../../../../etc"),
        M(".CHANGELOG", b"ignored, like libalpm does"),
    ])
    assert load_package_file(path).files == ["usr/", "usr/a", "usr/abs", "usr/b", "usr/up"]


def test_missing_pkginfo(tmp_path: Path) -> None:
    err = _invalid(_write(tmp_path, [M("usr/a", b"x")], pkginfo=False), ".PKGINFO")
    assert "missing package metadata" in str(err)
    _invalid(_write(tmp_path, [M("usr/a", b"x")], pkginfo=False), ".PKGINFO", full=False)


@pytest.mark.parametrize("text", [
    b"pkgver = 1.0-1\n",
    b"pkgname = evil\n",
    b"pkgname = evil\npkgver = 1.0\n",  # no pkgrel: libalpm says "invalid package version"
    b"pkgname = \xff\xfe\npkgver = 1.0-1\n",
])
def test_bad_pkginfo(tmp_path: Path, text: bytes) -> None:
    _invalid(_write(tmp_path, [M(".PKGINFO", text)], pkginfo=False), ".PKGINFO")


@pytest.mark.parametrize("member", [".PKGINFO", ".INSTALL", ".MTREE", ".BUILDINFO"])
def test_oversized_metadata(tmp_path: Path, member: str) -> None:
    big = PKGINFO + b"#" * (MAX_METADATA_SIZE + 1 - len(PKGINFO))
    path = _write(tmp_path, [M(member, big)], pkginfo=member != ".PKGINFO")
    err = _invalid(path, member, code=ErrorCode.ARCHIVE_LIMIT)
    assert "limit" in str(err)


def test_truncated_streams_name_the_entry(tmp_path: Path) -> None:
    rng = random.Random(3)
    noise = [FileSpec(f"usr/share/blob{i}", rng.randbytes(64 * 1024)) for i in range(4)]
    names = {f.path for f in noise}
    for comp in COMPRESSION_NAMES:
        path = build_package(tmp_path / comp, PkgMeta("big", "1-1"), noise, compression=comp)
        data = path.read_bytes()
        for cut in (len(data) // 2, len(data) * 17 // 20):
            path.write_bytes(data[:cut])
            err = _invalid(path, None, code=ErrorCode.LIBARCHIVE)  # libalpm's code for it
            assert err.details["entry"] in names, (comp, cut, err)
        path.write_bytes(data[:100])  # inside the first header: nothing to name yet
        with pytest.raises(AlpmError) as early:
            load_package_file(path)
        assert early.value.code in (ErrorCode.LIBARCHIVE, ErrorCode.PKG_OPEN), early.value


@pytest.mark.parametrize("comp", ["xz", "bz2"])
def test_corrupt_checksummed_stream(tmp_path: Path, comp: str) -> None:
    """xz and bzip2 carry checksums that libarchive verifies (its gzip and zstd readers
    do not, and neither does libalpm: payload integrity is the sync database's sha256)."""
    rng = random.Random(7)  # deterministic: what a flipped byte turns into must not vary
    noise = [FileSpec(f"usr/share/blob{i}", rng.randbytes(128 * 1024)) for i in range(4)]
    path = build_package(tmp_path, PkgMeta("big", "1-1"), noise, compression=comp)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    err = _invalid(path, None, code=ErrorCode.LIBARCHIVE)
    assert err.details["entry"] in {f.path for f in noise}, err  # libarchive reads ahead


def test_not_a_package(tmp_path: Path) -> None:
    text = tmp_path / "notes.pkg.tar.zst"
    text.write_text("just some text, named like a package\n")
    _invalid(text, None, code=ErrorCode.PKG_OPEN)  # libalpm: "cannot open package file"
    empty = tmp_path / "empty.pkg.tar"
    empty.write_bytes(b"")
    _invalid(empty, ".PKGINFO")  # an archive without entries, as libarchive reads it
    zipped = tmp_path / "zero.pkg.tar.zst"  # a valid zstd stream of a non-tar
    zipped.write_bytes(zstandard.ZstdCompressor().compress(b"\x00garbage" * 100))
    _invalid(zipped, None, code=ErrorCode.PKG_OPEN)
    mtree = tmp_path / "sneaky.pkg.tar"  # libarchive's mtree reader would open host files
    mtree.write_text("#mtree\n.PKGINFO type=file contents=/etc/hostname\n")
    _invalid(mtree, None, code=ErrorCode.PKG_OPEN)


def test_bad_paths(tmp_path: Path) -> None:
    _invalid(tmp_path / "nope.pkg.tar.zst", None, code=ErrorCode.PKG_NOT_FOUND)
    _invalid(tmp_path / "nodir" / "nope.pkg.tar.zst", None, code=ErrorCode.PKG_NOT_FOUND)
    _invalid(tmp_path, None, code=ErrorCode.PKG_OPEN)
    fifo = tmp_path / "fifo.pkg.tar.zst"
    os.mkfifo(fifo)
    _invalid(fifo, None, code=ErrorCode.PKG_OPEN)  # and no hang waiting for a writer
    _invalid(Path("/dev/zero"), None, code=ErrorCode.PKG_OPEN)


def test_compression_is_detected_from_content(built: dict[str, Path], tmp_path: Path) -> None:
    liar = tmp_path / "demo.pkg.tar.gz"
    shutil.copyfile(built["xz"], liar)
    assert load_package_file(liar).files == EXPECTED_FILES


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_never_escape_as_other_exceptions(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.pkg.tar.zst"
    path.write_bytes(data)
    try:
        load_package_file(path)
    except AlpmError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(comp=st.sampled_from(COMPRESSION_NAMES),
       flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      max_size=4),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_damaged_packages_never_escape_as_other_exceptions(
        built: dict[str, Path], tmp_path: Path, comp: str,
        flips: list[tuple[float, int]], cut: float | None) -> None:
    data = bytearray(built[comp].read_bytes())
    for where, value in flips:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path / "damaged.pkg.tar"
    path.write_bytes(bytes(data))
    for full in (True, False):
        try:
            load_package_file(path, full=full)
        except AlpmError:
            pass


@pytest.mark.parametrize("name, version, why", [
    (".hidden", "1.0-1", "cannot start with '.' or '-'"),
    ("-dash", "1.0-1", "cannot start with '.' or '-'"),
    ("sl/ash", "1.0-1", "invalid characters"),
    ("spa ce", "1.0-1", "invalid characters"),
    ("ünï", "1.0-1", "invalid characters"),
    ("semi;colon", "1.0-1", "invalid characters"),
    ("ok", "1.0/2-1", "version contains invalid characters"),
    ("ok", "1.0-2-1", "version contains invalid characters"),
    ("n" * 250, "1.0-1", "too long"),
])
def test_pacman7_name_and_version_rules(tmp_path: Path, name: str, version: str,
                                        why: str) -> None:
    """pacman 7's _alpm_pkg_check_meta: refused before anything is written (issue 10 item 8)."""
    text = f"pkgname = {name}\npkgver = {version}\narch = any\n".encode()
    err = _invalid(_write(tmp_path, [M(".PKGINFO", text), M("usr/a", b"x")], pkginfo=False),
                   ".PKGINFO")
    assert why in str(err)
    _invalid(_write(tmp_path, [M(".PKGINFO", text)], pkginfo=False), ".PKGINFO", full=False)


@pytest.mark.parametrize("name, version", [
    ("UPPER-Case", "1.0-1"), ("a@b+c_d.e-f", "2:1.0_rc1+git-3.1"), ("0ad", "a24-1"),
    ("x" * 200, "1-1"),
])
def test_names_pacman7_accepts(tmp_path: Path, name: str, version: str) -> None:
    text = f"pkgname = {name}\npkgver = {version}\n".encode()
    pkg = load_package_file(_write(tmp_path, [M(".PKGINFO", text)], pkginfo=False))
    assert (pkg.name, pkg.version) == (name, version)


def _zero_bomb(path: Path, zeros: int, *, after: list[M]) -> Path:
    """A zstd package whose first member is ``zeros`` zero bytes, written as repeated frames.

    One frame of 64 MiB of zeros is a few kB; concatenated frames are one stream
    to libarchive, so the file stays tiny whatever ``zeros`` is.
    """
    chunk = 64 * 1024 * 1024
    assert zeros % chunk == 0
    head = tarfile.TarInfo("usr/share/zeros")
    head.size = zeros
    cctx = zstandard.ZstdCompressor(level=1)
    frame = cctx.compress(bytes(chunk))
    with path.open("wb") as out:
        out.write(cctx.compress(head.tobuf(format=tarfile.GNU_FORMAT)))
        for _ in range(zeros // chunk):
            out.write(frame)
        out.write(cctx.compress(_tar(after)))
    return path


@pytest.mark.parametrize("full", [True, False])
def test_decompression_bomb_is_refused_early(tmp_path: Path, full: bool) -> None:
    """64 GiB of zeros before .PKGINFO in a file of 2 MB: ARCHIVE_LIMIT at once, not a hang."""
    path = _zero_bomb(tmp_path / "bomb-1-1-any.pkg.tar.zst", 64 * 1024**3,
                      after=[M(".PKGINFO", PKGINFO)])
    assert path.stat().st_size < 4 * 1024 * 1024
    with pytest.raises(AlpmError) as err:
        load_package_file(path, full=full)
    assert err.value.code is ErrorCode.ARCHIVE_LIMIT, err.value
    assert err.value.details["path"] == str(path)
    assert "decompression bomb" in str(err.value)


@pytest.mark.parametrize("tool", ["bsdtar", "tar"])
def test_tool_written_zero_bomb(tmp_path: Path, tool: str) -> None:
    """The bomb as the archivers write it: a 1 GiB hole-only file, zstd, .PKGINFO last."""
    tree = tmp_path / "tree"
    (tree / "usr").mkdir(parents=True)
    (tree / ".PKGINFO").write_bytes(PKGINFO)
    with (tree / "usr/zeros").open("wb") as f:
        f.truncate(1024**3)
    path = tmp_path / "bomb.pkg.tar.zst"
    sparse = ["--no-read-sparse"] if tool == "bsdtar" else []  # GNU tar stores data by default
    subprocess.run([tool, *sparse, "--zstd", "-cf", str(path), "-C", str(tree), "usr/zeros",
                    ".PKGINFO"], check=True, capture_output=True)
    assert path.stat().st_size < 1024**3 // (10 * MAX_INFLATE_RATIO)
    with pytest.raises(AlpmError) as err:
        load_package_file(path)
    assert err.value.code is ErrorCode.ARCHIVE_LIMIT, err.value


def test_big_but_honest_member_is_read(tmp_path: Path) -> None:
    """Incompressible data past INFLATE_FREE is not a bomb: the package loads."""
    rng = random.Random(5)
    blob = rng.randbytes(1024 * 1024)
    path = tmp_path / "honest-1-1-any.pkg.tar.zst"
    members = [M(".PKGINFO", b"pkgname = honest\npkgver = 1-1\n")]
    members += [M(f"usr/share/blob{i}", blob) for i in range(INFLATE_FREE // len(blob) + 8)]
    path.write_bytes(zstandard.ZstdCompressor(level=1).compress(_tar(members)))
    assert len(load_package_file(path).files or []) == len(members) - 1


@pytest.mark.parametrize("order", ["install-last", "install-first"])
def test_metadata_only_load_finds_a_late_scriptlet(tmp_path: Path, order: str) -> None:
    """.INSTALL after the files (not makepkg's order, which pacman accepts too)."""
    install = M(".INSTALL", b"post_install() {\n  :\n}\n")
    files = [M("usr/", type=tarfile.DIRTYPE), M("usr/a", b"a")]
    members = [*files, install] if order == "install-last" else [install, *files]
    path = _write(tmp_path, members)
    for full in (True, False):
        pkg = load_package_file(path, full=full)
        assert pkg.has_scriptlet, (order, full)
        assert pkg.files == ["usr/", "usr/a"]
