"""The package and group caches of one database (libalpm's ``pkgcache`` and ``grpcache``).

A database knows every entry's name and version after a scan; :class:`Package`
objects are only made when somebody asks for one. Building thousands of them
costs more than the rest of a warm sync-database load together, and a point
query (``-Si foo``, a dependency lookup by name) needs just one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from operator import attrgetter

from alpmd import TYPE_CHECKING
from alpmd.engine.db.backend import DatabaseBackend, EntryKey
from alpmd.engine.package import Loaded, Origin, Package, Part

if TYPE_CHECKING:
    from typing import Any

__all__ = ["PackageCache"]

PackageFactory = Callable[[str, str], Package]
GroupIndex = Callable[[], dict[str, list[str]]]

_by_name = attrgetter("name")


class PackageCache:
    """Name → version for every entry, name → :class:`Package` for those made so far.

    ``group_index`` may supply ``group → [package name]`` without touching the
    packages (a sync snapshot stores one); otherwise groups are read from each
    package's metadata the first time :attr:`groups` is used.
    """

    def __init__(self, versions: dict[str, str], make: PackageFactory,
                 group_index: GroupIndex | None = None) -> None:
        self._versions = versions
        self._make = make
        self._group_index = group_index
        self._made: dict[str, Package] = {}
        self._sorted: list[Package] | None = None
        self._groups: dict[str, list[Package]] | None = None
        #: Bumped by every :meth:`add` and :meth:`remove`; 0 while the cache holds
        #: exactly what the store scanned (indexes built elsewhere key on it).
        self.generation = 0

    def __len__(self) -> int:
        return len(self._versions)

    def __contains__(self, name: object) -> bool:
        return name in self._versions

    def __iter__(self) -> Iterator[Package]:
        return iter(self.packages)

    @property
    def versions(self) -> dict[str, str]:
        """Name → version of every entry (read-only view by convention; no packages made)."""
        return self._versions

    def get(self, name: str) -> Package | None:
        """The package called ``name`` (made on first request), or ``None``."""
        pkg = self._made.get(name)
        if pkg is not None:
            return pkg
        version = self._versions.get(name)
        if version is None:
            return None
        pkg = self._make(name, version)
        self._made[name] = pkg
        return pkg

    @property
    def packages(self) -> list[Package]:
        """Every package, sorted by name as libalpm sorts its pkgcache (a shared list)."""
        if self._sorted is None:
            made = self._made
            make = self._make
            pkgs: list[Package] = []
            for name, version in self._versions.items():
                pkg = made.get(name)
                if pkg is None:
                    pkg = made[name] = make(name, version)
                pkgs.append(pkg)
            pkgs.sort(key=_by_name)
            self._sorted = pkgs
        return self._sorted

    @property
    def groups(self) -> dict[str, list[Package]]:
        """Group name → member packages, built on first use.

        Ordered like libalpm's grpcache: groups by first appearance along the
        name-sorted packages, members in name order.
        """
        if self._groups is None:
            groups: dict[str, list[Package]] = {}
            if self._group_index is not None:
                for group, names in self._group_index().items():
                    members = [p for p in map(self.get, names) if p is not None]
                    if members:
                        groups[group] = members
            else:
                for pkg in self.packages:
                    for group in pkg.groups:
                        groups.setdefault(group, []).append(pkg)
            self._groups = groups
        return self._groups

    def add(self, pkg: Package) -> Package | None:
        """Insert or replace the package of that name; returns the one replaced."""
        old = self._made.pop(pkg.name, None)
        self._versions[pkg.name] = pkg.version
        self._made[pkg.name] = pkg
        self._sorted = None
        self.generation += 1
        self._groups = None
        self._group_index = None  # it no longer describes the cache
        return old

    def remove(self, name: str) -> Package | None:
        """Drop the package of that name; returns it (made now if it was not yet)."""
        if name not in self._versions:
            return None
        pkg = self.get(name)
        del self._versions[name]
        self._made.pop(name, None)
        self._sorted = None
        self.generation += 1
        self._groups = None
        self._group_index = None
        return pkg


class CachedDatabase:
    """The query surface local and sync databases share, served from a :class:`PackageCache`.

    Subclasses say how the cache is filled (:meth:`_populate`) and where their
    packages come from (:attr:`origin`); packages load their fields through the backend.
    """

    name: str
    origin: Origin
    backend: DatabaseBackend
    _cache: PackageCache | None

    def _populate(self) -> PackageCache:
        raise NotImplementedError

    def _make(self, name: str, version: str) -> Package:
        return Package(name, version, self.origin, db=self, loader=self._load)

    def _load(self, pkg: Package, parts: Part) -> Loaded:
        return self.backend.read(EntryKey(pkg.name, pkg.version), parts)

    @property
    def packages(self) -> list[Package]:
        """Every package, sorted by name."""
        return self._populate().packages

    @property
    def state(self) -> tuple[PackageCache, int]:
        """Changes whenever the contents do: a key for indexes built over the database."""
        cache = self._populate()
        return cache, cache.generation

    def columns(self, fields: Sequence[str]) -> tuple[list[str], dict[str, list[Any]]]:
        """Every package's name (sorted) and the given :class:`PkgMeta` fields of each.

        What bulk questions (reverse dependencies, providers, search) need,
        without materialising every package's full metadata when the store
        can do better: a sync snapshot answers from its columns, the local
        files backend reads just those sections of each ``desc``. Metadata
        already loaded wins over the store.
        """
        cache = self._populate()
        if cache.generation == 0:
            got = self.backend.columns(fields)
            if got is not None:
                return got
        pkgs = cache.packages
        names = [p.name for p in pkgs]
        values: dict[str, list[Any]] = {f: [] for f in fields}
        lists = [(f, values[f].append) for f in fields]
        read = self.backend.read_fields
        for pkg in pkgs:
            got_fields = None if pkg.desc_loaded else read(EntryKey(pkg.name, pkg.version),
                                                           fields)
            if got_fields is None:
                meta = pkg.meta
                for f, append in lists:
                    append(getattr(meta, f))
            else:
                for f, append in lists:
                    append(got_fields[f])
        return names, values

    def get(self, name: str) -> Package | None:
        """The package called ``name``, or ``None``."""
        return self._populate().get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._populate()

    def __len__(self) -> int:
        return len(self._populate())

    @property
    def versions(self) -> dict[str, str]:
        """Name → version of every package, without reading any entry."""
        return self._populate().versions

    @property
    def groups(self) -> dict[str, list[Package]]:
        """Group name → member packages."""
        return self._populate().groups
