"""Errors a hostile system causes get their own codes, however deep the OSError sits."""

from __future__ import annotations

import errno

import pytest

from alpmd.engine.errors import AlpmError, ErrorCode, from_os_error, system_error


def _db_write_failure(err: int) -> AlpmError:
    try:
        try:
            raise OSError(err, "boom", "/db/local/x-1-1/desc")
        except OSError as exc:
            raise AlpmError(ErrorCode.DB_WRITE, "could not write database entry x-1-1",
                            path="/db/local/x-1-1") from exc
    except AlpmError as exc:
        return exc


@pytest.mark.parametrize(("err", "code"), [(errno.ENOSPC, ErrorCode.DISK_FULL),
                                           (errno.EDQUOT, ErrorCode.DISK_FULL),
                                           (errno.EROFS, ErrorCode.READ_ONLY)])
def test_a_database_write_failing_on_a_full_or_read_only_disk_is_named(
        err: int, code: ErrorCode) -> None:
    named = system_error(_db_write_failure(err))
    assert named is not None and named.code is code
    assert named.message == "could not write database entry x-1-1"
    assert named.details == {"path": "/db/local/x-1-1", "errno": err}
    raw = system_error(OSError(err, "boom", "/x"))
    assert raw is not None and raw.code is code and "/x" in raw.message
    made = from_os_error(OSError(err, "boom"), "could not write /y")
    assert made.code is code and made.message == f"could not write /y: {code.strerror}"


def test_other_failures_keep_their_own_code() -> None:
    assert system_error(_db_write_failure(errno.EIO)) is None
    assert system_error(ValueError("x")) is None
    made = from_os_error(OSError(errno.EIO, "Input/output error"), "could not write /y")
    assert made.code is ErrorCode.SYSTEM and made.message == "could not write /y: Input/output error"
