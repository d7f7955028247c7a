"""The storage interface every database sits on, shaped after libalpm's db operations.

libalpm keeps storage behind a few hooks (validate, populate, read one entry's
parts, write, remove); the package caches and queries above them never look at
files. We keep the same seam so a second backend (SQLite, say) can replace the
pacman-compatible files layout without touching :mod:`alpmd.engine.db.local`'s
caches or anything built on them. Nothing here names a path or a file.
"""

from __future__ import annotations

import abc
from collections import namedtuple
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from alpmd import TYPE_CHECKING
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.formats.files import FileList
from alpmd.engine.package import Loaded, Part
from alpmd.i18n import Message

if TYPE_CHECKING:
    from typing import Any

__all__ = ["PART_NAMES", "DatabaseBackend", "Entry", "EntryKey", "RawEntry", "split_entry_name"]

#: Each part's name: the file it lives in (files backend), its column (SQLite backend).
PART_NAMES: dict[Part, str] = {Part.DESC: "desc", Part.FILES: "files", Part.MTREE: "mtree",
                               Part.SCRIPTLET: "install", Part.CHANGELOG: "changelog"}


class EntryKey(namedtuple("EntryKey", ["name", "version"])):
    """One entry's identity: what a scan yields (name and version, nothing else).

    A named tuple rather than a dataclass: a scan makes one per package, and
    tens of thousands of tuples are built in a fraction of the dataclass cost.
    """

    __slots__ = ()
    name: str
    version: str

    @property
    def dirname(self) -> str:
        """``name-version``, the entry's name in both database layouts."""
        return f"{self.name}-{self.version}"


def split_entry_name(entry: str) -> EntryKey | None:
    """Split ``name-pkgver-pkgrel[/anything]`` at its second-to-last hyphen, as libalpm does.

    Package names may contain hyphens, versions hold exactly one (before the
    pkgrel), so the version starts after the second hyphen counted from the
    end. ``None`` when there are fewer than two hyphens or the name is empty.
    """
    slash = entry.find("/")
    if slash >= 0:
        entry = entry[:slash]
    rel = entry.rfind("-")
    if rel <= 0:
        return None
    ver = entry.rfind("-", 0, rel)
    if ver <= 0:
        return None
    return EntryKey(entry[:ver], entry[ver + 1:])


@dataclass(eq=False, repr=False)
class Entry:
    """What a write stores for one package; ``None`` parts mean "this entry has none"."""

    meta: PkgMeta
    files: FileList | None = None
    mtree: bytes | None = None
    scriptlet: bytes | None = None
    changelog: bytes | None = None

    @property
    def key(self) -> EntryKey:
        return EntryKey(self.meta.name, self.meta.version)


@dataclass(repr=False)
class RawEntry:
    """One entry's stored bytes, part name (:data:`PART_NAMES`) → content, as kept.

    What conversion between backends moves: nothing is parsed and re-rendered,
    so files → SQLite → files gives back the same bytes.
    """

    key: EntryKey
    parts: dict[str, bytes]
    #: Part name → modification time (ns) where the store knows one: pacman's ``-Qkk``
    #: compares the ``install`` and ``changelog`` files' times with the package's mtree.
    mtimes: dict[str, int] = field(default_factory=dict)


class DatabaseBackend(abc.ABC):
    """Storage for one database: scan identities, read parts, write and remove entries.

    The life cycle is libalpm's: :meth:`open` validates (refusing a store of an
    unknown format), :meth:`scan` lists identities only (cheap for thousands of
    entries), :meth:`read` loads the requested :class:`Part` s of one entry on
    demand. Writers must be atomic per call: after a crash an entry is either
    the old one or the new one, never a mixture.
    """

    #: Whether :meth:`write` and :meth:`remove` are supported.
    writable: bool = False
    #: How messages name this store (a path, a URL...).
    label: str = "database"
    #: False when the store is simply not there (a sync database not downloaded yet).
    exists: bool = True
    #: Whether writes are flushed to stable storage before they return (``False``
    #: only for throwaway test fixtures); the commit journal follows the same choice.
    durable: bool = True
    #: While a commit flushes the file system itself in batches (see
    #: :mod:`alpmd.engine.journal`), writes skip their own flushes; they stay atomic.
    deferred: bool = False

    def defer_sync(self, defer: bool) -> None:
        """Start or stop leaving the flushes of writes to the caller (a commit)."""
        self.deferred = defer

    @abc.abstractmethod
    def open(self) -> None:
        """Validate the store (format, version); raises ``AlpmError`` when unusable."""

    def close(self) -> None:  # noqa: B027 - most backends hold nothing between calls
        """Release what :meth:`open` acquired."""

    @abc.abstractmethod
    def scan(self) -> Iterator[EntryKey]:
        """Every entry's name and version, in no particular order; invalid entries skipped."""

    def versions(self) -> dict[str, str]:
        """Name → version of every entry (a store that has them at hand may skip the keys)."""
        return {key.name: key.version for key in self.scan()}

    def unique_versions(self) -> dict[str, str] | None:
        """Name → version in one step when no name has two entries, else ``None`` (then
        :meth:`scan` tells the duplicates apart); a new view, as :meth:`scan` starts one."""
        return None

    def group_index(self) -> dict[str, list[str]] | None:
        """Group → member names in name order, if the store keeps one (else ``None``)."""
        return None

    @abc.abstractmethod
    def read(self, key: EntryKey, parts: Part) -> Loaded:
        """Load ``parts`` of one entry; parts the store lacks come back as ``None``."""

    def read_fields(self, key: EntryKey, fields: Sequence[str]) -> dict[str, Any] | None:
        """Some :class:`PkgMeta` fields of one entry, cheaper than :meth:`read`, or ``None``.

        Bulk questions (who depends on X, who provides Y) need two or three
        fields of every package; a store that can read just those says so here.
        ``None`` means "read the whole entry instead".
        """
        return None

    def columns(self, fields: Sequence[str]) -> tuple[list[str], dict[str, list[Any]]] | None:
        """Every entry's name (in name order) and ``fields`` of each, or ``None``.

        For stores that keep fields column-wise (a sync snapshot); only valid
        while the database holds exactly what the store scanned.
        """
        return None

    def write(self, entry: Entry, parts: Part = Part.ALL) -> None:
        """Store ``parts`` of ``entry`` (creating it, or replacing those parts)."""
        raise AlpmError(ErrorCode.DB_WRITE, f"{self.label} is read-only")

    def replace(self, old: EntryKey, entry: Entry, parts: Part = Part.ALL) -> None:
        """Swap one entry for another of the same package (an upgrade).

        The default writes the new entry before removing the old one, so a crash
        in between leaves both (the newer wins at the next scan) rather than
        neither; a transactional backend does both at once.
        """
        self.write(entry, parts)
        if old != entry.key:
            self.remove(old)

    def remove(self, key: EntryKey) -> None:
        """Delete one entry and everything stored with it."""
        raise AlpmError(ErrorCode.DB_REMOVE, f"{self.label} is read-only")

    # -- raw access: checks, recovery, conversion ------------------------------------------

    def read_raw(self, key: EntryKey) -> RawEntry:
        """Every part of one entry as the store keeps it (for conversion)."""
        raise AlpmError(ErrorCode.DB_INVALID, f"{self.label} cannot be converted")

    def write_raw(self, entries: Iterator[RawEntry]) -> None:
        """Fill an empty store with ``entries`` exactly as given (conversion target)."""
        raise AlpmError(ErrorCode.DB_WRITE, f"{self.label} is read-only")

    def check(self) -> list[Message]:
        """Problems a raw listing shows (``-Dk``): entries without ``desc`` or ``files``."""
        return []

    def part_file(self, key: EntryKey, part: Part) -> str | None:
        """The file a part is kept in, when the store keeps parts as files (``-Qkk``
        compares ``.INSTALL`` and ``.CHANGELOG`` of the mtree with them); else ``None``."""
        return None

    def stamp(self) -> int:
        """A number that changes when the store is written (by us or another program)."""
        return 0

    def grep(self, keys: Sequence[EntryKey], part: Part, needles: Sequence[bytes] | None
             ) -> Iterator[tuple[EntryKey, bytes | None]]:
        """The entries of ``keys`` (in that order, lazily) whose stored ``part`` holds one
        of ``needles`` as bytes, each with those bytes; ``None`` needles: every entry.

        A prefilter for one-shot questions (``-Qo``, a ``-Qi``'s required-by, a
        ``-Qs``): a substring test in C on the raw part costs a fraction of parsing
        it, and only the few entries that may answer get parsed. The bytes are
        ``None`` when this store cannot hand them out: the caller then reads the
        entry the usual way (and gets its usual error). This default filters nothing.
        """
        return ((key, None) for key in keys)

    def owners(self, paths: Sequence[str]) -> dict[str, list[EntryKey]] | None:
        """Path → entries listing it, from an index; ``None`` when the store has none."""
        return None
