"""The .BUILDINFO format (versions 1 and 2), against what makepkg writes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.buildinfo import BuildInfo, parse_buildinfo, write_buildinfo

from . import makepkg_package, member

V2 = """\
format = 2
pkgname = mk-demo
pkgbase = mk-demo
pkgver = 1.2-1
pkgarch = any
pkgbuild_sha256sum = ceecda8a2fa9d21605c289c5dc5ce907a3833d17129d06c86aa0d99e808bf657
packager = Unknown Packager
builddate = 1795264945
builddir = /build
startdir = /startdir
buildtool = devtools
buildtoolver = 1:1.0.0-1-any
buildenv = !distcc
buildenv = color
options = strip
options = !debug
installed = bash-5.1-1-x86_64
installed = glibc-2.36-1-x86_64
"""

V1 = """\
format = 1
pkgname = old
pkgbase = old
pkgver = 1-1
pkgarch = x86_64
pkgbuild_sha256sum = 00
packager = P
builddate = 1
builddir = /b
buildenv = check
"""


def test_v2_round_trip() -> None:
    info = parse_buildinfo(V2)
    assert info.format == 2 and info.buildtool == "devtools" and info.startdir == "/startdir"
    assert info.installed == ["bash-5.1-1-x86_64", "glibc-2.36-1-x86_64"]
    assert write_buildinfo(info) == V2


def test_v1_round_trip() -> None:
    info = parse_buildinfo(V1)
    assert info.format == 1 and info.startdir is None and info.buildenv == ["check"]
    assert write_buildinfo(info) == V1


@pytest.mark.parametrize(
    "text, what",
    [
        (V1.replace("format = 1\n", ""), "format is missing"),
        (V1.replace("format = 1", "format = 3"), "unknown format"),
        (V1.replace("builddir = /b\n", ""), "builddir"),
        (V2.replace("buildtool = devtools\n", ""), "buildtool"),
        (V1 + "pkgname = again\n", "twice"),
        (V1.replace("builddate = 1", "builddate = soon"), "builddate"),
        (V1 + "garbage\n", "line 11"),
    ],
)
def test_invalid(text: str, what: str) -> None:
    with pytest.raises(AlpmError) as info:
        parse_buildinfo(text)
    assert info.value.code is ErrorCode.PKG_INVALID and what in str(info.value)


def test_writer_checks() -> None:
    info = parse_buildinfo(V2)
    info.startdir = None
    with pytest.raises(AlpmError):
        write_buildinfo(info)
    info = parse_buildinfo(V1)
    info.packager = "a\nb"
    with pytest.raises(AlpmError):
        write_buildinfo(info)


line = st.text(st.characters(exclude_characters="\n\r\0"), max_size=12)


@st.composite
def buildinfos(draw: st.DrawFn) -> BuildInfo:
    version = draw(st.sampled_from([1, 2]))
    v2 = line if version == 2 else st.none()
    return BuildInfo(
        format=version, pkgname=draw(line), pkgbase=draw(line), pkgver=draw(line),
        pkgarch=draw(line), pkgbuild_sha256sum=draw(line), packager=draw(line),
        builddate=draw(st.integers(0, 2**63 - 1)), builddir=draw(line), startdir=draw(v2),
        buildtool=draw(v2), buildtoolver=draw(v2), buildenv=draw(st.lists(line, max_size=3)),
        options=draw(st.lists(line, max_size=3)), installed=draw(st.lists(line, max_size=3)),
    )


@settings(max_examples=200, deadline=None)
@given(buildinfos())
def test_round_trip(info: BuildInfo) -> None:
    assert parse_buildinfo(write_buildinfo(info)) == info


KEYS = V2.splitlines() + ["format = 1", "format = x", "# c", "", "k v", "builddate = 1.0"]


@settings(max_examples=200, deadline=None)
@given(st.text() | st.lists(st.sampled_from(KEYS) | line).map("\n".join))
def test_any_text_parses_or_raises(text: str) -> None:
    try:
        info = parse_buildinfo(text)
    except AlpmError as exc:
        assert exc.code is ErrorCode.PKG_INVALID
    else:
        assert info.format in (1, 2)


@pytest.mark.oracle
def test_real_makepkg_buildinfo() -> None:
    pkg = makepkg_package()
    text = member(pkg, ".BUILDINFO").decode()
    info = parse_buildinfo(text)
    assert info.format == 2 and info.pkgname == "fmt-made" and info.pkgver == "1:1.2-3"
    assert info.buildtool == "makepkg" and "!debug" in info.options
    assert write_buildinfo(info) == text
