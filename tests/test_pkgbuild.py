"""The package builder makes archives that Debian's real pacman installs and verifies."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.formats.mtree import parse_mtree
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import COMPRESSIONS, FileSpec, build_package, package_filename

META = PkgMeta(
    name="hello",
    version="1.0-2",
    desc="A package built by alpmd.testing",
    url="https://example.org/hello",
    arch="any",
    packager="Tester <t@example.org>",
    licenses=["GPL"],
    depends=[],
    provides=["hello-impl=1.0"],
)

FILES = [
    FileSpec("usr/bin/hello", b"#!/bin/sh\necho hello\n", mode=0o755),
    FileSpec("usr/bin/hi", kind="link", target="hello"),
    FileSpec("etc/hello.conf", b"greeting=hello\n"),
    FileSpec("usr/share/hello/data.bin", bytes(range(256)) * 40, mtime=1_500_000_000),
    FileSpec("usr/share/hello/empty", kind="dir"),
    FileSpec("var/lib/hello", kind="dir", mode=0o700),
]

LISTED = [
    "etc/", "etc/hello.conf", "usr/", "usr/bin/", "usr/bin/hello", "usr/bin/hi",
    "usr/share/", "usr/share/hello/", "usr/share/hello/data.bin", "usr/share/hello/empty/",
    "var/", "var/lib/", "var/lib/hello/",
]


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" : ")
        if sep and not key.startswith(" "):
            out[key.strip()] = value.strip()
    return out


def test_layout_follows_makepkg(tmp_path: Path) -> None:
    """Metadata first in makepkg's order, then each directory before its contents."""
    from alpmd.engine.archive import iter_archive_members

    path = build_package(tmp_path, META, FILES, backup=["etc/hello.conf"], install="")
    assert path.name == "hello-1.0-2-any.pkg.tar.zst" == package_filename(META)
    names = [n.rstrip("/") for n, _, _ in iter_archive_members(path, max_member_size=1 << 20)]
    assert names == [".BUILDINFO", ".INSTALL", ".MTREE", ".PKGINFO",
                     *[p.rstrip("/") for p in LISTED]]
    mtree = {e.path.removeprefix("./"): e for e in parse_mtree(
        dict((n, d) for n, d, _ in iter_archive_members(path, max_member_size=1 << 20))
        [".MTREE"] or b"")}
    assert ".MTREE" not in mtree and {".BUILDINFO", ".INSTALL", ".PKGINFO"} <= set(mtree)
    assert mtree["var/lib/hello"].mode == 0o700 and mtree["usr/share/hello/empty"].mode == 0o755
    assert mtree["usr/bin/hi"].link == "hello"


def test_builder_rejects_unsafe_payload_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_package(tmp_path, META, [FileSpec("../x", b"")])
    with pytest.raises(ValueError):
        build_package(tmp_path, META, [FileSpec("usr/l", kind="link")])
    with pytest.raises(ValueError):
        build_package(tmp_path, META, compression="lrz")


def test_meta_is_not_modified_and_size_is_computed(tmp_path: Path) -> None:
    from alpmd.engine.archive import load_package_file

    meta = PkgMeta("sized", "1-1")
    path = build_package(tmp_path, meta, [FileSpec("a", b"12345"), FileSpec("b/c", b"678")])
    assert meta.arch is None and meta.isize is None
    pkg = load_package_file(path)
    assert (pkg.arch, pkg.isize, pkg.builddate) == ("any", 8, 1_600_000_000)


def test_many_packages_are_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    for i in range(100):
        build_package(tmp_path, PkgMeta(f"p{i}", "1-1"), [FileSpec(f"usr/share/p{i}/f", b"x")])
    assert time.perf_counter() - start < 5  # typically ~0.1 s; hundreds per test run


@pytest.mark.oracle
@pytest.mark.parametrize("comp", sorted(COMPRESSIONS))
def test_real_pacman_installs_and_verifies(tmp_path: Path, pacman_root: PacmanRoot,
                                           comp: str) -> None:
    path = build_package(tmp_path / "out", META, FILES, backup=["etc/hello.conf"],
                         install="post_install() {\n  true\n}\n", compression=comp)
    proc = pacman_root.pacman("-U", "--noscriptlet", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warning" not in proc.stderr.lower(), proc.stderr

    info = _fields(pacman_root.pacman("-Qi", "hello", check=True).stdout)
    assert info["Name"] == "hello" and info["Version"] == "1.0-2"
    assert info["Description"] == META.desc and info["Architecture"] == "any"
    assert info["Provides"] == "hello-impl=1.0" and info["Packager"] == META.packager
    assert info["Install Script"] == "Yes"

    listing = pacman_root.pacman("-Ql", "hello", check=True).stdout.splitlines()
    root = str(pacman_root.root)
    assert [line.split(" ", 1)[1].removeprefix(root + "/") for line in listing] == LISTED

    check = pacman_root.pacman("-Qkk", "hello")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 altered files" in check.stdout and "warning" not in check.stderr.lower(), (
        check.stdout + check.stderr)
    installed = pacman_root.root / "usr/share/hello/data.bin"
    assert installed.read_bytes() == FILES[3].data
    assert (pacman_root.root / "usr/bin/hi").readlink() == Path("hello")

    backup = pacman_root.pacman("-Qii", "hello", check=True).stdout
    assert "etc/hello.conf" in backup.split("Backup Files")[1]


@pytest.mark.oracle
def test_pacman_reads_our_files_like_we_do(tmp_path: Path) -> None:
    """``pacman -Qlp`` (which reads our .MTREE) and our reader (the archive) agree."""
    from alpmd.engine.archive import load_package_file

    path = build_package(tmp_path, META, FILES)
    out = subprocess.run(["pacman", "-Qlp", str(path)], capture_output=True, text=True,
                         env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}, check=True).stdout
    assert [line.split(" ", 1)[1].removeprefix("/") for line in out.splitlines()] == LISTED
    assert load_package_file(path).files == LISTED
