"""Read-only questions about databases, answered as libalpm answers them.

Everything pacman's ``-Q``, ``-S`` (query side), ``-T`` and ``-Dk`` need
lives here, so that the command line and the daemon only format: search
(``_alpm_db_search``), satisfiers, required-by and optional-for
(``alpm_pkg_compute_requiredby``), file owners (``-Qo``) and the ``-Q``
filters. What a ``-Q`` never asks lives apart, so that its start-up does not
build it: file checks (``-Qk``/``-Qkk``, pacman's check.c) in
:mod:`alpmd.engine.check`, the files database search (``-F``) in
:mod:`alpmd.engine.filesearch`, leftover ``.pacnew`` files in
:mod:`alpmd.engine.leftovers`.

Speed comes from indexes built lazily per database and kept while the
database's package list is unchanged (the list object is replaced whenever
the database changes): provisions, reverse dependencies, file owners and a
search blob. A warm engine answers a lookup or a search over 15,000
packages in milliseconds.
"""

from __future__ import annotations

import enum
import fnmatch
import os
import stat
import weakref
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, repeat

from alpmd import TYPE_CHECKING
from alpmd.engine.db.cache import CachedDatabase
from alpmd.engine.db.local import LocalDatabase
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import Reason
from alpmd.engine.package import Origin, Package, Part
from alpmd.engine.version import vercmp
from alpmd.i18n import N_, Message

if TYPE_CHECKING:
    from typing import Any

    from alpmd.engine.db.cache import PackageCache
    from alpmd.engine.db.sync import SyncDatabase
    from alpmd.engine.depend import Depend
    from alpmd.engine.handle import Handle
    from alpmd.engine.regex import PosixRegex

    #: What a query reads: the installed packages or a repository's (annotations only, so
    #: that a query of the installed packages does not import the sync module).
    Database = LocalDatabase | SyncDatabase
    #: One line of ``-Qs``: name, version, description, groups.
    SearchRow = tuple[str, str, str | None, list[str]]

__all__ = [
    "OwnerResult",
    "SCOPE_NAMES",
    "Scope",
    "check_db_local",
    "local_conflicts",
    "check_db_sync",
    "find_owner",
    "find_satisfier",
    "in_scope",
    "installed",
    "is_foreign",
    "is_unrequired",
    "missing_deps",
    "new_version",
    "optional_for",
    "parse_scope",
    "required_by",
    "search",
    "search_rows",
    "should_ignore",
    "what_provides",
]


# -- per-database indexes ---------------------------------------------------------------


def _dep_name(s: str) -> str:
    """The name part of a dependency string (what libalpm compares first)."""
    cut = s.find(": ")
    head = s if cut < 0 else s[:cut]
    for op in "<>=":
        pos = head.find(op)
        if pos >= 0:
            head = head[:pos]
    return head


#: The fields the dependency indexes read together (one pass over the local descs).
_DEP_FIELDS = ("depends", "optdepends", "provides")
#: The fields of a search line (with the name).
_SEARCH_FIELDS = ("desc", "provides", "groups")


class _Index:
    """Lazily built lookup tables for one state of one database.

    Tables are built from the database's columns (:meth:`CachedDatabase.columns`),
    so a sync snapshot answers without decoding any package and the local
    database reads only the sections it needs; packages are made only for the
    entries a lookup returns.
    """

    def __init__(self, db: Database, state: tuple[PackageCache, int]) -> None:
        # Weak, the database and its state's cache (which refers to the database): the
        # index lives in a WeakKeyDictionary keyed by ``db``, and a strong reference from
        # the value would keep every database (and its handle) alive for good.
        self._db = weakref.ref(db)
        self._cache = weakref.ref(state[0])
        self._generation = state[1]
        self.names: list[str] | None = None
        self._cols: dict[str, list[Any]] = {}
        self._order: dict[str, int] | None = None
        self._provides: dict[str, list[str]] | None = None
        self._revdeps: dict[str, list[tuple[str, str]]] | None = None
        self._revopt: dict[str, list[tuple[str, str]]] | None = None
        self._owners: dict[str, list[Package]] | None = None
        self._blob: _Blob | None = None
        #: Owner lookups answered by a scan so far (the index is built at the second).
        self.owner_scans = 0
        #: Required-by questions answered by a scan so far, and the last answer (names
        #: asked, dependers, optional dependers): -Qi asks both for one package.
        self.dep_scans = 0
        self._scanned: tuple[tuple[str, ...], _Dependers, _Dependers] | None = None
        #: Searches answered by a scan so far (the blob is built at the second).
        self.search_scans = 0

    def current(self, state: tuple[PackageCache, int]) -> bool:
        """Whether the index was built for this state of its database."""
        return self._cache() is state[0] and self._generation == state[1]

    @property
    def db(self) -> Database:
        db = self._db()
        if db is None:  # only reached through _index(db), whose caller holds the database
            raise ReferenceError("the database of this index is gone")
        return db

    def column(self, field: str, together: Sequence[str]) -> list[Any]:
        """``field`` of every package (in :attr:`names` order), read along with ``together``."""
        got = self._cols.get(field)
        if got is None:
            want = [f for f in together if f not in self._cols]
            if field not in want:
                want.append(field)
            names, values = self.db.columns(want)
            if self.names is None:
                self.names = names
            self._cols.update(values)
            got = values[field]
        return got

    def all_names(self) -> list[str]:
        if self.names is None:
            self.names = list(self.db.versions)
            self.names.sort()
        return self.names

    def pkgs(self, names: Iterable[str]) -> list[Package]:
        get = self.db.get
        return [p for p in map(get, names) if p is not None]

    @property
    def order(self) -> dict[str, int]:
        if self._order is None:
            names = self.all_names()
            self._order = dict(zip(names, range(len(names)), strict=True))
        return self._order

    def _by_name(self, field: str, together: Sequence[str]) -> dict[str, list[str]]:
        """Dependency-like name -> names of the packages listing it in ``field``, in order."""
        col = self.column(field, together)
        assert self.names is not None
        idx: dict[str, list[str]] = {}
        for name, values in zip(self.names, col, strict=True):
            for value in values:
                lst = idx.setdefault(_dep_name(value), [])
                if not lst or lst[-1] != name:
                    lst.append(name)
        return idx

    @property
    def provides(self) -> dict[str, list[str]]:
        """Provision name -> names of the packages providing it, in database order."""
        if self._provides is None:
            self._provides = self._by_name("provides", _DEP_FIELDS)
        return self._provides

    def _dependers(self, field: str) -> dict[str, list[tuple[str, str]]]:
        """Dependency name -> (package name, dependency as written) for each package
        listing it in ``field``, in database order: who depends is answered from the
        column, without loading any depending package."""
        col = self.column(field, _DEP_FIELDS)
        assert self.names is not None
        idx: dict[str, list[tuple[str, str]]] = {}
        for name, values in zip(self.names, col, strict=True):
            for value in values:
                idx.setdefault(_dep_name(value), []).append((name, value))
        return idx

    def dependers(self, names: Sequence[str], optional: bool) -> _Dependers:
        """Who lists one of ``names`` (at least) in depends, or optdepends when ``optional``.

        The first question on a local database is answered by a scan that parses
        only the entries mentioning a name (a -Qi of one package, both fields at
        once); the next one builds the whole index, as every later one uses it.
        """
        key = tuple(names)
        scanned = self._scanned
        if scanned is not None and scanned[0] == key:
            return scanned[2] if optional else scanned[1]
        built = (self._revopt if optional else self._revdeps) is not None
        db = self.db
        if not built and self.dep_scans == 0 and isinstance(db, LocalDatabase):
            self.dep_scans += 1
            deps, opts = _scan_dependers(db, names)
            self._scanned = (key, deps, opts)
            return opts if optional else deps
        return self.revopt if optional else self.revdeps

    @property
    def revdeps(self) -> dict[str, list[tuple[str, str]]]:
        """Dependency name -> the packages depending on it, with the dependency."""
        if self._revdeps is None:
            self._revdeps = self._dependers("depends")
        return self._revdeps

    @property
    def revopt(self) -> dict[str, list[tuple[str, str]]]:
        """Optional dependency name -> the packages listing it, with the optdepend."""
        if self._revopt is None:
            self._revopt = self._dependers("optdepends")
        return self._revopt

    @property
    def owners(self) -> dict[str, list[Package]]:
        """Path (relative, directories with a trailing slash) -> owning packages."""
        if self._owners is None:
            idx: dict[str, list[Package]] = {}
            for pkg in self.db.packages:
                for path in pkg.files:
                    idx.setdefault(path, []).append(pkg)
            self._owners = idx
        return self._owners

    @property
    def has_blob(self) -> bool:
        """Whether the search text is built (a search then needs no scan)."""
        return self._blob is not None

    @property
    def blob(self) -> _Blob:
        """Search text: one line per name, description, provision and group."""
        if self._blob is None:
            descs = self.column("desc", _SEARCH_FIELDS)
            provides = self.column("provides", _SEARCH_FIELDS)
            groups = self.column("groups", _SEARCH_FIELDS)
            names = self.names
            assert names is not None
            self._blob = _make_blob(names, descs, provides, groups)
        return self._blob


def _make_blob(names: list[str], descs: Sequence[str | None],
               provides: Sequence[Sequence[str]], groups: Sequence[Sequence[str]]) -> _Blob:
    """The search text of these packages (see :attr:`_Index.blob`)."""
    # One pass in Python collects the lines; offsets and owners are then
    # computed by C-level accumulate/repeat (this runs cold on every -Ss).
    lines: list[str] = []
    counts: list[int] = []
    add, extend, count = lines.append, lines.extend, counts.append
    for name, desc, provs, grps in zip(names, descs, provides, groups, strict=True):
        add(name)
        n = 1
        if desc:
            add(desc.replace("\n", " "))
            n += 1
        if provs:
            extend(map(_dep_name, provs))
            n += len(provs)
        if grps:
            extend(g.replace("\n", " ") for g in grps)
            n += len(grps)
        count(n)
    starts = [0, *accumulate(len(line) + 1 for line in lines)]
    next_start = [starts[k] for k in accumulate(counts)]
    del starts[-1]
    owner = list(chain.from_iterable(map(repeat, range(len(counts)), counts)))
    name_starts = [0, *accumulate(len(name) + 1 for name in names)]
    del name_starts[-1]
    text = "\n".join(lines)
    # Same offsets either way; lower() is much faster when there is nothing
    # but ASCII (then it lowers exactly ASCII_LOWER's letters).
    if text.isascii():
        lower = text.lower()
    else:
        from alpmd.engine.regex import ASCII_LOWER

        lower = text.translate(ASCII_LOWER)
    return _Blob(text, lower, starts, owner, next_start, "\n".join(names), name_starts, names)


#: Dependency name -> (package name, dependency as written), in database order.
_Dependers = dict[str, list[tuple[str, str]]]


def _scan_dependers(db: LocalDatabase, names: Sequence[str]) -> tuple[_Dependers, _Dependers]:
    """:attr:`_Index.revdeps` and :attr:`_Index.revopt` restricted to ``names``, from the
    entries whose ``desc`` holds one of them as bytes (a name a dependency starts
    with is in its line); only those are parsed, both fields in one pass."""
    from alpmd.engine.db.local import desc_list_fields

    wanted = set(names)
    # A dependency's name starts its text: str.startswith rules out most in C.
    starts = tuple(wanted)
    deps: _Dependers = {}
    opts: _Dependers = {}
    fields = ("depends", "optdepends")
    for name, data in db.grep(Part.DESC, [n.encode("utf-8", "surrogateescape")
                                          for n in wanted]):
        got = desc_list_fields(data, fields) if data is not None else None
        if got is None:
            pkg = db.get(name)
            if pkg is None:
                continue
            got = {"depends": pkg.depends, "optdepends": pkg.optdepends}
        for key, table in (("depends", deps), ("optdepends", opts)):
            for value in got[key]:
                if value.startswith(starts):
                    dep = _dep_name(value)
                    if dep in wanted:
                        table.setdefault(dep, []).append((name, value))
    return deps, opts


class _Blob:
    """A database's search text (a plain class: a dataclass costs a millisecond of import)."""

    __slots__ = ("text", "lower", "starts", "owner", "next_start", "names", "name_starts",
                 "name_list")

    def __init__(self, text: str, lower: str, starts: list[int], owner: list[int],
                 next_start: list[int], names: str, name_starts: list[int],
                 name_list: list[str]) -> None:
        self.text = text
        self.lower = lower
        self.starts = starts
        self.owner = owner
        self.next_start = next_start
        self.names = names
        self.name_starts = name_starts
        self.name_list = name_list


_INDEXES: weakref.WeakKeyDictionary[object, _Index] = weakref.WeakKeyDictionary()


def _index(db: Database) -> _Index:
    state = db.state
    idx = _INDEXES.get(db)
    if idx is None or not idx.current(state):
        idx = _Index(db, state)
        _INDEXES[db] = idx
    return idx


# -- search -----------------------------------------------------------------------------


def search(db: Database, patterns: Sequence[str], *,
           deadline: float | None = None) -> list[Package]:
    """Packages matching every pattern (``alpm_db_search``), in database order.

    A pattern matches a package when it matches, as a POSIX extended regular
    expression ignoring case, the name (or occurs in it literally), the
    description, a provision's name or a group. No pattern: every package.
    Raises ``AlpmError(INVALID_REGEX)`` for a pattern the C library refuses.

    ``deadline`` (a ``time.monotonic()`` value) makes the search bounded, for
    callers serving others: ``AlpmError(PATTERN_TOO_COSTLY)`` for a pattern that
    cannot be matched by then (see :mod:`alpmd.engine.regex`).
    """
    if not patterns:
        return list(db.packages)
    found: list[Package] = []
    names, descs, groups = _search_matches(db, patterns, deadline)
    seed = db.origin is Origin.LOCALDB
    for i, name in enumerate(names):
        pkg = db.get(name)
        if pkg is None:
            continue
        if seed:  # -Qs prints the description and groups the search has just read
            pkg.seed({"desc": descs[i], "groups": list(groups[i])})
        found.append(pkg)
    return found


def search_rows(db: LocalDatabase, patterns: Sequence[str]) -> list[SearchRow]:
    """What ``-Qs`` prints of each installed package :func:`search` finds: name,
    version, description and groups, in database order, without making packages."""
    versions = db.versions
    names, descs, groups = _search_matches(db, patterns, None)
    return [(name, versions[name], descs[i], list(groups[i]))
            for i, name in enumerate(names) if name in versions]


def _search_matches(db: Database, patterns: Sequence[str], deadline: float | None
                    ) -> tuple[list[str], list[str | None], list[list[str]]]:
    """Names of the packages matching every pattern, in database order, with the
    descriptions and groups read for them (local databases only; empty otherwise)."""
    # The regex module (ctypes, libc's regcomp) loads only for a search: -Qi never pays.
    from alpmd.engine.regex import compile_posix, is_literal

    bounded = deadline is not None
    regs = [compile_posix(p, bounded=bounded) for p in patterns]
    idx = _index(db)
    local = db.origin is Origin.LOCALDB
    if not regs:  # every package (what -Qs prints of each is read from its entry)
        every = list(db.packages)
        return ([p.name for p in every], [p.desc for p in every] if local else [],
                [p.groups for p in every] if local else [])
    scanned = None
    if isinstance(db, LocalDatabase) and idx.search_scans == 0 and not idx.has_blob:
        idx.search_scans += 1
        scanned = _scan_search(db, patterns, regs)
    if scanned is not None:
        b, descs, groups = scanned
    else:
        b = idx.blob
        descs = idx.column("desc", _SEARCH_FIELDS) if local else []
        groups = idx.column("groups", _SEARCH_FIELDS) if local else []
    names, name_starts = b.names, b.name_starts
    selected: set[int] | None = None
    for reg, pat in zip(regs, patterns, strict=True):
        hits = set(reg.matching_groups(b.text, b.lower, b.starts, b.owner, b.next_start,
                                       deadline))
        if pat and not is_literal(pat):
            pos = names.find(pat)
            while pos >= 0:
                k = bisect_right(name_starts, pos) - 1
                hits.add(k)
                nxt = name_starts[k + 1] if k + 1 < len(name_starts) else len(names)
                pos = names.find(pat, nxt)
        selected = hits if selected is None else selected & hits
        if not selected:
            return [], [], []
    assert selected is not None
    order = sorted(selected)
    all_names = b.name_list
    if not local:
        return [all_names[i] for i in order], [], []
    return ([all_names[i] for i in order], [descs[i] for i in order],
            [groups[i] for i in order])


def _scan_search(db: LocalDatabase, patterns: Sequence[str], regs: Sequence[PosixRegex]
                 ) -> tuple[_Blob, list[str | None], list[list[str]]] | None:
    """The search text of the installed packages that may match, with their descriptions
    and groups, or ``None`` when no pattern narrows the search down.

    A literal ASCII pattern that is matched on ASCII-lowered text (see
    :class:`PosixRegex`) can only match a package whose name or lowered ``desc``
    bytes hold it: every searched line is part of one of them. Only those
    entries are parsed; the patterns then run on their text as on the whole blob.
    """
    from alpmd.engine.db.local import desc_list_fields
    from alpmd.engine.regex import is_literal

    words = [(p.lower(), p.lower().encode()) for p, reg in zip(patterns, regs, strict=True)
             if p and p.isascii() and "\n" not in p and is_literal(p)
             and reg.lower is not None and not reg.bounded and not reg.matches_empty]
    if not words:
        return None
    names: list[str] = []
    descs: list[str | None] = []
    provides: list[list[str]] = []
    groups: list[list[str]] = []
    # One word (the usual search) is tested without a generator per package.
    word, bword = words[0] if len(words) == 1 else ("", b"")
    for name, data in db.grep(Part.DESC, None):
        got = None
        if data is not None:
            low = data.lower()
            if bword:
                if bword not in low and word not in name.lower():
                    continue
            elif not all(bw in low or w in name.lower() for w, bw in words):
                continue
            got = desc_list_fields(data, _SEARCH_FIELDS)
        if got is None:
            pkg = db.get(name)
            if pkg is None:
                continue
            got = {"desc": pkg.desc, "provides": pkg.provides, "groups": pkg.groups}
        names.append(name)
        descs.append(got["desc"])
        provides.append(got["provides"])
        groups.append(got["groups"])
    return _make_blob(names, descs, provides, groups), descs, groups


# -- satisfiers and provisions -----------------------------------------------------------


def _satisfiers_in(db: Database, dep: Depend) -> list[Package]:
    """Candidates in database order: the package of that name and every provider."""
    idx = _index(db)
    cands: list[Package] = []
    pkg = db.get(dep.name)
    if pkg is not None:
        cands.append(pkg)
    for prov in idx.pkgs(idx.provides.get(dep.name, ())):
        if prov is not pkg:
            cands.append(prov)
    if len(cands) > 1:
        order = idx.order
        cands.sort(key=lambda p: order.get(p.name, 0))
    return cands


def find_satisfier(dbs: Database | Iterable[Database], dep: str | Depend) -> Package | None:
    """The first package satisfying ``dep`` (``alpm_find_satisfier`` over each db in turn)."""
    # Dependencies are parsed by -Qi, -Dk and the daemon: -Qs, -Qo and -Q never load them.
    from alpmd.engine.depend import Depend

    if isinstance(dep, str):
        dep = Depend.parse(dep)
    if isinstance(dbs, CachedDatabase):
        dbs = [dbs]
    for db in dbs:
        for pkg in _satisfiers_in(db, dep):
            if dep.satisfied_by(pkg):
                return pkg
    return None


def what_provides(dbs: Iterable[Database], name: str) -> list[Package]:
    """Every package, over ``dbs`` in order, that is called ``name`` or provides it."""
    from alpmd.engine.depend import Depend

    dep = Depend(name)
    out: list[Package] = []
    for db in dbs:
        out.extend(p for p in _satisfiers_in(db, dep) if dep.satisfied_by(p))
    return out


def _satisfies(pkg: Package, depstr: str) -> bool:
    from alpmd.engine.depend import Depend

    try:
        dep = Depend.parse(depstr)
    except AlpmError:
        return False
    return dep.satisfied_by(pkg)


def _find_requiredby(pkg: Package, db: Database, optional: bool, out: list[str]) -> None:
    idx = _index(db)
    names = list(dict.fromkeys([pkg.name, *map(_dep_name, pkg.provides)]))
    table = idx.dependers(names, optional)
    found: set[str] = set()
    for n in names:
        for cand, depstr in table.get(n, ()):
            if cand not in found and _satisfies(pkg, depstr):
                found.add(cand)
    order = idx.order
    for cand in sorted(found, key=lambda c: order.get(c, 0)):
        if cand not in out:
            out.append(cand)


def _compute_requiredby(handle: Handle, pkg: Package, optional: bool) -> list[str]:
    out: list[str] = []
    db = pkg.db
    if pkg.origin is Origin.FILE or db is None:
        _find_requiredby(pkg, handle.localdb, optional, out)
    elif isinstance(db, LocalDatabase):
        _find_requiredby(pkg, db, optional, out)
    else:
        for sdb in handle.syncdbs:
            _find_requiredby(pkg, sdb, optional, out)
        out.sort(key=lambda s: s.encode("utf-8", "surrogateescape"))
    return out


def required_by(handle: Handle, pkg: Package) -> list[str]:
    """Names of packages depending on ``pkg`` (local: the local db; sync: all sync dbs)."""
    return _compute_requiredby(handle, pkg, False)


def optional_for(handle: Handle, pkg: Package) -> list[str]:
    """Names of packages listing ``pkg`` among their optional dependencies."""
    return _compute_requiredby(handle, pkg, True)


# -- -Q filters -------------------------------------------------------------------------


def is_foreign(handle: Handle, pkg: Package) -> bool:
    """Whether no sync database has a package of that name (``-Qm``; ``-Qn`` is the rest)."""
    return not any(pkg.name in db for db in handle.syncdbs)


def is_unrequired(handle: Handle, pkg: Package, level: int) -> bool:
    """``-Qt``: nothing requires it; at level 1 nothing optionally requires it either."""
    if required_by(handle, pkg):
        return False
    if level == 1 and optional_for(handle, pkg):
        return False
    return True


def new_version(handle: Handle, pkg: Package) -> Package | None:
    """The newer package of that name in the first sync db having one (``alpm_sync_get_new_version``)."""
    for db in handle.syncdbs:
        spkg = db.get(pkg.name)
        if spkg is not None:
            return spkg if vercmp(spkg.version, pkg.version) > 0 else None
    return None


def upgrades(handle: Handle, sync: Handle | None = None) -> list[tuple[Package, Package]]:
    """(installed, newer) for every installed package with a newer version (``-Qu``).

    ``sync`` is the handle whose sync databases are compared, when they are not
    ``handle``'s own (the daemon's shadow databases after a background refresh).
    """
    source = sync if sync is not None else handle
    out: list[tuple[Package, Package]] = []
    for pkg in handle.localdb.packages:
        new = new_version(source, pkg)
        if new is not None:
            out.append((pkg, new))
    return out


def should_ignore(handle: Handle, pkg: Package) -> bool:
    """Whether IgnorePkg (globs) or IgnoreGroup names this package (``alpm_pkg_should_ignore``)."""
    opts = handle.options
    for pat in opts.ignorepkg:
        neg = pat.startswith("!")
        if fnmatch.fnmatchcase(pkg.name, pat[1:] if neg else pat):
            return not neg
    groups = pkg.groups if opts.ignoregroup else []
    for grp in groups:
        for pat in opts.ignoregroup:
            neg = pat.startswith("!")
            if fnmatch.fnmatchcase(grp, pat[1:] if neg else pat):
                return not neg
    return False


# -- file owners (-Qo) -------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class OwnerResult:
    """The path as pacman prints it, and its owners (several only for a directory)."""

    path: str
    owners: list[Package]


def _lrealpath(path: str, opener: PathOpener | None = None) -> str | None:
    """Canonicalise the directory part, keeping the last component unresolved (pacman's lrealpath)."""
    base = os.path.basename(path)
    if base in (".", ".."):
        return _realpath_strict(path, opener)
    dname = os.path.dirname(path) or "."
    rdir = _realpath_strict(dname, opener)
    if rdir is None:
        return None
    return rdir + ("" if rdir.endswith("/") else "/") + base


#: How a look-up opens a path: ``(path, flags) -> descriptor``, the flags always holding
#: ``O_PATH``; :func:`os.open` by default. A daemon answering a user passes one that
#: refuses /proc's magic links (``alpmd.dbus.caller.open_no_magic``).
PathOpener = Callable[[str, int], int]


def _open_path(path: str, flags: int, opener: PathOpener | None) -> int:
    flags |= os.O_PATH | os.O_CLOEXEC
    return os.open(path, flags) if opener is None else opener(path, flags)


def _lstat(path: str, opener: PathOpener | None) -> os.stat_result:
    """``lstat(path)``, the path opened by ``opener`` when one is given."""
    if opener is None:
        return os.lstat(path)
    fd = _open_path(path, os.O_NOFOLLOW, opener)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _realpath_strict(path: str, opener: PathOpener | None = None) -> str | None:
    """realpath(3): None when a component does not exist.

    The kernel resolves it (one ``O_PATH`` open, then the descriptor's name): linear in the
    path, with the kernel's limit of 40 symbolic links as in glibc. ``os.path.realpath``
    walks it a component at a time, each an ``lstat`` from the root: quadratic, 80 ms for
    one path 2,000 directories deep, which a daemon's Owns asked 10,000 times per call.
    With an ``opener`` the path is opened by it only."""
    try:
        fd = _open_path(path, 0, opener)
    except OSError:
        return None
    try:
        resolved = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # no /proc (a bare chroot): the walk in Python
        resolved = ""
    finally:
        os.close(fd)
    if not resolved.startswith("/") or resolved.endswith(" (deleted)"):
        if opener is not None:
            return None  # (Python's walk would bypass it)
        try:
            resolved = os.path.realpath(path, strict=True)
        except OSError:
            return None
    return resolved


def _scan_owners(db: LocalDatabase, rel: str, *, first: bool) -> list[Package]:
    """Packages listing ``rel`` in name order (the first only when ``first``), as pacman
    walks the file lists; each list is tested as bytes and only a list that may hold
    ``rel`` is parsed.

    A listed path is a whole line after ``%FILES%``: always preceded by a newline
    (which the store tests), and followed by one, or by a carriage return or the
    end of the text in lists not written by pacman (then the list is parsed).
    """
    line = b"\n" + rel.encode("utf-8", "surrogateescape")
    whole = line + b"\n"
    owners: list[Package] = []
    for name, data in db.grep(Part.FILES, [line]):
        if data is not None and whole not in data and b"\r" not in data \
                and data.endswith(b"\n"):
            continue  # only longer paths start with it
        pkg = db.get(name)
        if pkg is not None and rel in pkg.files:
            owners.append(pkg)
            if first:
                break
    return owners


@dataclass(frozen=True)
class Located:
    """What the file system says of a -Qo target: its name (after a ``$PATH`` search),
    its directory's real path with its own name kept, and its ``lstat`` (None when it
    could not be resolved or read)."""

    filename: str
    rpath: str | None
    st: os.stat_result | None


#: How a target is looked up on the file system: ``(filename, search_path) -> Located``.
#: :func:`locate` by default; whoever answers for another user looks it up with that
#: user's rights (a path that resolves only with root's tells what lies in directories
#: the user may not search).
Resolver = Callable[[str, str | None], Located]


def locate(filename: str, search_path: str | None, *,
           opener: PathOpener | None = None) -> Located:
    """The file-system part of pacman's ``query_fileowner``, with this thread's rights;
    with an ``opener``, every look-up is an open by it (a daemon answering a user passes
    one that refuses /proc's magic links)."""
    st: os.stat_result | None
    try:
        st = _lstat(filename, opener)
    except OSError:
        st = None
        if "/" not in filename and search_path is not None:
            for d in search_path.split(":"):
                d = d.rstrip("/")
                full = f"{d}/{filename}"
                try:
                    st = _lstat(full, opener)
                except OSError:
                    continue
                filename = full
                break
    return Located(filename, _lrealpath(filename, opener), st)


def owner_target(target: str) -> tuple[str, bool]:
    """The name -Qo looks up for ``target`` (trailing slashes dropped), and whether it
    had any (then it is asked about as a directory)."""
    filename = target
    while len(filename) > 1 and filename.endswith("/"):
        filename = filename[:-1]
    return filename, filename != target


def find_owner(handle: Handle, target: str, *, search_path: str | None = None,
               resolve: Resolver = locate) -> OwnerResult:
    """Who owns ``target`` (pacman's ``query_fileowner`` for one target).

    Relative names without a slash that do not exist are looked up in
    ``search_path`` (pacman uses ``$PATH``). ``resolve`` looks the target up on the
    file system. Raises ``AlpmError(PKG_NOT_FOUND)`` with pacman's message when
    nothing owns it.
    """
    if target == "":
        raise AlpmError(ErrorCode.WRONG_ARGS, "empty string passed to file owner query")
    root = handle.options.root
    filename, is_dir = owner_target(target)
    found = resolve(filename, search_path)
    filename, st = found.filename, found.st
    rpath = found.rpath or filename
    if not rpath.startswith(root):
        raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"No package owns {filename}", path=filename)
    if st is None:
        pass
    else:
        is_dir = stat.S_ISDIR(st.st_mode)
    if is_dir:
        rpath += "/"
    rel = rpath[len(root):]
    owners: list[Package]
    indexed = handle.localdb.owners([rel])  # a store with an owners index (SQLite) answers
    idx = _index(handle.localdb) if indexed is None else None
    if indexed is not None:
        owners = indexed.get(rel, [])
    elif idx is not None and idx.owner_scans == 0:
        # The first question is answered as pacman does: file lists in database
        # order, stopping at the first owner of a file (a one-shot -Qo reads a few
        # lists, not all); a second question builds the index for the rest.
        idx.owner_scans += 1
        owners = _scan_owners(handle.localdb, rel, first=not is_dir)
    else:
        assert idx is not None
        owners = list(idx.owners.get(rel, ()))
    if not owners:
        raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"No package owns {filename}", path=filename)
    if not is_dir:
        owners = owners[:1]
    return OwnerResult(rpath, owners)


# -- database checks (-Dk, -Dkk) ------------------------------------------------------------


def missing_deps(pkgs: Sequence[Package]) -> list[tuple[str, str]]:
    """(dependency, package) for every dependency no package of ``pkgs`` satisfies.

    Like ``alpm_checkdeps`` with nothing added or removed: each package's
    dependencies against the whole list (names and provisions).
    """
    from alpmd.engine.depend import Depend

    by_name: dict[str, list[Package]] = {}
    for p in pkgs:
        by_name.setdefault(p.name, []).append(p)
        for prov in p.provides:
            by_name.setdefault(_dep_name(prov), []).append(p)
    out: list[tuple[str, str]] = []
    for p in pkgs:
        for depstr in p.depends:
            try:
                dep = Depend.parse(depstr)
            except AlpmError:
                out.append((depstr, p.name))
                continue
            if not any(dep.satisfied_by(c) for c in by_name.get(dep.name, ())):
                out.append((str(dep), p.name))
    return out


def local_conflicts(pkgs: Sequence[Package]) -> list[tuple[str, str]]:
    """Pairs of installed packages where one conflicts with the other (``alpm_checkconflicts``)."""
    from alpmd.engine.depend import Depend

    out: list[tuple[str, str]] = []
    for i, p in enumerate(pkgs):
        for q in pkgs[i + 1:]:
            for a, b in ((p, q), (q, p)):
                for c in a.conflicts:
                    try:
                        dep = Depend.parse(c)
                    except AlpmError:
                        continue
                    if a.name != b.name and dep.satisfied_by(b):
                        out.append((a.name, b.name))
                        break
    return out


def check_db_local(handle: Handle) -> list[Message]:
    """``-Dk``: messages for missing entry files, dependencies, conflicts and shared files."""
    msgs = handle.localdb.check()
    if msgs:
        return msgs
    pkgs = handle.localdb.packages
    msgs += _missing(pkgs)
    msgs += [Message(N_("'{a}' conflicts with '{b}'"), {"a": a, "b": b})
             for a, b in local_conflicts(pkgs)]
    seen: dict[str, Package] = {}
    allfiles: list[tuple[str, Package]] = []
    for p in pkgs:
        allfiles.extend((f, p) for f in p.files if not f.endswith("/"))
    allfiles.sort(key=lambda t: t[0].encode("utf-8", "surrogateescape"))
    for f, p in allfiles:
        prev = seen.get(f)
        if prev is not None:
            msgs.append(Message(N_("file owned by '{a}' and '{b}': '{file}'"),
                                {"a": prev.name, "b": p.name, "file": f}))
        seen[f] = p
    return msgs


def check_db_sync(handle: Handle) -> list[Message]:
    """``-Dkk``: dependencies of all sync packages that no sync package satisfies."""
    pkgs: list[Package] = []
    for db in handle.syncdbs:
        pkgs.extend(db.packages)
    return _missing(pkgs)


def _missing(pkgs: Sequence[Package]) -> list[Message]:
    return [Message(N_("missing '{dep}' dependency for '{pkg}'"), {"dep": d, "pkg": t})
            for d, t in missing_deps(pkgs)]


# -- scopes of installed packages ----------------------------------------------------------


class Scope(enum.Flag):
    """Which installed packages a query keeps (pacman ``-Q``'s filters); combined flags
    must all hold. ``INSTALLED`` (no flag) keeps every one; ``ORPHANS`` is ``-Qdt``."""

    INSTALLED = 0
    EXPLICIT = enum.auto()        # -Qe
    DEPENDENCIES = enum.auto()    # -Qd
    UNREQUIRED = enum.auto()      # -Qt
    FOREIGN = enum.auto()         # -Qm: in no sync database
    NATIVE = enum.auto()          # -Qn: in a sync database (ignored along with FOREIGN)
    UPGRADABLE = enum.auto()      # -Qu
    ORPHANS = DEPENDENCIES | UNREQUIRED


#: the names front ends and the daemon use for the scopes
SCOPE_NAMES: dict[str, Scope] = {
    "installed": Scope.INSTALLED, "explicit": Scope.EXPLICIT,
    "dependencies": Scope.DEPENDENCIES, "deps": Scope.DEPENDENCIES,
    "unrequired": Scope.UNREQUIRED, "orphans": Scope.ORPHANS, "foreign": Scope.FOREIGN,
    "native": Scope.NATIVE, "upgradable": Scope.UPGRADABLE,
}


def parse_scope(name: str) -> Scope:
    """A scope by name (see :data:`SCOPE_NAMES`); WRONG_ARGS names the known ones."""
    try:
        return SCOPE_NAMES[name]
    except KeyError:
        raise AlpmError(ErrorCode.WRONG_ARGS, f"unknown scope {name!r} (one of "
                        f"{', '.join(SCOPE_NAMES)})", scope=name) from None


def in_scope(handle: Handle, pkg: Package, scope: Scope, *, unrequired_level: int = 0) -> bool:
    """Whether an installed package is in ``scope`` (pacman's ``filter()``); with
    ``unrequired_level`` 1 an optional dependant also keeps a package required (-Qtt)."""
    if Scope.EXPLICIT in scope and pkg.reason != Reason.EXPLICIT:
        return False
    if Scope.DEPENDENCIES in scope and pkg.reason != Reason.DEPEND:
        return False
    if Scope.FOREIGN in scope and not is_foreign(handle, pkg):
        return False
    if Scope.NATIVE in scope and Scope.FOREIGN not in scope and is_foreign(handle, pkg):
        return False
    if Scope.UNREQUIRED in scope and not is_unrequired(handle, pkg, unrequired_level):
        return False
    if Scope.UPGRADABLE in scope and new_version(handle, pkg) is None:
        return False
    return True


def installed(handle: Handle, scope: Scope = Scope.INSTALLED, *,
              unrequired_level: int = 0) -> list[Package]:
    """The installed packages in ``scope``, in the local database's order."""
    return [p for p in handle.localdb.packages
            if in_scope(handle, p, scope, unrequired_level=unrequired_level)]
