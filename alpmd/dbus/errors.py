"""Engine failures as named D-Bus errors (``org.alpm.Error.*``), never a traceback.

The error's message starts with the engine's stable error code so that a client
can branch on it without parsing prose: ``"pkg-not-found: target not found: foo"``.
"""

from __future__ import annotations

from dbus_fast import DBusError

from alpmd.engine.errors import AlpmError, ErrorCode

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

ALL_NAMES = (NOT_AUTHORIZED, BUSY, LOCKED, NOT_FOUND, INVALID_ARGS, WRONG_STATE, CANCELLED,
             DEP_RESOLUTION, CONFLICT, FILE_CONFLICT, SIGNATURE, DOWNLOAD, DISK_SPACE, INTERNAL)

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
}


def error_name(code: ErrorCode) -> str:
    """The D-Bus error name for an engine error code (Internal when nothing fits)."""
    return _BY_CODE.get(code, INTERNAL)


def code_text(name: str, code: str, message: str) -> DBusError:
    """A D-Bus error ``name`` whose text carries ``code`` first."""
    return DBusError(name, f"{code}: {message}")


def from_alpm(exc: AlpmError) -> DBusError:
    return code_text(error_name(exc.code), exc.code.value, exc.message)


def internal(exc: BaseException) -> DBusError:
    """An unexpected failure: its type only (tracebacks go to the journal, not the caller)."""
    return code_text(INTERNAL, "internal", f"internal error ({type(exc).__name__})")


def invalid(message: str) -> DBusError:
    return code_text(INVALID_ARGS, ErrorCode.WRONG_ARGS.value, message)


def wrong_state(message: str) -> DBusError:
    return code_text(WRONG_STATE, "wrong-state", message)
