"""One error type for the whole engine, with libalpm's error codes.

Front ends (the command line, the daemon) map :class:`ErrorCode` values to exit
codes and D-Bus error names; the code is stable, the message is for people.
"""

from __future__ import annotations

import enum
import errno

from alpmd import TYPE_CHECKING
from alpmd.i18n import gettext as _
from alpmd.i18n import translate

if TYPE_CHECKING:
    from typing import Any


class ErrorCode(enum.Enum):
    """Every failure libalpm distinguishes (``alpm_errno_t``); the value is a stable slug."""

    MEMORY = "memory"
    SYSTEM = "system"
    BADPERMS = "badperms"
    NOT_A_FILE = "not-a-file"
    NOT_A_DIR = "not-a-dir"
    WRONG_ARGS = "wrong-args"
    DISK_SPACE = "disk-space"
    HANDLE_NULL = "handle-null"
    HANDLE_NOT_NULL = "handle-not-null"
    HANDLE_LOCK = "handle-lock"
    DB_OPEN = "db-open"
    DB_CREATE = "db-create"
    DB_NULL = "db-null"
    DB_NOT_NULL = "db-not-null"
    DB_NOT_FOUND = "db-not-found"
    DB_INVALID = "db-invalid"
    DB_INVALID_SIG = "db-invalid-sig"
    DB_VERSION = "db-version"
    DB_WRITE = "db-write"
    DB_REMOVE = "db-remove"
    SERVER_BAD_URL = "server-bad-url"
    SERVER_NONE = "server-none"
    TRANS_NOT_NULL = "trans-not-null"
    TRANS_NULL = "trans-null"
    TRANS_DUP_TARGET = "trans-dup-target"
    TRANS_DUP_FILENAME = "trans-dup-filename"
    TRANS_NOT_INITIALIZED = "trans-not-initialized"
    TRANS_NOT_PREPARED = "trans-not-prepared"
    TRANS_ABORT = "trans-abort"
    TRANS_TYPE = "trans-type"
    TRANS_NOT_LOCKED = "trans-not-locked"
    TRANS_HOOK_FAILED = "trans-hook-failed"
    PKG_NOT_FOUND = "pkg-not-found"
    PKG_IGNORED = "pkg-ignored"
    PKG_INVALID = "pkg-invalid"
    PKG_INVALID_CHECKSUM = "pkg-invalid-checksum"
    PKG_INVALID_SIG = "pkg-invalid-sig"
    PKG_MISSING_SIG = "pkg-missing-sig"
    PKG_OPEN = "pkg-open"
    PKG_CANT_REMOVE = "pkg-cant-remove"
    PKG_INVALID_NAME = "pkg-invalid-name"
    PKG_INVALID_ARCH = "pkg-invalid-arch"
    SIG_MISSING = "sig-missing"
    SIG_INVALID = "sig-invalid"
    UNSATISFIED_DEPS = "unsatisfied-deps"
    CONFLICTING_DEPS = "conflicting-deps"
    FILE_CONFLICTS = "file-conflicts"
    RETRIEVE = "retrieve"
    INVALID_REGEX = "invalid-regex"
    #: A search pattern that cannot be matched within the caller's bound (ours).
    PATTERN_TOO_COSTLY = "pattern-too-costly"
    LIBARCHIVE = "libarchive"
    LIBCURL = "libcurl"
    EXTERNAL_DOWNLOAD = "external-download"
    GPGME = "gpgme"
    MISSING_CAPABILITY_SIGNATURES = "missing-capability-signatures"
    CANCELLED = "cancelled"
    CONFIG_INVALID = "config-invalid"
    ARCHIVE_LIMIT = "archive-limit"
    #: The file system is full (ENOSPC) or the user's quota is used up (EDQUOT); ours.
    DISK_FULL = "disk-full"
    #: The file system is mounted read-only (EROFS); ours.
    READ_ONLY = "read-only"

    @property
    def strerror(self) -> str:
        """The readable message in the process's language, as ``alpm_strerror`` gives it."""
        return _(_MESSAGES[self])


_MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.MEMORY: "out of memory!",
    ErrorCode.SYSTEM: "unexpected system error",
    ErrorCode.BADPERMS: "permission denied",
    ErrorCode.NOT_A_FILE: "could not find or read file",
    ErrorCode.NOT_A_DIR: "could not find or read directory",
    ErrorCode.WRONG_ARGS: "wrong or NULL argument passed",
    ErrorCode.DISK_SPACE: "not enough free disk space",
    ErrorCode.HANDLE_NULL: "library not initialized",
    ErrorCode.HANDLE_NOT_NULL: "library already initialized",
    ErrorCode.HANDLE_LOCK: "unable to lock database",
    ErrorCode.DB_OPEN: "could not open database",
    ErrorCode.DB_CREATE: "could not create database",
    ErrorCode.DB_NULL: "database not initialized",
    ErrorCode.DB_NOT_NULL: "database already registered",
    ErrorCode.DB_NOT_FOUND: "could not find database",
    ErrorCode.DB_INVALID: "invalid or corrupted database",
    ErrorCode.DB_INVALID_SIG: "invalid or corrupted database (PGP signature)",
    ErrorCode.DB_VERSION: "database is incorrect version",
    ErrorCode.DB_WRITE: "could not update database",
    ErrorCode.DB_REMOVE: "could not remove database entry",
    ErrorCode.SERVER_BAD_URL: "invalid url for server",
    ErrorCode.SERVER_NONE: "no servers configured for repository",
    ErrorCode.TRANS_NOT_NULL: "transaction already initialized",
    ErrorCode.TRANS_NULL: "transaction not initialized",
    ErrorCode.TRANS_DUP_TARGET: "duplicate target",
    ErrorCode.TRANS_DUP_FILENAME: "duplicate filename",
    ErrorCode.TRANS_NOT_INITIALIZED: "transaction not initialized",
    ErrorCode.TRANS_NOT_PREPARED: "transaction not prepared",
    ErrorCode.TRANS_ABORT: "transaction aborted",
    ErrorCode.TRANS_TYPE: "operation not compatible with the transaction type",
    ErrorCode.TRANS_NOT_LOCKED: "transaction commit attempt when database is not locked",
    ErrorCode.TRANS_HOOK_FAILED: "failed to run transaction hooks",
    ErrorCode.PKG_NOT_FOUND: "could not find or read package",
    ErrorCode.PKG_IGNORED: "operation cancelled due to ignorepkg",
    ErrorCode.PKG_INVALID: "invalid or corrupted package",
    ErrorCode.PKG_INVALID_CHECKSUM: "invalid or corrupted package (checksum)",
    ErrorCode.PKG_INVALID_SIG: "invalid or corrupted package (PGP signature)",
    ErrorCode.PKG_MISSING_SIG: "package missing required signature",
    ErrorCode.PKG_OPEN: "cannot open package file",
    ErrorCode.PKG_CANT_REMOVE: "cannot remove all files for package",
    ErrorCode.PKG_INVALID_NAME: "package filename is not valid",
    ErrorCode.PKG_INVALID_ARCH: "package architecture is not valid",
    ErrorCode.SIG_MISSING: "missing PGP signature",
    ErrorCode.SIG_INVALID: "invalid PGP signature",
    ErrorCode.UNSATISFIED_DEPS: "could not satisfy dependencies",
    ErrorCode.CONFLICTING_DEPS: "conflicting dependencies",
    ErrorCode.FILE_CONFLICTS: "conflicting files",
    ErrorCode.RETRIEVE: "failed to retrieve some files",
    ErrorCode.INVALID_REGEX: "invalid regular expression",
    ErrorCode.PATTERN_TOO_COSTLY: "regular expression too costly to match",
    ErrorCode.LIBARCHIVE: "libarchive error",
    ErrorCode.LIBCURL: "download library error",
    ErrorCode.EXTERNAL_DOWNLOAD: "error invoking external downloader",
    ErrorCode.GPGME: "gpgme error",
    ErrorCode.MISSING_CAPABILITY_SIGNATURES: "compiled without signature support",
    ErrorCode.CANCELLED: "operation cancelled",
    ErrorCode.CONFIG_INVALID: "invalid configuration",
    ErrorCode.ARCHIVE_LIMIT: "archive exceeds the limits for reading it",
    ErrorCode.DISK_FULL: "no space left on device",
    ErrorCode.READ_ONLY: "read-only file system",
}


class AlpmError(Exception):
    """An engine failure: a stable :class:`ErrorCode`, a message and optional details.

    ``details`` carries structured data a front end may show (missing
    dependencies, conflicting files, the offending archive entry...).
    """

    def __init__(self, code: ErrorCode, message: str | None = None, **details: Any) -> None:
        self.code = code
        self.message = message or code.strerror
        #: The English text, translated for each client by :meth:`localized`.
        self.msgid = message or _MESSAGES[code]
        self.details: dict[str, Any] = details
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def localized(self, locale: str) -> str:
        """The message in one client's ``locale`` (the daemon's per-client language)."""
        return translate(self.msgid, locale)

    def __repr__(self) -> str:
        return f"AlpmError({self.code.name}, {self.message!r})"


#: errno values that say the system, not the package, is the problem.
_OS_CODES = {errno.ENOSPC: ErrorCode.DISK_FULL, errno.EDQUOT: ErrorCode.DISK_FULL,
             errno.EROFS: ErrorCode.READ_ONLY}


def errno_code(err: int | None) -> ErrorCode | None:
    """DISK_FULL / READ_ONLY for an errno of a full or read-only file system, else None."""
    return _OS_CODES.get(err or 0)


def os_error_code(exc: OSError, default: ErrorCode) -> ErrorCode:
    """DISK_FULL / READ_ONLY for the errors a hostile system causes, ``default`` otherwise."""
    return _OS_CODES.get(exc.errno or 0, default)


def system_error(exc: BaseException) -> AlpmError | None:
    """``exc`` (or what caused it) as a named error, when a full or read-only file system
    is behind it: an ``OSError``, or an ``AlpmError`` raised from one (a database write).
    None when the system is not to blame."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, AlpmError) and cause.code in (ErrorCode.DISK_FULL,
                                                            ErrorCode.READ_ONLY):
            return cause
        if isinstance(cause, OSError):
            code = errno_code(cause.errno)
            if code is None:
                return None
            if isinstance(exc, AlpmError):
                return AlpmError(code, exc.message, **{**exc.details, "errno": cause.errno})
            where = f" ({cause.filename})" if cause.filename else ""
            return AlpmError(code, f"{code.strerror}{where}", errno=cause.errno)
        cause = cause.__cause__
    return None


def from_os_error(exc: OSError, what: str, default: ErrorCode = ErrorCode.SYSTEM,
                  **details: Any) -> AlpmError:
    """An AlpmError for an OSError met while doing ``what`` ("could not write /x")."""
    code = os_error_code(exc, default)
    reason = code.strerror if code is not default else (exc.strerror or str(exc))
    return AlpmError(code, f"{what}: {reason}", errno=exc.errno, **details)
