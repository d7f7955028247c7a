"""Engine failures as named D-Bus errors (``org.alpm.Error.*``), never a traceback.

The error's message starts with the engine's stable error code so that a client
can branch on it without parsing prose: ``"pkg-not-found: target not found: foo"``.
"""

from __future__ import annotations

import errno

from dbus_fast import DBusError

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.i18n import translate

PREFIX = "org.alpm.Error."

NOT_AUTHORIZED = PREFIX + "NotAuthorized"
BUSY = PREFIX + "Busy"
LOCKED = PREFIX + "Locked"
NOT_FOUND = PREFIX + "NotFound"
INVALID_ARGS = PREFIX + "InvalidArgs"
WRONG_STATE = PREFIX + "WrongState"
CANCELLED = PREFIX + "Cancelled"
DEP_RESOLUTION = PREFIX + "DepResolution"
CONFLICT = PREFIX + "Conflict"
FILE_CONFLICT = PREFIX + "FileConflict"
SIGNATURE = PREFIX + "Signature"
DOWNLOAD = PREFIX + "Download"
DISK_SPACE = PREFIX + "DiskSpace"
INTERNAL = PREFIX + "Internal"
LIMIT_EXCEEDED = PREFIX + "LimitExceeded"
TIMEOUT = PREFIX + "Timeout"
DISK_FULL = PREFIX + "DiskFull"
READ_ONLY = PREFIX + "ReadOnly"

ALL_NAMES = (NOT_AUTHORIZED, BUSY, LOCKED, NOT_FOUND, INVALID_ARGS, WRONG_STATE, CANCELLED,
             DEP_RESOLUTION, CONFLICT, FILE_CONFLICT, SIGNATURE, DOWNLOAD, DISK_SPACE, INTERNAL,
             LIMIT_EXCEEDED, TIMEOUT, DISK_FULL, READ_ONLY)
#: errno values with a name of their own: a full disk, a read-only file system
_BY_ERRNO: dict[int, tuple[str, str, str]] = {
    errno.ENOSPC: (DISK_FULL, "disk-full", "no space left on the device"),
    errno.EDQUOT: (DISK_FULL, "disk-full", "disk quota exceeded"),
    errno.EROFS: (READ_ONLY, "read-only", "the file system is read-only"),
}

_BY_CODE: dict[ErrorCode, str] = {
    ErrorCode.HANDLE_LOCK: LOCKED,
    ErrorCode.PKG_NOT_FOUND: NOT_FOUND,
    ErrorCode.DB_NOT_FOUND: NOT_FOUND,
    ErrorCode.NOT_A_FILE: NOT_FOUND,
    ErrorCode.WRONG_ARGS: INVALID_ARGS,
    ErrorCode.INVALID_REGEX: INVALID_ARGS,
    ErrorCode.PKG_INVALID_NAME: INVALID_ARGS,
    ErrorCode.TRANS_DUP_TARGET: INVALID_ARGS,
    ErrorCode.TRANS_DUP_FILENAME: INVALID_ARGS,
    ErrorCode.TRANS_NOT_NULL: BUSY,
    ErrorCode.TRANS_NULL: WRONG_STATE,
    ErrorCode.TRANS_NOT_INITIALIZED: WRONG_STATE,
    ErrorCode.TRANS_NOT_PREPARED: WRONG_STATE,
    ErrorCode.TRANS_TYPE: WRONG_STATE,
    ErrorCode.TRANS_NOT_LOCKED: WRONG_STATE,
    ErrorCode.CANCELLED: CANCELLED,
    ErrorCode.TRANS_ABORT: CANCELLED,
    ErrorCode.PKG_IGNORED: CANCELLED,
    ErrorCode.UNSATISFIED_DEPS: DEP_RESOLUTION,
    ErrorCode.CONFLICTING_DEPS: CONFLICT,
    ErrorCode.FILE_CONFLICTS: FILE_CONFLICT,
    ErrorCode.DB_INVALID_SIG: SIGNATURE,
    ErrorCode.PKG_INVALID_SIG: SIGNATURE,
    ErrorCode.PKG_MISSING_SIG: SIGNATURE,
    ErrorCode.SIG_MISSING: SIGNATURE,
    ErrorCode.SIG_INVALID: SIGNATURE,
    ErrorCode.GPGME: SIGNATURE,
    ErrorCode.RETRIEVE: DOWNLOAD,
    ErrorCode.LIBCURL: DOWNLOAD,
    ErrorCode.EXTERNAL_DOWNLOAD: DOWNLOAD,
    ErrorCode.SERVER_NONE: DOWNLOAD,
    ErrorCode.SERVER_BAD_URL: DOWNLOAD,
    ErrorCode.DISK_SPACE: DISK_SPACE,
    ErrorCode.PKG_INVALID: INVALID_ARGS,
    ErrorCode.PKG_OPEN: INVALID_ARGS,
    ErrorCode.PKG_INVALID_CHECKSUM: SIGNATURE,
    ErrorCode.PKG_INVALID_ARCH: INVALID_ARGS,
    # a hostile or broken archive is bad input from the caller, not our fault
    ErrorCode.ARCHIVE_LIMIT: INVALID_ARGS,
    ErrorCode.LIBARCHIVE: INVALID_ARGS,
    ErrorCode.PKG_CANT_REMOVE: CONFLICT,
    ErrorCode.PATTERN_TOO_COSTLY: TIMEOUT,
    ErrorCode.MISSING_CAPABILITY_SIGNATURES: SIGNATURE,
    ErrorCode.DISK_FULL: DISK_FULL,
    ErrorCode.READ_ONLY: READ_ONLY,
    ErrorCode.NOT_A_DIR: NOT_FOUND,
    ErrorCode.HANDLE_NOT_NULL: BUSY,
}

#: codes that really are the daemon's own failure (a broken state or system, a bug): Internal
#: on purpose. tests/dbus/test_dbus_errors.py checks that every code is in exactly one table.
INTERNAL_CODES: frozenset[ErrorCode] = frozenset({
    ErrorCode.MEMORY, ErrorCode.SYSTEM, ErrorCode.HANDLE_NULL, ErrorCode.DB_OPEN,
    ErrorCode.DB_CREATE, ErrorCode.DB_NULL, ErrorCode.DB_NOT_NULL, ErrorCode.DB_INVALID,
    ErrorCode.DB_VERSION, ErrorCode.DB_WRITE, ErrorCode.DB_REMOVE, ErrorCode.TRANS_HOOK_FAILED,
    # the system's own files (pacman.conf, hooks) are broken or unreadable: not the caller's
    ErrorCode.CONFIG_INVALID, ErrorCode.BADPERMS,
})


def error_name(code: ErrorCode) -> str:
    """The D-Bus error name for an engine error code (Internal only for ``INTERNAL_CODES``)."""
    return _BY_CODE.get(code, INTERNAL)


def mapped_codes() -> dict[ErrorCode, str]:
    """Every code with a deliberate non-Internal name (for the exhaustiveness test)."""
    return dict(_BY_CODE)


def code_text(name: str, code: str, message: str) -> DBusError:
    """A D-Bus error ``name`` whose text carries ``code`` first."""
    return DBusError(name, f"{code}: {message}")


def from_alpm(exc: AlpmError, locale: str = "") -> DBusError:
    """The named error for ``exc``, its text in the caller's ``locale`` (the code stays)."""
    name = error_name(exc.code)
    if name == INTERNAL or exc.code.value in ("system", "disk-full", "read-only"):
        named = from_os_error(exc)
        if named is not None:
            return named
    return code_text(name, exc.code.value, exc.localized(locale) if locale else exc.message)


def localized(err: DBusError, locale: str) -> DBusError:
    """``err`` with its text in the caller's ``locale``: the code before the first ``": "``
    stays, the rest is translated whole or by its fixed ``head: detail`` part."""
    code, sep, text = (err.text or "").partition(": ")
    if not locale or not sep:
        return err
    translated = translate(text, locale)
    return err if translated == text else DBusError(err.type, f"{code}: {translated}")


def internal(exc: BaseException) -> DBusError:
    """An unexpected failure: its type only (tracebacks go to the journal, not the caller).

    A full disk or a read-only file system is no mystery: those get their own names."""
    named = from_os_error(exc)
    if named is not None:
        return named
    return code_text(INTERNAL, "internal", f"internal error ({type(exc).__name__})")


def from_os_error(exc: BaseException) -> DBusError | None:
    """DiskFull / ReadOnly for an OSError (or an engine error caused by one), else None."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _BY_ERRNO:
            name, code, text = _BY_ERRNO[cur.errno]
            where = f" ({cur.filename})" if cur.filename else ""
            return code_text(name, code, text + where)
        cur = cur.__cause__ or cur.__context__
    return None


def invalid(message: str) -> DBusError:
    return code_text(INVALID_ARGS, ErrorCode.WRONG_ARGS.value, message)


def wrong_state(message: str) -> DBusError:
    return code_text(WRONG_STATE, "wrong-state", message)
