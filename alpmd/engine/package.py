"""The Package model: one package from a database or a package file, loaded lazily.

Like libalpm's ``alpm_pkg_t`` with its ``infolevel``: a database scan knows only
names and versions; the rest (``desc``, ``files``, ``mtree``) is read from the
origin the first time a field is used, so a scan of thousands stays cheap.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from alpmd import TYPE_CHECKING
from alpmd.engine.formats.desc import Backup, PkgMeta, Reason
from alpmd.engine.formats.files import FileList

if TYPE_CHECKING:
    from typing import Protocol


class Origin(enum.Enum):
    """Where a package comes from (``alpm_pkgfrom_t``)."""

    FILE = "file"
    LOCALDB = "localdb"
    SYNCDB = "syncdb"


class Part(enum.Flag):
    """The separately loadable parts of a package (libalpm's ``INFRQ_*``)."""

    BASE = 0
    DESC = enum.auto()
    FILES = enum.auto()
    SCRIPTLET = enum.auto()
    MTREE = enum.auto()
    #: An installed package's changelog (``.CHANGELOG`` of its archive, kept in the database).
    CHANGELOG = enum.auto()
    ALL = DESC | FILES | SCRIPTLET | MTREE | CHANGELOG


_DESC = Part.DESC.value

#: Every combination of parts by its value (``Part(bits)`` costs microseconds per call).
_PARTS = {bits: Part(bits) for bits in range(Part.ALL.value + 1)}


@dataclass(eq=False, repr=False)
class Loaded:
    """What an origin hands back for :meth:`Package.ensure`; ``None`` means not read."""

    meta: PkgMeta | None = None
    files: FileList | None = None
    mtree: bytes | None = None
    scriptlet: bytes | None = None
    has_scriptlet: bool | None = None
    changelog: bytes | None = None


Loader = Callable[["Package", Part], Loaded]


if TYPE_CHECKING:
    class Source(Protocol):
        """The database a package was read from (the local one or a repository's).

        A protocol, not the database classes, because those import this module; a
        front end that needs more (a repository's servers) narrows with ``isinstance``.
        """

        name: str


class Package:
    """A package: name and version at once, everything else on first use."""

    __slots__ = (
        "name",
        "version",
        "origin",
        "db",
        "path",
        "_loader",
        "_loaded",
        "_meta",
        "_files",
        "_mtree",
        "_scriptlet",
        "_has_scriptlet",
        "_changelog",
        "_parsed",
    )

    def __init__(
        self,
        name: str,
        version: str,
        origin: Origin,
        *,
        db: Source | None = None,
        path: str | None = None,
        meta: PkgMeta | None = None,
        files: FileList | None = None,
        loader: Loader | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.origin = origin
        self.db = db
        self.path = path
        self._loader = loader
        # A plain int mask: enum.Flag arithmetic costs microseconds per package.
        self._loaded = 0
        self._meta = meta
        self._files = files
        self._mtree: bytes | None = None
        self._scriptlet: bytes | None = None
        self._has_scriptlet: bool | None = None
        self._changelog: bytes | None = None
        #: Fields a bulk reader already read from the store (``desc``, ``groups``):
        #: shown without parsing the whole entry; dropped when the entry loads.
        self._parsed: dict[str, object] = {}
        if meta is not None:
            self._loaded |= Part.DESC.value
        if files is not None:
            self._loaded |= Part.FILES.value

    def __repr__(self) -> str:
        return f"<Package {self.name} {self.version} ({self.origin.value})>"

    # -- lazy loading ---------------------------------------------------------------

    def ensure(self, parts: Part) -> None:
        """Load the given parts from the origin unless they are loaded already."""
        missing_bits = parts.value & ~self._loaded
        if not missing_bits:
            return
        missing = _PARTS[missing_bits]
        if self._loader is None:
            self._loaded |= missing_bits
            return
        got = self._loader(self, missing)
        if got.meta is not None:
            self._meta = got.meta
            self._parsed.clear()
        if got.files is not None:
            self._files = got.files
        if got.mtree is not None:
            self._mtree = got.mtree
        if got.scriptlet is not None:
            self._scriptlet = got.scriptlet
        if got.has_scriptlet is not None:
            self._has_scriptlet = got.has_scriptlet
        if got.changelog is not None:
            self._changelog = got.changelog
        self._loaded |= missing_bits

    def seed(self, fields: dict[str, object]) -> None:
        """Keep fields read in bulk (``-Qs`` prints the description and groups of what it
        found, which the search read already) until the whole entry is loaded."""
        if self._meta is None:
            self._parsed.update(fields)

    @property
    def desc_loaded(self) -> bool:
        """Whether the metadata is at hand (bulk readers then use it, not the store)."""
        return bool(self._loaded & _DESC) or self._meta is not None

    @property
    def meta(self) -> PkgMeta:
        """The full metadata (loads ``desc`` on first use)."""
        if self._meta is None:
            self.ensure(Part.DESC)
        if self._meta is None:
            self._meta = PkgMeta(self.name, self.version)
        return self._meta

    @property
    def filelist(self) -> FileList:
        """Files and backup entries (loads ``files`` on first use)."""
        if self._files is None:
            self.ensure(Part.FILES)
        if self._files is None:
            self._files = FileList()
        return self._files

    @property
    def files(self) -> list[str]:
        return self.filelist.files

    @property
    def backup(self) -> list[Backup]:
        return self.filelist.backup

    @property
    def mtree(self) -> bytes | None:
        """The raw (gzip-compressed) mtree of an installed package, if any."""
        self.ensure(Part.MTREE)
        return self._mtree

    @property
    def scriptlet(self) -> bytes | None:
        """The install scriptlet's text, if the package has one."""
        self.ensure(Part.SCRIPTLET)
        return self._scriptlet

    @property
    def changelog(self) -> bytes | None:
        """The changelog an installed package's archive carried (``-Qc``), if any."""
        self.ensure(Part.CHANGELOG)
        return self._changelog

    @property
    def has_scriptlet(self) -> bool:
        if self._has_scriptlet is None:
            self.ensure(Part.SCRIPTLET)
        return bool(self._has_scriptlet) or self._scriptlet is not None

    # -- fields (all from desc) -----------------------------------------------------

    @property
    def base(self) -> str | None:
        return self.meta.base

    @property
    def desc(self) -> str | None:
        if self._meta is None and "desc" in self._parsed:
            value = self._parsed["desc"]
            assert value is None or isinstance(value, str)
            return value
        return self.meta.desc

    @property
    def url(self) -> str | None:
        return self.meta.url

    @property
    def arch(self) -> str | None:
        return self.meta.arch

    @property
    def builddate(self) -> int | None:
        return self.meta.builddate

    @property
    def installdate(self) -> int | None:
        return self.meta.installdate

    @property
    def packager(self) -> str | None:
        return self.meta.packager

    @property
    def isize(self) -> int | None:
        return self.meta.isize

    @property
    def csize(self) -> int | None:
        return self.meta.csize

    @property
    def reason(self) -> Reason:
        return self.meta.reason

    @property
    def filename(self) -> str | None:
        return self.meta.filename

    @property
    def md5sum(self) -> str | None:
        return self.meta.md5sum

    @property
    def sha256sum(self) -> str | None:
        return self.meta.sha256sum

    @property
    def base64_sig(self) -> str | None:
        return self.meta.base64_sig

    @property
    def licenses(self) -> list[str]:
        return self.meta.licenses

    @property
    def validation(self) -> list[str]:
        return self.meta.validation

    @property
    def groups(self) -> list[str]:
        if self._meta is None and "groups" in self._parsed:
            value = self._parsed["groups"]
            assert isinstance(value, list)
            return value
        return self.meta.groups

    @property
    def replaces(self) -> list[str]:
        return self.meta.replaces

    @property
    def depends(self) -> list[str]:
        return self.meta.depends

    @property
    def optdepends(self) -> list[str]:
        return self.meta.optdepends

    @property
    def conflicts(self) -> list[str]:
        return self.meta.conflicts

    @property
    def provides(self) -> list[str]:
        return self.meta.provides

    @property
    def makedepends(self) -> list[str]:
        return self.meta.makedepends

    @property
    def checkdepends(self) -> list[str]:
        return self.meta.checkdepends

    @property
    def xdata(self) -> list[str]:
        return self.meta.xdata
