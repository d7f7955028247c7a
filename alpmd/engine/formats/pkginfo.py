"""The ``.PKGINFO`` file at the root of a package: ``key = value`` lines, as makepkg writes them.

Single-valued keys may appear once; list keys (``depend``, ``backup``...) once
per item.  ``size`` is the installed size (``PkgMeta.isize``).  Keys this
model does not know (``pkgtype``, ``makepkgopt``, ``force``...) are ignored,
as libalpm ignores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.formats.sections import check_value, key_value_lines, strict_int


@dataclass
class PkgInfo:
    """A package's own metadata plus its backup list (paths relative to the root)."""

    meta: PkgMeta
    backup: list[str] = field(default_factory=list)


# key -> PkgMeta attribute, in the order makepkg writes them
_SINGLE: dict[str, str] = {
    "pkgname": "name",
    "pkgbase": "base",
    "pkgver": "version",
    "pkgdesc": "desc",
    "url": "url",
    "builddate": "builddate",
    "packager": "packager",
    "size": "isize",
    "arch": "arch",
}
_NUMERIC = frozenset({"builddate", "size"})
_LISTS: dict[str, str] = {
    "license": "licenses",
    "replaces": "replaces",
    "group": "groups",
    "conflict": "conflicts",
    "provides": "provides",
    "backup": "backup",
    "depend": "depends",
    "optdepend": "optdepends",
    "makedepend": "makedepends",
    "checkdepend": "checkdepends",
    "xdata": "xdata",
}


def parse_pkginfo(text: str) -> PkgInfo:
    """Read a .PKGINFO; raise :class:`AlpmError` (``PKG_INVALID``) naming the bad line.

    A line is ``key = value`` (the value may be empty, and ``key =`` is taken
    as empty too); leading blanks and ``#`` comment lines are skipped.
    """
    code = ErrorCode.PKG_INVALID
    single: dict[str, str] = {}
    lists: dict[str, list[str]] = {attr: [] for attr in _LISTS.values()}
    for number, key, value in key_value_lines(text, ".PKGINFO", code):
        if key in _SINGLE:
            if key in single:
                raise AlpmError(code, f".PKGINFO line {number}: {key} given twice")
            single[key] = value
        elif key in _LISTS:
            if key == "xdata" and "=" not in value:
                raise AlpmError(code, f".PKGINFO line {number}: xdata without '=': {value!r}")
            lists[_LISTS[key]].append(value)
    for key in ("pkgname", "pkgver"):
        if not single.get(key):
            raise AlpmError(code, f".PKGINFO: {key} is missing or empty")
    kw: dict[str, Any] = {}
    for key, value in single.items():
        attr = _SINGLE[key]
        kw[attr] = strict_int(value, key, ".PKGINFO", code) if key in _NUMERIC else value
    backup = lists.pop("backup")
    kw.update(lists)
    meta = PkgMeta(**kw)
    return PkgInfo(meta, backup)


def write_pkginfo(info: PkgInfo) -> str:
    """The .PKGINFO text for ``info``, keys in makepkg's order (without its comment header).

    Single values are written when set (makepkg writes empty ones as ``key = ``);
    fields a .PKGINFO cannot hold (install date, checksums...) are left out.
    """
    meta = info.meta
    if not meta.name or not meta.version:
        raise AlpmError(ErrorCode.WRONG_ARGS, "a package needs a name and a version")
    out: list[str] = []
    for key, attr in _SINGLE.items():
        value = getattr(meta, attr)
        if value is None:
            continue
        text = str(value)
        check_value(text, key)
        out.append(f"{key} = {text}\n")
    for key, attr in _LISTS.items():
        values: list[str] = info.backup if key == "backup" else getattr(meta, attr)
        for value in values:
            check_value(value, key)
            if key == "xdata" and "=" not in value:
                raise AlpmError(ErrorCode.WRONG_ARGS, f"xdata without '=': {value!r}")
        out.extend(f"{key} = {value}\n" for value in values)
    return "".join(out)
