"""POSIX extended regular expressions as libalpm uses them (``regcomp`` with
``REG_EXTENDED | REG_ICASE | REG_NOSUB | REG_NEWLINE``).

pacman's searches (``-Ss``, ``-Qs``, ``-Fx``) take POSIX EREs, whose syntax
differs from Python's (``c++`` is valid, ``\\d`` is a literal ``d``,
``[[:alpha:]]`` is a class). Validity is decided by the C library itself, so
a pattern is refused exactly when pacman refuses it; matching uses a Python
translation when one is safe (fast, and able to scan a whole blob of lines at
once) and the C library otherwise.

Neither ``re`` nor the C library can be stopped once a match started, and both
take exponential (or huge polynomial) time on patterns such as ``(a|aa)+!``;
even ``regcomp`` of ``(.{1,1000}){1,1000}`` takes seconds. A *bounded* regex
(``compile_posix(p, bounded=True)``, for callers that serve other people, such
as the daemon) therefore refuses patterns whose compiled size would be too
large before the C library sees them, and matches with the ``regex`` module,
whose matcher checks a deadline as it runs; a search past its deadline raises
``AlpmError(PATTERN_TOO_COSTLY)``.
"""

from __future__ import annotations

import functools
import re
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence

from alpmd import TYPE_CHECKING
from alpmd.engine.errors import AlpmError, ErrorCode

if TYPE_CHECKING:
    import ctypes
    from typing import Any

__all__ = ["MAX_BOUNDED_LENGTH", "MAX_BOUNDED_SIZE", "PosixRegex", "c_compile", "compile_posix",
           "is_literal"]

#: A bounded pattern longer than this is refused (searches are a few words).
MAX_BOUNDED_LENGTH = 1024
#: A bounded pattern whose repetitions expand to more atoms than this is refused
#: before ``regcomp`` (which expands ``{m,n}`` and takes seconds past ~10^6 atoms).
MAX_BOUNDED_SIZE = 20_000

_REG_EXTENDED = 1
_REG_ICASE = 2
_REG_NEWLINE = 4
_REG_NOSUB = 8


@functools.cache
def _c_regex() -> tuple[Callable[..., int], Callable[..., int], Callable[..., None]] | None:
    """libc's ``(regcomp, regexec, regfree)``, bound on first use (None without them).

    Bound late: ctypes and the binding cost a few milliseconds of a command's
    start-up, and a search for a plain word never needs the C library.
    """
    import ctypes

    try:
        try:  # glibc's soname first: find_library runs an ``ldconfig -p`` subprocess
            libc = ctypes.CDLL("libc.so.6")
        except OSError:
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c"))
        regcomp = libc.regcomp
        regcomp.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        regcomp.restype = ctypes.c_int
        regexec = libc.regexec
        regexec.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p,
                            ctypes.c_int]
        regexec.restype = ctypes.c_int
        regfree = libc.regfree
        regfree.argtypes = [ctypes.c_void_p]
        regfree.restype = None
    except (OSError, AttributeError):  # pragma: no cover - every glibc/musl has these
        return None
    return regcomp, regexec, regfree


_REGEX_T_SIZE = 256

#: str.translate table lowering ASCII letters only (keeps every offset; the C locale's
#: REG_ICASE folds ASCII only too).
ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}  # larger than regex_t on every libc we know (64 bytes on glibc)

_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": " \\t\\r\\f\\v\\n", "blank": " \\t", "punct": "!-/:-@\\[-`{-~",
    "xdigit": "0-9A-Fa-f", "cntrl": "\\x00-\\x1f\\x7f", "print": " -~", "graph": "!-~",
}


#: GNU escapes of glibc's regcomp (C locale) in the ``regex`` module's spelling.
_GNU_ESCAPES = {"w": "[0-9A-Za-z_]", "W": "[^0-9A-Za-z_\\n]", "s": "[ \\t\\r\\f\\v\\n]",
                "S": "[^ \\t\\r\\f\\v\\n]", "b": "\\b", "B": "\\B", "<": "\\m",
                ">": "\\M", "`": "\\A", "'": "\\Z"}


def _translate(pattern: str, *, gnu: bool = False) -> str | None:
    """A Python pattern with the same meaning on one line of text, or None when unsure.

    With ``gnu`` the result is for the ``regex`` module, and GNU escapes,
    back references and stacked repeats (``a**`` is ``(a*)*``) are translated too.
    """
    out: list[str] = []
    groups: list[int] = []  # where each open group starts in ``out``
    atom = 0                # where the last atom starts in ``out``
    repeated = False        # whether the last token was a repetition
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c in "*+?{" and repeated:
            if not gnu:
                return None  # stacked repeats: Python reads them as lazy or possessive
            out.insert(atom, "(?:")
            out.append(")")
        repeated = c in "*+?{"
        if c == "\\":
            if i + 1 >= n:
                return None
            nxt = pattern[i + 1]
            atom = len(out)
            if nxt in ".[]()*+?{}|^$\\/-":
                out.append("\\" + nxt)
            elif gnu and nxt in _GNU_ESCAPES:
                out.append(_GNU_ESCAPES[nxt])
            elif gnu and nxt in "123456789":
                out.append("\\" + nxt)
            elif nxt.isalnum() or nxt in "<>`'":
                # other GNU escapes; glibc's \d under REG_ICASE matches nothing at all
                return None  # GNU escapes (\w, \<, \b...): leave them to the C library
            else:
                out.append(re.escape(nxt))
            i += 2
            continue
        if c == "[":
            atom = len(out)
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
        if c == "(":
            groups.append(len(out))
        elif c == ")":
            if not groups:
                return None
            atom = groups.pop()
        elif c not in "*+?|^$":
            atom = len(out)
        if c in ".*+?()|^$":
            out.append(c)
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _expanded_size(pattern: str) -> int:
    """How many atoms ``pattern`` becomes once ``{m,n}`` repetitions are expanded.

    An over-estimate good enough to refuse what would make ``regcomp`` slow:
    every atom counts 1, a group its contents, a repetition multiplies the atom
    before it by its largest count (or its lower bound plus one when open).
    """
    stack: list[int] = [0]      # size of the open groups' contents
    last = 0                    # size of the last atom
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            last = 1
            stack[-1] += 1
            i += 2
            continue
        if c == "[":
            j = pattern.find("]", i + 2)
            last = 1
            stack[-1] += 1
            i = n if j < 0 else j + 1
            continue
        if c == "(":
            stack.append(0)
        elif c == ")":
            last = stack.pop() if len(stack) > 1 else 0
            stack[-1] += last
        elif c == "{":
            m = re.match(r"\{(\d*)(,(\d*))?\}", pattern[i:])
            if m is not None:
                low = int(m.group(1) or 0)
                high = int(m.group(3)) if m.group(3) else (low if m.group(2) is None
                                                          else low + 1)
                grown = last * max(low, high, 1)
                stack[-1] += grown - last
                last = grown
                i += len(m.group(0))
                continue
            last = 1
            stack[-1] += 1
        elif c not in "*+?|^$":
            last = 1
            stack[-1] += 1
        i += 1
    return sum(stack)


def _too_costly(pattern: str, why: str) -> AlpmError:
    return AlpmError(ErrorCode.PATTERN_TOO_COSTLY,
                     f"regular expression '{pattern}' {why}", pattern=pattern)


def _remaining(deadline: float | None, pattern: str) -> float | None:
    """Seconds left before ``deadline`` (a ``time.monotonic()`` value); raises when none."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise _too_costly(pattern, "is too costly to match (time limit reached)")
    return left


class PosixRegex:
    """One compiled POSIX ERE; matches a string anywhere, case-insensitively, line by line.

    ``bounded``: refuse patterns too large to compile quickly and match with a
    matcher that honours a deadline (see the module documentation).
    """

    def __init__(self, pattern: str, *, bounded: bool = False) -> None:
        self.pattern = pattern
        self.bounded = bounded
        self._c: ctypes.Array[ctypes.c_char] | None = None
        if bounded:
            if len(pattern) > MAX_BOUNDED_LENGTH:
                raise _too_costly(pattern[:40] + "...", f"is longer than {MAX_BOUNDED_LENGTH} "
                                  "characters")
            if _expanded_size(pattern) > MAX_BOUNDED_SIZE:
                raise _too_costly(pattern, "repeats too much to be matched")
        # An ASCII word without ERE syntax is valid for every regcomp and is matched in
        # Python: only other patterns need the C library (to validate them, as pacman).
        if not (pattern.isascii() and is_literal(pattern)):
            self._c = c_compile(pattern)
        self.py: re.Pattern[str] | None = None
        #: The same pattern for ASCII-lowercased text, without IGNORECASE (much faster).
        self.lower: re.Pattern[str] | None = None
        #: The ``regex`` module's patterns of a bounded regex (that module is untyped).
        self._rx: Any = None
        self._rx_lower: Any = None
        text = _translate(pattern)
        lowerable = text is not None and pattern.isascii() \
            and not re.search(r"\[[^\]]*[A-Z]", pattern)
        if bounded:
            self._compile_bounded(text if lowerable else None)
            self.matches_empty = self.search("")
            return
        if text is not None:
            try:
                self.py = re.compile(text, re.IGNORECASE | re.MULTILINE)
            except (re.error, OverflowError):
                self.py = None
        if self.py is not None and text is not None and lowerable:
            try:
                self.lower = re.compile(text.translate(ASCII_LOWER), re.MULTILINE)
            except (re.error, OverflowError):
                self.lower = None
        if self.py is None and self._c is None:
            raise AlpmError(ErrorCode.INVALID_REGEX, f"invalid regular expression '{pattern}'",
                            pattern=pattern)
        #: Whether the pattern can match an empty string (a blob scan would then stall).
        self.matches_empty = self.py is not None and self.py.search("") is not None

    def _compile_bounded(self, lower_text: str | None) -> None:
        # imported here: tens of milliseconds that a command's unbounded search never needs
        import regex as _bounded_re

        text = _translate(self.pattern, gnu=True)
        flags = _bounded_re.IGNORECASE | _bounded_re.MULTILINE | _bounded_re.VERSION0
        try:
            if text is None:
                raise ValueError(self.pattern)
            self._rx = _bounded_re.compile(text, flags)
            if lower_text is not None:
                self._rx_lower = _bounded_re.compile(lower_text.translate(ASCII_LOWER),
                                                     _bounded_re.MULTILINE | _bounded_re.VERSION0)
        except (ValueError, OverflowError, _bounded_re.error) as exc:
            raise _too_costly(self.pattern, "uses syntax a bounded search does not support"
                              ) from exc

    def __del__(self) -> None:
        c_regex = _c_regex() if self._c is not None else None
        if c_regex is not None:
            c_regex[2](self._c)
            self._c = None

    def search(self, text: str, deadline: float | None = None) -> bool:
        """Whether the pattern matches anywhere in ``text``.

        ``deadline`` (``time.monotonic()``) bounds a bounded regex's work:
        ``AlpmError(PATTERN_TOO_COSTLY)`` when it passes.
        """
        if self.bounded:
            return self._timed(self._rx, text, 0, deadline) is not None
        if self.py is not None:
            return self.py.search(text) is not None
        c_regex = _c_regex()
        assert self._c is not None and c_regex is not None
        rc = c_regex[1](self._c, text.encode("utf-8", "surrogateescape"), 0, None, 0)
        return rc == 0

    def _timed(self, rx: Any, text: str, pos: int, deadline: float | None) -> int | None:
        """Where ``rx`` first matches ``text`` from ``pos`` (None: nowhere), by the deadline."""
        try:
            m = rx.search(text, pos, timeout=_remaining(deadline, self.pattern),
                          concurrent=True)
        except TimeoutError as exc:
            raise _too_costly(self.pattern, "is too costly to match (time limit reached)"
                              ) from exc
        return None if m is None else int(m.start())

    def matching_lines(self, blob: str, starts: Sequence[int],
                       deadline: float | None = None) -> Iterable[int]:
        """Indices of the lines of ``blob`` (``"\\n"``-joined, line ``k`` at ``starts[k]``)
        that match; in increasing order, each once."""
        return self.matching_groups(blob, None, starts, list(range(len(starts))),
                                    [*starts[1:], len(blob) + 1], deadline)

    def matching_groups(self, blob: str, lower_blob: str | None, starts: Sequence[int],
                        group: Sequence[int], next_group_start: Sequence[int],
                        deadline: float | None = None) -> list[int]:
        """Groups of lines (one group per package) with a matching line, each once.

        ``group[k]`` is line ``k``'s group and ``next_group_start[g]`` the offset of
        the first line after group ``g``; ``lower_blob`` is ``blob`` through
        :data:`ASCII_LOWER` (used with the faster case-sensitive pattern).
        ``deadline`` as for :meth:`search`.
        """
        found: list[int] = []
        if (self.py is None and not self.bounded) or self.matches_empty:
            for k, line in enumerate(blob.split("\n")):
                g = group[k]
                if (not found or found[-1] != g) and self.search(line, deadline):
                    found.append(g)
            return found
        pos = 0
        if self.bounded:
            rx = self._rx_lower if self._rx_lower is not None and lower_blob is not None \
                else self._rx
            subject = lower_blob if rx is self._rx_lower and lower_blob is not None else blob
            end = len(subject)
            while pos <= end:
                at = self._timed(rx, subject, pos, deadline)
                if at is None:
                    break
                g = group[bisect_right(starts, at) - 1]
                found.append(g)
                pos = next_group_start[g]
            return found
        assert self.py is not None
        if self.lower is not None and lower_blob is not None:
            search = self.lower.search
            text = lower_blob
        else:
            search = self.py.search
            text = blob
        end = len(text)
        while pos <= end:
            m = search(text, pos)
            if m is None:
                break
            g = group[bisect_right(starts, m.start()) - 1]
            found.append(g)
            pos = next_group_start[g]
        return found


#: Characters with a meaning in an ERE; a pattern without any is a literal word.
REGEX_SYNTAX = frozenset("\\.[]()*+?{}|^$")


def c_compile(pattern: str) -> ctypes.Array[ctypes.c_char] | None:
    """``pattern`` compiled by libc's ``regcomp`` as libalpm compiles it (None without
    libc); ``AlpmError(INVALID_REGEX)`` when the C library refuses it."""
    c_regex = _c_regex()
    if c_regex is None:  # pragma: no cover - every glibc/musl has regcomp
        return None
    import ctypes

    regcomp, _, regfree = c_regex
    buf = ctypes.create_string_buffer(_REGEX_T_SIZE)
    flags = _REG_EXTENDED | _REG_ICASE | _REG_NOSUB | _REG_NEWLINE
    if regcomp(buf, pattern.encode("utf-8", "surrogateescape"), flags) != 0:
        regfree(buf)
        raise AlpmError(ErrorCode.INVALID_REGEX, f"invalid regular expression '{pattern}'",
                        pattern=pattern)
    return buf


def is_literal(pattern: str) -> bool:
    """Whether ``pattern`` has no regex syntax: matching it is a substring search, linear
    in the text whatever the pattern (a server may run it without a deadline)."""
    return not REGEX_SYNTAX.intersection(pattern)


def compile_posix(pattern: str, *, bounded: bool = False) -> PosixRegex:
    """Compile ``pattern``; ``AlpmError(INVALID_REGEX)`` when the C library refuses it.

    ``bounded``: for searches that must end by a deadline (a daemon serving
    anyone); ``AlpmError(PATTERN_TOO_COSTLY)`` for a pattern that cannot be.
    """
    return PosixRegex(pattern, bounded=bounded)
