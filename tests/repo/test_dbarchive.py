"""The chunked database writer: incremental writes equal full writes, unchanged chunks are
copied, and every tool reads the concatenated members as one archive."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from alpmd.engine.db.sync import read_db_archive
from alpmd.engine.repo.dbarchive import (
    CHUNK,
    Chunk,
    Entry,
    key,
    write_db_archive,
    write_db_incremental,
)
from alpmd.testing.oracle import PacmanRoot

from .conftest import need


def _entry(name: str, version: str) -> Entry:
    d = f"{name}-{version}"
    desc = f"%NAME%\n{name}\n\n%VERSION%\n{version}\n\n%DESC%\n{'x' * (len(name) * 7)}\n\n"
    return d, 1700000000, [("desc", desc.encode())]


def _load(entries: dict[str, Entry]):  # type: ignore[no-untyped-def]
    def load(lo: str | None, hi: str | None) -> list[Entry]:
        return [e for d, e in sorted(entries.items(), key=lambda kv: key(kv[0]))
                if (lo is None or key(d) >= key(lo)) and (hi is None or key(d) < key(hi))]
    return load


@pytest.mark.parametrize("compression", ["gz", "zst", "xz", "bz2", "none"])
def test_incremental_writes_equal_full_writes(tmp_path: Path, compression: str) -> None:
    rng = random.Random(compression)
    entries = {}
    for i in range(CHUNK * 6):
        name = f"pkg{rng.randrange(10**6):06d}{rng.choice(['', '-lib', '+x', '_y'])}"
        e = _entry(name, f"{rng.randrange(1, 9)}.{i}-1")
        entries[e[0]] = e
    path = tmp_path / "a.db"
    chunks = write_db_archive(str(path), compression, _load(entries)(None, None))
    assert len(chunks) == 6
    for step in range(12):
        changed: set[str] = set()
        for d in rng.sample(sorted(entries), rng.randrange(0, 4)):
            del entries[d]
            changed.add(d)
        for _ in range(rng.randrange(0, 30 if step % 4 == 0 else 3)):
            e = _entry(f"new{rng.randrange(10**6):06d}", "1.0-1")
            entries[e[0]] = e
            changed.add(e[0])
        new = tmp_path / f"b{step}.db"
        old_bytes = path.read_bytes()
        index = write_db_incremental(str(new), compression, str(path), chunks, changed,
                                     _load(entries))
        data = new.read_bytes()
        got = [n for n, _ in read_db_archive(data, str(new))]
        assert got == [f"{d}/desc" for d in sorted(entries, key=key)]
        assert sum(c.count for c in index) == len(entries)
        # every chunk whose range saw no change is the old compressed bytes, verbatim
        old = {c.first: c for c in chunks}
        reused = [c for c in index if c.first in old and old[c.first].count == c.count
                  and data[c.offset:c.offset + c.length]
                  == old_bytes[old[c.first].offset:old[c.first].offset + c.length]]
        assert len(reused) >= len(index) - max(1, len(changed)) - 1
        path, chunks = new, index


@pytest.mark.oracle
@pytest.mark.parametrize("compression,test", [("gz", ["gzip", "-t"]), ("zst", ["zstd", "-qt"]),
                                              ("xz", ["xz", "-t"]), ("bz2", ["bzip2", "-t"])])
def test_tools_and_pacman_read_a_chunked_database(tmp_path: Path, compression: str,
                                                  test: list[str]) -> None:
    need(test[0], "bsdtar")
    entries = {}
    for i in range(CHUNK * 3 + 5):
        e = _entry(f"p{i:04d}", "1.0-1")
        entries[e[0]] = e
    path = tmp_path / f"extra.db.tar.{compression}"
    chunks = write_db_archive(str(path), compression, _load(entries)(None, None))
    assert len(chunks) == 4
    assert subprocess.run([*test, str(path)]).returncode == 0
    listing = subprocess.run(["bsdtar", "-tf", str(path)], capture_output=True, text=True)
    assert listing.returncode == 0
    assert len(listing.stdout.splitlines()) == 2 * len(entries)
    root = PacmanRoot(tmp_path / "root")
    root.add_repo("extra", path)
    sl = root.pacman("-Sl")
    assert sl.returncode == 0, sl.stderr
    assert len(sl.stdout.splitlines()) == len(entries)
    assert sl.stdout.splitlines()[CHUNK] == f"extra p{CHUNK:04d} 1.0-1"


def test_a_chunk_index_longer_than_the_file_is_refused(tmp_path: Path) -> None:
    from alpmd.engine.errors import AlpmError, ErrorCode

    e = _entry("a", "1-1")
    path = tmp_path / "a.db"
    write_db_archive(str(path), "gz", [e])
    with pytest.raises(AlpmError) as info:
        write_db_incremental(str(tmp_path / "b.db"), "gz", str(path),
                             [Chunk("a-1-1", 0, 10**6, 1), Chunk("z-1", 10**6, 10, 1)],
                             {"z-1"}, _load({"a-1": e}))
    assert info.value.code is ErrorCode.DB_INVALID


@pytest.mark.parametrize("name", ["foo-1.0-1/", "foo-1.0-1/desc", "a" * 100, "a" * 101,
                                  "naïve-1-1/desc"])
def test_tar_headers_are_tarfiles(name: str) -> None:
    """The fast ustar headers are byte for byte what tarfile writes (pax beyond ustar)."""
    import tarfile

    from alpmd.engine.repo.dbarchive import _header

    kind = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.mtime = kind, 77, 0o644, 1700000000
    info.uname = info.gname = "root"
    assert _header(name, kind, 77, 0o644, 1700000000) == info.tobuf(
        tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
