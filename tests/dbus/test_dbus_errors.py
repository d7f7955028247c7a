"""Every engine error code reaches a client under a deliberately chosen D-Bus error name."""

from __future__ import annotations

from alpmd.dbus import errors
from alpmd.engine.errors import AlpmError, ErrorCode


def test_every_code_has_a_deliberate_name() -> None:
    mapped = errors.mapped_codes()
    for code in ErrorCode:
        in_map = code in mapped
        in_internal = code in errors.INTERNAL_CODES
        assert in_map != in_internal, f"{code} must be in exactly one table"
        name = errors.error_name(code)
        assert name in errors.ALL_NAMES
        assert (name == errors.INTERNAL) == in_internal, code


def test_hostile_archive_and_costly_pattern_names() -> None:
    assert errors.error_name(ErrorCode.ARCHIVE_LIMIT) == errors.INVALID_ARGS
    assert errors.error_name(ErrorCode.LIBARCHIVE) == errors.INVALID_ARGS
    assert errors.error_name(ErrorCode.PATTERN_TOO_COSTLY) == errors.TIMEOUT
    err = errors.from_alpm(AlpmError(ErrorCode.ARCHIVE_LIMIT, "too many entries"))
    assert err.type == errors.INVALID_ARGS
    assert err.text.startswith("archive-limit: ")
