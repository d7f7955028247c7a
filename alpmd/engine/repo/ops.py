"""The repository commands: add, remove, move, update, import, check, cleanup, ls, history.

Each command first plans the whole change (every check done, nothing written),
then :func:`alpmd.engine.repo.txn.commit` carries it out atomically; a failing
command therefore changes nothing anywhere.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from alpmd.engine.config import SigCheck, parse_siglevel
from alpmd.engine.db.sync import read_db_archive
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import parse_sync_desc
from alpmd.engine.handle import Handle
from alpmd.engine.repo.config import TreeConfig
from alpmd.engine.repo.incoming import (
    Incoming,
    check_signature,
    digests,
    inspect_package,
    is_package_name,
    private_copy,
    private_dir,
    read_sig,
    signature_handle,
)
from alpmd.engine.repo.tracking import HistoryEntry, Row
from alpmd.engine.repo.tree import Tree, ensure_layout
from alpmd.engine.repo.txn import (
    Plan,
    commit,
    current_generation,
    db_kinds,
    db_links,
    generation_dirs,
    pending,
    prune_generations,
)
from alpmd.engine.signing import decode_signature
from alpmd.engine.version import vercmp
from alpmd.i18n import N_, Message

# -- the working view: tracking rows with the plan laid over them -------------------------


class _View:
    """The tracking database as it will be once ``plan`` is applied."""

    def __init__(self, tree: Tree, plan: Plan) -> None:
        self.tree = tree
        self.plan = plan

    def by_base(self, base: str) -> list[Row]:
        rows = {(r.repo, r.arch, r.name): r for r in self.tree.tracking.by_base(base)}
        for key in self.plan.drops:
            rows.pop(key, None)
        for key, row in self.plan.puts.items():
            if row.base == base:
                rows[key] = row
            else:
                rows.pop(key, None)
        return list(rows.values())

    def owner(self, repo: str, arch: str, name: str) -> Row | None:
        key = (repo, arch, name)
        if key in self.plan.puts:
            return self.plan.puts[key]
        if key in self.plan.drops:
            return None
        return self.tree.tracking.row(repo, arch, name)


def _check_allowed(cfg: TreeConfig, repos: set[str], user: str) -> None:
    """Refuse the whole command when ``user`` may not change one of ``repos``."""
    for repo in sorted(repos):
        if not cfg.may_release(repo, user):
            raise AlpmError(ErrorCode.BADPERMS, f"{user} may not change repository '{repo}'",
                            repo=repo, user=user)
        for arch in cfg.repo(repo).arches:
            d = cfg.arch_dir(repo, arch)
            if not os.access(d, os.W_OK | os.X_OK):
                raise AlpmError(ErrorCode.BADPERMS, f"no permission to write {d}", path=d,
                                repo=repo)
    for d in (cfg.pool, cfg.generations, cfg.state_dir):
        if not os.access(d, os.W_OK | os.X_OK):
            raise AlpmError(ErrorCode.BADPERMS, f"no permission to write {d}", path=d)


def _versions(rows: Sequence[Row]) -> str:
    """The newest version among ``rows``."""
    return max((r.version for r in rows), key=functools.cmp_to_key(vercmp))


def _replace_check(base: str, new: str, old_rows: Sequence[Row], where: str,
                   force: bool) -> None:
    if not old_rows:
        return
    old = _versions(old_rows)
    cmp = vercmp(new, old)
    if cmp == 0:
        raise AlpmError(ErrorCode.TRANS_DUP_TARGET,
                        f"{base} {new} is already in {where}", package=base)
    if cmp < 0 and not force:
        raise AlpmError(ErrorCode.PKG_INVALID,
                        f"{base} {new} is older than {old} in {where} (use --force)",
                        package=base)


# -- add ---------------------------------------------------------------------------------


@dataclass
class _Group:
    """The packages of one pkgbase offered to one repository."""

    repo: str
    base: str
    packages: list[tuple[Incoming, str, list[str]]] = field(default_factory=list)


def _plan_add(tree: Tree, plan: Plan, repo: str, arch: str, incoming: Sequence[Incoming],
              user: str, force: bool, action: str = "add") -> None:
    cfg = tree.cfg
    view = _View(tree, plan)
    cfg.repo(repo)
    if arch != "any":
        cfg.arches_of(repo, arch)
    now = int(time.time())
    groups: dict[str, _Group] = {}
    for inc in incoming:
        meta = inc.meta
        target = cfg.debug_repo(repo) if inc.is_debug else None
        target = target or repo
        pkgarch = meta.arch or "any"
        if pkgarch == "any":
            arches = cfg.repo(target).arches
        else:
            if arch not in ("any", pkgarch):
                raise AlpmError(ErrorCode.PKG_INVALID_ARCH,
                                f"{meta.filename} is for {pkgarch}, not {arch}",
                                path=inc.path)
            arches = cfg.arches_of(target, pkgarch)
        groups.setdefault(inc.base, _Group(repo, inc.base)).packages.append(
            (inc, target, list(arches)))
    for base, group in sorted(groups.items()):
        versions = {inc.meta.version for inc, _t, _a in group.packages}
        if len(versions) > 1:
            raise AlpmError(ErrorCode.PKG_INVALID,
                            f"the packages of {base} have different versions: "
                            f"{', '.join(sorted(versions))}", package=base)
        version = versions.pop()
        debug = cfg.debug_repo(repo)
        own = {repo} | ({debug} if debug else set())
        current = view.by_base(base)
        testing = cfg.is_testing(repo)
        elsewhere = sorted({r.repo for r in current
                            if r.repo not in own and cfg.is_testing(r.repo) == testing})
        if elsewhere:
            raise AlpmError(ErrorCode.TRANS_DUP_TARGET,
                            f"{base} is already in repository '{elsewhere[0]}' "
                            "(use move to change its repository)", package=base)
        landing: dict[tuple[str, str], list[Incoming]] = {}
        for inc, target, arches in group.packages:
            for a in arches:
                bucket = landing.setdefault((target, a), [])
                if any(i.meta.name == inc.meta.name for i in bucket):
                    raise AlpmError(ErrorCode.TRANS_DUP_TARGET,
                                    f"{inc.meta.name} is given twice for {target} {a}",
                                    package=inc.meta.name)
                bucket.append(inc)
        main_arches = {a for (t, a) in landing if t == repo}
        for a in sorted(main_arches):
            old = [r for r in current if r.repo == repo and r.arch == a]
            _replace_check(base, version, old, f"{repo} {a}", force)
            new_names = {i.meta.name for i in landing[(repo, a)]}
            missing = sorted({r.name for r in old} - new_names)
            if missing:
                raise AlpmError(ErrorCode.PKG_INVALID,
                                f"incomplete split package set for {base} in {repo} {a}: "
                                f"{', '.join(missing)} missing", package=base)
        for (target, a), incs in sorted(landing.items(), key=lambda kv: kv[0]):
            for inc in incs:
                owner = view.owner(target, a, inc.meta.name)
                if owner is not None and owner.base != base:
                    raise AlpmError(ErrorCode.CONFLICTING_DEPS,
                                    f"{inc.meta.name} in {target} {a} belongs to pkgbase "
                                    f"{owner.base}", package=inc.meta.name)
        land_arches = {a for (_t, a) in landing}
        old_all = [r for r in current if r.repo in own and r.arch in land_arches]
        for r in old_all:
            plan.drop(r)
        replaced = _versions(old_all) if old_all else ""
        for (target, a), incs in sorted(landing.items(), key=lambda kv: kv[0]):
            for inc in incs:
                m = inc.meta
                plan.put(Row(target, a, m.name, base, m.version, m.filename or "",
                             m.arch or "any", m.packager or "", m.builddate or 0,
                             m.sha256sum or "", user, now, inc.desc, inc.files))
                _plan_pool(cfg, tree, plan, inc)
            plan.history.append(HistoryEntry(now, user, action, target, a, base, version,
                                             f"replaces {replaced}" if replaced else ""))


def _plan_pool(cfg: TreeConfig, tree: Tree, plan: Plan, inc: Incoming) -> None:
    """Put the file in the pool unless the same file is already there."""
    name = inc.meta.filename or ""
    dest = os.path.join(cfg.pool, name)
    if os.path.exists(dest):
        if digests(dest)[1] == inc.meta.sha256sum:
            if inc.sig is not None and not os.path.exists(dest + ".sig"):
                plan.pool[name] = (inc.path, inc.sig)
            return
        if tree.tracking.references(name):
            raise AlpmError(ErrorCode.TRANS_DUP_FILENAME,
                            f"a different {name} is already published", path=inc.path)
    plan.pool[name] = (inc.path, inc.sig)


def _handle(cfg: TreeConfig) -> Handle | None:
    if parse_siglevel(cfg.siglevel).package.check is SigCheck.NEVER:
        return None
    return signature_handle(cfg)


def _not_tracking(tree: Tree, *paths: str) -> None:
    """Refuse a file that is the tracking database (or its WAL files) under another name:
    opening and closing it here would drop this process's SQLite locks on it."""
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue  # missing: whoever reads it says so
        if tree.tracking.is_own(st):
            raise AlpmError(ErrorCode.WRONG_ARGS, f"{path} is the tree's tracking database",
                            path=path)


def _inspect(tree: Tree, handle: Handle | None, paths: Sequence[str],
             work: str) -> list[Incoming]:
    """Check every file (all of them, before anything is planned), each through a private
    copy in ``work`` (:func:`alpmd.engine.repo.incoming.private_copy`): the copy is what
    is checked and what goes to the pool. Errors name the file as given."""
    for p in paths:
        _not_tracking(tree, p, p + ".sig")
    out: list[Incoming] = []
    for p in paths:
        copy = private_copy(p, work)
        try:
            out.append(inspect_package(tree.cfg, handle, copy))
        except AlpmError as exc:
            raise _as_given(exc, copy, os.path.abspath(p)) from None
    return out


def _as_given(exc: AlpmError, copy: str, given: str) -> AlpmError:
    """``exc`` about a private copy, told of the file it copies."""
    details = {k: (given + v[len(copy):] if isinstance(v, str) and v.startswith(copy) else v)
               for k, v in exc.details.items()}
    return AlpmError(exc.code, exc.message.replace(copy, given), **details)


def _release(tree: Tree, repo: str, arch: str, incoming: Sequence[Incoming], user: str,
             force: bool) -> Plan:
    plan = Plan()
    _plan_add(tree, plan, repo, arch, incoming, user, force)
    _check_allowed(tree.cfg, plan.affected_repos(), user)
    commit(tree.cfg, tree.tracking, plan)
    return plan


def add(tree: Tree, repo: str, arch: str, paths: Sequence[str], *, user: str,
        force: bool = False) -> Plan:
    """Release package files to ``repo`` (``arch`` or ``any``); all or nothing."""
    if not paths:
        raise AlpmError(ErrorCode.WRONG_ARGS, "no package files given")
    with tree.writing(), private_dir(tree.cfg) as work:
        return _release(tree, repo, arch, _inspect(tree, _handle(tree.cfg), paths, work),
                        user, force)


def add_streams(tree: Tree, repo: str, arch: str,
                files: Sequence[tuple[str, BinaryIO, BinaryIO | None]], *, user: str,
                force: bool = False) -> Plan:
    """:func:`add` for already-open files ``(filename, package, signature or None)``.

    What the daemon calls with the descriptors a client passed: the data is
    copied into a private directory of the tree first, so the checks and the
    pool see a regular file the caller can no longer change. A descriptor of the
    tree's own tracking database is refused; still, closing it drops the
    process's SQLite locks, so a caller should close client descriptors only
    after closing the tree (or open the tree per request).
    """
    if not files:
        raise AlpmError(ErrorCode.WRONG_ARGS, "no package files given")
    with private_dir(tree.cfg) as work:
        paths = []
        for filename, pkg, sig in files:
            for f in (pkg, sig):
                try:
                    st = os.fstat(f.fileno()) if f is not None else None
                except (OSError, ValueError):
                    st = None  # not a descriptor (an in-memory file)
                if st is not None and tree.tracking.is_own(st):
                    raise AlpmError(ErrorCode.WRONG_ARGS, f"{filename}: the descriptor is "
                                    "the tree's tracking database")
            if "/" in filename or filename.startswith(".") or not is_package_name(filename):
                raise AlpmError(ErrorCode.PKG_INVALID_NAME, f"bad package file name {filename!r}")
            dest = os.path.join(work, filename)
            with open(dest, "xb") as out:
                shutil.copyfileobj(pkg, out)
            if sig is not None:
                with open(dest + ".sig", "xb") as out:
                    shutil.copyfileobj(sig, out)
            paths.append(dest)
        with tree.writing():
            handle = _handle(tree.cfg)
            return _release(tree, repo, arch,
                            [inspect_package(tree.cfg, handle, p) for p in paths], user, force)


# -- remove, move ------------------------------------------------------------------------


def remove(tree: Tree, repo: str, arch: str, bases: Sequence[str], *, user: str) -> Plan:
    """Remove pkgbases (with their split and debug packages) from ``repo``."""
    cfg = tree.cfg
    if not bases:
        raise AlpmError(ErrorCode.WRONG_ARGS, N_("no pkgbase given"))
    with tree.writing():
        arches = cfg.arches_of(repo, arch)
        own = {repo} | ({d} if (d := cfg.debug_repo(repo)) else set())
        plan = Plan()
        now = int(time.time())
        for base in bases:
            rows = [r for r in tree.tracking.by_base(base) if r.repo in own and r.arch in arches]
            if not rows:
                raise AlpmError(ErrorCode.PKG_NOT_FOUND,
                                f"{base} is not in {repo} {arch}", package=base)
            for r in rows:
                plan.drop(r)
            for r_repo, r_arch in sorted({(r.repo, r.arch) for r in rows}):
                plan.history.append(HistoryEntry(now, user, "remove", r_repo, r_arch, base,
                                                 _versions(rows), ""))
        _check_allowed(cfg, plan.affected_repos(), user)
        commit(cfg, tree.tracking, plan)
    return plan


def move(tree: Tree, src: str, dst: str, arch: str, bases: Sequence[str], *, user: str,
         force: bool = False) -> Plan:
    """Move pkgbases as units (split and debug packages too) from ``src`` to ``dst``."""
    cfg = tree.cfg
    if not bases:
        raise AlpmError(ErrorCode.WRONG_ARGS, N_("no pkgbase given"))
    if src == dst:
        raise AlpmError(ErrorCode.WRONG_ARGS,
                        N_("source and destination are the same repository"))
    with tree.writing():
        cfg.repo(dst)
        arches = cfg.arches_of(src, arch)
        src_own = {src} | ({d} if (d := cfg.debug_repo(src)) else set())
        dst_debug = cfg.debug_repo(dst)
        dst_own = {dst} | ({dst_debug} if dst_debug else set())
        plan = Plan()
        view = _View(tree, plan)
        now = int(time.time())
        for base in bases:
            current = view.by_base(base)
            rows = [r for r in current if r.repo in src_own and r.arch in arches]
            if not rows:
                raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"{base} is not in {src} {arch}",
                                package=base)
            third = sorted(r for r in {r.repo for r in current} - src_own - dst_own
                           if cfg.is_testing(r) == cfg.is_testing(dst))
            if third:
                raise AlpmError(ErrorCode.TRANS_DUP_TARGET,
                                f"{base} is also in repository '{third[0]}'", package=base)
            version = _versions(rows)
            landing: list[Row] = []
            for r in rows:
                target = dst_debug if (r.name == base + "-debug" and dst_debug) else dst
                if r.pkgarch == "any":
                    targets = [a for a in cfg.repo(target).arches
                               if arch == "any" or a == r.arch]
                else:
                    if r.arch not in cfg.repo(target).arches:
                        raise AlpmError(ErrorCode.PKG_INVALID_ARCH,
                                        f"repository '{target}' has no architecture {r.arch} "
                                        f"for {r.name}", package=r.name)
                    targets = [r.arch]
                for a in targets:
                    landing.append(r.placed(target, a))
            keys = {(r.repo, r.arch) for r in landing}
            old = [r for r in current if (r.repo, r.arch) in keys]
            for a in sorted({a for (t, a) in keys if t == dst}):
                _replace_check(base, version, [r for r in old if r.repo == dst and r.arch == a],
                               f"{dst} {a}", force)
            for r in rows + old:
                plan.drop(r)
            seen: set[tuple[str, str, str]] = set()
            for r in landing:
                if (r.repo, r.arch, r.name) in seen:
                    continue
                seen.add((r.repo, r.arch, r.name))
                owner = view.owner(r.repo, r.arch, r.name)
                if owner is not None and owner.base != base:
                    raise AlpmError(ErrorCode.CONFLICTING_DEPS,
                                    f"{r.name} in {r.repo} {r.arch} belongs to pkgbase "
                                    f"{owner.base}", package=r.name)
                plan.put(Row(r.repo, r.arch, r.name, r.base, r.version, r.filename, r.pkgarch,
                             r.packager, r.builddate, r.sha256, user, now, r.desc, r.files))
            for t, a in sorted(keys):
                plan.history.append(HistoryEntry(now, user, "move", t, a, base, version,
                                                 f"from {src}"))
        _check_allowed(cfg, plan.affected_repos(), user)
        commit(cfg, tree.tracking, plan)
    return plan


# -- update from staging -----------------------------------------------------------------


def update(tree: Tree, staging: str | None = None, *, user: str, force: bool = False) -> Plan:
    """Release everything in ``STAGING/REPO/``; unconfigured repositories are skipped."""
    cfg = tree.cfg
    staging = os.path.abspath(staging or cfg.staging)
    if not os.path.isdir(staging):
        raise AlpmError(ErrorCode.NOT_A_DIR, f"no staging directory {staging}", path=staging)
    with tree.writing(), private_dir(cfg) as work:
        plan = Plan()
        handle = _handle(cfg)
        for repo in sorted(os.listdir(staging)):
            d = os.path.join(staging, repo)
            if not os.path.isdir(d):
                continue
            files = sorted(f for f in os.listdir(d) if is_package_name(f))
            if repo not in cfg.repos:
                if files:
                    plan.warnings.append(f"skipping {d}: repository '{repo}' is not configured")
                continue
            paths = [os.path.join(d, f) for f in files]
            if not paths:
                continue
            incoming = _inspect(tree, handle, paths, work)
            _plan_add(tree, plan, repo, "any", incoming, user, force, action="update")
            plan.cleared += paths
        if not plan.empty():
            _check_allowed(cfg, plan.affected_repos(), user)
            commit(cfg, tree.tracking, plan)
    return plan


# -- import ------------------------------------------------------------------------------


def import_db(tree: Tree, repo: str, arch: str, dbfile: str, *, user: str) -> Plan:
    """Adopt a repository made by repo-add: its entries as they are, its files into the pool.

    The package files must sit beside ``dbfile`` (as repo-add leaves them) and
    match the database's checksums; signatures (``.sig`` or %PGPSIG%) are
    checked under the tree's SigLevel.
    """
    cfg = tree.cfg
    dbfile = os.path.abspath(dbfile)
    with tree.writing(), private_dir(cfg) as work:
        cfg.arches_of(repo, arch)
        if arch == "any":
            raise AlpmError(ErrorCode.WRONG_ARGS, "import needs one architecture")
        _not_tracking(tree, dbfile)
        with open(dbfile, "rb") as fh:
            members = read_db_archive(fh.read(), dbfile)
        files_texts: dict[str, bytes] = {}
        base_name = os.path.basename(dbfile)
        if ".db" in base_name:
            twin = os.path.join(os.path.dirname(dbfile),
                                base_name.replace(".db", ".files", 1))
            _not_tracking(tree, twin)
            if os.path.exists(twin):
                with open(twin, "rb") as fh:
                    for path, data in read_db_archive(fh.read(), twin):
                        d, _, leaf = path.partition("/")
                        if leaf == "files":
                            files_texts[d] = data
        handle = _handle(cfg)
        plan = Plan()
        now = int(time.time())
        bases: dict[str, str] = {}
        for path, data in members:
            d, _, leaf = path.partition("/")
            if leaf != "desc":
                continue
            meta = parse_sync_desc(data.decode("utf-8", "surrogateescape"))
            filename = meta.filename or ""
            if not filename or "/" in filename:
                raise AlpmError(ErrorCode.DB_INVALID, f"{dbfile}: {d} has no usable %FILENAME%")
            pkg = os.path.join(os.path.dirname(dbfile), filename)
            if not os.path.isfile(pkg) or os.path.islink(pkg):
                raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"{filename} (listed in {dbfile}) "
                                "is not a regular file beside it", path=pkg)
            _not_tracking(tree, pkg, pkg + ".sig")
            copy = private_copy(pkg, work)  # (what is checked is what goes to the pool)
            _md5, sha = digests(copy)
            if meta.sha256sum and meta.sha256sum != sha:
                raise AlpmError(ErrorCode.PKG_INVALID_CHECKSUM,
                                f"{filename} does not match its %SHA256SUM%", path=pkg)
            try:
                sig = read_sig(copy)
                check_signature(cfg, handle, copy, filename,
                                embedded=meta.base64_sig if sig is None else None)
            except AlpmError as exc:
                raise _as_given(exc, copy, pkg) from None
            if sig is None and meta.base64_sig:
                sig = decode_signature(meta.base64_sig)
            base = meta.base or meta.name
            if base not in bases and tree.tracking.by_base(base):
                raise AlpmError(ErrorCode.TRANS_DUP_TARGET,
                                f"{base} is already in the tree", package=base)
            files = files_texts.get(d) if cfg.files else None
            if cfg.files and files is None:
                files = inspect_files(copy)
            plan.put(Row(repo, arch, meta.name, base, meta.version, filename,
                         meta.arch or "any", meta.packager or "", meta.builddate or 0, sha,
                         user, now, data, files))
            bases[base] = meta.version
            dest = os.path.join(cfg.pool, filename)
            if not (os.path.exists(dest) and digests(dest)[1] == sha):
                plan.pool[filename] = (copy, sig)
        for base, version in sorted(bases.items()):
            plan.history.append(HistoryEntry(now, user, "import", repo, arch, base, version,
                                             f"from {dbfile}"))
        _check_allowed(cfg, {repo}, user)
        commit(cfg, tree.tracking, plan)
    return plan


def inspect_files(pkg: str) -> bytes:
    """The ``files`` entry of a package file (for an imported database without ``.files``)."""
    from alpmd.engine.archive import read_package_archive
    from alpmd.engine.formats.files import FileList, write_sync_files

    archive = read_package_archive(pkg, full=True)
    assert archive.files is not None
    return write_sync_files(FileList(archive.files.files)).encode("utf-8", "surrogateescape")


# -- reading: ls, history, check, cleanup ---------------------------------------------------


def ls(tree: Tree, repo: str | None = None, arch: str | None = None) -> list[Row]:
    """What each repository and architecture holds."""
    if repo is not None:
        tree.cfg.repo(repo)
    return tree.tracking.rows(repo, arch)


def history(tree: Tree, base: str | None = None) -> list[HistoryEntry]:
    return tree.tracking.history(base)


@dataclass
class CheckReport:
    """What :func:`check` found: problems (the tree is inconsistent) and notes, each
    shown in its reader's language (the command line's, a D-Bus caller's)."""

    problems: list[Message] = field(default_factory=list)
    notes: list[Message] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_db(cfg: TreeConfig, path: str, rows: dict[str, Row], files: bool,
              report: CheckReport) -> None:
    try:
        with open(path, "rb") as fh:
            members = read_db_archive(fh.read(), path)
    except (OSError, AlpmError) as exc:
        report.problems.append(Message(N_("{path}: unreadable: {error}"),
                                       {"path": path, "error": exc}))
        return
    seen: dict[str, dict[str, bytes]] = {}
    for name, data in members:
        d, _, leaf = name.partition("/")
        seen.setdefault(d, {})[leaf] = data
    want = {r.dirname: r for r in rows.values()}
    for d in sorted(set(seen) - set(want)):
        report.problems.append(Message(N_("{path}: {entry} is not in the tracking database"),
                                       {"path": path, "entry": d}))
    for d in sorted(set(want) - set(seen)):
        report.problems.append(Message(N_("{path}: {entry} is missing"),
                                       {"path": path, "entry": d}))
    for d in sorted(set(want) & set(seen)):
        r = want[d]
        if seen[d].get("desc") != r.desc:
            report.problems.append(Message(
                N_("{path}: {entry}/desc differs from the tracking database"),
                {"path": path, "entry": d}))
        if files and seen[d].get("files") != (r.files if r.files is not None else b"%FILES%\n"):
            report.problems.append(Message(
                N_("{path}: {entry}/files differs from the tracking database"),
                {"path": path, "entry": d}))


def check(tree: Tree, *, verify: bool = False, repair: bool = False) -> CheckReport:
    """Whether databases, package links, pool and tracking database agree.

    ``verify`` also checks every pool file's sha256; ``repair`` (under the lock)
    finishes or rolls back a crashed change and rewrites every database from
    the tracking database.
    """
    cfg = tree.cfg
    report = CheckReport()
    if repair:
        with tree.writing() as recovered:
            if recovered:
                report.notes.append(Message(N_("an interrupted change was finished")
                                            if recovered == "finished" else
                                            N_("an interrupted change was rolled back")))
            ensure_layout(cfg)
            plan = Plan()
            plan.rewrite = {(r, a) for r in cfg.repos for a in cfg.repo(r).arches}
            commit(cfg, tree.tracking, plan)
    elif pending(cfg) is not None:
        report.problems.append(Message(N_("an interrupted change is pending (run check --repair "
                                          "or any command that changes the tree)")))
    current = current_generation(cfg)
    if current != tree.tracking.generation():
        report.problems.append(Message(
            N_("{dir}/current names generation {current}, the tracking database {tracked}"),
            {"dir": cfg.generations, "current": current,
             "tracked": tree.tracking.generation()}))
    stale = len(generation_dirs(cfg)) - 2
    if stale > 0:
        report.notes.append(Message(N_("{n} old database generations (cleanup removes them)"),
                                    {"n": stale}))
    pool_refs: dict[str, str] = {}
    for repo in cfg.repos.values():
        for arch in repo.arches:
            d = cfg.arch_dir(repo.name, arch)
            rows = {r.name: r for r in tree.tracking.rows(repo.name, arch)}
            for kind, name in db_kinds(cfg, repo.name):
                _check_db(cfg, os.path.join(d, name), rows, kind == "files", report)
            for link, target in db_links(cfg, repo.name, arch):
                if not os.path.islink(link) or os.readlink(link) != target:
                    report.problems.append(Message(N_("{link} is not a link to {target}"),
                                                   {"link": link, "target": target}))
            for r in rows.values():
                link = os.path.join(d, r.filename)
                if not os.path.islink(link) or not os.path.isfile(link):
                    report.problems.append(Message(
                        N_("{link} is missing or does not reach the pool"), {"link": link}))
                pool_refs[r.filename] = r.sha256
            listed = {r.filename for r in rows.values()}
            for entry in os.listdir(d):
                full = os.path.join(d, entry)
                if os.path.islink(full) and entry.split(".sig")[0] not in listed \
                        and is_package_name(entry.removesuffix(".sig")):
                    report.problems.append(Message(N_("{link} is a stray package link"),
                                                   {"link": full}))
    for name, sha in sorted(pool_refs.items()):
        path = os.path.join(cfg.pool, name)
        if not os.path.isfile(path):
            report.problems.append(Message(N_("pool file {name} is missing"), {"name": name}))
        elif verify:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            if h.hexdigest() != sha:
                report.problems.append(Message(N_("pool file {name} does not match its sha256"),
                                               {"name": name}))
    unreferenced = [n for n in os.listdir(cfg.pool)
                    if is_package_name(n) and n not in pool_refs]
    if unreferenced:
        report.notes.append(Message(N_("{n} pool files no database references "
                                       "(cleanup removes them)"), {"n": len(unreferenced)}))
    return report


def cleanup(tree: Tree, *, dry_run: bool = False) -> list[str]:
    """Remove pool files (and their signatures) that no database references.

    Database generations older than the one before the current are removed too
    (a change removes them itself; this catches what an interrupted one left).
    """
    cfg = tree.cfg
    removed: list[str] = []
    with tree.writing():
        if not dry_run:
            prune_generations(cfg)
        used = tree.tracking.filenames()
        for name in sorted(os.listdir(cfg.pool)):
            if name.startswith("."):
                continue  # a change's temporary file
            pkg = name.removesuffix(".sig")
            if not is_package_name(pkg) or pkg in used:
                continue
            removed.append(name)
            if not dry_run:
                os.unlink(os.path.join(cfg.pool, name))
    return removed
