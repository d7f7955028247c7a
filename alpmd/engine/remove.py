"""Removing an installed package's files, as libalpm's ``remove_package_files``/``unlink_file``.

* Every file must be removable (writable) before anything is touched, else
  ``PKG_CANT_REMOVE``.
* Files go in reverse path order (contents before their directories).
* On an upgrade (``new`` given) NoUpgrade files, files that moved to another
  package of the transaction (``skip``), and backup files the new version
  keeps are left in place; everything else of the old version is removed and
  the new version extracted afterwards.
* A backup file whose md5 differs from the recorded one is renamed to
  ``.pacsave`` (unless NOSAVE), older copies shifted to ``.pacsave.1``, ``.2``...
* A directory is kept when it is not empty, is a mount point, is in the new
  package, or another installed package owns it. A directory replaced by a
  symlink is unlinked as the symlink it now is.

Paths are checked to resolve inside the root before anything is unlinked, so
a symlinked directory pointing out of the root never makes us delete there.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Collection

from alpmd.engine.conflict import fnmatch_patterns
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import (
    EventCallback,
    PacsaveCreated,
    Progress,
    ProgressCallback,
    ProgressKind,
    TransFlag,
)
from alpmd.engine.extract import md5_file
from alpmd.engine.handle import Handle
from alpmd.engine.log import LogLevel
from alpmd.engine.package import Package

__all__ = ["remove_package_files"]


class _Remover:
    def __init__(self, handle: Handle, old: Package, new: Package | None, nosave: bool,
                 event: EventCallback | None) -> None:
        self.handle = handle
        self.root = handle.options.root
        self.real_root = os.path.realpath(self.root)
        self.old = old
        self.new = new
        self.new_files = set(new.files) if new is not None else set()
        self.nosave = nosave
        self.event = event
        self.backup = {b.path: b.md5 for b in old.backup}
        self._inside: dict[str, bool] = {}

    def inside(self, path: str) -> bool:
        """Whether the directory holding ``path`` (relative) resolves inside the root."""
        parent = os.path.dirname(path.rstrip("/"))
        got = self._inside.get(parent)
        if got is None:
            real = os.path.realpath(self.root + parent)
            got = real == self.real_root or real.startswith(self.real_root.rstrip("/") + "/")
            self._inside[parent] = got
        return got

    def error(self, message: str) -> None:
        self.handle.log(LogLevel.ERROR, message)
        self.handle.logaction("ALPM", f"error: {message}")

    def owned_elsewhere(self, path: str) -> str | None:
        for pkg in self.handle.localdb.packages:
            if pkg.name != self.old.name and path in pkg.files:
                return pkg.name
        return None

    def shift_pacsave(self, full: str) -> None:
        """Make room for a new ``.pacsave``: ``.pacsave.N`` -> ``.N+1``, ``.pacsave`` -> ``.1``.

        libalpm's shift_pacsave: the newest copy is always ``.pacsave``; the highest
        number found decides where shifting starts (gaps are shifted over, a missing
        one is reported and skipped). The file name is used as a regular expression
        unescaped, as libalpm does; a name that is no valid expression shifts nothing.
        """
        dirname, base = os.path.split(full)
        try:
            pattern = re.compile(f"^{base}\\.pacsave\\.([0-9]+)$")
            names = os.listdir(dirname or "/")
        except (re.error, OSError):
            return
        top = 0
        for name in names:
            if pattern.search(name):
                digits = name[len(base) + len(".pacsave."):]
                num = re.match(r"[0-9]*", digits)
                top = max(top, int(num.group(0)) if num and num.group(0) else 0)
        for i in range(top + 1, 1, -1):
            src, dst = f"{full}.pacsave.{i - 1}", f"{full}.pacsave.{i}"
            try:
                os.rename(src, dst)
            except OSError as exc:
                self.handle.log(LogLevel.DEBUG, f"could not rename {src} to {dst} "
                                                  f"({exc.strerror})")
        if os.path.exists(full + ".pacsave"):
            try:
                os.rename(full + ".pacsave", full + ".pacsave.1")
            except OSError as exc:
                self.handle.log(LogLevel.DEBUG, f"could not rename {full}.pacsave to "
                                                  f"{full}.pacsave.1 ({exc.strerror})")

    def unlink(self, path: str) -> bool:
        """Remove one path of the old package; False on an error (reported)."""
        # Without its trailing slash, a directory the administrator replaced with a
        # symlink is seen as the symlink: it is unlinked, never followed (libalpm).
        # Files listed below it were reached through it first, like libalpm, unless
        # it leads out of the root (then they are refused, unlike libalpm).
        full = (self.root + path).rstrip("/") or "/"
        try:
            st = os.lstat(full)
        except OSError:
            return True  # nothing there (also not where a symlink leads)
        if not self.inside(path):
            self.error(f"not removing {full}: it resolves outside the root")
            return False
        if stat.S_ISDIR(st.st_mode):
            try:
                with os.scandir(full) as it:
                    has_files = any(True for _ in it)
            except OSError:
                return True  # could not count files: kept
            if has_files or path in self.new_files:
                return True
            try:
                parent = os.stat(full + "/..")
                if parent.st_dev != st.st_dev:
                    return True  # a mount point
            except OSError:
                return True
            if self.owned_elsewhere(path) is not None:
                return True
            try:
                os.rmdir(full)
            except OSError as exc:
                self.handle.log(LogLevel.DEBUG, f"directory removal of {full} failed: "
                                                f"{exc.strerror}")
                return False
            return True
        recorded = self.backup.get(path)
        if recorded is not None and not self.nosave:
            current = md5_file(full)
            if current is not None and current != recorded:
                saved = full + ".pacsave"
                self.shift_pacsave(full)
                try:
                    os.rename(full, saved)
                except OSError as exc:
                    self.error(f"could not rename {full} to {saved} ({exc.strerror})")
                    return False
                if self.event is not None:
                    self.event(PacsaveCreated(old=self.old, file=full))
                self.handle.logaction("ALPM", f"warning: {full} saved as {saved}")
                return True
        try:
            os.unlink(full)
        except OSError as exc:
            self.error(f"cannot remove {full} ({exc.strerror})")
            if exc.errno == errno.EROFS:  # every other file would fail the same way
                raise AlpmError(ErrorCode.READ_ONLY, f"cannot remove {full}: "
                                f"{exc.strerror}", file=full, pkg=self.old.name) from exc
            return False
        return True


def _read_only(path: str) -> bool:
    """Whether ``path`` (or the directory holding it) is on a read-only mount."""
    try:
        return bool(os.statvfs(os.path.dirname(path.rstrip("/")) or "/").f_flag & os.ST_RDONLY)
    except OSError:
        return False


def remove_package_files(
    handle: Handle,
    old: Package,
    *,
    new: Package | None = None,
    flags: TransFlag = TransFlag.NONE,
    event: EventCallback | None = None,
    skip: Collection[str] = (),
    progress: ProgressCallback | None = None,
) -> None:
    """Remove the files of the installed ``old`` (on an upgrade, ``new`` is its successor).

    ``skip``: paths another package of the transaction takes over (from
    :func:`alpmd.engine.conflict.find_file_conflicts`). Raises
    ``AlpmError(PKG_CANT_REMOVE)`` before touching anything when some file
    cannot be removed; single failures afterwards are logged and counted.
    """
    if TransFlag.DBONLY in flags:
        return
    root = handle.options.root
    noupgrade = handle.options.noupgrade
    new_backup = {b.path for b in new.backup} if new is not None else set()
    new_files = set(new.files) if new is not None else set()
    skipped = set(skip)

    def should_skip(path: str) -> bool:
        return (fnmatch_patterns(noupgrade, path) == 0 or path in skipped
                or (new is not None and path in new_backup and path in new_files))

    files = old.files
    for path in files:
        if should_skip(path):
            continue
        full = root + path
        if not os.access(full, os.W_OK, follow_symlinks=False) and os.path.lexists(full):
            if _read_only(full):
                handle.log(LogLevel.ERROR, f"cannot remove file '{full}': "
                                           f"{os.strerror(errno.EROFS)}")
                raise AlpmError(ErrorCode.READ_ONLY, f"not removing package '{old.name}': "
                                f"{full} is on a read-only file system", pkg=old.name,
                                file=full)
            handle.log(LogLevel.ERROR, f"cannot remove file '{full}': "
                                       f"{os.strerror(13)}")
            raise AlpmError(ErrorCode.PKG_CANT_REMOVE,
                            f"not removing package '{old.name}', can't remove all files",
                            pkg=old.name, file=full)
    remover = _Remover(handle, old, new, TransFlag.NOSAVE in flags, event)
    errors = 0
    ordered = sorted(files, key=lambda p: p.encode("utf-8", "surrogateescape"), reverse=True)
    total = max(len(ordered), 1)
    for n, path in enumerate(ordered, 1):
        if not should_skip(path) and not remover.unlink(path):
            errors += 1
        if progress is not None and new is None:
            progress(Progress(ProgressKind.REMOVE, old.name, n * 100 // total, 1, 1))
    if errors:
        handle.log(LogLevel.DEBUG, f"{errors} errors removing files of {old.name}")
