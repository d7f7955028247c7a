"""Package version comparison with exactly the ordering of libalpm's ``alpm_pkg_vercmp``.

A version is ``[epoch:]pkgver[-pkgrel]``.  Epochs are compared first, then the
pkgver, and the pkgrel only when both sides have one (so a dependency on
``foo=1.0`` accepts ``1.0-3``).  Each part is compared segment by segment in
the rpm style: maximal runs of ASCII digits or ASCII letters, with anything
else acting as a separator.

libalpm works on C strings, so this module does too: text is compared as its
UTF-8 bytes (non-ASCII bytes are separators, and a multi-byte character is a
separator that many bytes long) and a NUL ends the string.  That keeps odd
inputs ordered exactly as pacman orders them, and no input ever raises.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["split_evr", "vercmp"]

# Byte classes, looked up by byte value: cheaper than str methods or a regex,
# and locale independent like libalpm (which never calls setlocale for this).
_SEP, _DIGIT, _ALPHA = 0, 1, 2


def _build_classes() -> bytes:
    table = bytearray(256)
    for c in b"0123456789":
        table[c] = _DIGIT
    for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz":
        table[c] = _ALPHA
    return bytes(table)


_CLASS = _build_classes()
_ZERO = 0x30


def _rpmvercmp(a: bytes, b: bytes) -> int:
    """Order two version fragments segment by segment (rpm's algorithm)."""
    if a == b:
        return 0
    cls = _CLASS
    la = len(a)
    lb = len(b)
    i = j = 0  # scan positions
    ei = ej = 0  # end of the previous segment: separators are measured from here
    while i < la and j < lb:
        while i < la and not cls[a[i]]:
            i += 1
        while j < lb and not cls[b[j]]:
            j += 1
        if i >= la or j >= lb:
            break
        # A longer run of separators makes the version newer.
        sep_a = i - ei
        sep_b = j - ej
        if sep_a != sep_b:
            return -1 if sep_a < sep_b else 1
        # The segment's kind is decided by the left side; the right side takes
        # as many bytes of that kind as it has (possibly none).
        kind = cls[a[i]]
        ei = i + 1
        while ei < la and cls[a[ei]] == kind:
            ei += 1
        ej = j
        while ej < lb and cls[b[ej]] == kind:
            ej += 1
        if ej == j:
            # Numbers are newer than letters.
            return 1 if kind == _DIGIT else -1
        if kind == _DIGIT:
            while i < ei and a[i] == _ZERO:
                i += 1
            while j < ej and b[j] == _ZERO:
                j += 1
            if ei - i != ej - j:
                return 1 if ei - i > ej - j else -1
        seg_a = a[i:ei]
        seg_b = b[j:ej]
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
        i = ei
        j = ej
    if i >= la and j >= lb:
        return 0
    # What is left decides: a leftover letter segment is older than nothing
    # ("1.0a" < "1.0"), anything else that is left over is newer.
    if i >= la:
        return 1 if cls[b[j]] == _ALPHA else -1
    return -1 if cls[a[i]] == _ALPHA else 1


def _to_c(s: str) -> bytes:
    """The bytes libalpm would see for ``s``: UTF-8, cut at the first NUL."""
    try:
        raw = s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = s.encode("utf-8", "surrogatepass")
    nul = raw.find(b"\0")
    return raw if nul < 0 else raw[:nul]


def _split_evr_bytes(v: bytes) -> tuple[bytes, bytes, bytes | None]:
    n = len(v)
    s = 0
    cls = _CLASS
    while s < n and cls[v[s]] == _DIGIT:
        s += 1
    dash = v.rfind(b"-", s)
    if s < n and v[s] == 0x3A:  # ':'
        epoch = v[:s] or b"0"
        start = s + 1
    else:
        epoch = b"0"
        start = 0
    if dash < 0:
        return epoch, v[start:], None
    return epoch, v[start:dash], v[dash + 1 :]


def split_evr(version: str) -> tuple[str, str, str | None]:
    """Split ``[epoch:]pkgver[-pkgrel]`` the way libalpm's parseEVR does.

    The epoch is the leading run of ASCII digits when a ``:`` follows it
    (``"0"`` when absent or empty); the pkgrel is whatever follows the *last*
    ``-`` (``None`` when there is no ``-``).  Nothing is validated.
    """
    n = len(version)
    s = 0
    while s < n and "0" <= version[s] <= "9":
        s += 1
    dash = version.rfind("-", s)
    if s < n and version[s] == ":":
        epoch = version[:s] or "0"
        start = s + 1
    else:
        epoch = "0"
        start = 0
    if dash < 0:
        return epoch, version[start:], None
    return epoch, version[start:dash], version[dash + 1 :]


@lru_cache(maxsize=16384)
def _vercmp_cached(a: str, b: str) -> int:
    ca = _to_c(a)
    cb = _to_c(b)
    if ca == cb:
        return 0
    ea, va, ra = _split_evr_bytes(ca)
    eb, vb, rb = _split_evr_bytes(cb)
    ret = _rpmvercmp(ea, eb)
    if ret == 0:
        ret = _rpmvercmp(va, vb)
        if ret == 0 and ra is not None and rb is not None:
            ret = _rpmvercmp(ra, rb)
    return ret


def vercmp(a: str, b: str) -> int:
    """Compare two package versions: -1 if ``a`` is older, 0 if equal, 1 if newer.

    Same result as pacman's ``vercmp``/``alpm_pkg_vercmp`` for every input.
    Results are memoised in a bounded LRU cache because the resolver compares
    the same few versions over and over.
    """
    if a == b:
        return 0
    return _vercmp_cached(a, b)
