"""One change to a repository tree: new files first, then one switch under the tree's lock.

Layout. The databases of every repository and architecture live in numbered
*generations*, ``ROOT/pool/db/<N>/REPO/ARCH/REPO.db.tar.gz`` (and ``.files``,
``.sig``), and the symlink ``ROOT/pool/db/current`` names the generation readers
see. What pacman's mirrors serve, ``ROOT/REPO/os/ARCH/REPO.db.tar.gz``, is a fixed
symlink into it (``../../../pool/db/current/REPO/ARCH/REPO.db.tar.gz``) and
``REPO.db`` links to that as repo-add's does. A change writes a whole new
generation (the databases it changes written anew, incrementally; the others hard
links to the current generation's files), then switches every database of every
repository and architecture at once by renaming one symlink over ``current``: a
reader opening any database path resolves ``current`` once and gets one
generation, so it never sees x86_64 updated and aarch64 not, nor ``testing``
emptied before ``core`` gained the package.

Order of a change: the journal (txid, new generation, package links to make and
drop, pool files, staging files to clear); pool files and the new generation
written and flushed; the tracking database commits with the txid (the commit
point); then :func:`finish`: links to new package files, the switch of
``current``, dropped packages' links removed, staging cleared, generations older
than the one just replaced removed (that one stays until the next change, so a
reader that resolved ``current`` itself can finish reading a whole generation),
the journal dropped. After a crash the next command, or ``check --repair``, reads
the journal: if the tracking database has its txid the switch is finished (every
step is idempotent), otherwise the new generation and the pool files nothing
references are removed again. Readers see the old generation until the switch.
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

from alpmd.engine.durable import fsync_dir
from alpmd.engine.errors import AlpmError, ErrorCode
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


def db_kinds(cfg: TreeConfig, repo: str) -> list[tuple[str, str]]:
    """``(kind, file name)`` of each database a repository has in every architecture."""
    db, files = _db_names(cfg, repo)
    return [("db", db), ("files", files)] if cfg.files else [("db", db)]


# -- generations -------------------------------------------------------------------------

CURRENT = "current"


def generation_dirs(cfg: TreeConfig) -> dict[int, str]:
    """Number → directory name of every generation on disk."""
    try:
        names = os.listdir(cfg.generations)
    except FileNotFoundError:
        return {}
    return {int(n): n for n in names if n.isdigit()}


def current_generation(cfg: TreeConfig) -> str | None:
    """The generation ``current`` names (what readers see), or None before the first."""
    try:
        return os.readlink(os.path.join(cfg.generations, CURRENT))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None  # not a link
        raise


def generation_file(cfg: TreeConfig, generation: str, repo: str, arch: str, name: str) -> str:
    return os.path.join(cfg.generations, generation, repo, arch, name)


def _switch(cfg: TreeConfig, generation: str) -> None:
    """Point ``current`` at ``generation``: one rename, so all databases change at once."""
    if current_generation(cfg) == generation:
        return
    tmp = os.path.join(cfg.generations, f".{CURRENT}.new")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(generation, tmp)
    os.replace(tmp, os.path.join(cfg.generations, CURRENT))
    fsync_dir(cfg.generations)


def prune_generations(cfg: TreeConfig) -> list[str]:
    """Remove every generation but the current one and the one before it; their names."""
    cur = current_generation(cfg)
    if cur is None or not cur.isdigit():
        return []
    dirs = generation_dirs(cfg)
    older = [n for n in dirs if n < int(cur)]
    keep = {int(cur), max(older)} if older else {int(cur)}
    removed = []
    for n, name in sorted(dirs.items()):
        if n not in keep and name != cur:
            shutil.rmtree(os.path.join(cfg.generations, name))
            removed.append(name)
    return removed


def _next_generation(cfg: TreeConfig, tracking: Tracking) -> str:
    recorded = tracking.generation()
    numbers = [0, *generation_dirs(cfg)]
    if recorded is not None and recorded.isdigit():
        numbers.append(int(recorded))
    return f"{max(numbers) + 1:08d}"


def _current_file(cfg: TreeConfig, generation: str | None, repo: str, arch: str,
                  name: str) -> str | None:
    """The database file readers see now (a regular file), or None when there is none.

    Before the first generation (a tree of the earlier layout) that is the file in
    the architecture's directory itself.
    """
    if generation is not None:
        path = generation_file(cfg, generation, repo, arch, name)
    else:
        path = os.path.join(cfg.arch_dir(repo, arch), name)
    return path if os.path.isfile(path) and not os.path.islink(path) else None


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
              kind: str, current: str | None, dest: str
              ) -> tuple[str, str, str, str, list[Chunk]]:
    """Write one database of the plan to ``dest``, reusing ``current``'s unchanged chunks."""
    drops = {n for (r, a, n) in plan.drops if (r, a) == (repo, arch)}
    puts = [row for (r, a, _n), row in plan.puts.items() if (r, a) == (repo, arch)]
    changed = {row.dirname for row in puts}
    changed |= {plan.drops[(repo, arch, n)].dirname for n in drops}
    recorded = None if (repo, arch) in plan.rewrite else tracking.chunks(repo, arch, kind)
    old = None
    if recorded is not None and current is not None and _identity(current) == recorded[0]:
        old = recorded[1]
    put_names = {row.name for row in puts}

    def load(lo: str | None, hi: str | None) -> list[Entry]:
        rows = [r for r in tracking.rows_between(repo, arch, lo, hi)
                if r.name not in drops and r.name not in put_names]
        rows += [r for r in puts if (lo is None or key(r.dirname) >= key(lo))
                 and (hi is None or key(r.dirname) < key(hi))]
        return entries_of(rows, files=kind == "files")

    index = write_db_incremental(dest, cfg.compression, current if old else None, old, changed,
                                 load)
    return repo, arch, kind, _identity(dest), index


def _write_generation(cfg: TreeConfig, tracking: Tracking, plan: Plan, current: str | None,
                      generation: str) -> list[tuple[str, str, str, str, list[Chunk]]]:
    """Every database of the tree in ``generation``: the plan's written, the rest linked."""
    gdir = os.path.join(cfg.generations, generation)
    shutil.rmtree(gdir, ignore_errors=True)  # left by an attempt that was rolled back
    affected = plan.affected()
    indexes = []
    for repo in sorted(cfg.repos):
        for arch in cfg.repos[repo].arches:
            d = os.path.join(gdir, repo, arch)
            os.makedirs(d)
            for kind, name in db_kinds(cfg, repo):
                dest = os.path.join(d, name)
                now = _current_file(cfg, current, repo, arch, name)
                if (repo, arch) not in affected and now is not None:
                    try:
                        os.link(now, dest)
                    except OSError:
                        now = None  # another file system (a tree of the earlier layout)
                    else:
                        if cfg.sign_key and os.path.isfile(now + ".sig"):
                            os.link(now + ".sig", dest + ".sig")
                        elif cfg.sign_key:
                            _sign(cfg, dest)
                        continue
                indexes.append(_write_db(cfg, tracking, plan, repo, arch, kind, now, dest))
                if cfg.sign_key:
                    _sign(cfg, dest)
            fsync_dir(d)
        fsync_dir(os.path.join(gdir, repo))
    fsync_dir(gdir)
    fsync_dir(cfg.generations)
    return indexes


def commit(cfg: TreeConfig, tracking: Tracking, plan: Plan) -> None:
    """Carry out ``plan`` atomically (the caller holds the lock and has recovered)."""
    txid = uuid.uuid4().hex
    current = current_generation(cfg)
    generation = _next_generation(cfg, tracking)
    links: list[tuple[str, str]] = []
    unlinks: list[str] = []
    for repo, arch in sorted(plan.affected()):
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
    journal: dict[str, object] = {"txid": txid, "generation": generation, "links": links,
                                  "unlinks": unlinks, "pool": sorted(plan.pool),
                                  "cleared": plan.cleared}
    jpath = os.path.join(cfg.state_dir, JOURNAL_NAME)
    os.makedirs(cfg.generations, exist_ok=True)
    _write_durably(jpath, json.dumps(journal).encode())
    try:
        for name, (src, sig) in sorted(plan.pool.items()):
            _copy_into_pool(cfg, name, src, sig, txid)
        fsync_dir(cfg.pool)
        indexes = _write_generation(cfg, tracking, plan, current, generation)
        tracking.apply(txid, plan.drops, plan.puts.values(), plan.history, indexes,
                       generation=generation)
    except BaseException:
        rollback(cfg, tracking, journal)
        raise
    finish(cfg, journal)


def _ensure_link(path: str, target: str) -> bool:
    """``path`` a symlink to ``target``, replacing whatever is there in one rename;
    whether anything changed."""
    try:
        if os.readlink(path) == target:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.new-link")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, path)
    return True


def db_links(cfg: TreeConfig, repo: str, arch: str) -> list[tuple[str, str]]:
    """The links an architecture's directory holds for its databases.

    ``REPO.db.tar.gz`` reaches the current generation's file; ``REPO.db`` links to
    ``REPO.db.tar.gz`` as repo-add's does (and the same for ``.files`` and ``.sig``).
    """
    d = cfg.arch_dir(repo, arch)
    out = []
    for kind, name in db_kinds(cfg, repo):
        full = os.path.relpath(os.path.join(cfg.generations, CURRENT, repo, arch, name), d)
        out += [(os.path.join(d, name), full), (os.path.join(d, f"{repo}.{kind}"), name)]
        if cfg.sign_key:
            out += [(os.path.join(d, name + ".sig"), full + ".sig"),
                    (os.path.join(d, f"{repo}.{kind}.sig"), name + ".sig")]
    return out


def ensure_db_links(cfg: TreeConfig) -> None:
    """Every architecture's database links (a new repository, a tree of the earlier layout)."""
    for repo in cfg.repos.values():
        for arch in repo.arches:
            d = cfg.arch_dir(repo.name, arch)
            os.makedirs(d, exist_ok=True)
            changed = False
            for path, target in db_links(cfg, repo.name, arch):
                changed = _ensure_link(path, target) or changed
            if changed:
                fsync_dir(d)


def finish(cfg: TreeConfig, journal: dict[str, object]) -> None:
    """The switch after the tracking database committed: idempotent, crash after crash."""
    links = journal["links"]
    unlinks = journal["unlinks"]
    cleared = journal["cleared"]
    generation = journal.get("generation")
    assert isinstance(links, list) and isinstance(unlinks, list) and isinstance(cleared, list)
    dirs: set[str] = set()
    for path, target in links:
        # a package's .sig link only when the pool has the signature
        if path.endswith(".sig") and not os.path.exists(
                os.path.join(os.path.dirname(path), target)):
            continue
        _ensure_link(path, target)
        dirs.add(os.path.dirname(path))
    for d in sorted(dirs):
        fsync_dir(d)
    if isinstance(generation, str) and os.path.isdir(os.path.join(cfg.generations, generation)):
        _switch(cfg, generation)  # (a generation removed by hand: check reports, --repair writes)
    ensure_db_links(cfg)
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
    prune_generations(cfg)
    _drop_journal(cfg)


def rollback(cfg: TreeConfig, tracking: Tracking, journal: dict[str, object]) -> None:
    """Undo a change the tracking database never committed: remove what it created."""
    txid = journal["txid"]
    pool = journal["pool"]
    generation = journal.get("generation")
    assert isinstance(txid, str) and isinstance(pool, list)
    if isinstance(generation, str) and generation.isdigit() \
            and generation != current_generation(cfg):
        shutil.rmtree(os.path.join(cfg.generations, generation), ignore_errors=True)
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
