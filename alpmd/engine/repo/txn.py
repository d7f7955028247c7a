"""One change to a repository tree: new files first, then a switch under the tree's lock.

A change is prepared completely (new databases beside the old ones as
``*.new-TXID``, new package files in the pool) and described in a journal
before the tracking database commits it; the switch (package links, renaming
the new databases over the old ones, dropping old links, clearing staging)
only follows that commit. The next command, or ``check --repair``, reads a
journal left by a crash: if the tracking database has the journal's txid the
switch is finished, otherwise everything the journal names is removed again.
Every step of the switch is idempotent, so finishing twice is harmless.

Databases that gain packages are switched before those that lose them, so a
reader between two renames may see a package twice but never not at all.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.journal import fsync_dir
from alpmd.engine.repo.config import TreeConfig
from alpmd.engine.repo.dbarchive import Chunk, Entry, key, write_db_incremental
from alpmd.engine.repo.tracking import HistoryEntry, Row, Tracking, entries_of

JOURNAL_NAME = "journal.json"
LOCK_NAME = "lock"


def _write_durably(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))


@contextmanager
def tree_lock(cfg: TreeConfig, timeout: float | None = None) -> Iterator[None]:
    """The tree's one writer lock; waits up to ``timeout`` (the config's LockTimeout)."""
    os.makedirs(cfg.state_dir, exist_ok=True)
    path = os.path.join(cfg.state_dir, LOCK_NAME)
    limit = cfg.lock_timeout if timeout is None else timeout
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + limit
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                raise AlpmError(ErrorCode.HANDLE_LOCK,
                                f"repository tree {cfg.root} is locked by process {holder} "
                                f"(waited {limit:g} s)", path=path, holder=holder)
            time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing drops the flock


# -- the plan of one change --------------------------------------------------------------


@dataclass
class Plan:
    """What one command changes: rows, pool files, staging files to clear, history."""

    drops: dict[tuple[str, str, str], Row] = field(default_factory=dict)
    puts: dict[tuple[str, str, str], Row] = field(default_factory=dict)
    #: pool file name -> (source path, signature bytes or None)
    pool: dict[str, tuple[str, bytes | None]] = field(default_factory=dict)
    history: list[HistoryEntry] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: databases to write again even though no row of theirs changes (check --repair)
    rewrite: set[tuple[str, str]] = field(default_factory=set)

    def drop(self, row: Row) -> None:
        key = (row.repo, row.arch, row.name)
        self.puts.pop(key, None)
        self.drops[key] = row

    def put(self, row: Row) -> None:
        self.puts[(row.repo, row.arch, row.name)] = row

    def affected(self) -> set[tuple[str, str]]:
        return {(k[0], k[1]) for k in (*self.drops, *self.puts)} | self.rewrite

    def affected_repos(self) -> set[str]:
        return {repo for repo, _arch in self.affected()}

    def empty(self) -> bool:
        return not self.drops and not self.puts


def _db_names(cfg: TreeConfig, repo: str) -> tuple[str, str]:
    suffix = cfg.db_suffix()
    return f"{repo}.db{suffix}", f"{repo}.files{suffix}"


def _link_target(filename: str) -> str:
    return os.path.join("..", "..", "..", "pool", "packages", filename)


def _sign(cfg: TreeConfig, path: str) -> None:
    """A detached binary signature ``path.sig`` with the configured key (repo-add --sign)."""
    assert cfg.sign_key is not None
    proc = subprocess.run(["gpg", "--batch", "--yes", "--no-tty", "--detach-sign", "--no-armor",
                           "-u", cfg.sign_key, "-o", path + ".sig", path],
                          capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise AlpmError(ErrorCode.GPGME, f"could not sign {path}: "
                        f"{proc.stderr.decode(errors='replace').strip()}", path=path)


def _copy_into_pool(cfg: TreeConfig, name: str, src: str, sig: bytes | None,
                    txid: str) -> None:
    dest = os.path.join(cfg.pool, name)
    tmp = os.path.join(cfg.pool, f".{name}.new-{txid}")
    shutil.copyfile(src, tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    if sig is not None:
        _write_durably(dest + ".sig", sig)
    os.replace(tmp, dest)


def _identity(path: str) -> str:
    """What ties a chunk index to one database file (kept by renames and by copies that
    keep times, so a copied or restored tree stays incremental)."""
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def _write_db(cfg: TreeConfig, tracking: Tracking, plan: Plan, repo: str, arch: str,
              kind: str, final: str, tmp: str) -> tuple[str, str, str, str, list[Chunk]]:
    """Write one database of the plan beside ``final``, reusing its unchanged chunks."""
    drops = {n for (r, a, n) in plan.drops if (r, a) == (repo, arch)}
    puts = [row for (r, a, _n), row in plan.puts.items() if (r, a) == (repo, arch)]
    changed = {row.dirname for row in puts}
    changed |= {plan.drops[(repo, arch, n)].dirname for n in drops}
    recorded = None if (repo, arch) in plan.rewrite else tracking.chunks(repo, arch, kind)
    old = None
    if recorded is not None and os.path.exists(final) and _identity(final) == recorded[0]:
        old = recorded[1]
    put_names = {row.name for row in puts}

    def load(lo: str | None, hi: str | None) -> list[Entry]:
        rows = [r for r in tracking.rows_between(repo, arch, lo, hi)
                if r.name not in drops and r.name not in put_names]
        rows += [r for r in puts if (lo is None or key(r.dirname) >= key(lo))
                 and (hi is None or key(r.dirname) < key(hi))]
        return entries_of(rows, files=kind == "files")

    index = write_db_incremental(tmp, cfg.compression, final if old else None, old, changed,
                                 load)
    return repo, arch, kind, _identity(tmp), index


def commit(cfg: TreeConfig, tracking: Tracking, plan: Plan) -> None:
    """Carry out ``plan`` atomically (the caller holds the lock and has recovered)."""
    txid = uuid.uuid4().hex
    links: list[tuple[str, str]] = []
    unlinks: list[str] = []
    gaining: list[tuple[str, str]] = []
    losing: list[tuple[str, str]] = []
    affected = sorted(plan.affected())
    for repo, arch in affected:
        d = cfg.arch_dir(repo, arch)
        puts = [row for (r, a, _n), row in plan.puts.items() if (r, a) == (repo, arch)]
        dropped = {n for (r, a, n) in plan.drops if (r, a) == (repo, arch)}
        new_files = {row.filename for row in puts}
        for fn in sorted(new_files):
            links.append((os.path.join(d, fn), _link_target(fn)))
            links.append((os.path.join(d, fn + ".sig"), _link_target(fn + ".sig")))
        besides = dropped | {row.name for row in puts}
        for fn in sorted({plan.drops[(repo, arch, n)].filename for n in dropped} - new_files):
            if not tracking.filename_used(repo, arch, fn, besides):
                unlinks += [os.path.join(d, fn), os.path.join(d, fn + ".sig")]
        db, files = _db_names(cfg, repo)
        names = [db, files] if cfg.files else [db]
        if cfg.sign_key:
            names += [n + ".sig" for n in list(names)]
        pairs = [(os.path.join(d, f"{n}.new-{txid}"), os.path.join(d, n)) for n in names]
        (gaining if puts else losing).extend(pairs)
    renames = gaining + losing
    dblinks = [pair for repo, arch in affected for pair in db_links(cfg, repo, arch)]
    journal: dict[str, object] = {"txid": txid, "renames": renames, "links": links,
                                  "dblinks": dblinks, "unlinks": unlinks,
                                  "pool": sorted(plan.pool), "cleared": plan.cleared}
    jpath = os.path.join(cfg.state_dir, JOURNAL_NAME)
    _write_durably(jpath, json.dumps(journal).encode())
    try:
        for name, (src, sig) in sorted(plan.pool.items()):
            _copy_into_pool(cfg, name, src, sig, txid)
        fsync_dir(cfg.pool)
        indexes = []
        for repo, arch in affected:
            d = cfg.arch_dir(repo, arch)
            for kind, name in zip(("db", "files"), _db_names(cfg, repo), strict=True):
                if kind == "files" and not cfg.files:
                    continue
                tmp = os.path.join(d, f"{name}.new-{txid}")
                indexes.append(_write_db(cfg, tracking, plan, repo, arch, kind,
                                         os.path.join(d, name), tmp))
                if cfg.sign_key:
                    _sign(cfg, tmp)
                    os.replace(tmp + ".sig", os.path.join(d, f"{name}.sig.new-{txid}"))
        tracking.apply(txid, plan.drops, plan.puts.values(), plan.history, indexes)
    except BaseException:
        rollback(cfg, tracking, journal)
        raise
    finish(cfg, journal)


def _ensure_link(path: str, target: str) -> None:
    try:
        if os.readlink(path) == target:
            return
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        os.unlink(path)  # a regular file where a link belongs
    os.symlink(target, path)


def db_links(cfg: TreeConfig, repo: str, arch: str) -> list[tuple[str, str]]:
    """``REPO.db -> REPO.db.tar.gz`` and friends, as repo-add makes them."""
    d = cfg.arch_dir(repo, arch)
    db, files = _db_names(cfg, repo)
    out = [(os.path.join(d, f"{repo}.db"), db)]
    if cfg.files:
        out.append((os.path.join(d, f"{repo}.files"), files))
    if cfg.sign_key:
        out += [(p + ".sig", t + ".sig") for p, t in list(out)]
    return out


def finish(cfg: TreeConfig, journal: dict[str, object]) -> None:
    """The switch after the tracking database committed: idempotent, crash after crash."""
    links = journal["links"]
    renames = journal["renames"]
    unlinks = journal["unlinks"]
    cleared = journal["cleared"]
    assert isinstance(links, list) and isinstance(renames, list)
    assert isinstance(unlinks, list) and isinstance(cleared, list)
    dirs: set[str] = set()
    for path, target in links:
        # a package's .sig link only when the pool has the signature
        if path.endswith(".sig") and not os.path.exists(
                os.path.join(os.path.dirname(path), target)):
            continue
        _ensure_link(path, target)
        dirs.add(os.path.dirname(path))
    for src, dest in renames:
        try:
            os.replace(src, dest)
        except FileNotFoundError:
            pass  # renamed before the crash
        dirs.add(os.path.dirname(dest))
    dblinks = journal.get("dblinks", [])
    assert isinstance(dblinks, list)
    for path, target in dblinks:
        _ensure_link(path, target)
    for d in sorted(dirs):
        fsync_dir(d)
    for path in unlinks:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    for path in cleared:
        for p in (path, path + ".sig"):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
    _drop_journal(cfg)


def rollback(cfg: TreeConfig, tracking: Tracking, journal: dict[str, object]) -> None:
    """Undo a change the tracking database never committed: remove what it created."""
    txid = journal["txid"]
    renames = journal["renames"]
    pool = journal["pool"]
    assert isinstance(txid, str) and isinstance(renames, list) and isinstance(pool, list)
    for src, _dest in renames:
        for p in (src, src.replace(f".new-{txid}", f".sig.new-{txid}"), src + ".sig"):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
    for name in pool:
        tmp = os.path.join(cfg.pool, f".{name}.new-{txid}")
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if not tracking.references(name):
            for p in (os.path.join(cfg.pool, name), os.path.join(cfg.pool, name + ".sig")):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
    _drop_journal(cfg)


def _drop_journal(cfg: TreeConfig) -> None:
    jpath = os.path.join(cfg.state_dir, JOURNAL_NAME)
    try:
        os.unlink(jpath)
    except FileNotFoundError:
        return
    fsync_dir(cfg.state_dir)


def pending(cfg: TreeConfig) -> dict[str, object] | None:
    """The journal a crashed command left, if any (a torn one never committed anything)."""
    jpath = os.path.join(cfg.state_dir, JOURNAL_NAME)
    try:
        with open(jpath, "rb") as fh:
            data: dict[str, object] = json.loads(fh.read())
    except FileNotFoundError:
        return None
    except ValueError:
        os.unlink(jpath)  # written via a temporary file: only a stray .tmp can be torn
        return None
    return data


def recover(cfg: TreeConfig, tracking: Tracking) -> str | None:
    """Finish or roll back a crashed change; which one happened, or None."""
    journal = pending(cfg)
    if journal is None:
        return None
    if tracking.txid() == journal.get("txid"):
        finish(cfg, journal)
        return "finished"
    rollback(cfg, tracking, journal)
    return "rolled back"
