"""Dependency resolution: sync targets, system upgrades, conflicts, replaces, removals.

The choices follow libalpm 6 step by step so our plans match pacman's:

* targets are found as pacman's front end finds them (``repo/name``, a
  satisfier of the target string, else a group) and added as ``alpm_add_pkg``
  adds them (duplicates skipped, ``--needed``, the "up to date" warnings);
* ``sysupgrade`` walks the installed packages by name, repositories in order,
  replacers before a literal upgrade (``alpm_sync_sysupgrade``);
* dependencies are pulled depth-first per target (``_alpm_resolvedeps``): a
  dependency already met by the list, then the explicit targets, then one
  candidate from the repositories (a package of that name first, else the
  providers, asking when several) -- never a search over alternatives;
* conflicts among targets drop the one the other provides, conflicts with
  installed packages are asked about, then reverse dependencies are checked;
* the order is libalpm's depth-first sort over the targets and the installed
  packages they depend on (``_alpm_sortbydeps``), reversed for removal.

Unlike libalpm, everything is looked up through indexes by name and by
provided name, built once per resolution, and a package whose dependencies
could not be resolved is remembered: pacman retries such a subtree from every
path that reaches it (exponential on deep graphs); we answer from the memo
unless the list grew something that now meets one of its missing leaves.
"""

from __future__ import annotations

import fnmatch
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from alpmd.engine.config import Usage
from alpmd.engine.db.local import LocalDatabase
from alpmd.engine.db.sync import SyncDatabase
from alpmd.engine.depend import Depend, DepMod, satisfies, satisfies_literal
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import (
    CheckDeps,
    ConflictPackage,
    Event,
    EventCallback,
    InstallIgnored,
    InterConflicts,
    Operation,
    OptdepRemoval,
    QuestionCallback,
    RemoveUnresolvable,
    ReplacePackage,
    ResolveDeps,
    SelectGroupMembers,
    SelectProvider,
    TransFlag,
    Warning_,
    answer,
)
from alpmd.engine.formats.desc import Reason
from alpmd.engine.handle import Handle
from alpmd.engine.log import LogLevel
from alpmd.engine.package import Origin, Package
from alpmd.engine.target import split_repo
from alpmd.engine.version import vercmp

__all__ = [
    "Conflict",
    "MissingDep",
    "Plan",
    "held_targets",
    "resolve_remove",
    "resolve_sync",
    "should_ignore",
]


# -- results ----------------------------------------------------------------------------


@dataclass
class MissingDep:
    """``target`` needs ``depend`` and nothing meets it (``alpm_depmissing_t``).

    ``causing`` is the package whose removal or upgrade breaks it (reverse
    checks only); ``chain`` runs from the explicit target down to ``target``,
    so a front end can show why the dependency was wanted at all.
    """

    target: str
    depend: str
    causing: str | None = None
    chain: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        """``a -> b -> libmissing.so``."""
        return " -> ".join([*(self.chain or [self.target]), self.depend])

    def __str__(self) -> str:
        if self.causing is not None:
            return (f"removing {self.causing} breaks dependency '{self.depend}' "
                    f"required by {self.target}")
        return f"unable to satisfy dependency '{self.depend}' required by {self.target}"


@dataclass
class Conflict:
    """``pkg1`` (being installed) and ``pkg2`` conflict because of ``reason``."""

    pkg1: str
    pkg2: str
    reason: str

    def __str__(self) -> str:
        if Depend.relation(self.reason).mod is DepMod.ANY:
            return f"{self.pkg1} and {self.pkg2} are in conflict"
        return f"{self.pkg1} and {self.pkg2} are in conflict ({self.reason})"


@dataclass
class Plan:
    """What a transaction will do, in the order it will do it."""

    add: list[Package] = field(default_factory=list)
    remove: list[Package] = field(default_factory=list)
    reason: dict[str, Reason] = field(default_factory=dict)
    replaces: dict[str, list[Package]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: names the user asked for (not pulled in as dependencies, upgrades or by -s/-c)
    explicit: set[str] = field(default_factory=set)

    def operation(self, pkg: Package, localdb: LocalDatabase) -> Operation:
        """What happens to ``pkg``: compared with the installed version for added ones."""
        if any(p is pkg for p in self.remove):
            return Operation.REMOVE
        local = localdb.get(pkg.name)
        if local is None:
            return Operation.INSTALL
        cmp = vercmp(pkg.version, local.version)
        if cmp > 0:
            return Operation.UPGRADE
        if cmp < 0:
            return Operation.DOWNGRADE
        return Operation.REINSTALL

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove


# -- helpers ----------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _dep(text: str) -> Depend:
    return Depend.relation(text)


def _fnmatch_patterns(patterns: Sequence[str], text: str) -> bool:
    """libalpm's ``_alpm_fnmatch_patterns``: the last matching pattern wins, ``!`` negates."""
    for pattern in reversed(patterns):
        negated = pattern.startswith("!")
        if fnmatch.fnmatchcase(text, pattern[1:] if negated else pattern):
            return not negated
    return False


def should_ignore(handle: Handle, pkg: Package) -> bool:
    """Whether IgnorePkg or IgnoreGroup names ``pkg`` (``alpm_pkg_should_ignore``)."""
    opts = handle.options
    if opts.ignorepkg and _fnmatch_patterns(opts.ignorepkg, pkg.name):
        return True
    if opts.ignoregroup:
        return any(_fnmatch_patterns(opts.ignoregroup, g) for g in pkg.groups)
    return False


def invalid_arch(handle: Handle, pkgs: Iterable[Package]) -> list[str]:
    """``name-version-arch`` of the packages not built for a configured Architecture.

    libalpm's check_arch: only the transaction's own targets (before dependencies
    are resolved); ``any`` and packages without an arch always pass (an empty one,
    ``arch = ``, does not); no configured architecture means no check.
    """
    arches = handle.options.architectures
    if not arches:
        return []
    return [f"{p.name}-{p.version}-{p.arch}" for p in pkgs
            if p.arch is not None and p.arch != "any" and p.arch not in arches]


def held_targets(handle: Handle, plan: Plan) -> list[Package]:
    """The packages to be removed that HoldPkg protects (pacman asks before going on)."""
    held = handle.options.holdpkg
    return [p for p in plan.remove if any(fnmatch.fnmatchcase(p.name, h) for h in held)]


def _provides_literal(dep: Depend, provisions: Sequence[Depend]) -> bool:
    return satisfies("", "", provisions, dep) if provisions else False


class _Index:
    """An ordered package list with lookups by name and provided name.

    ``first``/``all`` answer ``find_dep_satisfier`` (list order) without a scan;
    packages are only ever appended, and :meth:`truncate` undoes appends.
    """

    __slots__ = ("pkgs", "names", "by_name", "by_prov")

    def __init__(self, pkgs: Iterable[Package] = ()) -> None:
        self.pkgs: list[Package] = []
        self.names: dict[str, int] = {}
        self.by_name: dict[str, list[int]] = {}
        self.by_prov: dict[str, list[int]] = {}
        for p in pkgs:
            self.add(p)

    def __len__(self) -> int:
        return len(self.pkgs)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def add(self, pkg: Package) -> None:
        pos = len(self.pkgs)
        self.pkgs.append(pkg)
        self.names.setdefault(pkg.name, pos)
        self.by_name.setdefault(pkg.name, []).append(pos)
        seen: set[str] = set()
        for prov in pkg.provides:
            pname = _dep(prov).name
            if pname not in seen:
                seen.add(pname)
                self.by_prov.setdefault(pname, []).append(pos)

    def truncate(self, n: int) -> None:
        while len(self.pkgs) > n:
            pos = len(self.pkgs) - 1
            pkg = self.pkgs.pop()
            if self.names.get(pkg.name) == pos:
                del self.names[pkg.name]
            lst = self.by_name[pkg.name]
            lst.pop()
            if not lst:
                del self.by_name[pkg.name]
            seen: set[str] = set()
            for prov in pkg.provides:
                pname = _dep(prov).name
                if pname in seen:
                    continue
                seen.add(pname)
                plst = self.by_prov[pname]
                plst.pop()
                if not plst:
                    del self.by_prov[pname]

    def _candidates(self, dep: Depend) -> list[int]:
        a = self.by_name.get(dep.name, ())
        b = self.by_prov.get(dep.name, ())
        if not b:
            return list(a)
        if not a:
            return list(b)
        return sorted(set(a) | set(b))

    def all(self, dep: Depend, exclude: Callable[[str], bool] | None = None) -> list[Package]:
        out = []
        for pos in self._candidates(dep):
            pkg = self.pkgs[pos]
            if exclude is not None and exclude(pkg.name):
                continue
            if dep.satisfied_by(pkg):
                out.append(pkg)
        return out

    def first(self, dep: Depend, exclude: Callable[[str], bool] | None = None) -> Package | None:
        for pos in self._candidates(dep):
            pkg = self.pkgs[pos]
            if exclude is not None and exclude(pkg.name):
                continue
            if dep.satisfied_by(pkg):
                return pkg
        return None


class _ByName:
    """Name -> packages, kept as package names until asked (most are never looked up)."""

    def __init__(self, db: SyncDatabase, names: dict[str, list[str]]) -> None:
        self._db = db
        self._names = names
        self._pkgs: dict[str, list[Package]] = {}

    def get(self, name: str, default: Sequence[Package] = ()) -> Sequence[Package]:
        got = self._pkgs.get(name)
        if got is None:
            names = self._names.get(name)
            if names is None:
                return default
            get = self._db.get
            got = self._pkgs[name] = [p for p in map(get, names) if p is not None]
        return got


@dataclass
class _DbIndex:
    """A sync database's providers and replacers by name, in pkgcache (name) order."""

    state: object
    provides: _ByName
    replaces: _ByName


_db_indexes: weakref.WeakKeyDictionary[SyncDatabase, _DbIndex] = weakref.WeakKeyDictionary()


def _db_index(db: SyncDatabase) -> _DbIndex:
    """Built on first use and kept while the database's contents stay the same.

    Built from the database's columns: from a snapshot no package is decoded.
    """
    idx = _db_indexes.get(db)
    state = db.state
    if idx is not None and idx.state == state:
        return idx
    names, cols = db.columns(("provides", "replaces"))
    provides: dict[str, list[str]] = {}
    replaces: dict[str, list[str]] = {}
    for table, col in ((provides, cols["provides"]), (replaces, cols["replaces"])):
        for name, values in zip(names, col, strict=True):
            for value in values:
                lst = table.setdefault(_dep(value).name, [])
                if not lst or lst[-1] != name:
                    lst.append(name)
    idx = _DbIndex(state, _ByName(db, provides), _ByName(db, replaces))
    _db_indexes[db] = idx
    return idx


def _usage(db: SyncDatabase) -> Usage:
    return db.repo.usage if db.repo is not None else Usage.ALL


# -- the resolver -----------------------------------------------------------------------


class _Resolver:
    """State of one resolution (libalpm keeps it in the transaction)."""

    def __init__(self, handle: Handle, flags: TransFlag, question: QuestionCallback | None,
                 event: EventCallback | None) -> None:
        self.handle = handle
        self.flags = flags
        self.question = question
        self.event = event
        self.nodepversion = bool(flags & TransFlag.NODEPVERSION)
        self.localdb = handle.localdb
        self.local = _Index(self.localdb.packages)
        self.assume = [_dep(a) for a in handle.options.assume_installed]
        self.warnings: list[str] = []
        # the transaction
        self.add: list[Package] = []
        self.add_names: dict[str, Package] = {}
        self.removes: dict[str, list[Package]] = {}
        self.remove: list[Package] = []
        self.remove_names: set[str] = set()
        self.explicit: set[str] = set()
        self.reason_override: dict[str, Reason] = {}
        # resolvedeps state
        self.packages = _Index()
        self.preferred = _Index()
        self.misses: list[MissingDep] = []
        self.miss_keys: set[tuple[str, str, str | None]] = set()
        self.failed: dict[str, list[Depend]] = {}
        self.parent: dict[str, str] = {}
        self.dep_cache: dict[str, list[Depend]] = {}

    # -- small things ---------------------------------------------------------------

    def emit(self, ev: Event) -> None:
        if self.event is not None:
            self.event(ev)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.emit(Warning_(message=message))

    def depends(self, pkg: Package) -> list[Depend]:
        """The package's dependencies, parsed once, versions dropped under NODEPVERSION."""
        key = f"{pkg.name}\0{pkg.version}\0{id(pkg)}"
        deps = self.dep_cache.get(key)
        if deps is None:
            deps = [_dep(d) for d in pkg.depends]
            if self.nodepversion:
                deps = [Depend(d.name) if d.versioned else d for d in deps]
            self.dep_cache[key] = deps
        return deps

    def assumed(self, dep: Depend) -> bool:
        return _provides_literal(dep, self.assume)

    def ignored(self, pkg: Package) -> bool:
        return should_ignore(self.handle, pkg)

    def ask_install_ignored(self, pkg: Package) -> bool:
        return bool(answer(self.question, InstallIgnored(pkg=pkg)))

    # -- finding packages (resolvedep) -------------------------------------------------

    def resolvedep(self, dep: Depend, dbs: Sequence[SyncDatabase],
                   excluding: Callable[[str], bool], prompt: bool) -> tuple[Package | None, bool]:
        """One package meeting ``dep`` from ``dbs``: a literal first, else a provider.

        Returns the package (or None) and whether an ignored package was skipped.
        """
        ignored = False
        usable = [db for db in dbs if _usage(db) & (Usage.INSTALL | Usage.UPGRADE)]
        for db in usable:
            pkg = db.get(dep.name)
            if pkg is None or not _literal_ok(pkg, dep) or excluding(pkg.name):
                continue
            if self.ignored(pkg):
                if not self._ignored_ok(pkg, prompt):
                    ignored = True
                    continue
            return pkg, ignored
        providers: list[Package] = []
        for db in usable:
            for pkg in _db_index(db).provides.get(dep.name, ()):
                if pkg.name == dep.name or excluding(pkg.name):
                    continue
                if not _provides_literal(dep, [_dep(p) for p in pkg.provides]):
                    continue
                if self.ignored(pkg):
                    if not self._ignored_ok(pkg, prompt):
                        ignored = True
                        continue
                if pkg.name in self.localdb:
                    return pkg, ignored
                providers.append(pkg)
        if providers:
            index = 0
            if len(providers) > 1:
                got = answer(self.question, SelectProvider(depend=str(dep),
                                                           providers=list(providers)))
                index = got if isinstance(got, int) else -1
            if 0 <= index < len(providers):
                return providers[index], ignored
        return None, ignored

    def _ignored_ok(self, pkg: Package, prompt: bool) -> bool:
        if prompt:
            return self.ask_install_ignored(pkg)
        self.warn(f"ignoring package {pkg.name}-{pkg.version}")
        return False

    def local_satisfier(self, dep: Depend) -> bool:
        """``resolvedep`` over the local database, excluding packages being removed."""
        if dep.name not in self.remove_names:
            pkg = self.localdb.get(dep.name)
            if pkg is not None and _literal_ok(pkg, dep) and not self.ignored(pkg):
                return True
        for pkg in self.local.all(dep):
            if pkg.name != dep.name and pkg.name not in self.remove_names \
                    and not self.ignored(pkg):
                return True
        return False

    # -- adding targets -------------------------------------------------------------

    def add_pkg(self, pkg: Package) -> bool:
        """``alpm_add_pkg``: refuse duplicates, honour --needed, warn about reinstalls."""
        if pkg.name in self.add_names:
            self.warn(f"skipping target: {pkg.name}")
            return False
        local = self.localdb.get(pkg.name)
        if local is not None:
            cmp = vercmp(pkg.version, local.version)
            if cmp == 0:
                if self.flags & TransFlag.NEEDED:
                    self.warn(f"{local.name}-{local.version} is up to date -- skipping")
                    return False
                if not self.flags & TransFlag.DOWNLOADONLY:
                    self.warn(f"{local.name}-{local.version} is up to date -- reinstalling")
            elif cmp < 0 and not self.flags & TransFlag.DOWNLOADONLY:
                self.warn(f"downgrading package {local.name} ({local.version} => {pkg.version})")
        self._append(pkg)
        self.explicit.add(pkg.name)
        return True

    def _append(self, pkg: Package) -> None:
        self.add.append(pkg)
        self.add_names[pkg.name] = pkg

    def target(self, text: str, missing: list[str]) -> None:
        """pacman's ``process_target``: ``repo/name``, a satisfier, else a group."""
        dbs: list[SyncDatabase] = list(self.handle.syncdbs)
        name = text
        restore: tuple[SyncDatabase, Usage] | None = None
        dbname, name = split_repo(text)
        if dbname is not None:
            db = self.handle.get_syncdb(dbname)
            if db is None:
                missing.append(text)
                self.warn(f"database not found: {dbname}")
                return
            dbs = [db]
            if db.repo is not None:
                restore = (db, db.repo.usage)
                db.repo.usage |= Usage.INSTALL
        try:
            self._targname(dbs, name, text, missing)
        finally:
            if restore is not None and restore[0].repo is not None:
                restore[0].repo.usage = restore[1]

    def _targname(self, dbs: list[SyncDatabase], name: str, text: str,
                  missing: list[str]) -> None:
        try:
            dep = _dep(name)
        except AlpmError:
            missing.append(text)
            return
        pkg, ignored = self.resolvedep(dep, dbs, lambda n: False, prompt=True)
        if pkg is None and ignored:
            self.warn(f"skipping target: {name}")
            return
        if pkg is not None:
            self.add_pkg(pkg)
            return
        members = self._group(dbs, name)
        if members is None:
            missing.append(text)
            return
        if not members:
            return
        got = answer(self.question, SelectGroupMembers(group=name, members=list(members)))
        chosen = got if isinstance(got, list) else list(range(len(members)))
        for i in chosen:
            if isinstance(i, int) and 0 <= i < len(members):
                self.add_pkg(members[i])

    def _group(self, dbs: list[SyncDatabase], name: str) -> list[Package] | None:
        """``alpm_find_group_pkgs``; None when no database has the group."""
        found = False
        pkgs: list[Package] = []
        skip: set[str] = set()
        for db in dbs:
            grp = db.groups.get(name)
            if not grp:
                continue
            found = True
            for pkg in grp:
                if pkg.name in skip:
                    continue
                if self.flags & TransFlag.NEEDED:
                    local = self.localdb.get(pkg.name)
                    if local is not None and vercmp(pkg.version, local.version) == 0:
                        self.warn(f"{pkg.name}-{pkg.version} is up to date -- skipping")
                        skip.add(pkg.name)
                        continue
                if self.ignored(pkg):
                    skip.add(pkg.name)
                    if not self.ask_install_ignored(pkg):
                        continue
                if all(p.name != pkg.name for p in pkgs):
                    pkgs.append(pkg)
        return pkgs if found else None

    # -- system upgrade -------------------------------------------------------------

    def sysupgrade(self, downgrade: bool) -> None:
        """``alpm_sync_sysupgrade``: replacers first, else a newer (or older) same name."""
        dbs = [db for db in self.handle.syncdbs if _usage(db) & Usage.UPGRADE]
        for lpkg in self.localdb.packages:
            if lpkg.name in self.remove_names or lpkg.name in self.add_names:
                continue
            for db in dbs:
                replacers = self._replacers(lpkg, db)
                if replacers:
                    for r in replacers:
                        self._append(r)
                    break
                spkg = db.get(lpkg.name)
                if spkg is not None:
                    if self._literal_upgrade(lpkg, spkg, db, downgrade):
                        self._append(spkg)
                    break

    def _literal_upgrade(self, lpkg: Package, spkg: Package, db: SyncDatabase,
                         downgrade: bool) -> bool:
        cmp = vercmp(spkg.version, lpkg.version)
        ignore = cmp != 0 and (self.ignored(spkg) or self.ignored(lpkg))
        if cmp > 0:
            if ignore:
                self.warn(f"{lpkg.name}: ignoring package upgrade "
                          f"({lpkg.version} => {spkg.version})")
                return False
            return True
        if cmp < 0:
            if downgrade:
                if ignore:
                    self.warn(f"{lpkg.name}: ignoring package downgrade "
                              f"({lpkg.version} => {spkg.version})")
                    return False
                self.warn(f"{lpkg.name}: downgrading from version {lpkg.version} "
                          f"to version {spkg.version}")
                return True
            self.warn(f"{lpkg.name}: local ({lpkg.version}) is newer than "
                      f"{db.name} ({spkg.version})")
        return False

    def _replacers(self, lpkg: Package, db: SyncDatabase) -> list[Package]:
        out: list[Package] = []
        for spkg in _db_index(db).replaces.get(lpkg.name, ()):
            if not any(_literal_ok(lpkg, _dep(r)) for r in spkg.replaces):
                continue
            if self.ignored(spkg) or self.ignored(lpkg):
                self.warn(f"ignoring package replacement ({lpkg.name}-{lpkg.version} => "
                          f"{spkg.name}-{spkg.version})")
                continue
            q = ReplacePackage(old=lpkg, new=spkg, repo=db.name)
            if not answer(self.question, q):
                continue
            tpkg = self.add_names.get(spkg.name)
            if tpkg is None:
                tpkg = next((p for p in out if p.name == spkg.name), None)
            if tpkg is not None:
                if tpkg.db is not db:
                    self.warn(f"cannot replace {lpkg.name} by {spkg.name}")
                    continue
                self.removes.setdefault(tpkg.name, []).append(lpkg)
            else:
                self.reason_override[spkg.name] = lpkg.reason
                self.removes[spkg.name] = [lpkg]
                out.append(spkg)
        return out

    # -- dependencies (resolvedeps) -------------------------------------------------

    def missing_deps(self, pkg: Package) -> list[Depend]:
        """``alpm_checkdeps`` for one package against the untouched installed ones."""
        out = []
        add_names = self.add_names
        rem = self.remove_names
        name = pkg.name

        def excluded(n: str) -> bool:
            return n in add_names or n in rem or n == name

        for dep in self.depends(pkg):
            if dep.satisfied_by(pkg):
                continue
            if self.local.first(dep, excluded) is not None:
                continue
            if self.assumed(dep):
                continue
            out.append(dep)
        return out

    def resolve_pkg(self, pkg: Package, parent: str | None) -> tuple[bool, list[Depend]]:
        """Pull ``pkg`` and its dependencies into the list; False (and the leaves) on failure."""
        if pkg.name in self.packages:
            return True, []
        if parent is not None:
            self.parent.setdefault(pkg.name, parent)
        leaves = self.failed.get(pkg.name)
        if leaves is not None and not any(self.packages.first(d) is not None for d in leaves):
            return False, leaves
        ok, leaves = self._resolvedeps(pkg)
        if ok:
            self.failed.pop(pkg.name, None)
        else:
            self.failed[pkg.name] = leaves
        return ok, leaves

    def _resolvedeps(self, pkg: Package) -> tuple[bool, list[Depend]]:
        mark = len(self.packages)
        self.packages.add(pkg)
        ok = True
        leaves: list[Depend] = []
        packages = self.packages
        for dep in self.missing_deps(pkg):
            if packages.first(dep) is not None:
                continue
            spkg = self.preferred.first(dep)
            if spkg is None:
                spkg, _ignored = self.resolvedep(dep, self.handle.syncdbs,
                                                 packages.__contains__, prompt=False)
            if spkg is not None:
                sub_ok, sub_leaves = self.resolve_pkg(spkg, pkg.name)
                if sub_ok:
                    continue
            else:
                sub_leaves = [dep]
            if self.local_satisfier(dep):
                continue
            leaves.extend(sub_leaves)
            self.handle.log(LogLevel.WARNING,
                            f'cannot resolve "{dep}", a dependency of "{pkg.name}"')
            self.miss(MissingDep(pkg.name, str(dep), None, self.chain(pkg.name)))
            ok = False
        if not ok:
            packages.truncate(mark)
        return ok, leaves

    def chain(self, name: str) -> list[str]:
        out = [name]
        seen = {name}
        while (p := self.parent.get(out[-1])) is not None and p not in seen:
            out.append(p)
            seen.add(p)
        out.reverse()
        return out

    def miss(self, m: MissingDep) -> None:
        key = (m.target, m.depend, m.causing)
        if key not in self.miss_keys:
            self.miss_keys.add(key)
            self.misses.append(m)

    # -- conflicts ------------------------------------------------------------------

    def inner_conflicts(self) -> None:
        """Targets that conflict with each other: drop the one the other provides."""
        idx = _Index(self.add)
        found: list[tuple[Package, Package, Depend]] = []
        seen: set[tuple[str, str]] = set()
        for p1 in self.add:
            for c in p1.conflicts:
                dep = _dep(c)
                for p2 in idx.all(dep):
                    if p2 is p1 or (p1.name, p2.name) in seen:
                        continue
                    seen.add((p1.name, p2.name))
                    found.append((p1, p2, dep))
        for p1, p2, dep in found:
            if self.add_names.get(p1.name) is not p1 or self.add_names.get(p2.name) is not p2:
                continue
            if _dep(p2.name).satisfied_by(p1):
                drop, keep = p2, p1
            elif _dep(p1.name).satisfied_by(p2):
                drop, keep = p1, p2
            else:
                self.handle.log(LogLevel.ERROR, "unresolvable package conflicts detected")
                raise AlpmError(ErrorCode.CONFLICTING_DEPS,
                                f"unresolvable package conflicts detected: "
                                f"{Conflict(p1.name, p2.name, str(dep))}",
                                conflicts=[Conflict(p1.name, p2.name, str(dep))])
            self.warn(f"removing '{drop.name}' from target list because it conflicts "
                      f"with '{keep.name}'")
            self.add = [p for p in self.add if p is not drop]
            del self.add_names[drop.name]

    def outer_conflicts(self) -> None:
        """Targets against installed packages (both ways); ask to remove the installed one."""
        add_names = self.add_names
        targets = _Index(self.add)
        found: list[tuple[Package, Package, Depend]] = []
        seen: set[tuple[str, str]] = set()

        def record(new: Package, old: Package, dep: Depend) -> None:
            if (new.name, old.name) not in seen:
                seen.add((new.name, old.name))
                found.append((new, old, dep))

        for p1 in self.add:
            for c in p1.conflicts:
                dep = _dep(c)
                for p2 in self.local.all(dep, add_names.__contains__):
                    if p2.name != p1.name:
                        record(p1, p2, dep)
        for p1 in self.local.pkgs:
            if p1.name in add_names:
                continue
            for c in p1.conflicts:
                dep = _dep(c)
                for p2 in targets.all(dep):
                    if p2.name != p1.name:
                        record(p2, p1, dep)
        for new, old, dep in found:
            if old.name in self.remove_names or any(
                    any(r.name == old.name for r in lst) for lst in self.removes.values()):
                continue
            if answer(self.question, ConflictPackage(new=new, old=old, reason=str(dep))):
                self.removes.setdefault(new.name, []).append(old)
                continue
            conflict = Conflict(new.name, old.name, str(dep))
            self.handle.log(LogLevel.ERROR, "unresolvable package conflicts detected")
            raise AlpmError(ErrorCode.CONFLICTING_DEPS,
                            f"unresolvable package conflicts detected: {conflict}",
                            conflicts=[conflict])

    # -- final checks ---------------------------------------------------------------

    def checkdeps(self, upgrade: Sequence[Package], reverse: bool) -> list[MissingDep]:
        """``alpm_checkdeps`` over the whole local database."""
        up = _Index(upgrade)
        up_names = set(up.names)
        rem = self.remove_names

        def modified(n: str) -> bool:
            return n in rem or n in up_names

        out: list[MissingDep] = []
        for tp in upgrade:
            for dep in self.depends(tp):
                if up.first(dep) is None and self.local.first(dep, modified) is None \
                        and not self.assumed(dep):
                    out.append(MissingDep(tp.name, str(dep), None, [tp.name]))
        if reverse and (rem or up_names):
            mod_idx = _Index(p for p in self.local.pkgs if modified(p.name))
            if not mod_idx.by_name and not mod_idx.by_prov:
                return out
            for lp in self.local.pkgs:
                if modified(lp.name):
                    continue
                for dep in self.depends(lp):
                    if dep.name not in mod_idx.by_name and dep.name not in mod_idx.by_prov:
                        continue
                    causing = mod_idx.first(dep)
                    if causing is None:
                        continue
                    if up.first(dep) is None and self.local.first(dep, modified) is None \
                            and not self.assumed(dep):
                        out.append(MissingDep(lp.name, str(dep), causing.name, [lp.name]))
        return out

    # -- ordering -------------------------------------------------------------------

    def sortbydeps(self, targets: list[Package], ignore: Iterable[str],
                   reverse: bool) -> list[Package]:
        """``_alpm_sortbydeps``: depth-first over targets and the installed packages between."""
        if not targets:
            return []
        target_names = {p.name for p in targets}
        skip = target_names | set(ignore)
        vidx = _Index(targets)
        local_order = {p.name: i for i, p in enumerate(self.local.pkgs)}
        available = {p.name for p in self.local.pkgs if p.name not in skip}
        # vertex: package, is_target; children computed as libalpm does, lazily adding
        # installed packages the first time something depends on them
        vertices: list[Package] = list(targets)
        is_target: list[bool] = [True] * len(targets)
        children: list[list[int]] = []
        i = 0
        while i < len(vertices):
            p = vertices[i]
            deps = [_dep(d) for d in p.depends]
            # every vertex so far (targets and installed packages already added)
            kids: set[int] = set()
            for dep in deps:
                for pos in vidx._candidates(dep):
                    if dep.satisfied_by(vidx.pkgs[pos]):
                        kids.add(pos)
            child_list = sorted(kids)
            locs: set[str] = set()
            for dep in deps:
                for q in self.local.all(dep):
                    if q.name in available:
                        locs.add(q.name)
            for name in sorted(locs, key=local_order.__getitem__):
                available.discard(name)
                vertices.append(self.local.pkgs[local_order[name]])
                vidx.add(vertices[-1])
                is_target.append(False)
                child_list.append(len(vertices) - 1)
            children.append(child_list)
            i += 1
        n = len(vertices)
        state = [0] * n  # 0 unprocessed, 1 processing, 2 processed
        parent = [-1] * n
        itpos = [0] * n
        out: list[Package] = []
        top = 0
        v = 0
        while top < n:
            state[v] = 1
            switched = False
            kids_v = children[v]
            while itpos[v] < len(kids_v) and not switched:
                c = kids_v[itpos[v]]
                itpos[v] += 1
                if state[c] == 0:
                    switched = True
                    parent[c] = v
                    v = c
                elif state[c] == 1:
                    self._cycle(vertices, is_target, parent, v, c, reverse)
            if not switched:
                if is_target[v]:
                    out.append(vertices[v])
                state[v] = 2
                v = parent[v]
                if v < 0:
                    top += 1
                    while top < n and state[top] != 0:
                        top += 1
                    v = top
        if reverse:
            out.reverse()
        return out

    def _cycle(self, vertices: list[Package], is_target: list[bool], parent: list[int],
               ancestor: int, child: int, reverse: bool) -> None:
        if not is_target[child]:
            return
        a = ancestor
        while a >= 0 and not is_target[a]:
            a = parent[a]
        if a < 0 or a == child:
            return
        first, second = vertices[a].name, vertices[child].name
        how = "removed after" if reverse else "installed before"
        self.warn(f"dependency cycle detected: {first} will be {how} its {second} dependency")


def _literal_ok(pkg: Package, dep: Depend) -> bool:
    """``_alpm_depcmp_literal``: the package's own name and version, never its provisions."""
    return satisfies_literal(pkg.name, pkg.version, dep)


# -- entry points -----------------------------------------------------------------------


def resolve_sync(handle: Handle, targets: Sequence[str], *, files: Sequence[Package] = (),
                 flags: TransFlag = TransFlag.NONE, sysupgrade: int = 0,
                 question: QuestionCallback | None = None,
                 event: EventCallback | None = None) -> Plan:
    """Plan ``pacman -S targets`` (``-U`` for ``files``; ``-Su``/``-Suu`` with ``sysupgrade``).

    Raises PKG_NOT_FOUND naming every target that matches nothing,
    UNSATISFIED_DEPS with ``missing`` (each with the chain that wanted it) and
    CONFLICTING_DEPS with ``conflicts``.
    """
    r = _Resolver(handle, flags, question, event)
    missing: list[str] = []
    for pkg in files:
        r.add_pkg(pkg)
    for text in targets:
        r.target(text, missing)
    if missing:
        names = ", ".join(missing)
        nodb = [w for w in r.warnings if w.startswith("database not found")]
        extra = f" ({'; '.join(nodb)})" if nodb else ""
        raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"target not found: {names}{extra}",
                        targets=missing)
    if sysupgrade:
        r.sysupgrade(sysupgrade >= 2)
    invalid = invalid_arch(handle, r.add)
    if invalid:
        raise AlpmError(ErrorCode.PKG_INVALID_ARCH,
                        f"package architecture is not valid: {', '.join(invalid)}",
                        packages=invalid)

    if not flags & TransFlag.NODEPS and r.add:
        r.emit(ResolveDeps())
        for lst in r.removes.values():
            for p in lst:
                r.remove_names.add(p.name)
        r.preferred = _Index(r.add)
        unresolvable: list[Package] = []
        for pkg in list(r.add):
            ok, _leaves = r.resolve_pkg(pkg, None)
            if not ok:
                unresolvable.append(pkg)
        if unresolvable:
            skip = answer(question, RemoveUnresolvable(packages=list(unresolvable)))
            if not skip:
                first = r.misses[0] if r.misses else None
                detail = f": {first} ({first.path})" if first is not None else ""
                raise AlpmError(ErrorCode.UNSATISFIED_DEPS,
                                f"could not satisfy dependencies{detail}",
                                missing=list(r.misses))
        resolved = list(r.packages.pkgs)
        r.add = resolved
        r.add_names = {p.name: p for p in resolved}
        r.remove_names = set()
        r.emit(ResolveDeps(done=True))

    if not flags & TransFlag.NOCONFLICTS and r.add:
        r.emit(InterConflicts())
        r.inner_conflicts()
        r.outer_conflicts()
        r.emit(InterConflicts(done=True))

    removes: list[Package] = []
    seen: set[str] = set()
    for pkg in r.add:
        for old in r.removes.get(pkg.name, ()):
            if old.name not in seen:
                seen.add(old.name)
                removes.append(old)
    r.remove = removes
    r.remove_names = seen

    if not flags & TransFlag.NODEPS and r.add:
        bad = r.checkdeps(r.add, reverse=True)
        if bad:
            first = bad[0]
            why = str(first)
            new = r.add_names.get(first.causing) if first.causing is not None else None
            if new is not None:
                why = (f"installing {new.name} ({new.version}) breaks dependency "
                       f"'{first.depend}' required by {first.target}")
            raise AlpmError(ErrorCode.UNSATISFIED_DEPS,
                            f"could not satisfy dependencies: {why}", missing=bad)

    for pkg in r.add:
        # libalpm's compute_download_size: a repository package needs its %FILENAME%
        if pkg.origin is Origin.SYNCDB and pkg.filename is None:
            raise AlpmError(ErrorCode.PKG_INVALID_NAME,
                            f"package {pkg.name}-{pkg.version} has no file name in its "
                            f"database", package=pkg.name)

    add = r.add
    remove = r.remove
    if not flags & TransFlag.NODEPS:
        add = r.sortbydeps(add, r.remove_names, reverse=False)
        r.remove_names = set()  # removal order looks at every installed package
        remove = r.sortbydeps(remove, (), reverse=True)

    reason: dict[str, Reason] = {}
    for pkg in add:
        if flags & TransFlag.ALLDEPS:
            reason[pkg.name] = Reason.DEPEND
        elif flags & TransFlag.ALLEXPLICIT:
            reason[pkg.name] = Reason.EXPLICIT
        elif (local := handle.localdb.get(pkg.name)) is not None:
            reason[pkg.name] = local.reason
        elif pkg.name in r.reason_override:
            reason[pkg.name] = r.reason_override[pkg.name]
        elif pkg.name in r.explicit:
            reason[pkg.name] = Reason.EXPLICIT
        else:
            reason[pkg.name] = Reason.DEPEND
    replaces = {p.name: list(r.removes[p.name]) for p in add if r.removes.get(p.name)}
    return Plan(add=add, remove=remove, reason=reason, replaces=replaces,
                warnings=r.warnings, explicit=set(r.explicit))


def resolve_remove(handle: Handle, targets: Sequence[str], *, flags: TransFlag = TransFlag.NONE,
                   question: QuestionCallback | None = None,
                   event: EventCallback | None = None) -> Plan:
    """Plan ``pacman -R targets`` with -c (CASCADE), -s/-ss (RECURSE/RECURSEALL), -u (UNNEEDED).

    Raises PKG_NOT_FOUND naming targets that are neither installed nor an
    installed group, and UNSATISFIED_DEPS ("removing X breaks dependency ...")
    when a removal would break an installed package.
    """
    r = _Resolver(handle, flags, question, event)
    localdb = handle.localdb
    missing: list[str] = []

    def add(pkg: Package) -> None:
        if pkg.name in r.remove_names:
            r.warn(f"skipping target: {pkg.name}")
            return
        r.remove.append(pkg)
        r.remove_names.add(pkg.name)

    for text in targets:
        name = text[6:] if text.startswith("local/") else text
        pkg = localdb.get(name)
        if pkg is not None:
            add(pkg)
            continue
        members = localdb.groups.get(name)
        if not members:
            missing.append(name)
            continue
        for member in members:
            add(member)
    if missing:
        raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"target not found: {', '.join(missing)}",
                        targets=missing)
    named = {p.name for p in r.remove}

    recurse = bool(flags & (TransFlag.RECURSE | TransFlag.RECURSEALL))
    explicit_too = bool(flags & TransFlag.RECURSEALL)
    if recurse and not flags & TransFlag.CASCADE:
        _recursedeps(r, explicit_too)

    if not flags & TransFlag.NODEPS:
        r.emit(CheckDeps())
        bad = r.checkdeps([], reverse=True)
        if bad:
            if flags & TransFlag.CASCADE:
                while bad:
                    for m in bad:
                        info = localdb.get(m.target)
                        if info is not None and info.name not in r.remove_names:
                            add(info)
                    bad = r.checkdeps([], reverse=True)
            elif flags & TransFlag.UNNEEDED:
                while bad:
                    for m in bad:
                        if m.causing is not None and m.causing in r.remove_names:
                            r.remove = [p for p in r.remove if p.name != m.causing]
                            r.remove_names.discard(m.causing)
                            r.warn(f"removing {m.causing} from target list")
                    bad = r.checkdeps([], reverse=True)
            else:
                raise AlpmError(ErrorCode.UNSATISFIED_DEPS,
                                f"could not satisfy dependencies: {bad[0]}", missing=bad)

    if recurse and flags & TransFlag.CASCADE:
        _recursedeps(r, explicit_too)

    if not flags & TransFlag.NODEPS:
        removing = _Index(r.remove)
        for pkg in r.local.pkgs:
            if pkg.name in r.remove_names:
                continue
            for opt in pkg.optdepends:
                if removing.first(_dep(opt)) is not None:
                    r.emit(OptdepRemoval(pkg=pkg, optdep=opt))
        r.emit(CheckDeps(done=True))

    remove = r.remove
    if not flags & TransFlag.NODEPS:
        remove = r.sortbydeps(r.remove, (), reverse=True)
    return Plan(add=[], remove=remove, warnings=r.warnings, explicit=named)


def _recursedeps(r: _Resolver, include_explicit: bool) -> None:
    """``_alpm_recursedeps``: dependencies only the targets need go too."""
    local = r.local.pkgs
    # pkg name -> installed packages one of its dependencies is met by, in pkgcache order
    order = {p.name: i for i, p in enumerate(local)}

    def depends_on(pkg: Package) -> list[Package]:
        hits: set[str] = set()
        for d in pkg.depends:
            for q in r.local.all(_dep(d)):
                hits.add(q.name)
        return [local[order[n]] for n in sorted(hits, key=order.__getitem__)]

    keep = [p for p in local if p.name not in r.remove_names]
    keep_set = {p.name for p in keep}
    rem: list[Package] = []
    rem_set: set[str] = set()

    def select(src: list[Package], src_set: set[str], dst: list[Package], dst_set: set[str],
               pkg: Package, explicit: bool) -> list[Package]:
        if not pkg.depends:
            return src
        wanted = {q.name for q in depends_on(pkg) if q.name in src_set}
        if not wanted:
            return src
        kept = []
        for q in src:
            if q.name in wanted and (explicit or q.reason != Reason.EXPLICIT):
                dst.append(q)
                dst_set.add(q.name)
                src_set.discard(q.name)
            else:
                kept.append(q)
        return kept

    for pkg in list(r.remove):
        keep = select(keep, keep_set, rem, rem_set, pkg, include_explicit)
    i = 0
    while i < len(rem):
        keep = select(keep, keep_set, rem, rem_set, rem[i], include_explicit)
        i += 1
    i = 0
    while i < len(keep) and rem:
        rem = select(rem, rem_set, keep, keep_set, keep[i], True)
        i += 1
    for pkg in rem:
        r.remove.append(pkg)
        r.remove_names.add(pkg.name)
