"""A hostile mirror: whatever it sends, downloads stay bounded and inside the cache."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from alpmd.engine.config import SigCheck, SigLevel, SigPolicy
from alpmd.engine.db.sync import MAX_MEMBER_SIZE, MAX_UNPACKED_FLOOR, UNPACK_RATIO, read_db_archive
from alpmd.engine.download import (
    MAX_DB_DOWNLOAD,
    MAX_SIG_SIZE,
    DownloadSettings,
    fetch_packages,
    refresh_databases,
)
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.testing.mirror import Fault, MirrorServer
from alpmd.testing.repogen import write_sync_db
from tests.download.helpers import cache_listing, make_handle, make_repo, packages, run

pytestmark = pytest.mark.timeout(120)

FAST = DownloadSettings(stall_time=2.0)
DATA = Path(__file__).resolve().parent.parent / "data" / "arch-sync-2022"
OPTIONAL = SigLevel(SigPolicy(SigCheck.OPTIONAL), SigPolicy(SigCheck.NEVER))


def test_endless_package_signature_is_cut_at_pacmans_limit(tmp_path: Path) -> None:
    """pacman reads at most 16 KiB of a ``.sig``; a mirror sending megabytes must not
    fill the cache (nor hand gpg a giant file later)."""
    repo = make_repo(tmp_path, {"alpha": 3000}, write=False)
    files = repo.files()
    (fname,) = repo.blobs
    files[fname + ".sig"] = b"\x89" * (4 << 20)
    caught: list[AlpmError] = []

    async def go() -> None:
        async with MirrorServer(files=files) as m:
            handle = make_handle(tmp_path, repo, [m.url], siglevel=OPTIONAL)
            try:
                await fetch_packages(handle, packages(handle), settings=FAST)
            except AlpmError as exc:
                caught.append(exc)
            cached = cache_listing(handle)
            assert fname + ".sig" not in cached
            assert fname + ".sig.part" not in cached
            assert all(len(data) <= MAX_SIG_SIZE for n, data in cached.items()
                       if ".sig" in n)

    run(go())
    assert MAX_SIG_SIZE == 16 * 1024
    assert caught and caught[0].code is ErrorCode.RETRIEVE
    assert f"{MAX_SIG_SIZE} bytes" in caught[0].message


def _bomb(members: int, size: int) -> bytes:
    """A gzip'd tar of ``members`` files of ``size`` zero bytes (each under the member cap)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=9) as tar:
        for i in range(members):
            info = tarfile.TarInfo(f"bomb-{i}-1/desc")
            info.size = size
            tar.addfile(info, _Zeros(size))
    return out.getvalue()


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, read in pieces (never all in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def test_database_compression_bomb_is_refused_before_filling_memory(tmp_path: Path) -> None:
    """Many members, each under the per-member cap, that unpack far beyond any real
    database (a few hundred KiB becoming 320 MiB): refused by name, not kept."""
    members, size = 10, 32 << 20
    assert size <= MAX_MEMBER_SIZE and members * size > MAX_UNPACKED_FLOOR
    bomb = _bomb(members, size)
    assert len(bomb) * UNPACK_RATIO < members * size
    with pytest.raises(AlpmError) as exc:
        read_db_archive(bomb, "bomb.db")
    assert exc.value.code is ErrorCode.DB_INVALID
    assert "unpacks to more than" in exc.value.message

    repo = make_repo(tmp_path, {"alpha": 10}, write=False)
    files = repo.files()
    files["core.db"] = bomb

    async def go() -> None:
        async with MirrorServer(files=files) as m:
            handle = make_handle(tmp_path, repo, [m.url], install_db=False)
            with pytest.raises(AlpmError) as exc:
                await refresh_databases(handle, settings=FAST)
            assert exc.value.code is ErrorCode.RETRIEVE
            assert "unpacks to more than" in exc.value.message
            assert not (Path(handle.dbpath) / "sync" / "core.db").exists()

    run(go())


def test_real_databases_are_well_inside_the_unpack_budget() -> None:
    """The budget must not refuse real repositories (Arch's 2022 core and extra)."""
    for name in ("core", "extra"):
        data = (DATA / f"{name}.db.tar.gz").read_bytes()
        got = read_db_archive(data, name)
        assert len(got) > 100
        assert sum(len(c) for _, c in got) * 5 < UNPACK_RATIO * len(data)


@pytest.mark.parametrize("where", ["file", "loop"])
def test_database_redirects_to_files_or_in_circles_are_refused(tmp_path: Path,
                                                               where: str) -> None:
    """A mirror's 302 to ``file://`` must not read the host's files (here: a valid
    database, which would otherwise be accepted), and a redirect loop ends."""
    repo = make_repo(tmp_path, {"alpha": 10}, write=False)
    srv = tmp_path / "host"
    srv.mkdir()
    (srv / "core.db").write_bytes(repo.dbfile.read_bytes())

    async def go() -> None:
        async with MirrorServer(files=repo.files()) as m:
            target = f"file://{srv}" if where == "file" else m.url
            m.faults["*core.db"] = Fault(redirect=target)
            handle = make_handle(tmp_path, repo, [m.url], install_db=False)
            with pytest.raises(AlpmError) as exc:
                await refresh_databases(handle, settings=FAST)
            assert exc.value.code is ErrorCode.RETRIEVE
            assert not (Path(handle.dbpath) / "sync" / "core.db").exists()
            assert 1 <= len(m.hits("*core.db")) <= 3 * 11   # at most 10 hops per attempt

    run(go())


def test_endless_database_is_cut_at_pacmans_128_mib(tmp_path: Path) -> None:
    """pacman stops a database download at 128 MiB; a mirror sending more is refused
    (before the file is read into memory to be checked), nothing replaces the old one."""
    repo = make_repo(tmp_path, {"alpha": 10}, write=False)
    files = repo.files()
    files["core.db"] = bytes(MAX_DB_DOWNLOAD + (1 << 20))

    async def go() -> None:
        async with MirrorServer(files=files) as m:
            handle = make_handle(tmp_path, repo, [m.url])
            before = (Path(handle.dbpath) / "sync" / "core.db").read_bytes()
            with pytest.raises(AlpmError) as exc:
                await refresh_databases(handle, force=True, settings=FAST)
            assert exc.value.code is ErrorCode.RETRIEVE
            assert f"{MAX_DB_DOWNLOAD} bytes" in exc.value.message
            assert (Path(handle.dbpath) / "sync" / "core.db").read_bytes() == before

    run(go())
    assert MAX_DB_DOWNLOAD == 128 * 1024 * 1024


def test_absurd_csize_is_a_named_error_not_an_oserror(tmp_path: Path) -> None:
    """A database claiming a 4 EiB package (%CSIZE%) with two mirrors: splitting it
    must not die on the .part's preallocation (EFBIG escaped as a raw OSError)."""
    repo = make_repo(tmp_path, {"alpha": 3000}, write=False)
    repo.metas[0].csize = 1 << 62
    write_sync_db(repo.metas, repo.dbfile)
    caught: list[BaseException] = []

    async def go() -> None:
        async with MirrorServer(files=repo.files()) as m1, \
                MirrorServer(files=repo.files()) as m2:
            handle = make_handle(tmp_path, repo, [m1.url, m2.url])
            try:
                await fetch_packages(handle, packages(handle), settings=FAST)
            except Exception as exc:  # noqa: BLE001 - which kind is the point
                caught.append(exc)
            assert all(len(d) <= 3000 for d in cache_listing(handle).values())

    run(go())
    assert len(caught) == 1 and isinstance(caught[0], AlpmError), caught
    assert caught[0].code is ErrorCode.RETRIEVE
    assert "body ended after 3000 of" in caught[0].message
