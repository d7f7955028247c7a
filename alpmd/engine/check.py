"""Checks of an installed package's files against its database entry: pacman's check.c.

``-Qk`` (:func:`check_files`) looks for missing files and wrong file types;
``-Qkk`` (:func:`check_mtree`) compares every file with the package's mtree
(owner, mode, time, size, link target, checksums), a changed backup file
being reported apart as pacman does. Read-only, like every query.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat
from dataclasses import dataclass, field

from alpmd import TYPE_CHECKING
from alpmd.engine.errors import AlpmError
from alpmd.engine.package import Package, Part
from alpmd.i18n import N_

if TYPE_CHECKING:
    from alpmd.engine.formats.mtree import MtreeEntry
    from alpmd.engine.handle import Handle

__all__ = ["FastCheck", "FileProblem", "FullCheck", "check_files", "check_mtree"]


@dataclass
class FileProblem:
    """One finding: ``level`` is "warning", "error" or "backup" (a changed backup file)."""

    path: str
    reason: str
    level: str = "warning"


@dataclass
class FastCheck:
    """``-Qk``: how many files the package lists and which are missing or mistyped."""

    total: int
    problems: list[FileProblem] = field(default_factory=list)
    #: Paths counted as errors, in order (what ``-Qkq`` prints).
    bad: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return len(self.bad)


@dataclass
class FullCheck:
    """``-Qkk``: files checked against the mtree, and the altered ones."""

    total: int = 0
    problems: list[FileProblem] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    no_mtree: bool = False

    @property
    def errors(self) -> int:
        return len(self.bad)


def _noextract(handle: Handle, rel: str) -> bool:
    """``alpm_option_match_noextract``: the last matching glob decides, ``!`` negates."""
    result = False
    for pat in handle.options.noextract:
        neg = pat.startswith("!")
        if fnmatch.fnmatchcase(rel, pat[1:] if neg else pat):
            result = not neg
    return result


def _llstat(path: str) -> os.stat_result:
    """lstat, except that a trailing slash is dropped first (pacman's llstat)."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return os.lstat(path)


def _exists(handle: Handle, path: str, rel: str, res: FastCheck | FullCheck
            ) -> os.stat_result | None | bool:
    """The file's status; False when it is missing (a problem), None when NoExtract'ed."""
    try:
        return _llstat(path)
    except OSError as exc:
        if _noextract(handle, rel):
            return None
        res.problems.append(FileProblem(path, os.strerror(exc.errno or errno.ENOENT)))
        res.bad.append(path)
        return False


def check_files(handle: Handle, pkg: Package) -> FastCheck:
    """Every listed file exists with the right kind (pacman's ``check_pkg_fast``)."""
    root = handle.options.root
    files = pkg.files
    res = FastCheck(len(files))
    for rel in files:
        path = root + rel
        st = _exists(handle, path, rel, res)
        if not isinstance(st, os.stat_result):
            continue
        if rel.endswith("/") != stat.S_ISDIR(st.st_mode):
            res.problems.append(FileProblem(path, N_("File type mismatch")))
            res.bad.append(path)
    return res


def _digest(path: str, algo: str) -> str | None:
    import hashlib

    try:
        h = hashlib.new(algo)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


#: mtree members libalpm keeps in the database entry rather than in the root.
_DB_MEMBERS = {".INSTALL": Part.SCRIPTLET, ".CHANGELOG": Part.CHANGELOG}


def check_mtree(handle: Handle, pkg: Package) -> FullCheck:
    """Files against the package's mtree (pacman's ``check_pkg_full``)."""
    from alpmd.engine.formats.mtree import parse_mtree  # gzip: only -Qkk needs it

    raw = pkg.mtree
    res = FullCheck()
    if raw is None:
        res.no_mtree = True
        return res
    try:
        entries = parse_mtree(raw)
    except AlpmError:
        res.no_mtree = True
        return res
    root = handle.options.root
    backups = {b.path for b in pkg.backup}
    for entry in entries:
        path_rel = entry.path
        if path_rel.startswith("."):
            part = _DB_MEMBERS.get(path_rel)
            if part is None:
                continue
            dbfile = handle.localdb.part_file(pkg, part)
            if dbfile is None:
                # A store without files: the stored bytes against the mtree's sums.
                res.total += 1
                _check_stored(res, entry, pkg, part)
                continue
            path = dbfile
        else:
            path = root + path_rel
        res.total += 1
        st = _exists(handle, path, path_rel, res)
        if not isinstance(st, os.stat_result):
            continue
        if entry.type not in ("file", "dir", "link"):
            res.problems.append(FileProblem(f"{root}{path_rel}", N_("file type not recognized"),
                                            "unknown"))
            continue
        if ((entry.type == "file" and not stat.S_ISREG(st.st_mode))
                or (entry.type == "dir" and not stat.S_ISDIR(st.st_mode))
                or (entry.type == "link" and not stat.S_ISLNK(st.st_mode))):
            res.problems.append(FileProblem(path, N_("File type mismatch")))
            res.bad.append(path)
            continue
        errors = _check_entry(res, entry, path, st, path_rel in backups)
        if errors:
            res.bad.append(path)
    return res


def _check_stored(res: FullCheck, entry: MtreeEntry, pkg: Package, part: Part) -> None:
    """``.INSTALL``/``.CHANGELOG`` kept inside the database: size and checksums only."""
    import hashlib

    data = pkg.scriptlet if part is Part.SCRIPTLET else pkg.changelog
    label = f"{pkg.name}-{pkg.version}:{entry.path}"
    if data is None:
        res.problems.append(FileProblem(label, os.strerror(errno.ENOENT)))
        res.bad.append(label)
        return
    reasons = []
    if len(data) != (entry.size or 0):
        reasons.append(N_("Size mismatch"))
    for algo, want, texts in (("md5", entry.md5, _MD5), ("sha256", entry.sha256, _SHA256)):
        if want is not None and hashlib.new(algo, data).hexdigest() != want:
            reasons.append(texts[2])
    for reason in reasons:
        res.problems.append(FileProblem(label, reason))
    if reasons:
        res.bad.append(label)


#: A checksum's findings: it cannot be computed, the mtree lacks it, it differs
#: (marked for translation: front ends show them in the user's language).
_MD5 = (N_("failed to calculate MD5 checksum"), N_("MD5 checksum information not available"),
        N_("MD5 checksum mismatch"))
_SHA256 = (N_("failed to calculate SHA256 checksum"),
           N_("SHA256 checksum information not available"), N_("SHA256 checksum mismatch"))


def _check_entry(res: FullCheck, entry: MtreeEntry, path: str, st: os.stat_result,
                 backup: bool) -> int:
    errors = 0

    def warn(reason: str) -> None:
        res.problems.append(FileProblem(path, reason))

    def changed(reason: str) -> int:
        if backup:
            res.problems.append(FileProblem(path, reason, "backup"))
            return 0
        warn(reason)
        return 1

    if st.st_uid != (entry.uid or 0):
        errors += 1
        warn(N_("UID mismatch"))
    if st.st_gid != (entry.gid or 0):
        errors += 1
        warn(N_("GID mismatch"))
    default_mode = 0o755 if entry.type == "dir" else 0o777 if entry.type == "link" else 0o644
    want_mode = entry.mode if entry.mode is not None else default_mode
    if stat.S_IMODE(st.st_mode) != want_mode & 0o7777:
        errors += 1
        warn(N_("Permissions mismatch"))
    if entry.type == "link":
        try:
            target = os.readlink(path)
        except OSError:
            res.problems.append(FileProblem(path, N_("unable to read symlink contents"), "error"))
            errors += 1
        else:
            if target != (entry.link or ""):
                errors += 1
                warn(N_("Symlink path mismatch"))
    if entry.type != "dir":
        mtime = int(entry.time) if entry.time is not None else 0
        if int(st.st_mtime) != mtime:
            errors += changed(N_("Modification time mismatch"))
    if entry.type == "file":
        if st.st_size != (entry.size or 0):
            errors += changed(N_("Size mismatch"))
        for algo, want, texts in (("md5", entry.md5, _MD5), ("sha256", entry.sha256, _SHA256)):
            got = _digest(path, algo)
            if got is None:
                warn(texts[0])
                errors += 1
            elif want is None:
                warn(texts[1])
                errors += 1
            elif got != want:
                errors += changed(texts[2])
    return errors
