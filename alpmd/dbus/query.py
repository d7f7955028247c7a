"""``org.alpm.Query1``: read-only questions, answered at once and never queued behind a writer.

Everything is computed by :mod:`alpmd.engine.query`; this module only turns
ids into packages and packages into rows.
"""

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from dbus_fast import DBusError
from dbus_fast.service import ServiceInterface, dbus_method
from dbus_fast.signature import Variant

from alpmd.dbus import caller, errors, fds, limits, options
from alpmd.dbus.bus import CALLER
from alpmd.dbus.packages import attributes, lookup, package_id
from alpmd.dbus.types import AS, Groups, H, ListOfDicts, Opts, Pairs, S, SearchRows
from alpmd.engine import query as q
from alpmd.engine.archive import load_package_file
from alpmd.engine.depend import Depend
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.handle import Handle
from alpmd.engine.leftovers import config_leftovers
from alpmd.engine.package import Package
from alpmd.engine.regex import compile_posix, is_literal
from alpmd.engine.target import find_package

if TYPE_CHECKING:
    from alpmd.dbus.daemon import Daemon

F = TypeVar("F", bound=Callable[..., Any])

#: Search's scope for the repositories (the others are the engine's installed scopes)
AVAILABLE = "available"
MAX_ROWS = 100_000
MAX_ITEMS = 10_000
NAME_LENGTH = 256
PATH_LENGTH = 4096
#: Search: plain words matched at once, on the event loop, when at most this many (each
#: is a pass over every package: 64 took 1.3 s on 15,000); more go to the worker pool
LOOP_TERMS = 2
#: Owns: the paths of one call together (each is resolved on the file system)
PATHS_LENGTH = 1 << 20


def translated(fn: F) -> F:
    """Engine errors become named D-Bus errors; anything else becomes Internal (no traceback)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DBusError:
            raise
        except AlpmError as exc:
            raise errors.from_alpm(exc) from None
        except Exception as exc:
            logging.getLogger("alpmd").exception("%s failed", fn.__name__)
            raise errors.internal(exc) from None
    return wrapper  # type: ignore[return-value]


class Query1(ServiceInterface):
    """Read-only queries over the live databases (not the shadow ones, except GetUpdates)."""

    def __init__(self, daemon: "Daemon") -> None:
        super().__init__("org.alpm.Query1")
        self.daemon = daemon
        self._inspected = 0

    @property
    def handle(self) -> Handle:
        return self.daemon.handle

    # -- finding packages ---------------------------------------------------------------

    @dbus_method()
    @translated
    def Resolve(self, names: AS, opts: Opts) -> AS:
        """Names (``repo/name`` allowed) → ids: installed first unless ``prefer`` = "sync"."""
        prefer = options.get(opts, "prefer", str, "installed")
        _bounded(names, "names")
        h = self.handle
        out: list[str] = []
        missing: list[str] = []
        for name in names:
            pkg = find_package(h, name, prefer_local=prefer != "sync")
            if pkg is None:
                missing.append(name)
            else:
                out.append(package_id(pkg))
        if missing:
            raise errors.from_alpm(AlpmError(ErrorCode.PKG_NOT_FOUND,
                                             f"target not found: {', '.join(missing)}"))
        return out

    @dbus_method()
    async def Search(self, terms: AS, opts: Opts) -> SearchRows:
        """Rows (id, name, version, repo, description, installed) matching every term.

        Options: ``scope`` (available: the repositories, or one of the installed package
        scopes of :data:`alpmd.engine.query.SCOPE_NAMES`: installed, explicit, deps...),
        ``fields`` (["name"] to match names only), ``repos``, ``limit``, ``offset``.
        Terms with regex syntax (and more than :data:`LOOP_TERMS` plain words) are matched
        in a worker thread by the engine's bounded matcher (:mod:`alpmd.engine.regex`),
        which gives up at the search deadline.
        """
        scope = options.get(opts, "scope", str, "available")
        if scope != AVAILABLE:
            try:
                q.parse_scope(scope)
            except AlpmError as exc:
                raise errors.from_alpm(exc) from None
        fields = options.get(opts, "fields", list, [])
        repos = options.get(opts, "repos", list, [])
        limit = options.get(opts, "limit", int, MAX_ROWS)
        offset = options.get(opts, "offset", int, 0)
        if limit < 0 or offset < 0:
            raise errors.invalid("limit and offset must not be negative")
        if len(terms) > 64 or any(len(t) > 1024 for t in terms):
            raise errors.invalid("at most 64 search terms of at most 1024 characters")
        names_only = bool(fields) and set(fields) <= {"name"}
        limit, offset = min(limit, MAX_ROWS), min(offset, 1 << 62)
        terms = list(dict.fromkeys(terms))  # (all must match: a repeated one adds nothing)
        h = self.handle
        d = self.daemon
        if len(terms) <= LOOP_TERMS and all(is_literal(t) for t in terms):
            with d.share.metered(CALLER.get()):
                return limits.bounded_reply(
                    _translated_rows(lambda: search_rows(h, terms, scope, repos, names_only,
                                                         offset, limit)),
                    d.limits.reply_bytes, "the search's answer")
        bound = d.limits.search_deadline
        deadline = time.monotonic() + bound
        # The engine's bounded matcher stops at ``deadline`` with PATTERN_TOO_COSTLY (a
        # Timeout error); the pool's own deadline, a little later, is only a backstop.
        # (the worker takes the query handle then: one replaced meanwhile stays open for it)
        return limits.bounded_reply(await d.workers.run(
            CALLER.get(), bound + 5,
            lambda: _translated_rows(lambda: d.handles.lend(
                lambda h: search_rows(h, terms, scope, repos, names_only, offset, limit,
                                      deadline))),
            "the search"), d.limits.reply_bytes, "the search's answer")

    @dbus_method()
    @translated
    def GetPackages(self, ids: AS, attrs: AS) -> ListOfDicts:
        """One a{sv} per id with the asked attributes (a list view's set when none)."""
        _bounded(ids, "ids", NAME_LENGTH * 3)
        _bounded(attrs, "attributes")
        # each attribute once (a list repeating one 10,000 times asked for 10,000 x 10,000
        # values on the event loop), and the answer counted while it grows (one wide package
        # asked for 900 times made a reply the bus refused: it dropped the daemon)
        wanted = list(dict.fromkeys(attrs))
        h = self.handle
        budget = limits.ReplyBudget(self.daemon.limits.reply_bytes, "the answer")
        out: list[dict[str, Variant]] = []
        for pid in ids:
            row = attributes(h, lookup(h, pid), wanted)
            budget.add(row)
            out.append(row)
        return out

    @dbus_method()
    @translated
    def GetFiles(self, pid: S) -> AS:
        """The files of a package (installed: the local list; sync: the .files database)."""
        return limits.bounded_reply(list(lookup(self.handle, pid).files),
                                    self.daemon.limits.reply_bytes, "the file list")

    @dbus_method()
    async def Owns(self, paths: AS) -> Pairs:
        """(path, id) for each path an installed package owns; unowned paths are left out.

        Each path is resolved with the caller's rights (its uid, groups), as ``pacman -Qo``
        run by the caller would: resolved with root's, whether a path resolves told the
        caller what lies in directories it may not search. The work is done in the
        heavy-call pool, where the thread takes the caller's identity for the look-ups."""
        _bounded(paths, "paths", PATH_LENGTH)
        if sum(len(p) for p in paths) > PATHS_LENGTH:
            raise errors.invalid(f"paths: at most {PATHS_LENGTH} characters in all per call")
        for path in paths:
            if not path.startswith("/"):
                raise errors.invalid(f"not an absolute path: {path!r}")
        sender = CALLER.get()
        d = self.daemon
        uid = await d.authority.uid(sender) if sender else 0
        reply_bytes = d.limits.reply_bytes

        def work() -> list[list[str]]:
            resolve = located_as(caller.identity_of(uid), paths)
            return d.handles.lend(lambda h: owner_pairs(h, paths, resolve, reply_bytes))
        return await d.workers.run(sender, d.limits.search_deadline,
                                   lambda: _translated_rows(work), "finding the owners",
                                   uid=uid)

    @dbus_method()
    @translated
    def DependsOn(self, pid: S) -> AS:
        """Ids of the packages satisfying each dependency (installed ones first)."""
        h = self.handle
        pkg = lookup(h, pid)
        out: list[str] = []
        for dep in pkg.depends:
            sat = q.find_satisfier(h.localdb, dep) or q.find_satisfier(h.syncdbs, dep)
            if sat is not None:
                out.append(package_id(sat))
        return out

    @dbus_method()
    @translated
    def RequiredBy(self, pid: S) -> AS:
        """Names of the packages that require it (``alpm_pkg_compute_requiredby``)."""
        return q.required_by(self.handle, lookup(self.handle, pid))

    @dbus_method()
    @translated
    def WhatProvides(self, name: S) -> AS:
        """Ids of every package called ``name`` or providing it, installed then repos."""
        _bounded([name], "names")
        Depend.parse(name)
        h = self.handle
        return [package_id(p) for p in q.what_provides([h.localdb, *h.syncdbs], name)]

    @dbus_method()
    async def GetUpdates(self, opts: Opts) -> ListOfDicts:
        """Updates from the shadow databases (the last Refresh), never the live sync ones;
        worked out in a worker thread once per change and kept (:mod:`alpmd.dbus.updates`)."""
        d = self.daemon
        rows = await d.update_rows(CALLER.get(), translated(d.updates.work_out))
        return rows

    @dbus_method()
    @translated
    def ListRepos(self) -> ListOfDicts:
        out: list[dict[str, Variant]] = []
        for db in self.handle.syncdbs:
            repo = db.repo
            path = db.path
            try:
                mtime = int(os.stat(path).st_mtime) if path else 0
            except OSError:
                mtime = 0
            out.append({
                "name": Variant("s", db.name),
                "servers": Variant("as", list(repo.servers) if repo is not None else []),
                "packages": Variant("u", len(db) if db.exists else 0),
                "exists": Variant("b", bool(db.exists)),
                "modified": Variant("t", mtime),
            })
        return out

    @dbus_method()
    @translated
    def ListGroups(self, opts: Opts) -> Groups:
        """(group, member ids) over the repos, or the installed packages with scope=installed."""
        scope = options.get(opts, "scope", str, "available")
        h = self.handle
        dbs: list[Any] = [h.localdb] if scope == "installed" else list(h.syncdbs)
        merged: dict[str, list[str]] = {}
        for db in dbs:
            for group, members in sorted(db.groups.items()):
                merged.setdefault(group, []).extend(package_id(p) for p in members)
        return limits.bounded_reply([[g, m] for g, m in sorted(merged.items())],
                                    self.daemon.limits.reply_bytes, "the group list")

    @dbus_method()
    @translated
    def GetPacnew(self) -> Pairs:
        """(path, package name) for every .pacnew, .pacsave or .pacorig beside a backup file."""
        return [[c.path, c.package] for c in config_leftovers(self.handle)]

    @dbus_method()
    async def InspectFile(self, fd: H) -> Opts:
        """A package file's metadata, read through the caller's descriptor (never a path):
        copied into a private file in a worker, under a size cap and a deadline."""
        sender = CALLER.get()
        (mine,) = fds.claim([fd], sender)
        d = self.daemon
        try:
            size = fds.check_readable(mine).size
            if size > d.limits.inspect_bytes:
                raise limits.limit_exceeded(
                    f"the file is larger than {d.limits.inspect_bytes} bytes")
        except BaseException:
            fds.release(sender, [mine])
            raise
        self._inspected += 1
        path = d.incoming_path(0, self._inspected)
        loop = asyncio.get_running_loop()
        cap = d.limits.inspect_bytes

        def work() -> Package:
            try:
                fds.snapshot(mine, path, cap)
            finally:
                loop.call_soon_threadsafe(fds.release, sender, [mine])
            try:
                return load_package_file(path, full=True)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        try:
            pkg = await d.workers.run(sender, d.limits.inspect_deadline, work,
                                      "reading the package file",
                                      refused=lambda: fds.release(sender, [mine]))
        except OverflowError:
            raise limits.limit_exceeded(f"the file is larger than {cap} bytes") from None
        except AlpmError as exc:
            raise errors.from_alpm(exc) from None
        except OSError as exc:
            raise errors.internal(exc) from None
        out = attributes(self.handle, pkg, list(_FILE_ATTRS))
        out["files"] = Variant("u", len(pkg.files))
        return out


def _bounded(values: list[str], what: str, length: int = NAME_LENGTH) -> None:
    """InvalidArgs for more than MAX_ITEMS values or one longer than ``length``: the answer
    is computed on the event loop, so its size is bounded by what is asked."""
    if len(values) > MAX_ITEMS:
        raise errors.invalid(f"at most {MAX_ITEMS} {what} per call")
    for value in values:
        if len(value) > length:
            raise errors.invalid(f"{what}: a value longer than {length} characters")


def located_as(who: caller.FsIdentity, paths: list[str]) -> q.Resolver:
    """Each path looked up on the file system with ``who``'s rights (one switch of the
    thread's identity for all of them), answered afterwards to
    :func:`alpmd.engine.query.find_owner`, which reads the databases with the daemon's."""
    names = {q.owner_target(p)[0] for p in paths}
    try:
        with caller.resolving_as(who):
            # (a user's look-up never passes through /proc's magic links: the daemon's
            # own descriptors, and other processes' cwd and root, it reaches by them)
            opener = None if who.uid == 0 else caller.open_no_magic
            found = {name: q.locate(name, None, opener=opener) for name in names}
    except caller.IdentityError as exc:  # (never resolved as root instead)
        raise AlpmError(ErrorCode.SYSTEM, f"cannot resolve paths with the caller's rights: "
                        f"{exc}") from None

    def resolve(filename: str, search_path: str | None) -> q.Located:
        return found[filename]
    return resolve


def owner_pairs(h: Handle, paths: list[str], resolve: q.Resolver,
                reply_bytes: int) -> list[list[Any]]:
    """Owns's (path, id) rows, the answer counted while it grows."""
    budget = limits.ReplyBudget(reply_bytes, "the answer")
    out: list[list[Any]] = []
    for path in paths:
        try:
            res = q.find_owner(h, path, resolve=resolve)
        except AlpmError as exc:
            if exc.code is ErrorCode.PKG_NOT_FOUND:
                continue
            raise
        pairs = [[res.path, package_id(p)] for p in res.owners]
        budget.add(pairs)
        out.extend(pairs)
    return out


def search_rows(h: Handle, terms: list[str], scope: str, repos: list[str], names_only: bool,
                offset: int, limit: int, deadline: float | None = None) -> list[list[Any]]:
    """Search's rows over ``h``; with a ``deadline`` (``time.monotonic()``) every match is
    bounded (``AlpmError(PATTERN_TOO_COSTLY)`` past it), for terms with regex syntax."""
    installed = h.localdb.versions
    pkgs: list[Package] = []
    if scope == AVAILABLE:
        for db in h.syncdbs:
            if repos and db.name not in repos:
                continue
            pkgs.extend(q.search(db, terms, deadline=deadline))
    else:
        wanted = q.parse_scope(scope)
        pkgs = [p for p in q.search(h.localdb, terms, deadline=deadline)
                if q.in_scope(h, p, wanted)]
    if names_only:
        regs = [compile_posix(t, bounded=deadline is not None) for t in terms]
        pkgs = [p for p in pkgs if all(r.search(p.name, deadline) or t.lower() in p.name.lower()
                                       for r, t in zip(regs, terms, strict=True))]
    rows: list[list[Any]] = []
    for pkg in pkgs[offset:offset + limit]:
        pid = package_id(pkg)
        rows.append([pid, pkg.name, pkg.version, pid.rsplit(";", 1)[1], pkg.desc or "",
                     pkg.name in installed])
    return rows


def _translated_rows(fn: Callable[[], list[list[Any]]]) -> list[list[Any]]:
    return translated(fn)()


_FILE_ATTRS = ("name", "version", "arch", "base", "description", "url", "licenses", "groups",
               "provides", "depends", "optdepends", "conflicts", "replaces", "installed_size",
               "packager", "build_date", "has_scriptlet", "installed", "installed_version")

