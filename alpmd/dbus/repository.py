"""``org.alpm.Repository1``: the ``alpm-repo`` commands on the tree alpmd.conf names.

Only translation lives here; :mod:`alpmd.engine.repo.ops` does the work. Reading
(List, History, Check, ListRepositories) is open to everybody and runs in the
daemon's bounded worker pool under a deadline. A change is authorised by polkit
per repository first (the repository, architecture and pkgbases are in the
action's details, so a rule can let a group release to ``testing`` but not to
``core``; a move needs the move action for its source and its destination), and
only then are the client's package files read, through its descriptors. Changes
run one at a time in a writer thread of their own (the engine's tree lock still
keeps out other programs), so a waiting writer never holds up the event loop.

There is no ``Update``: it would make root read, and then delete, files in a
staging directory the packagers can write, by path (a swapped symlink would make
root read or unlink what the caller cannot), and which repositories it touches
is known only once the engine planned it, after polkit must have decided. A
client releases staged files with ``Add`` instead, passing descriptors it opened.

There are no hints either: a client sets ``locale`` in each call's ``opts`` to have its
errors (and Check's notes) in its language, the engine's code staying first.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import logging
import os
import pwd
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from dbus_fast import DBusError
from dbus_fast.annotations import DBusSignature
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property, dbus_signal
from dbus_fast.signature import Variant

from alpmd.dbus import errors, fds, limits, options
from alpmd.dbus.bus import CALLER
from alpmd.dbus.manager import check_targets
from alpmd.dbus.types import AS, ListOfDicts, Opts, S
from alpmd.engine.alpmdconf import load_alpmd_config
from alpmd.engine.db import sqlitefiles
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.repo import ops
from alpmd.engine.repo.config import state_dir_of
from alpmd.engine.repo.incoming import (
    MAX_SIG_SIZE,
    is_package_name,
    package_arch_of,
    package_name_of,
)
from alpmd.engine.repo.tracking import TRACKING_NAME, HistoryEntry, Row
from alpmd.engine.repo.tree import Tree, open_tree
from alpmd.engine.repo.txn import Plan
from alpmd.i18n import N_, translator

if TYPE_CHECKING:
    from alpmd.dbus.daemon import Daemon

R = TypeVar("R")
M = TypeVar("M", bound=Callable[..., Awaitable[Any]])
log = logging.getLogger("alpmd")

#: (file name, package descriptor, [signature descriptor]) per file Add releases
Files = Annotated[list[list[Any]], DBusSignature("a(shah)")]
Where = Annotated[list[list[str]], DBusSignature("a(ss)")]
RepoList = Annotated[list[list[Any]], DBusSignature("a(sasb)")]

RELEASE = "org.alpm.repository.release"
REMOVE = "org.alpm.repository.remove"
MOVE = "org.alpm.repository.move"
REPAIR = "org.alpm.repository.repair"
#: rows List and History give per call by default and at most (page with offset)
MAX_ROWS = 10_000
NAME_LENGTH = 256


REPOSITORY = N_("invalid repository name")
ARCHITECTURE = N_("invalid architecture name")


def _in_callers_language(method: M) -> M:
    """A method whose errors come in the ``locale`` of its ``opts`` (its last argument):
    the code first and untranslated, the text in the caller's language (English when
    it has no catalog), as Manager1's transactions answer in their SetHints locale."""
    @functools.wraps(method)
    async def spoken(self: Repository1, *args: Any) -> Any:
        locale = options.locale(args[-1])
        try:
            return await method(self, *args)
        except DBusError as exc:
            raise errors.localized(exc, locale) from None
    return spoken  # type: ignore[return-value]


def _name(value: str, what: str) -> str:
    """A repository or architecture name as the tree's config could hold it (``what``:
    REPOSITORY or ARCHITECTURE, the error's text)."""
    if not value or len(value) > NAME_LENGTH or value.startswith((".", "-")) \
            or any(c in value for c in "/\0\n\r\t "):
        raise errors.invalid(f"{what}: {value[:64]!r}")
    return value


def _file_name(value: object) -> str:
    if not isinstance(value, str) or len(value) > NAME_LENGTH or "/" in value \
            or value.startswith(".") or not is_package_name(value):
        raise errors.invalid(N_("not a package file name") + f": {str(value)[:64]!r}")
    return value


def _from_engine(exc: AlpmError) -> DBusError:
    """The named error; the tree's own ``Allow`` refusing the caller is NotAuthorized."""
    if exc.code is ErrorCode.BADPERMS and exc.details.get("user"):
        return errors.code_text(errors.NOT_AUTHORIZED, exc.code.value, exc.message)
    return errors.from_alpm(exc)


def _translate(exc: BaseException, what: str) -> BaseException:
    """What a failed call answers (a cancellation or an exit stays what it is)."""
    if isinstance(exc, DBusError) or not isinstance(exc, Exception):
        return exc
    if isinstance(exc, AlpmError):
        return _from_engine(exc)
    if isinstance(exc, OverflowError):
        return limits.limit_exceeded(str(exc))
    err = errors.internal(exc)
    if err.type == errors.INTERNAL:
        log.error("%s failed", what, exc_info=exc)
    return err


def _user(uid: int) -> str:
    """The name the tracking database records (and the tree's ``Allow`` checks)."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _history_rows(entries: Sequence[HistoryEntry]) -> list[dict[str, Variant]]:
    return [{"at": Variant("t", max(0, e.at)), "user": Variant("s", e.user),
             "action": Variant("s", e.action), "repo": Variant("s", e.repo),
             "arch": Variant("s", e.arch), "base": Variant("s", e.base),
             "version": Variant("s", e.version), "detail": Variant("s", e.detail)}
            for e in entries]


def _package_rows(rows: Sequence[Row]) -> list[dict[str, Variant]]:
    return [{"repo": Variant("s", r.repo), "arch": Variant("s", r.arch),
             "name": Variant("s", r.name), "base": Variant("s", r.base),
             "version": Variant("s", r.version), "filename": Variant("s", r.filename),
             "package_arch": Variant("s", r.pkgarch), "packager": Variant("s", r.packager),
             "build_date": Variant("t", max(0, r.builddate)), "sha256": Variant("s", r.sha256),
             "released_by": Variant("s", r.released_by),
             "released_at": Variant("t", max(0, r.released_at))} for r in rows]


def _page(opts: Opts) -> tuple[int, int]:
    offset = options.get(opts, "offset", int, 0)
    limit = options.get(opts, "limit", int, MAX_ROWS)
    if offset < 0 or limit < 0:
        raise errors.invalid(N_("offset and limit must not be negative"))
    return offset, min(limit, MAX_ROWS)


def release_details(repo: str, arch: str, names: Sequence[str]) -> dict[str, str]:
    """What polkit is told of a release of the package files ``names`` to ``repo``/``arch``.

    An architecture-independent package (``-any`` in its file name, which must match its
    .PKGINFO) lands in every architecture of the repository, so such a release names the
    architecture ``any``: a rule that lets a group release to one architecture does not
    let it put packages into the others.
    """
    whole = any(package_arch_of(n) == "any" for n in names)
    return {"org.alpm.repository": repo, "org.alpm.architecture": "any" if whole else arch,
            "org.alpm.files": " ".join(names),
            "org.alpm.packages": " ".join(package_name_of(n) for n in names)}


class Repository1(ServiceInterface):
    """Release, remove and move packages in the repository tree alpmd.conf names."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__("org.alpm.Repository1")
        self.daemon = daemon
        self.tree: str | None = None
        self.why = "no RepositoryTree is set in alpmd.conf"
        path = daemon.handle.options.alpmd_config or ""
        try:
            self.tree = load_alpmd_config(path).repository_tree
        except AlpmError as exc:
            self.why = exc.message
            log.error("no repository tree served: %s", exc.message)
        if self.tree is None and path:
            self.why += f" ({path})" if path not in self.why else ""
        if self.tree is not None:  # (noted before anything opens it: see alpmd.dbus.relay)
            sqlitefiles.note(os.path.join(state_dir_of(self.tree), TRACKING_NAME))
        #: one change at a time (a second writer waits here, not on the event loop)
        self.writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="alpmd-repo")
        #: changes started and not finished, per bus client
        self.writing: collections.Counter[str] = collections.Counter()

    # -- the parts every call shares ----------------------------------------------------

    def _tree_path(self) -> str:
        if self.tree is None:
            raise errors.code_text(errors.NOT_FOUND, ErrorCode.DB_NOT_FOUND.value,
                                   N_("alpmd serves no repository tree") + f": {self.why}")
        return self.tree

    def _opened(self, fn: Callable[[Tree], R]) -> Callable[[], R]:
        path = self._tree_path()

        def work() -> R:
            tree = open_tree(path)
            try:
                return fn(tree)
            finally:
                tree.close()
        return work

    async def _read(self, fn: Callable[[Tree], R], what: str) -> R:
        """``fn(tree)`` in the worker pool, under the repository deadline."""
        d = self.daemon
        work = self._opened(fn)
        d.lifecycle.touch()
        try:
            got = await d.workers.run(CALLER.get(), d.limits.repository_deadline, work, what)
            # (rows the bus would refuse to carry get the daemon dropped from the bus)
            return limits.bounded_reply(got, d.limits.reply_bytes, f"the answer to {what}")
        except BaseException as exc:
            raise _translate(exc, what) from None

    async def _authorize(self, action: str, details: dict[str, str], opts: Opts) -> int:
        """The caller's uid once polkit allowed ``action`` with ``details``."""
        sender = CALLER.get()
        interactive = options.get(opts, "interactive", bool, False)
        await self.daemon.authority.check(sender, action, details, interactive=interactive)
        return await self.daemon.authority.uid(sender) if sender else 0

    async def _write(self, fn: Callable[[Tree], Plan], what: str,
                     done: Callable[[], None] | None = None) -> list[dict[str, Variant]]:
        """``fn(tree)`` in the writer thread (after any change started before it); its
        history rows. ``done()`` runs once the work is over (or was never started)."""
        sender = CALLER.get()
        caps = self.daemon.limits
        why = ""
        if sum(self.writing.values()) >= caps.queued_total:
            why = f"{sum(self.writing.values())} repository changes are waiting; try later"
        elif self.writing[sender] >= caps.queued_per_client:
            why = (f"this client has {self.writing[sender]} repository changes waiting "
                   f"(at most {caps.queued_per_client})")
        if why:
            if done is not None:
                done()
            raise limits.limit_exceeded(why)
        try:
            work = self._opened(fn)
        except BaseException:
            if done is not None:
                done()
            raise
        self.writing[sender] += 1
        self.daemon.lifecycle.touch()  # (no idle exit while a change runs)
        loop = asyncio.get_running_loop()

        def over() -> None:
            self.daemon.lifecycle.touch()
            self.writing[sender] -= 1
            if self.writing[sender] <= 0:
                del self.writing[sender]
            if done is not None:
                done()
        # done() runs when the thread really finished (or the work never started), even
        # if this call is abandoned: the descriptors stay open while they are read
        def finished(_: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone (shutting down)
                loop.call_soon_threadsafe(over)
        try:
            job = self.writer.submit(work)
        except RuntimeError:  # the writer was shut down
            over()
            raise errors.code_text(errors.BUSY, "busy", N_("alpmd is stopping")) from None
        job.add_done_callback(finished)
        try:
            plan = await asyncio.wrap_future(job)
        except BaseException as exc:
            raise _translate(exc, what) from None
        for warning in plan.warnings:
            log.warning("%s: %s", what, warning)
        if plan.affected():
            with contextlib.suppress(Exception):
                self.Changed(sorted([repo, arch] for repo, arch in plan.affected()))
        return _history_rows(plan.history)

    # -- reading ------------------------------------------------------------------------

    @dbus_property(access=PropertyAccess.READ)
    def Tree(self) -> S:
        """The tree served ("" when none)."""
        return self.tree or ""

    @dbus_method()
    async def ListRepositories(self) -> RepoList:
        """(name, architectures, testing) of every configured repository."""
        def work(tree: Tree) -> list[list[Any]]:
            return [[r.name, list(r.arches), r.testing] for r in tree.cfg.repos.values()]
        return await self._read(work, "listing the repositories")

    @dbus_method()
    @_in_callers_language
    async def List(self, repo: S, arch: S, opts: Opts) -> ListOfDicts:
        """What each repository and architecture holds ("" for all); offset/limit page."""
        offset, limit = _page(opts)
        repo_ = _name(repo, REPOSITORY) if repo else None
        arch_ = _name(arch, ARCHITECTURE) if arch else None

        def work(tree: Tree) -> list[dict[str, Variant]]:
            return _package_rows(ops.ls(tree, repo_, arch_)[offset:offset + limit])
        return await self._read(work, "listing the repository")

    @dbus_method()
    @_in_callers_language
    async def History(self, pkgbase: S, opts: Opts) -> ListOfDicts:
        """The release history (of one pkgbase unless ""), oldest first; offset/limit page."""
        offset, limit = _page(opts)
        base = check_targets([pkgbase], self.daemon.limits)[0] if pkgbase else None

        def work(tree: Tree) -> list[dict[str, Variant]]:
            return _history_rows(ops.history(tree, base)[offset:offset + limit])
        return await self._read(work, "reading the release history")

    @dbus_method()
    @_in_callers_language
    async def Check(self, opts: Opts) -> Opts:
        """Whether databases, pool and tracking database agree (verify: checksums too;
        repair, authorised by org.alpm.repository.repair: finish an interrupted change
        and rewrite every database)."""
        verify = options.get(opts, "verify", bool, False)
        repair = options.get(opts, "repair", bool, False)
        self._tree_path()
        report: list[ops.CheckReport] = []

        def work(tree: Tree) -> ops.CheckReport:
            return ops.check(tree, verify=verify, repair=repair)
        if repair:
            await self._authorize(REPAIR, {"org.alpm.repository": ""}, opts)

            def fix(tree: Tree) -> Plan:
                report.append(work(tree))
                return Plan()
            await self._write(fix, "repairing the repository tree")
            out = report[0]
        else:
            out = await self._read(work, "checking the repository tree")
        _ = translator(options.locale(opts))
        return {"ok": Variant("b", out.ok),
                "problems": Variant("as", [p.in_language(_) for p in out.problems]),
                "notes": Variant("as", [n.in_language(_) for n in out.notes])}

    # -- changing -----------------------------------------------------------------------

    @dbus_method()
    @_in_callers_language
    async def Add(self, repo: S, arch: S, files: Files, opts: Opts) -> ListOfDicts:
        """Release package files (each: its file name, a descriptor, and none or one
        descriptor of its .sig) to ``repo`` (``arch`` or any); all or nothing."""
        sender = CALLER.get()
        d = self.daemon
        caps = d.limits
        indexes: list[object] = []
        for item in files:
            indexes.append(item[1])
            indexes.extend(item[2])
        mine = fds.claim(indexes, sender)
        try:
            pairs, total = self._files(repo, arch, files, mine)
            force = options.get(opts, "force", bool, False)
            names = [name for name, _p, _s in pairs]
            uid = await self._authorize(RELEASE, release_details(repo, arch, names), opts)
            if d.file_bytes + total > caps.file_bytes_total:
                raise limits.limit_exceeded(N_("the daemon holds too many package files; "
                                               "try later"))
        except BaseException:
            fds.release(sender, mine)
            raise
        d.file_bytes += total

        def done() -> None:
            d.file_bytes -= total
            fds.release(sender, mine)

        def work(tree: Tree) -> Plan:
            streams = [(name, fds.reader(pkg_fd, caps.file_bytes),
                        fds.reader(sig_fd, MAX_SIG_SIZE) if sig_fd is not None else None)
                       for name, pkg_fd, sig_fd in pairs]
            return ops.add_streams(tree, repo, arch, streams, user=_user(uid), force=force)
        return await self._write(work, f"releasing to {repo}", done)

    def _files(self, repo: str, arch: str, files: Files, mine: list[int]
               ) -> tuple[list[tuple[str, int, int | None]], int]:
        """(file name, package fd, signature fd) per file, checked before polkit is asked
        (names, counts, readable regular files, sizes); their total size."""
        caps = self.daemon.limits
        _name(repo, REPOSITORY)
        _name(arch, ARCHITECTURE)
        if not files:
            raise errors.invalid(N_("no package files"))
        if len(files) > caps.files_per_call:
            raise limits.limit_exceeded(f"at most {caps.files_per_call} files per call")
        pairs: list[tuple[str, int, int | None]] = []
        it = iter(mine)
        for filename, _pkg, sigs in files:
            if len(sigs) > 1:
                raise errors.invalid(N_("at most one signature per package file"))
            pairs.append((_file_name(filename), next(it), next(it) if sigs else None))
        if len({name for name, _p, _s in pairs}) != len(pairs):
            raise errors.invalid(N_("a package file is given twice"))
        total = 0
        for filename, pkg_fd, sig_fd in pairs:
            size = fds.check_readable(pkg_fd).size
            if size > caps.file_bytes:
                raise limits.limit_exceeded(f"{filename} is larger than {caps.file_bytes} bytes")
            total += size
            if sig_fd is not None and fds.check_readable(sig_fd).size > MAX_SIG_SIZE:
                raise errors.invalid(f"the signature of {filename} is larger than "
                                     f"{MAX_SIG_SIZE} bytes")
        self._tree_path()
        return pairs, total

    @dbus_method()
    @_in_callers_language
    async def Remove(self, repo: S, arch: S, pkgbases: AS, opts: Opts) -> ListOfDicts:
        """Remove pkgbases (with their split and debug packages) from ``repo``."""
        _name(repo, REPOSITORY)
        _name(arch, ARCHITECTURE)
        if not pkgbases:
            raise errors.invalid(N_("no pkgbase given"))
        bases = check_targets(pkgbases, self.daemon.limits)
        self._tree_path()
        uid = await self._authorize(REMOVE, {
            "org.alpm.repository": repo, "org.alpm.architecture": arch,
            "org.alpm.pkgbases": " ".join(bases)}, opts)
        return await self._write(
            lambda tree: ops.remove(tree, repo, arch, bases, user=_user(uid)),
            f"removing from {repo}")

    @dbus_method()
    @_in_callers_language
    async def Move(self, source: S, destination: S, arch: S, pkgbases: AS,
                   opts: Opts) -> ListOfDicts:
        """Move pkgbases as units from ``source`` to ``destination``; polkit must allow
        org.alpm.repository.move for both repositories."""
        _name(source, REPOSITORY)
        _name(destination, REPOSITORY)
        _name(arch, ARCHITECTURE)
        if not pkgbases:
            raise errors.invalid(N_("no pkgbase given"))
        bases = check_targets(pkgbases, self.daemon.limits)
        force = options.get(opts, "force", bool, False)
        self._tree_path()
        uid = 0
        for role, repo in (("source", source), ("destination", destination)):
            uid = await self._authorize(MOVE, {
                "org.alpm.repository": repo, "org.alpm.role": role,
                "org.alpm.source": source, "org.alpm.destination": destination,
                "org.alpm.architecture": arch, "org.alpm.pkgbases": " ".join(bases)}, opts)
        return await self._write(
            lambda tree: ops.move(tree, source, destination, arch, bases, user=_user(uid),
                                  force=force),
            f"moving from {source} to {destination}")

    # -- signals ------------------------------------------------------------------------

    @dbus_signal()
    def Changed(self, where: Where) -> Where:
        """(repository, architecture) of every database a change rewrote."""
        return where

    def close(self) -> None:
        self.writer.shutdown(wait=False, cancel_futures=True)
