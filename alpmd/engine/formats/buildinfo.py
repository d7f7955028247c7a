"""The ``.BUILDINFO`` file of a package (format 1 or 2): how and where it was built.

Same ``key = value`` lines as .PKGINFO.  Format 2 (pacman 6) adds ``startdir``,
``buildtool`` and ``buildtoolver``; ``buildenv``, ``options`` and ``installed``
may repeat, every other key appears exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.sections import check_value, key_value_lines, strict_int


@dataclass
class BuildInfo:
    """A package's build environment; the v2-only fields are ``None`` in format 1."""

    format: int
    pkgname: str
    pkgbase: str
    pkgver: str
    pkgarch: str
    pkgbuild_sha256sum: str
    packager: str
    builddate: int
    builddir: str
    startdir: str | None = None
    buildtool: str | None = None
    buildtoolver: str | None = None
    buildenv: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    installed: list[str] = field(default_factory=list)


_V1 = ("pkgname", "pkgbase", "pkgver", "pkgarch", "pkgbuild_sha256sum", "packager",
       "builddate", "builddir")
_V2 = ("startdir", "buildtool", "buildtoolver")
_LISTS = ("buildenv", "options", "installed")
_SINGLE = frozenset(("format", *_V1, *_V2))


def parse_buildinfo(text: str) -> BuildInfo:
    """Read a .BUILDINFO; raise :class:`AlpmError` (``PKG_INVALID``) naming the bad line or key."""
    code = ErrorCode.PKG_INVALID
    single: dict[str, str] = {}
    lists: dict[str, list[str]] = {key: [] for key in _LISTS}
    for number, key, value in key_value_lines(text, ".BUILDINFO", code):
        if key in _SINGLE:
            if key in single:
                raise AlpmError(code, f".BUILDINFO line {number}: {key} given twice")
            single[key] = value
        elif key in lists:
            lists[key].append(value)
    if "format" not in single:
        raise AlpmError(code, ".BUILDINFO: format is missing")
    if single["format"] not in ("1", "2"):
        raise AlpmError(code, f".BUILDINFO: unknown format {single['format']!r}")
    version = int(single["format"])
    needed = _V1 + _V2 if version == 2 else _V1
    for key in needed:
        if key not in single:
            raise AlpmError(code, f".BUILDINFO: {key} is missing (format {version})")
    return BuildInfo(
        format=version,
        pkgname=single["pkgname"],
        pkgbase=single["pkgbase"],
        pkgver=single["pkgver"],
        pkgarch=single["pkgarch"],
        pkgbuild_sha256sum=single["pkgbuild_sha256sum"],
        packager=single["packager"],
        builddate=strict_int(single["builddate"], "builddate", ".BUILDINFO", code),
        builddir=single["builddir"],
        startdir=single.get("startdir"),
        buildtool=single.get("buildtool"),
        buildtoolver=single.get("buildtoolver"),
        buildenv=lists["buildenv"],
        options=lists["options"],
        installed=lists["installed"],
    )


def write_buildinfo(info: BuildInfo) -> str:
    """The .BUILDINFO text, keys in makepkg's order; format 2 needs its three extra fields."""
    if info.format not in (1, 2):
        raise AlpmError(ErrorCode.WRONG_ARGS, f"unknown BUILDINFO format {info.format!r}")
    if info.format == 2 and None in (info.startdir, info.buildtool, info.buildtoolver):
        raise AlpmError(ErrorCode.WRONG_ARGS, "BUILDINFO format 2 needs startdir, buildtool, buildtoolver")
    out = [f"format = {info.format}\n"]
    for key in (*_V1, *_V2):
        value = getattr(info, key)
        if value is None:
            continue
        text = str(value)
        check_value(text, key)
        out.append(f"{key} = {text}\n")
    for key in _LISTS:
        for value in getattr(info, key):
            check_value(value, key)
            out.append(f"{key} = {value}\n")
    return "".join(out)
