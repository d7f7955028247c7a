"""POSIX extended regular expressions as libalpm uses them (``regcomp`` with
``REG_EXTENDED | REG_ICASE | REG_NOSUB | REG_NEWLINE``).

pacman's searches (``-Ss``, ``-Qs``, ``-Fx``) take POSIX EREs, whose syntax
differs from Python's (``c++`` is valid, ``\\d`` is a literal ``d``,
``[[:alpha:]]`` is a class). Validity is decided by the C library itself, so
a pattern is refused exactly when pacman refuses it; matching uses a Python
translation when one is safe (fast, and able to scan a whole blob of lines at
once) and the C library otherwise.
"""

from __future__ import annotations

import ctypes
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence

from alpmd.engine.errors import AlpmError, ErrorCode

__all__ = ["PosixRegex", "compile_posix"]

_REG_EXTENDED = 1
_REG_ICASE = 2
_REG_NEWLINE = 4
_REG_NOSUB = 8

_libc: ctypes.CDLL | None
try:
    try:  # glibc's soname first: find_library runs an ``ldconfig -p`` subprocess
        _libc = ctypes.CDLL("libc.so.6")
    except OSError:
        import ctypes.util

        _libc = ctypes.CDLL(ctypes.util.find_library("c"))
    _regcomp = _libc.regcomp
    _regcomp.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    _regcomp.restype = ctypes.c_int
    _regexec = _libc.regexec
    _regexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                         ctypes.c_int]
    _regexec.restype = ctypes.c_int
    _regfree = _libc.regfree
    _regfree.argtypes = [ctypes.c_void_p]
    _regfree.restype = None
except (OSError, AttributeError):  # pragma: no cover - every glibc/musl has these
    _libc = None

_REGEX_T_SIZE = 256

#: str.translate table lowering ASCII letters only (keeps every offset; the C locale's
#: REG_ICASE folds ASCII only too).
ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}  # larger than regex_t on every libc we know (64 bytes on glibc)

_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": " \\t\\r\\f\\v\\n", "blank": " \\t", "punct": "!-/:-@\\[-`{-~",
    "xdigit": "0-9A-Fa-f", "cntrl": "\\x00-\\x1f\\x7f", "print": " -~", "graph": "!-~",
}


def _translate(pattern: str) -> str | None:
    """A Python pattern with the same meaning on one line of text, or None when unsure."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                return None
            nxt = pattern[i + 1]
            if nxt in ".[]()*+?{}|^$\\/-":
                out.append("\\" + nxt)
            elif nxt.isalnum() or nxt in "<>`'":
                return None  # GNU escapes (\w, \<, \b...): leave them to the C library
            else:
                out.append(re.escape(nxt))
            i += 2
            continue
        if c == "[":
            j = i + 1
            negate = False
            if j < n and pattern[j] == "^":
                negate = True
                j += 1
            items: list[str] = []
            first = True
            while j < n and (first or pattern[j] != "]"):
                first = False
                if pattern.startswith("[:", j):
                    end = pattern.find(":]", j + 2)
                    if end < 0:
                        return None
                    cls = _CLASSES.get(pattern[j + 2:end])
                    if cls is None:
                        return None
                    items.append(cls)
                    j = end + 2
                    continue
                if pattern.startswith("[=", j) or pattern.startswith("[.", j):
                    return None
                ch = pattern[j]
                items.append("\\" + ch if ch in "\\[]^" else ch)
                j += 1
            if j >= n:
                return None
            body = "".join(items)
            out.append(f"[^{body}\\n]" if negate else f"[{body}]")
            i = j + 1
            continue
        if c == "{":
            m = re.match(r"\{(\d+)(,(\d*))?\}", pattern[i:])
            if m is None:
                return None
            out.append(m.group(0))
            i += len(m.group(0))
            continue
        if c in "*+?" and i > 0 and pattern[i - 1] in "*+?}":
            return None  # stacked repeats: Python reads them as lazy or possessive
        if c in ".*+?()|^$":
            out.append(c)
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


class PosixRegex:
    """One compiled POSIX ERE; matches a string anywhere, case-insensitively, line by line."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._c: ctypes.Array[ctypes.c_char] | None = None
        if _libc is not None:
            buf = ctypes.create_string_buffer(_REGEX_T_SIZE)
            flags = _REG_EXTENDED | _REG_ICASE | _REG_NOSUB | _REG_NEWLINE
            if _regcomp(buf, pattern.encode("utf-8", "surrogateescape"), flags) != 0:
                _regfree(buf)
                raise AlpmError(ErrorCode.INVALID_REGEX,
                                f"invalid regular expression '{pattern}'", pattern=pattern)
            self._c = buf
        self.py: re.Pattern[str] | None = None
        #: The same pattern for ASCII-lowercased text, without IGNORECASE (much faster).
        self.lower: re.Pattern[str] | None = None
        text = _translate(pattern)
        if text is not None:
            try:
                self.py = re.compile(text, re.IGNORECASE | re.MULTILINE)
            except (re.error, OverflowError):
                self.py = None
        if self.py is not None and text is not None and pattern.isascii() \
                and not re.search(r"\[[^\]]*[A-Z]", pattern):
            try:
                self.lower = re.compile(text.translate(ASCII_LOWER), re.MULTILINE)
            except (re.error, OverflowError):
                self.lower = None
        if self.py is None and self._c is None:
            raise AlpmError(ErrorCode.INVALID_REGEX, f"invalid regular expression '{pattern}'",
                            pattern=pattern)
        #: Whether the pattern can match an empty string (a blob scan would then stall).
        self.matches_empty = self.py is not None and self.py.search("") is not None

    def __del__(self) -> None:
        if self._c is not None and _libc is not None:
            _regfree(self._c)
            self._c = None

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in ``text``."""
        if self.py is not None:
            return self.py.search(text) is not None
        assert self._c is not None
        rc: int = _regexec(self._c, text.encode("utf-8", "surrogateescape"), 0, None, 0)
        return rc == 0

    def matching_lines(self, blob: str, starts: Sequence[int]) -> Iterable[int]:
        """Indices of the lines of ``blob`` (``"\\n"``-joined, line ``k`` at ``starts[k]``)
        that match; in increasing order, each once."""
        return self.matching_groups(blob, None, starts, list(range(len(starts))),
                                    [*starts[1:], len(blob) + 1])

    def matching_groups(self, blob: str, lower_blob: str | None, starts: Sequence[int],
                        group: Sequence[int], next_group_start: Sequence[int]) -> list[int]:
        """Groups of lines (one group per package) with a matching line, each once.

        ``group[k]`` is line ``k``'s group and ``next_group_start[g]`` the offset of
        the first line after group ``g``; ``lower_blob`` is ``blob`` through
        :data:`ASCII_LOWER` (used with the faster case-sensitive pattern).
        """
        if self.py is None or self.matches_empty:
            found: list[int] = []
            for k, line in enumerate(blob.split("\n")):
                g = group[k]
                if (not found or found[-1] != g) and self.search(line):
                    found.append(g)
            return found
        if self.lower is not None and lower_blob is not None:
            search = self.lower.search
            text = lower_blob
        else:
            search = self.py.search
            text = blob
        found = []
        pos = 0
        end = len(text)
        while pos <= end:
            m = search(text, pos)
            if m is None:
                break
            g = group[bisect_right(starts, m.start()) - 1]
            found.append(g)
            pos = next_group_start[g]
        return found


def compile_posix(pattern: str) -> PosixRegex:
    """Compile ``pattern``; ``AlpmError(INVALID_REGEX)`` when the C library refuses it."""
    return PosixRegex(pattern)
