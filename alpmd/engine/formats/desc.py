"""The ``desc`` format of local (alpm-db v9) and sync (repo-add) database entries.

:class:`PkgMeta` holds one package's metadata as the formats spell it (dependency
fields stay strings); every format module and the package model share it.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
from dataclasses import dataclass, field

from alpmd import TYPE_CHECKING
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.sections import (
    DATE,
    INT,
    LIST,
    SINGLE,
    SIZE,
    Spec,
    check_items,
    check_value,
    scan,
)

if TYPE_CHECKING:
    from typing import Any


class Reason(enum.IntEnum):
    """Why a package is installed (``%REASON%``)."""

    EXPLICIT = 0
    DEPEND = 1


@dataclass
class Backup:
    """One ``%BACKUP%`` entry: a path relative to the root and its md5 (may be empty)."""

    path: str
    md5: str = ""


@dataclass(slots=True)
class PkgMeta:
    """One package's metadata, named after libalpm's ``alpm_pkg_t`` fields."""

    name: str
    version: str
    base: str | None = None
    desc: str | None = None
    url: str | None = None
    arch: str | None = None
    builddate: int | None = None
    installdate: int | None = None
    packager: str | None = None
    isize: int | None = None
    csize: int | None = None
    reason: Reason = Reason.EXPLICIT
    filename: str | None = None
    md5sum: str | None = None
    sha256sum: str | None = None
    base64_sig: str | None = None
    licenses: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)
    depends: list[str] = field(default_factory=list)
    optdepends: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    makedepends: list[str] = field(default_factory=list)
    checkdepends: list[str] = field(default_factory=list)
    xdata: list[str] = field(default_factory=list)


# -- names ----------------------------------------------------------------------------

#: libalpm's ``NAME_MAX`` for the local entry ``<name>-<version>``.
_NAME_MAX = 255
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+_.@-")


def metadata_problem(name: str, version: str) -> str | None:
    """Why pacman 7's ``_alpm_pkg_check_meta`` refuses this name and version, or ``None``.

    Its rules and nothing more: a name that is empty, starts with ``.`` or
    ``-`` or has a character outside letters, digits and ``+_.@-``; a version
    that is empty, holds ``/`` or more than one ``-`` (so that the local entry
    ``<name>-<version>`` names one package only); a local entry name longer
    than ``NAME_MAX``. pacman 6.0.2 took all of these.
    """
    if not name or not version:
        return "name or version missing"
    if name[0] in ".-":
        return "package name cannot start with '.' or '-'"
    if not _NAME_CHARS.issuperset(name):
        return "package name contains invalid characters"
    if version.count("-") > 1 or "/" in version:
        return "package version contains invalid characters"
    if len(name.encode("utf-8", "surrogateescape")) + len(
            version.encode("utf-8", "surrogateescape")) + 1 > _NAME_MAX:
        return "package name and version too long"
    return None



# -- reading --------------------------------------------------------------------------

#: The %VALIDATION% words libalpm knows, in the order it writes them.
VALIDATION_TYPES = ("none", "md5", "sha256", "pgp")
_VALIDATION_ORDER = VALIDATION_TYPES

_COMMON: dict[str, Spec] = {
    "%NAME%": ("name", SINGLE),
    "%VERSION%": ("version", SINGLE),
    "%BASE%": ("base", SINGLE),
    "%DESC%": ("desc", SINGLE),
    "%GROUPS%": ("groups", LIST),
    "%URL%": ("url", SINGLE),
    "%LICENSE%": ("licenses", LIST),
    "%ARCH%": ("arch", SINGLE),
    "%BUILDDATE%": ("builddate", DATE),
    "%PACKAGER%": ("packager", SINGLE),
    "%REPLACES%": ("replaces", LIST),
    "%DEPENDS%": ("depends", LIST),
    "%OPTDEPENDS%": ("optdepends", LIST),
    "%MAKEDEPENDS%": ("makedepends", LIST),
    "%CHECKDEPENDS%": ("checkdepends", LIST),
    "%CONFLICTS%": ("conflicts", LIST),
    "%PROVIDES%": ("provides", LIST),
}

#: What libalpm's local backend reads from ``desc`` (alpm-db v9, pacman 6.x).
_LOCAL: dict[str, Spec] = {
    **_COMMON,
    "%INSTALLDATE%": ("installdate", DATE),
    "%SIZE%": ("isize", SIZE),
    "%REASON%": ("reason", INT),
    "%VALIDATION%": ("validation", LIST),
    "%XDATA%": ("xdata", LIST),
}

#: What libalpm's sync backend reads from a repository ``desc`` (and old ``depends``).
_SYNC: dict[str, Spec] = {
    **_COMMON,
    "%FILENAME%": ("filename", SINGLE),
    "%CSIZE%": ("csize", SIZE),
    "%ISIZE%": ("isize", SIZE),
    "%MD5SUM%": ("md5sum", SINGLE),
    "%SHA256SUM%": ("sha256sum", SINGLE),
    "%PGPSIG%": ("base64_sig", SINGLE),
}


def _build(kw: dict[str, Any], origin: str, entry: tuple[str, str] | None = None) -> PkgMeta:
    """Turn scanned sections into a :class:`PkgMeta`, checking what libalpm needs.

    With ``entry`` (the database directory's name and version) a missing %NAME% or
    %VERSION% is the entry's, and an empty one is kept for the caller to report as
    a mismatch: libalpm names the package after its directory and only compares.
    """
    code = ErrorCode.DB_INVALID
    if entry is not None:
        kw.setdefault("name", entry[0])
        kw.setdefault("version", entry[1])
    elif not kw.get("name"):
        raise AlpmError(code, f"{origin}: %NAME% is missing or empty")
    elif not kw.get("version"):
        raise AlpmError(code, f"{origin}: %VERSION% is missing or empty")
    if "reason" in kw:
        reason = kw["reason"]
        if reason not in (0, 1):
            raise AlpmError(code, f"{origin}: %REASON% must be 0 or 1, not {reason}")
        kw["reason"] = Reason(reason)
    if "validation" in kw:
        # libalpm keeps a bitmask: order and duplicates are lost, unknown words dropped.
        given = kw["validation"]
        kw["validation"] = [v for v in _VALIDATION_ORDER if v in given]
    if "xdata" in kw:
        for item in kw["xdata"]:
            if "=" not in item:
                raise AlpmError(code, f"{origin}: %XDATA% entry without '=': {item!r}")
    return PkgMeta(**kw)


def parse_local_desc(text: str, entry: tuple[str, str] | None = None) -> PkgMeta:
    """Read a local database ``desc`` entry (alpm-db v9, as any pacman 4-6 wrote it).

    Unknown sections and stray lines are ignored, CRLF line ends and trailing
    blanks after headers tolerated; an impossible %REASON% or %XDATA% raises
    :class:`AlpmError` (``DB_INVALID``), and so does a missing %NAME%/%VERSION%
    unless ``entry`` (the directory's name and version) stands in for it.
    """
    return _build(scan(text, _LOCAL, "local desc", ErrorCode.DB_INVALID), "local desc", entry)


def parse_sync_desc(text: str, depends_text: str | None = None,
                    entry: tuple[str, str] | None = None) -> PkgMeta:
    """Read a sync database ``desc`` entry; ``depends_text`` is an old db's separate ``depends``.

    ``entry`` is the database directory's name and version, as for
    :func:`parse_local_desc`; pacman 7's name rules are then checked on it (the
    name the package gets). Called once per package when a sync database is
    loaded, so kept lean.
    """
    raw = scan(text, _SYNC, "sync desc", ErrorCode.DB_INVALID)
    if depends_text is not None:
        scan(depends_text, _SYNC, "sync depends", ErrorCode.DB_INVALID, into=raw)
    filename = raw.get("filename")
    if isinstance(filename, str):
        _check_filename(filename)
    meta = _build(raw, "sync desc", entry)
    name, version = entry or (meta.name, meta.version)
    problem = metadata_problem(name, version)
    if problem is not None:
        raise AlpmError(ErrorCode.DB_INVALID, f"sync desc: invalid metadata for package "
                                              f"{name}-{version} ({problem})")
    return meta


#: libalpm's ``PATH_MAX`` for %FILENAME%.
_PATH_MAX = 4096


def _check_filename(filename: str) -> None:
    """%FILENAME% names a file in the cache: no path, no dot file (libalpm's
    ``_alpm_validate_filename``), or a download would be written elsewhere."""
    if filename.startswith(".") or "/" in filename or "\0" in filename:
        raise AlpmError(ErrorCode.DB_INVALID, f"sync desc: %FILENAME% is illegal: {filename!r}",
                        filename="illegal")
    if len(filename.encode("utf-8", "surrogateescape")) > _PATH_MAX:
        raise AlpmError(ErrorCode.DB_INVALID, "sync desc: %FILENAME% is too long",
                        filename="too long")


# -- writing --------------------------------------------------------------------------


def _lists_ok(meta: PkgMeta, attrs: tuple[str, ...]) -> None:
    for attr in attrs:
        check_items(getattr(meta, attr), attr)


def _names_ok(meta: PkgMeta) -> None:
    if not meta.name or not meta.version:
        raise AlpmError(ErrorCode.WRONG_ARGS, "a package needs a name and a version")


def write_local_desc(meta: PkgMeta) -> str:
    """The ``desc`` text pacman 6's ``_alpm_local_db_write`` writes for this package.

    Its rules: strings are written when set (even empty), numbers and the
    reason only when non-zero, lists when non-empty (an empty item, as
    ``license = `` gives, written as the empty line it is); %VALIDATION% in libalpm's
    fixed order (unknown words dropped); no make/check dependencies, archive size or
    checksums.
    """
    _names_ok(meta)
    for attr in ("name", "version", "base", "desc", "url", "arch", "packager"):
        value = getattr(meta, attr)
        if value is not None:
            check_value(value, attr)
    for attr in ("groups", "licenses", "replaces", "depends", "optdepends", "conflicts",
                 "provides", "xdata"):
        for item in getattr(meta, attr):
            check_value(item, attr)
    out = [f"%NAME%\n{meta.name}\n\n%VERSION%\n{meta.version}\n\n"]
    add = out.append
    if meta.base is not None:
        add(f"%BASE%\n{meta.base}\n\n")
    if meta.desc is not None:
        add(f"%DESC%\n{meta.desc}\n\n")
    if meta.url is not None:
        add(f"%URL%\n{meta.url}\n\n")
    if meta.arch is not None:
        add(f"%ARCH%\n{meta.arch}\n\n")
    if meta.builddate:
        add(f"%BUILDDATE%\n{meta.builddate}\n\n")
    if meta.installdate:
        add(f"%INSTALLDATE%\n{meta.installdate}\n\n")
    if meta.packager is not None:
        add(f"%PACKAGER%\n{meta.packager}\n\n")
    if meta.isize:
        add(f"%SIZE%\n{meta.isize}\n\n")
    if meta.reason:
        add(f"%REASON%\n{int(meta.reason)}\n\n")
    _add_local_list(out, "%GROUPS%", meta.groups)
    _add_local_list(out, "%LICENSE%", meta.licenses)
    _add_list(out, "%VALIDATION%", [v for v in _VALIDATION_ORDER if v in meta.validation])
    _add_local_list(out, "%REPLACES%", meta.replaces)
    _add_local_list(out, "%DEPENDS%", meta.depends)
    _add_local_list(out, "%OPTDEPENDS%", meta.optdepends)
    _add_local_list(out, "%CONFLICTS%", meta.conflicts)
    _add_local_list(out, "%PROVIDES%", meta.provides)
    _add_local_list(out, "%XDATA%", meta.xdata)
    return "".join(out)


def _add_local_list(out: list[str], header: str, values: list[str]) -> None:
    """A list as libalpm writes it, one item a line, an empty item (``license = ``) too.

    An empty item ends the list for every reader; what would follow it is not
    written, since a reader could only take it for stray lines or sections.
    """
    if not values:
        return
    if "" in values:
        kept = values[: values.index("")]
        out.append(header + "\n" + "".join(v + "\n" for v in kept) + "\n\n")
    else:
        out.append(header + "\n" + "\n".join(values) + "\n\n")


def _add_list(out: list[str], header: str, values: list[str]) -> None:
    if values:
        out.append(header + "\n" + "\n".join(values) + "\n\n")


def write_sync_desc(meta: PkgMeta) -> str:
    """The ``desc`` text repo-add writes for this package (pacman 6's repo-add).

    repo-add writes a field only when its (first) value is non-empty, in a fixed
    order.  It also normalizes whitespace of the .PKGINFO values it copies: to
    reproduce that from a freshly read .PKGINFO, pass the metadata through
    :func:`repo_add_normalize` first.
    """
    _names_ok(meta)
    for attr in ("filename", "name", "base", "version", "desc", "md5sum", "sha256sum",
                 "base64_sig", "url", "arch", "packager"):
        value = getattr(meta, attr)
        if value is not None:
            check_value(value, attr)
    _lists_ok(meta, ("groups", "licenses", "replaces", "conflicts", "provides", "depends",
                     "optdepends", "makedepends", "checkdepends"))
    out: list[str] = []
    add = out.append
    if meta.filename:
        add(f"%FILENAME%\n{meta.filename}\n\n")
    add(f"%NAME%\n{meta.name}\n\n")
    if meta.base:
        add(f"%BASE%\n{meta.base}\n\n")
    add(f"%VERSION%\n{meta.version}\n\n")
    if meta.desc:
        add(f"%DESC%\n{meta.desc}\n\n")
    _add_list(out, "%GROUPS%", meta.groups)
    if meta.csize is not None:
        add(f"%CSIZE%\n{meta.csize}\n\n")
    if meta.isize is not None:
        add(f"%ISIZE%\n{meta.isize}\n\n")
    if meta.md5sum:
        add(f"%MD5SUM%\n{meta.md5sum}\n\n")
    if meta.sha256sum:
        add(f"%SHA256SUM%\n{meta.sha256sum}\n\n")
    if meta.base64_sig:
        add(f"%PGPSIG%\n{meta.base64_sig}\n\n")
    if meta.url:
        add(f"%URL%\n{meta.url}\n\n")
    _add_list(out, "%LICENSE%", meta.licenses)
    if meta.arch:
        add(f"%ARCH%\n{meta.arch}\n\n")
    if meta.builddate is not None:
        add(f"%BUILDDATE%\n{meta.builddate}\n\n")
    if meta.packager:
        add(f"%PACKAGER%\n{meta.packager}\n\n")
    _add_list(out, "%REPLACES%", meta.replaces)
    _add_list(out, "%CONFLICTS%", meta.conflicts)
    _add_list(out, "%PROVIDES%", meta.provides)
    _add_list(out, "%DEPENDS%", meta.depends)
    _add_list(out, "%OPTDEPENDS%", meta.optdepends)
    _add_list(out, "%MAKEDEPENDS%", meta.makedepends)
    _add_list(out, "%CHECKDEPENDS%", meta.checkdepends)
    return "".join(out)


# -- repo-add's treatment of .PKGINFO values -----------------------------------------

@functools.cache
def _repo_add_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """One ``key = word`` line's value and a run of blanks, compiled on first use (queries
    load this module and never need them)."""
    return re.compile(r"([^ =]*) *= *"), re.compile(r"[ \t\n\v\f\r]+")


def repo_add_value(value: str) -> str:
    """A .PKGINFO value as repo-add stores it.

    repo-add reads each ``key = value`` line with ``read -r`` (trimming blanks and
    tabs at both ends), splits it with ``IFS=' ='`` (which also drops a lone
    trailing ``=`` after a single word) and squeezes every run of whitespace to
    one space.
    """
    line = ("k = " + value).strip(" \t")
    rest = line[1:].lstrip(" ")
    rest = rest[1:] if rest.startswith("=") else rest
    rest = rest.strip(" ")
    one_field, space_run = _repo_add_patterns()
    whole = one_field.fullmatch(rest)
    if whole is not None:
        rest = whole.group(1)
    return space_run.sub(" ", rest)


def repo_add_normalize(meta: PkgMeta) -> PkgMeta:
    """A copy of ``meta`` (read from a .PKGINFO) with the values repo-add would write.

    Strings that become empty are dropped (repo-add omits them), and a list ends
    at its first empty item (where a reader of the written ``desc`` stops).
    """

    def one(value: str | None) -> str | None:
        if value is None:
            return None
        return repo_add_value(value) or None

    def many(values: list[str]) -> list[str]:
        out: list[str] = []
        for value in values:
            norm = repo_add_value(value)
            if not norm:
                break
            out.append(norm)
        return out

    return dataclasses.replace(
        meta,
        name=one(meta.name) or "",
        base=one(meta.base),
        version=one(meta.version) or "",
        desc=one(meta.desc),
        url=one(meta.url),
        arch=one(meta.arch),
        packager=one(meta.packager),
        groups=many(meta.groups),
        licenses=many(meta.licenses),
        replaces=many(meta.replaces),
        depends=many(meta.depends),
        conflicts=many(meta.conflicts),
        provides=many(meta.provides),
        optdepends=many(meta.optdepends),
        makedepends=many(meta.makedepends),
        checkdepends=many(meta.checkdepends),
    )
