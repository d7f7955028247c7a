"""Extracting a package into the root, as libalpm's ``extract_single_file`` decides.

For every payload entry listed in the package's file list:

* NoExtract globs: never written;
* a directory over an existing directory is left alone (a warning when the
  modes differ); a file over a directory is refused;
* a file over a file: NoUpgrade → ``.pacnew``; a backup file (in the old or
  the new package) → the 3-way md5 comparison (original in the old package's
  %BACKUP%, current on disk, new) decides: install, keep, or ``.pacnew``.

Writing goes through libarchive's ``archive_write_disk`` with the secure flags
(no ``..``, no absolute paths, nothing through a symlink) on paths relative to
the root; the working directory is switched to the root only inside a guarded
section (one lock for the whole process, the old directory restored by fd).
Files, symlinks and hard links that replace something are written under a
temporary name in their final directory and renamed into place, so an
interruption never leaves a truncated file where a good one was; a path that
did not exist is written directly (a killed commit's journal step makes repair
extract it again).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from alpmd.engine.archive import (
    MAX_METADATA_SIZE,
    ArchiveReadError,
    Consumed,
    EntryKind,
    archive_reader,
    iter_entries,
    member_kind,
    open_regular_file,
)
from alpmd.engine.conflict import fnmatch_patterns
from alpmd.engine.errors import AlpmError, ErrorCode, errno_code
from alpmd.engine.events import (
    EventCallback,
    PacnewCreated,
    Progress,
    ProgressCallback,
    ProgressKind,
    TransFlag,
)
from alpmd.engine.formats.desc import Backup
from alpmd.engine.formats.files import FileList
from alpmd.engine.handle import Handle
from alpmd.engine.larchive import ARCHIVE_OK as _ARCHIVE_OK
from alpmd.engine.larchive import ARCHIVE_WARN as _ARCHIVE_WARN
from alpmd.engine.larchive import LIB as _LIB
from alpmd.engine.larchive import entry_mode as _entry_mode
from alpmd.engine.larchive import entry_pathname as _entry_pathname
from alpmd.engine.larchive import entry_pathname_utf8 as _entry_pathname_utf8
from alpmd.engine.larchive import entry_set_pathname as _entry_set_pathname
from alpmd.engine.larchive import error_string as _error_string
from alpmd.engine.larchive import read_data as _read_data
from alpmd.engine.larchive import read_extract2 as _read_extract2
from alpmd.engine.larchive import utf8_or_raw as _utf8_or_raw
from alpmd.engine.larchive import write_disk_new as _write_disk_new
from alpmd.engine.larchive import write_disk_set_options as _write_disk_set_options
from alpmd.engine.larchive import write_free as _write_free
from alpmd.engine.log import LogLevel
from alpmd.engine.package import Package
from alpmd.engine.version import vercmp

__all__ = ["EXTRACT_FLAGS", "extract_package", "inside_root", "md5_file", "progress_kind"]

_OWNER, _PERM, _TIME, _UNLINK, _XATTR = 0x1, 0x2, 0x4, 0x10, 0x80
_SECURE_SYMLINKS, _SECURE_NODOTDOT, _SECURE_NOABSOLUTEPATHS = 0x100, 0x200, 0x10000

#: libalpm's flags plus every SECURE_* one (paths are relative to the root).
EXTRACT_FLAGS = (_OWNER | _PERM | _TIME | _UNLINK | _XATTR | _SECURE_SYMLINKS | _SECURE_NODOTDOT
                 | _SECURE_NOABSOLUTEPATHS)
#: For entries below a directory this extraction made: nothing is there to unlink and no
#: symlink is on the way (the one thing ``UNLINK`` also removes), so the flag would only
#: cost a failing ``unlink`` per file. Should a name be taken after all, libarchive
#: still replaces what is there (it unlinks and retries when the create fails).
_FRESH_FLAGS = EXTRACT_FLAGS & ~_UNLINK


#: ``archive_errno``: why libarchive's disk writer failed (a full or read-only disk ends
#: the package at once instead of failing every remaining entry).
_archive_errno = _LIB.archive_errno
_archive_errno.argtypes = [ctypes.c_void_p]
_archive_errno.restype = ctypes.c_int

#: ``os.fsencode`` without its Python-level call, once per entry.
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()

_CWD_LOCK = threading.RLock()
_counter = itertools.count()
#: Our pid for temporary names: one getpid per process, not one per file.
_PID = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PID.__setitem__(0, os.getpid()))


@contextmanager
def inside_root(root: str) -> Iterator[None]:
    """Run with the working directory at ``root``; the old one is restored by fd afterwards.

    One process-wide lock: the working directory is shared by all threads, and
    the engine itself only ever uses absolute paths outside these sections.
    """
    with _CWD_LOCK:
        saved = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.chdir(root)
            yield
        finally:
            try:
                os.fchdir(saved)
            finally:
                os.close(saved)


def md5_file(path: str) -> str | None:
    """Hex md5 of a regular file, None when it cannot be read (libalpm's ``alpm_compute_md5sum``)."""
    import hashlib  # only backup files need it: OpenSSL's start-up costs a few ms

    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "md5").hexdigest()
    except OSError:
        return None


def progress_kind(new: Package, old: Package | None) -> ProgressKind:
    if old is None:
        return ProgressKind.ADD
    cmp = vercmp(new.version, old.version)
    if cmp > 0:
        return ProgressKind.UPGRADE
    return ProgressKind.DOWNGRADE if cmp < 0 else ProgressKind.REINSTALL


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


class _Extractor:
    """One package's extraction: the libarchive writer, the decisions and the reports."""

    def __init__(self, handle: Handle, new: Package, old: Package | None,
                 event: EventCallback | None, errors: list[str]) -> None:
        self.handle = handle
        self.root = handle.options.root
        self.new = new
        self.old = old
        self.event = event
        self.errors = errors
        self.backup_new = {b.path for b in new.backup}
        self.backup_old = {b.path: b.md5 for b in old.backup} if old is not None else {}
        self.hashes: dict[str, str] = {}
        #: Directories this extraction created: what is below them is only what it wrote
        #: since, and the archive lists each path once, so nothing there needs an lstat.
        self.fresh_dirs: set[str] = set()
        #: Told to the walk once an entry's data was all written (nothing left to skip).
        self.consumed = Consumed()
        self.writers: list[ctypes.c_void_p] = []
        self.writer = self._writer(EXTRACT_FLAGS)
        self.fresh_writer = self._writer(_FRESH_FLAGS)

    def _writer(self, flags: int) -> ctypes.c_void_p:
        made = _write_disk_new()
        if not made:
            raise AlpmError(ErrorCode.MEMORY, "archive_write_disk_new failed")
        writer = ctypes.c_void_p(made)
        self.writers.append(writer)
        _write_disk_set_options(writer, flags)
        return writer

    def close(self) -> None:
        for writer in self.writers:
            _write_free(writer)
        self.writers.clear()

    def error(self, message: str) -> None:
        self.errors.append(message)
        self.handle.log(LogLevel.ERROR, message)
        self.handle.logaction("ALPM", f"error: {message}")

    def warning(self, message: str) -> None:
        self.handle.log(LogLevel.WARNING, message)
        self.handle.logaction("ALPM", f"warning: {message}")

    def write(self, archive_p: ctypes.c_void_p, entry_p: ctypes.c_void_p, rel: str, is_dir: bool,
              want_md5: bool, fresh: bool = False, writer: ctypes.c_void_p | None = None,
              named: bool = False) -> tuple[bool, str | None]:
        """Write the current entry at ``rel`` (relative to the root, cwd is the root).

        ``fresh``: nothing is at ``rel``, so the entry is written there directly
        (a temporary and a rename cost about twice the file system work of a
        plain create, the bulk of a large install). Nothing of value can be torn
        then: a killed commit leaves its step pending in the journal, and repair
        extracts the package again over whatever was written. Replacing an
        existing file still goes through a temporary name and a rename.

        ``writer``: libarchive's writer to use (default: :data:`EXTRACT_FLAGS`').
        ``named``: the entry's stored name is ``rel`` already (not set again).

        Returns (ok, md5 of the written file when asked).
        """
        if is_dir or fresh:
            if not named:
                _entry_set_pathname(entry_p, rel.encode(_FS_ENCODING, _FS_ERRORS))
            ret = _read_extract2(archive_p, entry_p, self.writer if writer is None else writer)
            if ret != _ARCHIVE_OK and self._failed(archive_p, ret, rel):
                if not is_dir:
                    self._discard(rel)
                self._give_up(_archive_errno(archive_p), rel)
                return False, None
            self.consumed.done = True
            return True, (md5_file(rel) if want_md5 and not is_dir else None)
        parent = rel.rpartition("/")[0]
        tmp = f"{parent + '/' if parent else ''}.alpmd-{_PID[0]}-{next(_counter)}.tmp"
        _entry_set_pathname(entry_p, tmp.encode(_FS_ENCODING, _FS_ERRORS))
        ret = _read_extract2(archive_p, entry_p, self.writer)
        if ret != _ARCHIVE_OK and self._failed(archive_p, ret, rel):
            self._discard(tmp)
            self._give_up(_archive_errno(archive_p), rel)
            return False, None
        self.consumed.done = True
        digest = md5_file(tmp) if want_md5 else None
        try:
            os.rename(tmp, rel)
        except OSError as exc:
            self.error(f"could not rename {self.root}{tmp} to {self.root}{rel} ({exc.strerror})")
            self._discard(tmp)
            self._give_up(exc.errno, rel)
            return False, None
        return True, digest

    def _failed(self, archive_p: ctypes.c_void_p, ret: int, rel: str) -> bool:
        """Whether writing an entry failed, as libalpm reads libarchive's answer: a
        warning is only a warning, unless the disk was full (libarchive reports a
        failed data write as a warning)."""
        if ret == _ARCHIVE_OK:
            return False
        if ret == _ARCHIVE_WARN and errno_code(_archive_errno(archive_p)) is None:
            self.warning(f"warning given when extracting {self.root}{rel} "
                         f"({self._why(archive_p)})")
            return False
        self.error(f"could not extract {self.root}{rel} ({self._why(archive_p)})")
        return True

    def _give_up(self, err: int | None, rel: str) -> None:
        """End the package at once when the file system is full or read-only: every
        further entry would fail the same way (libalpm would try them all)."""
        code = errno_code(err)
        if code is not None:
            assert err is not None
            raise AlpmError(code, f"could not extract {self.root}{rel}: {os.strerror(err)}",
                            path=self.root + rel, errno=err, pkg=self.new.name)

    @staticmethod
    def _why(archive_p: ctypes.c_void_p) -> str:
        raw = _error_string(archive_p)
        return raw.decode("utf-8", "replace") if raw else "unknown error"

    @staticmethod
    def _discard(tmp: str) -> None:
        st = _lstat(tmp)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            os.unlink(tmp)

    def entry(self, archive_p: ctypes.c_void_p, entry_p: ctypes.c_void_p, name: str, path: str, kind: EntryKind) -> None:
        """libalpm's decision table for one payload entry (cwd is the root)."""
        handle = self.handle
        opts = handle.options
        entry_is_dir = kind is EntryKind.DIR
        if not opts.noextract and path not in self.backup_new \
                and path.rpartition("/")[0] in self.fresh_dirs:
            # Below a directory this extraction made: nothing there, nothing to decide.
            # An ASCII name without a trailing slash is stored as it is written.
            if self.write(archive_p, entry_p, path, entry_is_dir, False, fresh=True,
                          writer=self.fresh_writer,
                          named=len(name) == len(path) and name.isascii())[0] and entry_is_dir:
                self.fresh_dirs.add(path)
            return
        full = self.root + path
        if opts.noextract and fnmatch_patterns(opts.noextract, name) == 0:
            handle.log(LogLevel.DEBUG, f"{name} is in NoExtract, skipping extraction of {full}")
            return  # the walk skips the member's data
        st = None if path.rpartition("/")[0] in self.fresh_dirs else _lstat(full)
        notouch = needbackup = False
        hash_orig: str | None = None
        if st is None:
            pass
        elif stat.S_ISDIR(st.st_mode) and entry_is_dir:
            entrymode = int(_entry_mode(entry_p))
            if st.st_mode != entrymode:
                self.warning(f"directory permissions differ on {full}\n"
                             f"filesystem: {st.st_mode & 0o7777:o}  package: "
                             f"{entrymode & 0o7777:o}")
            return
        elif stat.S_ISDIR(st.st_mode):
            self.error(f"extract: not overwriting dir with file {full}")
            return
        elif entry_is_dir:
            pass  # a file or symlink becomes a directory (the conflict check allowed it)
        elif fnmatch_patterns(opts.noupgrade, name) == 0:
            notouch = True
        elif path in self.backup_old:
            hash_orig = self.backup_old[path] or None
            needbackup = True
        elif path in self.backup_new:
            needbackup = True  # backup files may be added retroactively

        target = path
        pacnew_was_new = False
        if notouch or needbackup:
            target = path + ".pacnew"
            pacnew_was_new = _lstat(self.root + target) is None
        want_md5 = path in self.backup_new or needbackup
        ok, digest = self.write(archive_p, entry_p, target, entry_is_dir, want_md5,
                                fresh=st is None and target == path)
        if not ok:
            return
        if st is None and entry_is_dir:
            self.fresh_dirs.add(path)
        if path in self.backup_new and digest is not None:
            self.hashes[path] = digest
        if notouch:
            self._pacnew(full, from_noupgrade=True)
        elif needbackup:
            hash_local = md5_file(full)
            hash_pkg = digest
            if hash_local is not None and hash_local == hash_pkg:
                self._install_pacnew(target, path)  # same content: refresh the timestamps
            elif hash_orig is not None and hash_orig == hash_pkg:
                if pacnew_was_new:  # the package did not change it: keep the user's file
                    os.unlink(target)
            elif hash_orig is not None and hash_local is not None and hash_orig == hash_local:
                self._install_pacnew(target, path)  # the user did not change it: update
            else:
                self._pacnew(full, from_noupgrade=False)

    def _install_pacnew(self, pacnew: str, path: str) -> None:
        try:
            os.rename(pacnew, path)
        except OSError as exc:
            self.error(f"could not rename {self.root}{pacnew} to {self.root}{path} "
                       f"({exc.strerror})")
            self._give_up(exc.errno, path)

    def _pacnew(self, full: str, *, from_noupgrade: bool) -> None:
        if self.event is not None:
            self.event(PacnewCreated(from_noupgrade=from_noupgrade, old=self.old, new=self.new,
                                     file=full))
        self.handle.logaction("ALPM", f"warning: {full} installed as {full}.pacnew")


def _read_db_member(archive_p: ctypes.c_void_p, name: str) -> bytes:
    """The current member whole (``.CHANGELOG``: kept in the database entry), capped."""
    buf = ctypes.create_string_buffer(1 << 16)
    chunks: list[bytes] = []
    total = 0
    while True:
        got = int(_read_data(archive_p, ctypes.addressof(buf), len(buf)))
        if got < 0:
            message = _error_string(archive_p)
            raise ArchiveReadError(message.decode("utf-8", "replace") if message
                                   else "read error", name)
        if got == 0:
            return b"".join(chunks)
        total += got
        if total > MAX_METADATA_SIZE:
            raise AlpmError(ErrorCode.ARCHIVE_LIMIT, f"entry {name!r} is larger than the "
                            f"limit of {MAX_METADATA_SIZE} bytes", entry=name)
        chunks.append(buf.raw[:got])


def extract_package(
    handle: Handle,
    new: Package,
    old: Package | None,
    *,
    flags: TransFlag = TransFlag.NONE,
    event: EventCallback | None = None,
    progress: ProgressCallback | None = None,
    errors: list[str] | None = None,
    db_members: dict[str, bytes] | None = None,
    position: tuple[int, int] = (1, 1),
) -> FileList:
    """Extract ``new.path`` into the root (``old``: the installed version being upgraded).

    Returns the file list to record in the local database, its %BACKUP% md5s
    computed from what was written. Failures of single entries are reported
    (log, pacman.log, and appended to ``errors`` when given) and extraction
    goes on, as libalpm does; an unreadable archive raises ``AlpmError``.
    ``db_members`` receives the members libalpm extracts into the database
    entry instead of the root (``.CHANGELOG``), read on the same pass.
    ``position`` is the (total, current) package count the progress reports carry.
    """
    errs: list[str] = errors if errors is not None else []
    filelist = FileList(files=list(new.files), backup=[Backup(b.path, "") for b in new.backup])
    if TransFlag.DBONLY in flags:
        return filelist
    if new.path is None:
        raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"no package file for {new.name}",
                        pkg=new.name)
    listed = set(filelist.files)
    kind = progress_kind(new, old)
    total = max(len(listed), 1)
    done = 0
    ex = _Extractor(handle, new, old, event, errs)
    fd, _st = open_regular_file(new.path, ErrorCode.PKG_NOT_FOUND)
    try:
        with inside_root(handle.options.root), archive_reader(fd) as archive_p:
            # A member not written is skipped by the walk before the next header.
            for entry_p in iter_entries(archive_p, consumed=ex.consumed):
                raw = _utf8_or_raw(entry_p, _entry_pathname, _entry_pathname_utf8)
                name = "" if raw is None else raw.decode("utf-8", "surrogateescape")
                path = name[:-1] if name.endswith("/") else name
                if not path or path.startswith("."):
                    if db_members is not None and name == ".CHANGELOG":
                        db_members[name] = _read_db_member(archive_p, name)
                    continue  # metadata (.PKGINFO, .INSTALL...): not ours
                entry_kind = member_kind(entry_p)
                listed_name = path + "/" if entry_kind is EntryKind.DIR else path
                if listed_name not in listed:
                    ex.warning(f"file not found in file list for package {new.name}. "
                               f"skipping extraction of {path}")
                    continue
                if entry_kind is EntryKind.OTHER:
                    ex.error(f"refusing to extract special file {handle.options.root}{path}")
                    continue
                ex.entry(archive_p, entry_p, name, path, entry_kind)
                done += 1
                if progress is not None:
                    progress(Progress(kind, new.name, min(done * 100 // total, 100), *position))
    except ArchiveReadError as fail:
        raise AlpmError(ErrorCode.PKG_INVALID, f"could not read {new.path}: {fail.message}",
                        path=new.path, entry=fail.entry) from None
    finally:
        os.close(fd)
        ex.close()
    if errs:
        what = "installing" if old is None else "upgrading"
        handle.log(LogLevel.ERROR, f"problem occurred while {what} {new.name}")
        handle.logaction("ALPM", f"error: problem occurred while {what} {new.name}")
    for b in filelist.backup:
        b.md5 = ex.hashes.get(b.path, "")
    return filelist
