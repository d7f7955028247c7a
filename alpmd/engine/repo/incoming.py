"""A package file offered for release: checked, then turned into its database entries.

Everything repo-add would write is computed here once (the ``desc`` and ``files``
texts), from the archive reader and the format writers the rest of the engine uses.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from alpmd.engine.archive import read_package_archive
from alpmd.engine.config import SigCheck, parse_siglevel
from alpmd.engine.errors import AlpmError, ErrorCode, system_error
from alpmd.engine.fdcopy import copy_prefix
from alpmd.engine.formats.desc import PkgMeta, repo_add_normalize, write_sync_desc
from alpmd.engine.formats.files import FileList, write_sync_files
from alpmd.engine.handle import Handle, Options
from alpmd.engine.repo.config import TreeConfig
from alpmd.engine.signing import sigpath, verify_file

#: repo-add refuses larger signature files.
MAX_SIG_SIZE = 16384

#: Package file extensions after ``.pkg.tar`` (makepkg's PKGEXT choices).
PKG_EXTS = ("", ".gz", ".bz2", ".xz", ".zst", ".lrz", ".lzo", ".Z", ".lz4", ".lz")


@dataclass
class Incoming:
    """A checked package file and the entries it will have in the databases."""

    path: str
    meta: PkgMeta
    sig: bytes | None
    desc: bytes
    files: bytes | None

    @property
    def base(self) -> str:
        return self.meta.base or self.meta.name

    @property
    def is_debug(self) -> bool:
        return self.meta.name == self.base + "-debug"


def is_package_name(filename: str) -> bool:
    """Whether a file name looks like a package file (not its ``.sig``)."""
    return any(filename.endswith(".pkg.tar" + ext) for ext in PKG_EXTS)


def _stem(filename: str) -> str:
    """``name-pkgver-pkgrel-arch`` of ``name-pkgver-pkgrel-arch.pkg.tar.EXT``."""
    for ext in sorted(PKG_EXTS, key=len, reverse=True):
        if filename.endswith(".pkg.tar" + ext):
            return filename[:-len(".pkg.tar" + ext)]
    return filename


def package_name_of(filename: str) -> str:
    """``name`` of ``name-pkgver-pkgrel-arch.pkg.tar.EXT``, read from the file name alone
    (for naming a release before it is read; the file is checked against its .PKGINFO)."""
    return _stem(filename).rsplit("-", 3)[0]


def package_arch_of(filename: str) -> str:
    """``arch`` of such a file name, read from it alone (as :func:`package_name_of`)."""
    return _stem(filename).rsplit("-", 1)[-1]


def _regular(path: str, what: str) -> os.stat_result:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"{what} not found: {path}", path=path) from None
    except OSError as exc:
        raise AlpmError(ErrorCode.PKG_OPEN, f"could not open {path}: {exc.strerror}",
                        path=path) from None
    if not stat.S_ISREG(st.st_mode):
        raise AlpmError(ErrorCode.PKG_OPEN, f"{what} must be a regular file: {path}", path=path)
    return st


@contextlib.contextmanager
def private_dir(cfg: TreeConfig) -> Iterator[str]:
    """A fresh directory of the tree's own (in its state directory) for private copies of
    package files, removed afterwards (a crash leaves an ``incoming-*`` one behind)."""
    work = tempfile.mkdtemp(prefix="incoming-", dir=cfg.state_dir)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _open_regular(path: str, what: str) -> int:
    """A descriptor of ``path``, opened without following a symbolic link in its last
    component (nor blocking on a FIFO), that must be a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise AlpmError(ErrorCode.PKG_NOT_FOUND, f"{what} not found: {path}", path=path) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AlpmError(ErrorCode.PKG_OPEN, f"{what} must be a regular file: {path}",
                            path=path) from None
        raise AlpmError(ErrorCode.PKG_OPEN, f"could not open {path}: {exc.strerror}",
                        path=path) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise AlpmError(ErrorCode.PKG_OPEN, f"{what} must be a regular file: {path}", path=path)
    return fd


def _copy_out(fd: int, dest: str, limit: int) -> None:
    """What ``fd`` holds (at most ``limit`` bytes) into the new file ``dest``, durably;
    a full or read-only file system is DISK_FULL / READ_ONLY."""
    try:
        with open(dest, "xb") as out:
            copy_prefix(fd, out.fileno(), limit)
            os.fsync(out.fileno())
    except OSError as exc:
        named = system_error(exc)
        if named is None:
            raise
        raise named from exc


def _room_for(work: str, size: int, path: str) -> None:
    """DISK_SPACE unless ``work``'s file system has ``size`` bytes free for the copy."""
    st = os.statvfs(work)
    free = st.f_bavail * st.f_frsize
    if size > free:
        raise AlpmError(ErrorCode.DISK_SPACE, f"{path}: its {size} bytes do not fit in the "
                        f"{free} bytes free for the tree's copy", path=path)


def private_copy(path: str, work: str) -> str:
    """``path`` (and its ``.sig``) copied into a new directory below ``work``: the path
    of the copy, which every check and the pool then read.

    Each original is read once, through one descriptor opened without following a
    link, as far as its size when opened, and only if the tree has room for it. Whoever may write the original (a packager, in the staging directory) can
    rewrite it at any time, even keeping its size and times; the copy is the tree's
    own, so what is checked is exactly what is added.
    """
    path = os.path.abspath(path)
    dest = os.path.join(tempfile.mkdtemp(dir=work), os.path.basename(path))
    fd = _open_regular(path, "package file")
    try:
        # what the file holds when opened, if the tree has room for it: a packager's file
        # that is sparse (a terabyte of nothing) or that a process keeps appending to
        # filled the tree's file system (or never ended), copied by whoever released it
        size = os.fstat(fd).st_size
        _room_for(work, size, path)
        _copy_out(fd, dest, size)
    finally:
        os.close(fd)
    spath = sigpath(path)
    if os.path.lexists(spath):
        fd = _open_regular(spath, "signature")
        try:  # (one byte past the limit: read_sig refuses the copy as it would the file)
            _copy_out(fd, sigpath(dest), MAX_SIG_SIZE + 1)
        finally:
            os.close(fd)
    return dest


def signature_handle(cfg: TreeConfig) -> Handle:
    """A handle whose keyring is the tree's (signatures are checked as the engine does)."""
    if cfg.keyring is None:
        raise AlpmError(ErrorCode.CONFIG_INVALID,
                        f"{cfg.path}: SigLevel asks for signatures but no Keyring is configured",
                        path=cfg.path)
    state = cfg.state_dir
    return Handle(Options(root=state, gpgdir=cfg.keyring + "/", logfile=os.devnull,
                          use_snapshots=False))


def check_signature(cfg: TreeConfig, handle: Handle | None, path: str, label: str,
                    embedded: str | None = None) -> None:
    """Apply the tree's SigLevel to a package file (its ``.sig``, or ``embedded`` %PGPSIG%)."""
    level = parse_siglevel(cfg.siglevel).package
    if level.check is SigCheck.NEVER:
        return
    assert handle is not None
    try:
        verify_file(handle, path, level, base64_sig=embedded, identifier=label)
    except AlpmError as exc:
        if exc.code is ErrorCode.SIG_MISSING:
            raise AlpmError(ErrorCode.PKG_MISSING_SIG, f"{label}: missing required signature",
                            path=path, package=label) from None
        if exc.code is ErrorCode.SIG_INVALID:
            raise AlpmError(ErrorCode.PKG_INVALID_SIG, f"{label}: invalid signature: "
                            f"{exc.message}", path=path, package=label) from None
        raise


def read_sig(path: str) -> bytes | None:
    """The package's detached signature as repo-add accepts it, or None when there is none."""
    spath = sigpath(path)
    if not os.path.lexists(spath):
        return None
    st = _regular(spath, "signature")
    if st.st_size > MAX_SIG_SIZE:
        raise AlpmError(ErrorCode.PKG_INVALID_SIG, f"invalid signature file {spath}: "
                        f"larger than {MAX_SIG_SIZE} bytes", path=path)
    with open(spath, "rb") as fh:
        data = fh.read()
    if b"BEGIN PGP SIGNATURE" in data:
        raise AlpmError(ErrorCode.PKG_INVALID_SIG,
                        f"cannot use armored signatures for packages: {spath}", path=path)
    return data


def digests(path: str) -> tuple[str, str]:
    """The md5 and sha256 of a file, read once."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def inspect_package(cfg: TreeConfig, handle: Handle | None, path: str) -> Incoming:
    """Check one package file and compute its entries; AlpmError on any problem.

    The file must be a regular file whose name matches its ``.PKGINFO`` (name,
    version, architecture), of a configured architecture (or ``any``), signed
    as the SigLevel asks.
    """
    path = os.path.abspath(path)
    st = _regular(path, "package file")
    archive = read_package_archive(path, full=cfg.files)
    meta = archive.meta
    arch = meta.arch or ""
    filename = os.path.basename(path)
    stem = f"{meta.name}-{meta.version}-{arch}.pkg.tar"
    if not (filename.startswith(stem) and filename[len(stem):] in PKG_EXTS):
        raise AlpmError(ErrorCode.PKG_INVALID_NAME,
                        f"{filename}: file name does not match its .PKGINFO "
                        f"({meta.name} {meta.version} {arch or 'no arch'})", path=path)
    if arch != "any" and arch not in cfg.arches:
        raise AlpmError(ErrorCode.PKG_INVALID_ARCH,
                        f"{filename}: architecture '{arch}' is not configured", path=path)
    sig = read_sig(path)
    check_signature(cfg, handle, path, filename)
    md5, sha256 = digests(path)
    after = os.lstat(path)
    if (after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino) != (
            st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino):
        raise AlpmError(ErrorCode.PKG_OPEN, f"{filename} changed while it was read", path=path)
    out = repo_add_normalize(meta)
    out.filename = filename
    out.csize = st.st_size
    out.md5sum = md5
    out.sha256sum = sha256
    out.base64_sig = base64.b64encode(sig).decode() if sig is not None else None
    files = None
    if archive.files is not None:
        files = write_sync_files(FileList(archive.files.files)).encode("utf-8", "surrogateescape")
    return Incoming(path=path, meta=out, sig=sig,
                    desc=write_sync_desc(out).encode("utf-8", "surrogateescape"), files=files)
