"""The ``%SECTION%`` layout shared by ``desc``, ``files`` and ``depends`` entries.

A section is a header line such as ``%DEPENDS%`` followed by its value lines up
to the next blank line.  libalpm reads a single-valued header by taking the very
next line, even when it is empty (``%DESC%`` of a package with an empty
description), and a list header by taking lines up to a blank one.  Lines
outside sections are ignored, as libalpm ignores them.

The scanner below is the hot path of loading a sync database (one call per
package), so it works on a list of lines with C-level ``list.index`` searches
and one dict lookup per section, never a regular expression per line.
"""

from __future__ import annotations

from collections.abc import Iterator

from alpmd.engine.errors import AlpmError, ErrorCode

#: Kinds of known sections: one line of text, a list up to a blank line, one integer
#: (``atoi``), a size (libalpm's ``_alpm_strtoofft``) and a date (``_alpm_parsedate``).
SINGLE = 0
LIST = 1
INT = 2
SIZE = 3
DATE = 4

#: What :func:`scan` knows of a header: the key to store it under and its kind.
Spec = tuple[str, int]
Value = str | int | list[str]


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` without their ends; a final newline adds no empty line.

    Carriage returns before a newline are dropped, so CRLF files read like LF ones.
    """
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return lines


def scan(
    text: str,
    specs: dict[str, Spec],
    origin: str,
    code: ErrorCode,
    into: dict[str, Value] | None = None,
) -> dict[str, Value]:
    """Read the known sections of ``text`` into a dict keyed by each spec's key.

    Unknown ``%HEADERS%`` and their bodies are skipped; a repeated list section
    adds to the earlier one and a repeated single one replaces it (as libalpm
    does).  Headers are matched exactly, then with trailing whitespace removed; a
    line ends at a NUL.
    A single-valued header on the last line raises :class:`AlpmError` with
    ``code``; numbers that are not numbers read as libalpm reads them (0 or -1).
    """
    out: dict[str, Value] = {} if into is None else into
    lines = split_lines(text)
    if "\0" in text:  # libalpm reads C strings: a line ends at a NUL
        lines = [line.partition("\0")[0] for line in lines]
    n = len(lines)
    i = 0
    index = lines.index
    get = specs.get
    while i < n:
        line = lines[i]
        i += 1
        if not line:
            continue
        spec = get(line)
        if spec is None:
            header = line.rstrip()
            spec = get(header)
            if spec is None:
                if len(header) > 2 and header[0] == "%" and header[-1] == "%":
                    # An unknown section: skip its body.
                    try:
                        i = index("", i) + 1
                    except ValueError:
                        i = n
                continue
            line = header
        key, kind = spec
        if kind == LIST:
            try:
                end = index("", i)
            except ValueError:
                end = n
            values = lines[i:end]
            i = end + 1
            old = out.get(key)
            if isinstance(old, list):
                old.extend(values)
            else:
                out[key] = values
            continue
        if i >= n:
            raise AlpmError(code, f"{origin}: {line} on line {i} has no value")
        value = lines[i]
        i += 1
        if kind == SINGLE:
            out[key] = value
        elif len(value) < 19 and value.isdigit() and value.isascii():
            out[key] = int(value)  # the common case, in range of every C type used
        elif kind == SIZE:
            out[key] = alpm_size(value)
        elif kind == DATE:
            out[key] = alpm_date(value)
        else:
            out[key] = c_atoi(value)
    return out


_OFF_T_MAX = 2**63
_ULLONG_MAX = 2**64 - 1
_C_DIGITS = frozenset("0123456789")


def alpm_size(value: str) -> int:
    """A size as libalpm's ``_alpm_strtoofft`` reads it: bare decimal digits, else -1.

    No sign, no blanks, nothing after the digits; more than ``ULLONG_MAX`` is -1
    and what does not fit a signed ``off_t`` wraps, as the C cast does.
    """
    if not value or not _C_DIGITS.issuperset(value):
        return -1
    number = int(value)
    if number > _ULLONG_MAX:
        return -1
    return number - 2 * _OFF_T_MAX if number >= _OFF_T_MAX else number


def _strtoll_prefix(value: str) -> tuple[int | None, str]:
    """C ``strtoll`` base 10: the number at the start (after blanks and a sign) and the rest."""
    text = value.lstrip(_C_SPACE)
    sign = ""
    if text[:1] in ("+", "-"):
        sign, text = text[0], text[1:]
    digits = len(text) - len(text.lstrip("0123456789"))
    if not digits:
        return None, value
    return int(sign + text[:digits]), text[digits:]


def alpm_date(value: str) -> int:
    """A date as libalpm's ``_alpm_parsedate`` reads it (as pacman 6 does): the number, else 0.

    Leading blanks and a sign are allowed; anything after the digits, no digits
    at all (an empty value) or an overflow of ``long long`` read as 0.
    """
    number, rest = _strtoll_prefix(value)
    if number is None or rest or not -_OFF_T_MAX <= number < _OFF_T_MAX:
        return 0
    return number


def c_atoi(value: str) -> int:
    """C ``atoi``: the number at the start (after blanks and a sign), 0 when there is none."""
    number, _rest = _strtoll_prefix(value)
    return 0 if number is None else number


def strict_int(value: str, what: str, origin: str, code: ErrorCode) -> int:
    """A decimal integer as C's ``strtoll`` would take it whole; anything else raises.

    Python's ``int()`` alone would also take ``1_000``, spaces and non-ASCII digits.
    """
    digits = value[1:] if value[:1] in ("-", "+") else value
    if digits.isdigit() and digits.isascii():
        return int(value)
    raise AlpmError(code, f"{origin}: {what} is not a number: {value!r}")


def check_value(value: str, what: str) -> None:
    """Refuse a value a line-based format cannot hold (it would corrupt the entry, or a C
    reader would stop at its NUL)."""
    if "\n" in value or "\0" in value:
        raise AlpmError(ErrorCode.WRONG_ARGS, f"{what} contains a newline or NUL: {value!r}")


def check_items(values: list[str], what: str) -> None:
    """Refuse list items that are empty (they would end the list), span lines or hold a NUL."""
    for value in values:
        if not value or "\n" in value or "\0" in value:
            raise AlpmError(ErrorCode.WRONG_ARGS,
                            f"{what} has an empty, multi-line or NUL item: {value!r}")


#: libalpm's line buffer for ``.PKGINFO`` (512 KiB): a line must be shorter.
PKGINFO_MAX_LINE = 512 * 1024


def pkginfo_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """``(line number, key, value)`` of a ``.PKGINFO``, read as libalpm's ``parse_descfile``.

    The key runs to the first space, which must start ``" = "``; the value is
    everything after it, blanks included, and a carriage return too (libalpm
    strips the newline only: CRLF files give values ending in ``\r``). Empty
    lines and lines starting with ``#`` are skipped, and so is any other line
    (libalpm logs a syntax error and goes on): ``key=value``, ``key =`` or an
    indented key are ignored. A line ends at a NUL (a C string); one of
    :data:`PKGINFO_MAX_LINE` bytes or more raises :class:`AlpmError` (``PKG_INVALID``),
    as libalpm's line buffer refuses it.
    """
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) * 4 >= PKGINFO_MAX_LINE and len(
                line.encode("utf-8", "surrogateescape")) >= PKGINFO_MAX_LINE:
            raise AlpmError(ErrorCode.PKG_INVALID, f".PKGINFO line {number} is longer than "
                                                   f"{PKGINFO_MAX_LINE - 1} bytes")
        if "\0" in line:
            line = line.partition("\0")[0]
        if not line or line[0] == "#":
            continue
        space = line.find(" ")
        if space < 0 or line[space:space + 3] != " = ":
            continue
        yield number, line[:space], line[space + 3:]


def key_value_lines(text: str, origin: str, code: ErrorCode) -> Iterator[tuple[int, str, str]]:
    """``(line number, key, value)`` of makepkg's ``key = value`` files (.BUILDINFO).

    Blank lines and ``#`` comments are skipped; ``key =`` is an empty value; any
    other line, or a key with a space in it, raises ``code`` naming the line.
    """
    for number, raw in enumerate(split_lines(text), 1):
        line = raw.lstrip()
        if not line or line[0] == "#":
            continue
        key, sep, value = line.partition(" = ")
        if not sep:
            if line.endswith(" ="):
                key, value = line[:-2], ""
            else:
                raise AlpmError(code, f"{origin} line {number}: expected 'key = value': {raw!r}")
        if not key or " " in key:
            raise AlpmError(code, f"{origin} line {number}: bad key {key!r}")
        yield number, key, value


_C_SPACE = " \t\n\r\v\f"  # C isspace
_QUOTE_CHARS = "'\""


def wordsplit(text: str) -> list[str]:
    """Split like libalpm's ``wordsplit`` (hook ``Exec``, ``XferCommand``): blanks separate, quotes group.

    A backslash only matters before a quote character (outside quotes: either
    quote; inside quotes: the closing one), which it makes literal; any other
    backslash is kept. An unterminated quote raises ValueError.
    """
    words: list[str] = []
    n = len(text)
    i = 0
    while i < n and text[i] in _C_SPACE:
        i += 1
    while i < n:
        cur: list[str] = []
        while i < n and text[i] not in _C_SPACE:
            c = text[i]
            if c in _QUOTE_CHARS:
                i += 1
                while i < n and text[i] != c:
                    if text[i] == "\\" and i + 1 < n and text[i + 1] == c:
                        i += 1
                    cur.append(text[i])
                    i += 1
                if i >= n:
                    raise ValueError("unterminated quote")
                i += 1
            else:
                if c == "\\" and i + 1 < n and text[i + 1] in _QUOTE_CHARS:
                    i += 1
                cur.append(text[i])
                i += 1
        words.append("".join(cur))
        while i < n and text[i] in _C_SPACE:
            i += 1
    return words
