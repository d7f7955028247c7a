"""``org.alpm.Manager1``: creates transactions and reports the daemon's state.

Only translation lives here: arguments are checked and turned into a
transaction object of :class:`~alpmd.dbus.daemon.Daemon`; the work is done by
its parts.
"""


import contextlib
import os
import threading
from collections.abc import Sequence

from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property, dbus_signal
from dbus_fast.signature import Variant

from alpmd import __version__
from alpmd.dbus import errors, fds, limits, options
from alpmd.dbus.bus import CALLER
from alpmd.dbus.daemon import KEEP_FINISHED, Daemon
from alpmd.dbus.types import AH, AO, AS, B, ListOfDicts, O, Opts, S, T, U
from alpmd.engine.db.stores import Store
from alpmd.engine.errors import AlpmError

__all__ = ["KEEP_FINISHED", "Daemon", "Manager1"]
#: GetHistory rows by default and at most
DEFAULT_HISTORY_ROWS = 50
MAX_HISTORY_ROWS = 1000


def check_targets(targets: Sequence[str], caps: limits.Limits) -> list[str]:
    if len(targets) > caps.targets:
        raise errors.invalid("too many targets")
    if sum(len(t) for t in targets) > caps.targets_length:
        raise errors.invalid(f"the targets take more than {caps.targets_length} characters")
    for t in targets:
        if not t or len(t) > caps.target_length or any(c in t for c in "\0\n\r\t ") \
                or t.startswith("-"):
            raise errors.invalid(f"invalid target {t[:64]!r}")
    return list(targets)


class Manager1(ServiceInterface):
    """The entry point: creates transactions, reports the daemon's state."""

    def __init__(self, daemon: Daemon) -> None:
        super().__init__("org.alpm.Manager1")
        self.daemon = daemon
        daemon.manager = self

    def changed(self, *names: str) -> None:
        d = self.daemon
        values = {"State": lambda: d.state, "LockHolder": lambda: d.watcher.lock_holder,
                  "Transactions": self._paths, "Generation": lambda: d.generation,
                  "LastRefresh": lambda: d.last_refresh,
                  "UpdatesAvailable": lambda: d.updates.count}
        with contextlib.suppress(Exception):
            self.emit_properties_changed({n: values[n]() for n in names})  # type: ignore[no-untyped-call]

    def _paths(self) -> list[str]:
        return [t.path for t in self.daemon.transactions.values()]

    @dbus_property(access=PropertyAccess.READ)
    def Version(self) -> S:
        return __version__

    @dbus_property(access=PropertyAccess.READ)
    def State(self) -> S:
        return self.daemon.state

    @dbus_property(access=PropertyAccess.READ)
    def LockHolder(self) -> S:
        return self.daemon.watcher.lock_holder

    @dbus_property(access=PropertyAccess.READ)
    def Transactions(self) -> AO:
        return self._paths()

    @dbus_property(access=PropertyAccess.READ)
    def Generation(self) -> T:
        return self.daemon.generation

    @dbus_property(access=PropertyAccess.READ)
    def LastRefresh(self) -> T:
        return self.daemon.last_refresh

    @dbus_property(access=PropertyAccess.READ)
    def UpdatesAvailable(self) -> U:
        return self.daemon.updates.count

    @dbus_property(access=PropertyAccess.READ)
    def RebootRequired(self) -> B:
        return os.path.exists(self.daemon.handle.options.root + "run/reboot-required")

    # -- transactions -------------------------------------------------------------------

    async def _new(self, kind: str, targets: list[str], opts: Opts,
                   extra: dict[str, object] | None = None) -> str:
        """A new transaction object; option ``run`` = true authorises and queues it within
        this call (for busctl, whose one-shot connection is gone once the call returns)."""
        bag = options.checked(opts)
        bag.update(extra or {})
        sender = CALLER.get()
        uid = await self.daemon.authority.uid(sender) if sender else 0
        t = self.daemon.create(kind, targets, bag, sender, uid)
        if bag.get("run"):
            await self.daemon.start(t)
        return t.path

    @dbus_method()
    async def Refresh(self, opts: Opts) -> O:
        """A refresh into the shadow databases (option run=true: Run it at once)."""
        return await self._new("refresh", [], opts)

    @dbus_method()
    async def Sysupgrade(self, opts: Opts) -> O:
        return await self._new("sysupgrade", [], opts)

    @dbus_method()
    async def Install(self, targets: AS, opts: Opts) -> O:
        if not targets:
            raise errors.invalid("no targets")
        return await self._new("install", check_targets(targets, self.daemon.limits), opts)

    @dbus_method()
    async def InstallFiles(self, files: AH, opts: Opts) -> O:
        """Package files passed as descriptors: authorised first, then copied through the
        descriptors into private files (the client's descriptors are closed on return)."""
        sender = CALLER.get()
        mine = fds.claim(files, sender)
        try:
            return await self._install_files(sender, mine, opts)
        finally:
            fds.release(sender, mine)

    async def _install_files(self, sender: str, mine: list[int], opts: Opts) -> str:
        d = self.daemon
        caps = d.limits
        if not mine:
            raise errors.invalid("no package files")
        if len(mine) > caps.files_per_call:
            raise limits.limit_exceeded(f"at most {caps.files_per_call} files per call")
        sizes = [fds.check_readable(fd).size for fd in mine]
        bag = options.checked(opts)
        await d.authority.check(sender, "org.alpm.install-file",
                                {"org.alpm.kind": "install-files", "org.alpm.targets": ""},
                                interactive=options.get(opts, "interactive", bool, False))
        if any(s > caps.file_bytes for s in sizes):
            raise limits.limit_exceeded(f"a package file is larger than {caps.file_bytes} bytes")
        if d.file_bytes + sum(sizes) > caps.file_bytes_total:
            raise limits.limit_exceeded("the daemon holds too many package files; try later")
        uid = await d.authority.uid(sender) if sender else 0
        t = d.create("install-files", [f"fd:{i}" for i in range(len(mine))], bag, sender, uid)
        t.authorized.add("org.alpm.install-file")
        paths = [d.incoming_path(t.n, i) for i in range(len(mine))]
        # the copies count against the caps while they are being made
        d.take_files(t, [], sum(sizes))

        dups = [os.dup(fd) for fd in mine]  # the worker owns these (it may outlive the call)

        def copy() -> int:
            done: list[str] = []
            total = 0
            try:
                for fd, path in zip(dups, paths, strict=True):
                    total += fds.snapshot(fd, path, caps.file_bytes)
                    done.append(path)
            except BaseException:
                _unlink(done)
                raise
            finally:
                fds.close_all(dups)
            if abandoned.is_set():  # the call gave up waiting: nobody will use the copies
                _unlink(done)
            return total
        abandoned = threading.Event()
        try:
            got = await d.workers.run(sender, caps.simulate_deadline, copy,
                                      "copying the package files",
                                      refused=lambda: fds.close_all(dups))
        except OverflowError:
            d.drop_unstarted(t, "a package file grew past the size limit")
            raise limits.limit_exceeded("a package file grew past the size limit") from None
        except BaseException as exc:
            abandoned.set()
            _unlink(paths)
            d.drop_unstarted(t, str(exc))
            if isinstance(exc, OSError):
                raise errors.internal(exc) from None
            raise
        d.release_files(t)
        if t.state != "setup":
            # the client left, or cancelled, while the files were copied: the transaction
            # has ended and nobody will drop it again (the copies were kept for good, and
            # counted against every client's room for package files until a restart)
            _unlink(paths)
            raise errors.code_text(errors.CANCELLED, "cancelled",
                                   "the transaction ended while its files were copied")
        d.take_files(t, paths, got)
        if bag.get("run"):
            await d.start(t)
        return t.path

    @dbus_method()
    async def Remove(self, targets: AS, opts: Opts) -> O:
        if not targets:
            raise errors.invalid("no targets")
        return await self._new("remove", check_targets(targets, self.daemon.limits), opts)

    @dbus_method()
    async def SetReason(self, targets: AS, reason: S, opts: Opts) -> O:
        if reason not in ("explicit", "dependency"):
            raise errors.invalid("reason must be explicit or dependency")
        return await self._new("set-reason", check_targets(targets, self.daemon.limits), opts,
                               {"reason": reason})

    @dbus_method()
    async def CleanCache(self, opts: Opts) -> O:
        return await self._new("clean-cache", [], opts)

    @dbus_method()
    async def TrustKey(self, fingerprint: S, opts: Opts) -> O:
        fp = fingerprint.replace(" ", "")
        if not (8 <= len(fp) <= 40) or any(c not in "0123456789abcdefABCDEF" for c in fp):
            raise errors.invalid("not a key fingerprint")
        return await self._new("trust-key", [fp.upper()], opts)

    @dbus_method()
    async def ConvertDatabase(self, backend: S, opts: Opts) -> O:
        """Move the local database to another store (files or sqlite), like alpm -D --convert;
        needs org.alpm.convert-database. The query databases are re-opened afterwards."""
        if backend not in {s.value for s in Store}:
            raise errors.invalid(f"unknown backend {backend[:64]!r} (one of "
                                 f"{', '.join(s.value for s in Store)})")
        return await self._new("convert-database", [backend], opts)

    @dbus_method()
    async def GetHistory(self, opts: Opts) -> ListOfDicts:
        """Transactions, newest first: the daemon's own and what pacman.log shows others did.

        Options: offset (u), limit (u, default 50, at most 1000), package (s: only
        transactions that changed it), since / until (t, seconds since the epoch).
        Who asked (uid, client) is shown for one's own transactions; administrators
        (root, or polkit's org.alpm.view-foreign) see it for everybody's."""
        offset = options.get(opts, "offset", int, 0)
        limit = options.get(opts, "limit", int, DEFAULT_HISTORY_ROWS)
        if offset < 0 or limit < 0:
            raise errors.invalid("offset and limit must not be negative")
        limit = min(limit, MAX_HISTORY_ROWS)
        package = options.get(opts, "package", str, "") or None
        since = options.get(opts, "since", int, -1)
        until = options.get(opts, "until", int, -1)
        d = self.daemon
        sender = CALLER.get()
        my_uid = await d.authority.uid(sender) if sender else 0
        admin = my_uid == 0 or await d.authority.may_view_foreign(sender)
        await d.record.settled()

        def page() -> list[dict[str, Variant]]:
            entries = d.record.db.page(offset, limit, package=package,
                                       since=float(since) if since >= 0 else None,
                                       until=float(until) if until >= 0 else None)
            rows: list[dict[str, Variant]] = []
            for e in entries:
                row = {"id": Variant("t", e.id), "started": Variant("d", e.started),
                       "duration": Variant("d", e.duration), "kind": Variant("s", e.kind),
                       "targets": Variant("as", list(e.targets)),
                       "result": Variant("s", e.result), "error": Variant("s", e.error),
                       "source": Variant("s", e.source),
                       "changes": Variant("a(sss)", [[c.name, c.old or "", c.new or ""]
                                                     for c in e.changes])}
                if e.source != "alpmd" or admin or (e.uid == my_uid and e.uid >= 0):
                    row["uid"] = Variant("i", e.uid)
                    row["client"] = Variant("s", e.client)
                rows.append(row)
            return limits.bounded_reply(rows, d.limits.reply_bytes, "the history page")
        # A page of a long history (1,000 upgrades of 100 packages) takes 0.7 s: read and
        # built in the heavy-call pool, so one user's pipelined calls are refused past its
        # share (40 of them, read in threads of their own, kept other clients waiting 14 s)
        try:
            return await d.workers.run(sender, d.limits.search_deadline, page,
                                       "reading the history", uid=my_uid)
        except AlpmError as exc:
            raise errors.from_alpm(exc) from None

    @dbus_method()
    async def Quit(self) -> None:
        """Stop the daemon (tests; root only)."""
        sender = CALLER.get()
        if sender and await self.daemon.authority.uid(sender) != 0:
            raise errors.code_text(errors.NOT_AUTHORIZED, "not-authorized", "only root may stop alpmd")
        self.daemon.stopping.set()

    # -- signals ------------------------------------------------------------------------

    @dbus_signal()
    def UpdatesChanged(self, count: U) -> U:
        return count

    @dbus_signal()
    def InstalledChanged(self, generation: T) -> T:
        return generation

    @dbus_signal()
    def LockChanged(self, holder: S) -> S:
        return holder


def _unlink(paths: Sequence[str]) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            os.unlink(p)
