"""The ``desc`` format of local (alpm-db v9) and sync (repo-add) database entries.

:class:`PkgMeta` holds one package's metadata as the formats spell it (dependency
fields stay strings); every format module and the package model share it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Reason(enum.IntEnum):
    """Why a package is installed (``%REASON%``)."""

    EXPLICIT = 0
    DEPEND = 1


@dataclass
class Backup:
    """One ``%BACKUP%`` entry: a path relative to the root and its md5 (may be empty)."""

    path: str
    md5: str = ""


@dataclass
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
