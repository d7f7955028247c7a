"""The mtree format: read what bsdtar writes, write what bsdtar writes, and let bsdtar read ours."""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.mtree import MtreeEntry, parse_mtree, write_mtree

from . import bsdtar_mtree, makepkg_package, member, need, run, tree_names

ODD_NAMES = ["a b", "hash#x", "eq=x", "back\\slash", "tab\tx", "ünï", "star*?[", "~tilde"]


@pytest.fixture
def sample_tree(tmp_path: Path) -> Path:
    """A directory with files, subdirectories, symlinks, a hard link and awkward names."""
    root = tmp_path / "tree"
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "empty dir").mkdir()
    (root / ".PKGINFO").write_text("pkgname = x\n")
    (root / "usr/bin/tool").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "usr/bin/tool", 0o755)
    (root / "etc/conf").write_text("a=1\n")
    os.chmod(root / "etc/conf", 0o600)
    os.link(root / "etc/conf", root / "etc/hard")
    (root / "usr/bin/alias").symlink_to("tool")
    (root / "usr/bin/dangling").symlink_to("../nowhere with space")
    for name in ODD_NAMES:
        (root / "usr" / name).write_text(name)
    (root / "usr" / os.fsdecode(b"latin1-\xe9")).write_text("raw byte")
    os.utime(root / "etc/conf", ns=(0, 1_600_000_000_000_000_005))
    return root


def test_reads_bsdtar_output_like_stat(sample_tree: Path) -> None:
    need("bsdtar")
    names = tree_names(sample_tree)
    entries = parse_mtree(bsdtar_mtree(sample_tree, names))
    assert sorted(e.path for e in entries) == sorted(names)
    for entry in entries:
        full = sample_tree / entry.path
        st_ = full.lstat()
        assert entry.mode == stat.S_IMODE(st_.st_mode), entry.path
        assert (entry.uid, entry.gid) == (st_.st_uid, st_.st_gid)
        assert entry.time_ns == st_.st_mtime_ns and entry.time == pytest.approx(st_.st_mtime)
        if stat.S_ISDIR(st_.st_mode):
            assert entry.type == "dir" and entry.size is None and entry.md5 is None
        elif stat.S_ISLNK(st_.st_mode):
            assert entry.type == "link" and entry.link == os.readlink(full)
        else:
            data = full.read_bytes()
            assert entry.type == "file" and entry.size == len(data)
            assert entry.md5 == hashlib.md5(data).hexdigest()
            assert entry.sha256 == hashlib.sha256(data).hexdigest()
    conf = next(e for e in entries if e.path == "etc/conf")
    assert conf.time_ns == 1_600_000_000_000_000_005  # "time=1600000000.5" means 5 ns


def test_writes_what_bsdtar_writes(sample_tree: Path) -> None:
    need("bsdtar")
    names = tree_names(sample_tree)
    text = bsdtar_mtree(sample_tree, names)
    entries = parse_mtree(text)
    assert write_mtree(entries, compress=False) == text
    random.Random(1).shuffle(entries)
    assert write_mtree(entries, compress=False) == text
    # Subsets exercise bsdtar's implied parent directories and its /set choices.
    rng = random.Random(2)
    for _ in range(20):
        subset = rng.sample(names, rng.randint(1, len(names)))
        subset.sort(key=lambda n: n.encode("utf-8", "surrogateescape"))
        expected = bsdtar_mtree(sample_tree, subset)
        assert write_mtree(parse_mtree(expected), compress=False) == expected, subset


def test_bsdtar_reads_what_we_write(sample_tree: Path, tmp_path: Path) -> None:
    need("bsdtar")
    entries = parse_mtree(bsdtar_mtree(sample_tree, tree_names(sample_tree)))
    ours = tmp_path / "ours.mtree"
    ours.write_bytes(write_mtree(entries))
    listed = run(["bsdtar", "-tf", str(ours)], cwd=tmp_path).split(b"\n")[:-1]
    expected = [b"./" + e.path.encode("utf-8", "surrogateescape") for e in entries]
    assert sorted(map(unlisted, listed)) == sorted(expected)


def unlisted(name: bytes) -> bytes:
    """Undo the escaping of ``bsdtar -t`` (C escapes and octal bytes)."""
    simple = {ord("t"): 9, ord("n"): 10, ord("r"): 13, ord("v"): 11, ord("f"): 12,
              ord("a"): 7, ord("b"): 8, ord("\\"): 92}
    out, i = bytearray(), 0
    while i < len(name):
        if name[i] == 92 and name[i + 1] in simple:
            out.append(simple[name[i + 1]])
            i += 2
        elif name[i] == 92:
            out.append(int(name[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(name[i])
            i += 1
    return bytes(out)


def test_reads_makepkg_mtree() -> None:
    pkg = makepkg_package()
    data = member(pkg, ".MTREE")
    assert data[:2] == b"\x1f\x8b"
    entries = {e.path: e for e in parse_mtree(data)}
    assert {".PKGINFO", ".BUILDINFO", "etc", "etc/fmt.conf", "usr/share/fmt/a dir/b#c=d"} <= set(entries)
    assert entries["usr/share/fmt/file"].mode == 0o600
    assert entries["usr/share/fmt/link"].link == "file"
    assert write_mtree(list(entries.values()), compress=False) == gzip.decompress(data)


def test_classic_format_and_escapes() -> None:
    text = b"""#mtree
# comment
/set type=file uid=0 gid=0 mode=644
usr type=dir mode=755
    bin type=dir mode=755
        sh\\040x mode=755 size=3 \\
            time=5.10
        ..
    a\\sb\\tc\\\\d\\0
    ..
/unset mode
etc type=dir
..
"""
    entries = parse_mtree(text)
    assert [(e.path, e.type, e.mode) for e in entries] == [
        ("usr", "dir", 0o755),
        ("usr/bin", "dir", 0o755),
        ("usr/bin/sh x", "file", 0o755),
        ("usr/a b\tc\\d\0", "file", 0o644),
        ("etc", "dir", None),
    ]
    assert entries[2].size == 3 and entries[2].time_ns == 5_000_000_010


def test_set_unset_and_synonyms() -> None:
    entries = parse_mtree(
        b"#mtree\n/set uid=1 gid=2 mode=700 time=3.0\n./a md5=ab sha256=cd nlink=2 uname=x\n"
        b"/unset all\n./b\n/set uid=9\n/unset uid gid\n./c\n"
    )
    a, b, c = entries
    assert (a.uid, a.gid, a.mode, a.time, a.md5, a.sha256) == (1, 2, 0o700, 3.0, "ab", "cd")
    assert (b.uid, b.mode, b.time, b.type) == (None, None, None, "file")
    assert c.uid is None


@pytest.mark.parametrize(
    "text",
    [b"./a mode=9\n", b"./a mode=\n", b"./a uid=x\n", b"./a size=-\n", b"./a type=weird\n",
     b"./a time=1.x\n", b"./a time=.5\n", b"./a md5=\xff\n", b"/bogus x\n", b"./a size\n",
     b"\x1f\x8bnot gzip", gzip.compress(b"./a size=1_0\n")],
)
def test_invalid(text: bytes) -> None:
    with pytest.raises(AlpmError) as info:
        parse_mtree(text)
    assert info.value.code is ErrorCode.PKG_INVALID


def test_empty() -> None:
    assert parse_mtree(b"") == [] and parse_mtree(gzip.compress(b"#mtree\n")) == []
    assert write_mtree([], compress=False) == b""
    assert parse_mtree(write_mtree([])) == []


# -- properties -----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.lists(st.sampled_from([
    b"#mtree", b"/set type=dir mode=755", b"/unset all", b"./a", b"b type=dir", b"..", b"c \\",
    b"./d time=1.2 size=3 link=x\\040y", b"./e\\0 uid=1 gid=2", b"/set uid=-1",
]) | st.binary(max_size=20)).map(b"\n".join))
def test_any_bytes_parse_or_raise(data: bytes) -> None:
    for blob in (data, gzip.compress(data)):
        try:
            entries = parse_mtree(blob)
        except AlpmError as exc:
            assert exc.code is ErrorCode.PKG_INVALID
        else:
            assert all(isinstance(e, MtreeEntry) for e in entries)


# Names are text (lone surrogates cannot be written; undecodable bytes are covered elsewhere).
segment = st.text(st.characters(exclude_characters="/\0", exclude_categories=("Cs",)),
                  min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))
optional = st.none() | st.integers(0, 2**31)
times = st.none() | st.builds(lambda s, n: s + n / 1e9, st.integers(0, 2**33), st.integers(0, 999_999_999))


@st.composite
def manifests(draw: st.DrawFn) -> list[MtreeEntry]:
    """Consistent trees: unique paths, parents (if listed) are directories."""
    paths = draw(st.lists(st.lists(segment, min_size=1, max_size=3).map("/".join),
                          unique=True, max_size=12))
    parents = {p.rsplit("/", 1)[0] for p in paths if "/" in p}
    prefixes = {"/".join(p.split("/")[:i]) for p in parents for i in range(1, p.count("/") + 2)}
    uid, gid, mode = (draw(st.booleans()) for _ in range(3))
    entries = []
    for path in paths:
        kind = "dir" if path in prefixes else draw(st.sampled_from(["file", "dir", "link"]))
        entry = MtreeEntry(
            path=path, type=kind, time=draw(times),
            mode=draw(st.integers(0, 0o7777)) if mode else draw(st.none() | st.integers(0, 0o7777)),
            uid=draw(st.integers(0, 2**31)) if uid else draw(optional),
            gid=draw(st.integers(0, 2**31)) if gid else draw(optional),
        )
        if kind == "file":
            entry.size = draw(optional)
            entry.md5 = draw(st.none() | st.text("0123456789abcdef", min_size=32, max_size=32))
            entry.sha256 = draw(st.none() | st.text("0123456789abcdef", min_size=64, max_size=64))
        elif kind == "link":
            entry.link = draw(st.none() | st.text(st.characters(exclude_categories=("Cs",)),
                                                  min_size=1, max_size=10))
        entries.append(entry)
    return entries


@settings(max_examples=150, deadline=None)
@given(manifests(), st.booleans())
def test_round_trip(entries: list[MtreeEntry], compress: bool) -> None:
    data = write_mtree(entries, compress=compress)
    back = parse_mtree(data)
    assert {e.path: e for e in back} == {e.path: e for e in entries}
    assert write_mtree(back, compress=compress) == data
