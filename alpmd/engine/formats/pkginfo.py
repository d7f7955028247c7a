"""The ``.PKGINFO`` file at the root of a package: ``key = value`` lines, as makepkg writes them.

Read as libalpm's ``parse_descfile`` reads it: a single-valued key given twice
keeps its last value, list keys (``depend``, ``backup``...) add one item per
line, ``size`` (the installed size, ``PkgMeta.isize``) and ``builddate`` are
converted like libalpm's ``_alpm_strtoofft`` and ``_alpm_parsedate`` (an empty
or odd value is -1 or 0, never an error), and keys this model does not know
(``xdata``, ``pkgtype``, ``makepkgopt``, ``basever``...) and malformed lines are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alpmd import TYPE_CHECKING
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.formats.sections import alpm_date, alpm_size, check_value, pkginfo_lines

if TYPE_CHECKING:
    from typing import Any


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
}


def parse_pkginfo(text: str) -> PkgInfo:
    """Read a .PKGINFO; only a missing or empty ``pkgname``/``pkgver`` raises
    :class:`AlpmError` (``PKG_INVALID``). ``xdata`` (makepkg 6.1's) is not read:
    pacman 6.0.2 ignores it and writes no ``%XDATA%`` for it.
    """
    code = ErrorCode.PKG_INVALID
    single: dict[str, str] = {}
    lists: dict[str, list[str]] = {attr: [] for attr in _LISTS.values()}
    for _number, key, value in pkginfo_lines(text):
        if key in _SINGLE:
            single[key] = value  # libalpm: the last one wins
        elif key in _LISTS:
            lists[_LISTS[key]].append(value)
    for key in ("pkgname", "pkgver"):
        if not single.get(key):
            raise AlpmError(code, f".PKGINFO: {key} is missing or empty", missing=key)
    kw: dict[str, Any] = {}
    for key, value in single.items():
        attr = _SINGLE[key]
        if key == "size":
            kw[attr] = alpm_size(value)
        elif key == "builddate":
            kw[attr] = alpm_date(value)
        else:
            kw[attr] = value
    # ``backup = `` names no file: libalpm records it as "\t(null)"; we leave it out
    backup = [path for path in lists.pop("backup") if path]
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
        out.extend(f"{key} = {value}\n" for value in values)
    return "".join(out)
