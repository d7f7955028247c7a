"""The Handle: options, registered databases, the lock, the log and the callbacks.

Everything the engine knows about one installation hangs off a Handle, so two
handles on two roots never share state (libalpm's ``alpm_handle_t``).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from alpmd import TYPE_CHECKING
from alpmd.engine.alpmdconf import CONFIG_NAME, load_alpmd_config
from alpmd.engine.config import DEFAULT_SIGLEVEL, Config, Repo, SigLevel
from alpmd.engine.db.local import LocalDatabase
from alpmd.engine.db.stores import Store, choose_store, local_backend
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.log import LogCallback, LogLevel, LogWriter

if TYPE_CHECKING:
    from alpmd.engine.db.sync import SyncDatabase
    from alpmd.engine.process import ProcessId

# Imported where used: the sync module (a query of the installed packages registers the
# repositories but never opens them) and the process module (for a lock holder only).

LOCK_NAME = "db.lck"


def lock_holder(lockfile: str) -> str:
    """See :meth:`Handle.lock_holder`; usable without a handle (a daemon watching a root)."""
    if not os.path.exists(lockfile):
        return ""
    holder = lock_holder_process(lockfile)
    if holder is None:
        return "stale"
    try:
        with open(f"/proc/{holder.pid}/comm", encoding="utf-8", errors="replace") as f:
            comm = f.read().strip()
    except OSError:
        comm = "?"
    return f"pid {holder.pid} ({comm})"


def _opened_to_write(pid: str, fd: str) -> bool:
    """Whether a descriptor is open for writing: the lock's holder created the file so
    (pacman: write-only). Anybody may hold an ``O_PATH`` or read descriptor of a lock
    file, mode 000 included; counting those would let any user make a stale lock look
    held, and repair refuse."""
    with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as f:
        for line in f:
            if line.startswith("flags:"):
                flags = int(line.split()[1], 8)
                return not flags & os.O_PATH and flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
    return False


def lock_holder_process(lockfile: str) -> ProcessId | None:
    """The live process (PID and start time) that has ``lockfile`` open, or None.

    pacman and we keep the lock's descriptor open while holding it; the kernel
    closes it when the holder dies, so a crashed holder (a zombie included) is
    never found, and the start time names the holder even if its PID is reused
    later.
    """
    from alpmd.engine.process import ProcessId, start_time

    real = os.path.realpath(lockfile)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fddir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fddir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{fddir}/{fd}") != real or not _opened_to_write(pid, fd):
                    continue
            except OSError:
                continue
            found = ProcessId(int(pid), start_time(int(pid)))
            if found.alive():
                return found
    return None


def _dir(path: str) -> str:
    """Directories are kept with one trailing slash, as libalpm canonicalises them."""
    return path if path.endswith("/") else path + "/"


@dataclass(eq=False, repr=False)
class Options:
    """The handle's options, with pacman's defaults derived from the root."""

    root: str = "/"
    dbpath: str | None = None
    logfile: str | None = None
    cachedirs: list[str] = field(default_factory=list)
    hookdirs: list[str] = field(default_factory=list)
    gpgdir: str = "/etc/pacman.d/gnupg/"
    noupgrade: list[str] = field(default_factory=list)
    noextract: list[str] = field(default_factory=list)
    ignorepkg: list[str] = field(default_factory=list)
    ignoregroup: list[str] = field(default_factory=list)
    holdpkg: list[str] = field(default_factory=list)
    architectures: list[str] = field(default_factory=list)
    assume_installed: list[str] = field(default_factory=list)
    overwrite_files: list[str] = field(default_factory=list)
    checkspace: bool = False
    usesyslog: bool = False
    parallel_downloads: int = 1
    disable_download_timeout: bool = False
    xfer_command: str | None = None
    download_user: str | None = None
    disable_sandbox_filesystem: bool = False
    siglevel: SigLevel = DEFAULT_SIGLEVEL
    local_file_siglevel: SigLevel = DEFAULT_SIGLEVEL
    remote_file_siglevel: SigLevel = DEFAULT_SIGLEVEL
    #: ``.db``, or ``.files`` to read the files databases instead (``-F``).
    dbext: str = ".db"
    #: Parsed sync database snapshots; a cache (``pacman -Sc`` would wipe one under dbpath).
    snapshot_dir: str | None = None
    use_snapshots: bool = True
    #: alpmd's own configuration file (default ``<root>/etc/alpmd.conf``).
    alpmd_config: str | None = None
    #: The local database store for a new root; ``None``: what alpmd.conf says.
    backend: Store | None = None

    def __post_init__(self) -> None:
        self.root = _dir(os.path.abspath(self.root))
        if self.dbpath is None:
            self.dbpath = self.root + "var/lib/pacman/"
        self.dbpath = _dir(self.dbpath)
        if self.logfile is None:
            self.logfile = self.root + "var/log/pacman.log"
        if not self.cachedirs:
            self.cachedirs = [self.root + "var/cache/pacman/pkg/"]
        self.cachedirs = [_dir(d) for d in self.cachedirs]
        if not self.hookdirs:
            self.hookdirs = [self.root + "etc/pacman.d/hooks/"]
        self.hookdirs = [_dir(d) for d in self.hookdirs]
        if self.snapshot_dir is None and self.use_snapshots:
            self.snapshot_dir = self.root + "var/cache/alpmd/sync/"
        if self.alpmd_config is None:
            self.alpmd_config = self.root + CONFIG_NAME

    @property
    def lockfile(self) -> str:
        assert self.dbpath is not None
        return self.dbpath + LOCK_NAME

    @classmethod
    def from_config(cls, config: Config, **overrides: object) -> Options:
        """The options a parsed pacman.conf asks for; ``overrides`` win (front-end flags)."""
        values: dict[str, object] = dict(
            root=config.root_dir,
            dbpath=config.db_path,
            logfile=config.log_file,
            cachedirs=list(config.cache_dirs),
            hookdirs=list(config.hook_dirs),
            gpgdir=config.gpg_dir,
            noupgrade=list(config.no_upgrade),
            noextract=list(config.no_extract),
            ignorepkg=list(config.ignore_pkg),
            ignoregroup=list(config.ignore_group),
            holdpkg=list(config.hold_pkg),
            architectures=list(config.architectures),
            checkspace=config.check_space,
            usesyslog=config.use_syslog,
            parallel_downloads=config.parallel_downloads,
            disable_download_timeout=config.disable_download_timeout,
            xfer_command=config.xfer_command,
            download_user=config.download_user,
            disable_sandbox_filesystem=config.disable_sandbox_filesystem,
            siglevel=config.siglevel,
            local_file_siglevel=config.local_file_siglevel,
            remote_file_siglevel=config.remote_file_siglevel,
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


class Handle:
    """One installation: its options, local database, sync databases and lock."""

    def __init__(self, options: Options | None = None, **kwargs: object) -> None:
        self.options = options if options is not None else Options(**kwargs)  # type: ignore[arg-type]
        self._localdb: LocalDatabase | None = None
        self._syncdbs: list[SyncDatabase] = []
        #: Registered repositories not yet opened (name, pacman.conf section): see syncdbs.
        self._unopened: list[tuple[str, Repo | None]] = []
        self._lock_fd: int | None = None
        self.log_callbacks: list[LogCallback] = []
        #: The transaction in progress (one per handle at a time; see trans.Transaction).
        self.trans: object | None = None
        assert self.options.logfile is not None
        self.logwriter = LogWriter(self.options.logfile, use_syslog=self.options.usesyslog)

    # -- databases ------------------------------------------------------------------

    @property
    def dbpath(self) -> str:
        assert self.options.dbpath is not None
        return self.options.dbpath

    @property
    def localdb(self) -> LocalDatabase:
        """The local database, opened on first use, in the store :meth:`store` names."""
        if self._localdb is None:
            backend = local_backend(self.dbpath, self.store(), log=self.log)
            self._localdb = LocalDatabase(self.dbpath, backend=backend, log=self.log)
        return self._localdb

    def drop_localdb(self) -> None:
        """Close the local database; the next use opens whatever store is there then."""
        if self._localdb is not None:
            self._localdb.close()
            self._localdb = None

    def load_databases(self, *, compact: bool = False) -> None:
        """Read the local and every sync database now, as the first query would: a daemon
        does it in a worker thread before publishing the handle, so no query parses on its
        event loop. A database that cannot be read is left for the query to report.

        ``compact``: a sync database parsed from its archive just now (which wrote its
        snapshot) is read again from that snapshot, the smaller form for a long-lived
        process to keep (about half the memory of the one built while parsing)."""
        for db in [self.localdb, *self.syncdbs]:
            try:
                db.state  # noqa: B018 - the property populates the package cache
            except AlpmError:
                continue
        if not compact:
            return
        for sdb in self.syncdbs:
            if (sdb.loaded_from == "archive" and sdb.snapshot_path is not None
                    and os.path.exists(sdb.snapshot_path)):
                sdb.invalidate()
                with contextlib.suppress(AlpmError):
                    sdb.state  # noqa: B018 - as above, now from the snapshot

    def store(self) -> Store:
        """The local database's store: the one present, else the configured one."""
        configured = self.options.backend
        if configured is None:
            assert self.options.alpmd_config is not None
            configured = load_alpmd_config(self.options.alpmd_config).backend
        return choose_store(self.dbpath, configured)

    @classmethod
    def from_config(cls, config: Config, **overrides: object) -> tuple[Handle, list[AlpmError]]:
        """A handle for a parsed pacman.conf with its repositories registered.

        Repositories that cannot be registered are returned as errors (pacman
        reports them and goes on without them).
        """
        handle = cls(Options.from_config(config, **overrides))
        errors: list[AlpmError] = []
        for repo in config.repos:
            try:
                handle._register(repo.name, repo)
            except AlpmError as exc:
                errors.append(exc)
        return handle, errors

    def register_syncdb(self, name: str, repo: Repo | None = None) -> SyncDatabase:
        """Register ``<dbpath>/sync/<name><dbext>`` (and its ``.files``); names are unique.

        ``repo`` carries the servers, signature level and usage from pacman.conf;
        without it the database has no servers and the global signature level.
        """
        self._register(name, repo)
        return self.syncdbs[-1]

    def _register(self, name: str, repo: Repo | None) -> None:
        """Check the name and queue the database for :attr:`syncdbs` to open."""
        if not name or "/" in name or name in (".", ".."):
            raise AlpmError(ErrorCode.WRONG_ARGS, f"invalid database name '{name}'", name=name)
        if name == "local" or any(db.name == name for db in self._syncdbs) or any(
                queued == name for queued, _ in self._unopened):
            raise AlpmError(ErrorCode.DB_NOT_NULL, f"database '{name}' already registered",
                            name=name)
        self._unopened.append((name, repo))

    @property
    def syncdbs(self) -> list[SyncDatabase]:
        """The registered sync databases, in the order they were registered.

        Opened (not read) on first use: a query of the installed packages, which
        registers the repositories as pacman does, never loads the sync module.
        """
        if self._unopened:
            unopened, self._unopened = self._unopened, []
            self._syncdbs += [self._open_syncdb(name, repo) for name, repo in unopened]
        return self._syncdbs

    def _open_syncdb(self, name: str, repo: Repo | None) -> SyncDatabase:
        from alpmd.engine.db.sync import SyncDatabase

        sync = self.dbpath + "sync/"
        snapshots = self.options.snapshot_dir if self.options.use_snapshots else None
        if snapshots is not None and self.options.dbext != ".db":
            snapshots += self.options.dbext.lstrip(".") + "/"
        db = SyncDatabase(name, sync + name + self.options.dbext,
                          files_path=sync + name + ".files", snapshot_dir=snapshots, log=self.log)
        db.repo = repo if repo is not None else Repo(name, siglevel=self.options.siglevel)
        return db

    def get_syncdb(self, name: str) -> SyncDatabase | None:
        return next((db for db in self.syncdbs if db.name == name), None)

    # -- lock -----------------------------------------------------------------------

    @property
    def lockfile(self) -> str:
        return self.options.lockfile

    def lock(self) -> None:
        """Create ``db.lck`` exclusively, as pacman does, so the two exclude each other."""
        if self._lock_fd is not None:
            raise AlpmError(ErrorCode.HANDLE_LOCK, "database already locked by this handle")
        os.makedirs(self.dbpath, exist_ok=True)
        try:
            fd = os.open(self.lockfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o000)
        except OSError as exc:
            why = "File exists" if exc.errno == errno.EEXIST else (exc.strerror or str(exc))
            raise AlpmError(ErrorCode.READ_ONLY if exc.errno == errno.EROFS
                            else ErrorCode.HANDLE_LOCK,
                            f"could not lock database: {why} ({self.lockfile})",
                            lockfile=self.lockfile, errno=exc.errno) from exc
        self._lock_fd = fd

    def unlock(self) -> None:
        """Remove the lock we hold; a lock we do not hold is never touched."""
        if self._lock_fd is None:
            return
        os.close(self._lock_fd)
        self._lock_fd = None
        try:
            os.unlink(self.lockfile)
        except FileNotFoundError:
            pass

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    def lock_holder(self) -> str:
        """Who holds ``db.lck``: "" (nobody), "pid N (comm)", or "stale" (a file, no process).

        Found by looking for a process with the lock file open (pacman keeps its
        descriptor open while it holds the lock); the lock itself is never touched.
        """
        return lock_holder(self.lockfile)

    # -- log ------------------------------------------------------------------------

    def logaction(self, prefix: str, message: str) -> None:
        """Write one pacman.log line (``[ALPM]``, ``[ALPM-SCRIPTLET]``, ``[PACMAN]``)."""
        self.logwriter.write(prefix, message)

    def log(self, level: LogLevel, message: str) -> None:
        """Tell the front ends (the log callback), not pacman.log."""
        for cb in self.log_callbacks:
            cb(level, message)

    def add_log_callback(self, cb: Callable[[LogLevel, str], None]) -> None:
        self.log_callbacks.append(cb)

    # -- life cycle -----------------------------------------------------------------

    def release(self) -> None:
        """Unlock and close everything; safe to call twice."""
        self.unlock()
        if self._localdb is not None:
            self._localdb.close()
        self.logwriter.close()

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
