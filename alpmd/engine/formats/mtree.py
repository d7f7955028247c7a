"""The mtree manifest of a package (``.MTREE``, and ``mtree`` in the local database).

makepkg writes it with ``bsdtar --format=mtree`` and the keywords type, uid,
gid, mode, time, size, md5, sha256 and link, using ``/set`` lines for the
common values, then gzips it.  :func:`write_mtree` reproduces bsdtar's text
byte for byte (its ``/set`` choices included); :func:`parse_mtree` reads it as
libarchive does, classic relative paths and ``..`` included.

Two libarchive conventions matter: names are escaped as ``\\ooo`` octal bytes,
and ``time=S.N`` means S seconds plus N *nanoseconds* (N is not a decimal
fraction: bsdtar writes 5 ns as ``S.5``).  Paths are decoded from UTF-8 with
``surrogateescape`` so that any byte sequence survives a round trip.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

from alpmd.engine.errors import AlpmError, ErrorCode

#: The types mtree knows; packages hold the first three.
TYPES = frozenset({"file", "dir", "link", "block", "char", "fifo", "socket"})

#: Refuse manifests that inflate beyond this (a damaged or hostile archive).
MAX_TEXT = 256 * 1024 * 1024


@dataclass
class MtreeEntry:
    """One manifest line: ``path`` relative to the root, without ``./``, unescaped."""

    path: str
    type: str = "file"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: int | None = None
    time: float | None = None
    md5: str | None = None
    sha256: str | None = None
    link: str | None = None
    #: The exact time in nanoseconds when read from a manifest (a float cannot hold
    #: it); used on writing as long as ``time`` still matches it.
    time_ns: int | None = field(default=None, compare=False, repr=False)


# -- reading --------------------------------------------------------------------------

_CODE = ErrorCode.PKG_INVALID
_SIMPLE_ESCAPES = {
    ord("a"): 7, ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13,
    ord("s"): 32, ord("t"): 9, ord("v"): 11, ord("\\"): 92,
}
_OCTAL = frozenset(b"01234567")


def _unescape(raw: bytes) -> str:
    """Undo mtree escaping (``\\ooo`` and the C-like letters) the way libarchive does."""
    if b"\\" not in raw:
        return raw.decode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        c = raw[i]
        i += 1
        if c == 92 and i < n:
            nxt = raw[i]
            if nxt == 48 and (i + 1 >= n or raw[i + 1] not in _OCTAL):
                c = 0
                i += 1
            elif 48 <= nxt <= 51 and i + 2 < n and raw[i + 1] in _OCTAL and raw[i + 2] in _OCTAL:
                c = ((nxt - 48) << 6) | ((raw[i + 1] - 48) << 3) | (raw[i + 2] - 48)
                i += 3
            elif nxt in _SIMPLE_ESCAPES:
                c = _SIMPLE_ESCAPES[nxt]
                i += 1
        out.append(c)
    return bytes(out).decode("utf-8", "surrogateescape")


def _number(value: bytes, key: str, line: int, base: int = 10) -> int:
    digits = value[1:] if value[:1] == b"-" else value
    ok = digits and (all(d in _OCTAL for d in digits) if base == 8 else digits.isdigit())
    if not ok:
        raise AlpmError(_CODE, f"mtree line {line}: bad {key} value {value!r}")
    return int(value, base)


def _time(value: bytes, line: int) -> int:
    """``S.N`` as nanoseconds (libarchive: N counts nanoseconds, capped below one second)."""
    seconds, dot, nanos = value.partition(b".")
    sec = _number(seconds, "time", line)
    if not dot:
        return sec * 1_000_000_000
    if not nanos.isdigit():
        raise AlpmError(_CODE, f"mtree line {line}: bad time value {value!r}")
    return sec * 1_000_000_000 + min(int(nanos), 999_999_999)


def _ns_to_float(ns: int) -> float:
    sec, nsec = divmod(ns, 1_000_000_000)
    return sec + nsec / 1e9


def _ascii(value: bytes, key: str, line: int) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise AlpmError(_CODE, f"mtree line {line}: bad {key} value {value!r}") from None


_KEYWORDS = {
    b"type": "type", b"uid": "uid", b"gid": "gid", b"mode": "mode", b"size": "size",
    b"time": "time", b"md5": "md5", b"md5digest": "md5", b"sha256": "sha256",
    b"sha256digest": "sha256", b"link": "link",
}


def _keyword(token: bytes, line: int) -> tuple[str, Any] | None:
    """One ``key=value`` token as (MtreeEntry field, value); ``None`` for keywords we skip."""
    key, eq, value = token.partition(b"=")
    attr = _KEYWORDS.get(key)
    if attr is None:
        return None
    if not eq:
        raise AlpmError(_CODE, f"mtree line {line}: keyword {key.decode()} needs a value")
    if attr == "type":
        kind = value.decode("ascii", "replace")
        if kind not in TYPES:
            raise AlpmError(_CODE, f"mtree line {line}: unknown type {kind!r}")
        return attr, kind
    if attr == "mode":
        return attr, _number(value, "mode", line, 8) & 0o7777
    if attr in ("uid", "gid", "size"):
        return attr, _number(value, attr, line)
    if attr == "time":
        return "time_ns", _time(value, line)
    if attr == "link":
        return attr, _unescape(value)
    return attr, _ascii(value, attr, line)


def _inflate(data: bytes) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            text = f.read(MAX_TEXT + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise AlpmError(_CODE, f"mtree: broken gzip data: {exc}") from None
    if len(text) > MAX_TEXT:
        raise AlpmError(_CODE, "mtree: inflates to more than the allowed size")
    return text


def _lines(text: bytes) -> list[tuple[int, bytes]]:
    """Logical lines with their numbers: a trailing backslash continues a line."""
    out: list[tuple[int, bytes]] = []
    pending = b""
    start = 0
    for number, line in enumerate(text.split(b"\n"), 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not pending:
            start = number
        if line.endswith(b"\\") and not line.endswith(b"\\\\"):
            pending += line[:-1] + b" "
            continue
        out.append((start, pending + line))
        pending = b""
    if pending:
        out.append((start, pending))
    return out


def parse_mtree(data: bytes) -> list[MtreeEntry]:
    """Read an mtree manifest, gzip-compressed or plain, into entries in file order.

    Raises :class:`AlpmError` (``PKG_INVALID``) naming the line for a malformed
    keyword value, an unknown type or directive, or broken compression.
    """
    if data[:2] == b"\x1f\x8b":
        data = _inflate(data)
    defaults: dict[str, Any] = {}
    cwd: list[str] = []
    entries: list[MtreeEntry] = []
    for number, line in _lines(data):
        tokens = line.split()
        if not tokens or tokens[0].startswith(b"#"):
            continue
        head = tokens[0]
        if head == b"/set":
            for token in tokens[1:]:
                kw = _keyword(token, number)
                if kw is not None:
                    defaults[kw[0]] = kw[1]
            continue
        if head == b"/unset":
            for token in tokens[1:]:
                if token == b"all":
                    defaults.clear()
                else:
                    attr = _KEYWORDS.get(token.partition(b"=")[0])
                    if attr is not None:
                        defaults.pop("time_ns" if attr == "time" else attr, None)
            continue
        if head.startswith(b"/"):
            raise AlpmError(_CODE, f"mtree line {number}: unknown directive {head!r}")
        fields = dict(defaults)
        for token in tokens[1:]:
            kw = _keyword(token, number)
            if kw is not None:
                fields[kw[0]] = kw[1]
        name = _unescape(head)
        if "/" in name or name == ".":
            # A full path from the root (what bsdtar writes): "./usr/bin/foo".
            path = name
            while path.startswith("./"):
                path = path[2:]
        elif name == "..":
            # Classic format: back to the parent directory.
            if cwd:
                cwd.pop()
            continue
        else:
            path = "/".join((*cwd, name))
            if fields.get("type", "file") == "dir":
                cwd.append(name)
        fields.setdefault("type", "file")
        if "time_ns" in fields:
            fields["time"] = _ns_to_float(fields["time_ns"])
        entries.append(MtreeEntry(path=path, **fields))
    return entries


# -- writing --------------------------------------------------------------------------

_SAFE = frozenset(range(0x21, 0x7F)) - {0x23, 0x3D, 0x5C}


def _quote(text: str) -> str:
    """Escape like libarchive's mtree writer: every byte but printable ASCII except # = \\."""
    raw = text.encode("utf-8", "surrogateescape")
    if all(b in _SAFE for b in raw):
        return text
    return "".join(chr(b) if b in _SAFE else f"\\{b:03o}" for b in raw)


class _Node:
    """A directory or file in the tree bsdtar builds before writing."""

    __slots__ = ("key", "entry", "children", "is_dir")

    def __init__(self, key: bytes, entry: MtreeEntry | None, is_dir: bool) -> None:
        self.key = key
        self.entry = entry
        self.is_dir = is_dir
        self.children: dict[bytes, _Node] = {}

    def value(self, attr: str) -> int | None:
        if self.entry is None:
            # libarchive's virtual directories: root-owned, mode 755.
            return 0o755 if attr == "mode" else 0
        result: int | None = getattr(self.entry, attr)
        return result


def _tree(entries: list[MtreeEntry]) -> _Node:
    root = _Node(b".", None, True)
    for entry in entries:
        path = entry.path
        while path.startswith("./"):
            path = path[2:]
        if path in ("", "."):
            root.entry = entry
            continue
        node = root
        parts = path.encode("utf-8", "surrogateescape").split(b"/")
        for part in parts[:-1]:
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Node(part, None, True)
            elif not child.is_dir:
                raise AlpmError(ErrorCode.WRONG_ARGS, f"mtree: {entry.path!r} is under a non-directory")
            node = child
        leaf = parts[-1]
        old = node.children.get(leaf)
        is_dir = entry.type == "dir"
        if old is not None and old.children and not is_dir:
            raise AlpmError(ErrorCode.WRONG_ARGS, f"mtree: {entry.path!r} has entries under it")
        if old is not None and is_dir:
            old.entry = entry
            old.is_dir = True
        else:
            node.children[leaf] = _Node(leaf, entry, is_dir)
    return root


def _most_used(children: list[_Node], attr: str) -> tuple[int, int]:
    """libarchive's attr_counter: the (value, count) at the head of its ranking."""
    ranking: list[list[int]] = []  # [value, count], highest count first, ties by arrival
    for child in children:
        value = child.value(attr)
        assert value is not None
        for pos, item in enumerate(ranking):
            if item[0] == value:
                item[1] += 1
                count = item[1]
                dest = pos
                while dest > 0 and ranking[dest - 1][1] < count:
                    dest -= 1
                if dest != pos:
                    ranking.insert(dest, ranking.pop(pos))
                break
        else:
            ranking.append([value, 1])
    return ranking[0][0], ranking[0][1]


class _Writer:
    """bsdtar's mtree writer state: the current ``/set`` values and the output."""

    def __init__(self, managed: tuple[str, ...]) -> None:
        self.managed = managed  # which of uid/gid/mode /set may carry
        self.out: list[str] = ["#mtree\n"]
        self.processing = False
        self.set_keys: set[str] = set()
        self.set_values: dict[str, int] = {}

    def write_global(self, node: _Node) -> None:
        children = sorted(node.children.values(), key=lambda c: c.key)
        chosen: dict[str, int] = {}
        if not self.processing:
            keys = {"type"}
            for attr in self.managed:
                if children:
                    keys.add(attr)
                    chosen[attr] = _most_used(children, attr)[0]
            text = " type=file"
        else:
            keys = {"type", *self.managed}
            text = ""
            for attr in self.managed:
                if not children:
                    continue
                value, count = _most_used(children, attr)
                if attr in self.set_keys and (count < 2 or self.set_values.get(attr) == value):
                    continue
                chosen[attr] = value
        for attr in ("uid", "gid", "mode"):
            if attr in chosen:
                self.set_values[attr] = chosen[attr]
                text += f" mode={chosen[attr]:o}" if attr == "mode" else f" {attr}={chosen[attr]}"
        if text:
            self.out.append(f"/set{text}\n")
        self.set_keys = keys
        self.processing = True

    def write_entry(self, entry: MtreeEntry, name: str) -> None:
        parts = [name]
        add = parts.append
        if entry.time is not None:
            if entry.time_ns is not None and _ns_to_float(entry.time_ns) == entry.time:
                sec, nsec = divmod(entry.time_ns, 1_000_000_000)
            else:
                sec = math.floor(entry.time)
                nsec = round((entry.time - sec) * 1e9)
                if nsec > 999_999_999:
                    sec, nsec = sec + 1, nsec - 1_000_000_000
            add(f" time={sec}.{nsec}")
        for attr in ("mode", "gid", "uid"):
            value = getattr(entry, attr)
            if value is None:
                continue
            if attr in self.set_keys and self.set_values.get(attr, 0) == value:
                continue
            add(f" mode={value:o}" if attr == "mode" else f" {attr}={value}")
        kind = entry.type
        if kind == "file":
            if "type" not in self.set_keys:
                add(" type=file")
            if entry.size is not None:
                add(f" size={entry.size}")
            if entry.md5 is not None:
                add(f" md5digest={entry.md5}")
            if entry.sha256 is not None:
                add(f" sha256digest={entry.sha256}")
        else:
            add(f" type={kind}")
            if kind == "link" and entry.link is not None:
                add(f" link={_quote(entry.link)}")
        add("\n")
        self.out.append("".join(parts))


def write_mtree(entries: list[MtreeEntry], *, compress: bool = True) -> bytes:
    """An mtree manifest as makepkg's bsdtar command writes it, gzipped unless asked not to.

    Entries are written in bsdtar's order (each directory, its files sorted by
    name, then its subdirectories), whatever the order given; a later entry
    for the same path replaces an earlier one.  Parents missing from the list
    are implied, as bsdtar implies them.  No entries give an empty manifest.
    """
    for entry in entries:
        if entry.type not in TYPES:
            raise AlpmError(ErrorCode.WRONG_ARGS, f"mtree: unknown type {entry.type!r}")
        try:
            entry.path.encode("utf-8", "surrogateescape")
            (entry.link or "").encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise AlpmError(ErrorCode.WRONG_ARGS, f"mtree: unencodable name {entry.path!r}") from None
    text = ""
    if entries:
        managed = tuple(
            attr for attr in ("uid", "gid", "mode")
            if all(getattr(e, attr) is not None for e in entries)
        )
        writer = _Writer(managed)
        root = _tree(entries)
        stack = [root]
        while stack:
            node = stack.pop()
            writer.write_global(node)
            children = sorted(node.children.values(), key=lambda c: c.key)
            if node.entry is not None:
                name = "." if node is root else "./" + _quote(_strip(node.entry.path))
                writer.write_entry(node.entry, name)
            for child in children:
                if not child.is_dir:
                    assert child.entry is not None
                    writer.write_entry(child.entry, "./" + _quote(_strip(child.entry.path)))
            stack.extend(reversed([child for child in children if child.is_dir]))
        text = "".join(writer.out)
    raw = text.encode("utf-8", "surrogateescape")
    return gzip.compress(raw, compresslevel=6, mtime=0) if compress else raw


def _strip(path: str) -> str:
    while path.startswith("./"):
        path = path[2:]
    return path
