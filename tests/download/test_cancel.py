"""Cancellation mid-download: prompt, a clear error, nothing under a final name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from alpmd.engine.download import DownloadProgress, DownloadSettings, fetch_packages
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.testing.mirror import MirrorServer

from .helpers import (
    assert_clean_cache,
    cache_listing,
    make_handle,
    make_repo,
    packages,
    run,
)

pytestmark = pytest.mark.timeout(60)

SETTINGS = DownloadSettings(split_min_size=256 << 10, min_steal=32 << 10)


@pytest.mark.parametrize("mirrors", [1, 2], ids=["single", "split"])
def test_cancel_event_stops_transfers(tmp_path: Path, mirrors: int) -> None:
    repo = make_repo(tmp_path, {"big": 1 << 20, "small": 40_000})
    cancel = asyncio.Event()

    def progress(p: DownloadProgress) -> None:
        if p.overall_done > 100_000:
            cancel.set()

    async def go() -> None:
        servers = [MirrorServer(files=repo.files(), rate=300_000) for _ in range(mirrors)]
        for s in servers:
            await s.start()
        try:
            handle = make_handle(tmp_path, repo, [s.url for s in servers])
            with pytest.raises(AlpmError) as err:
                await fetch_packages(handle, packages(handle), progress=progress,
                                     cancel=cancel, settings=SETTINGS)
            assert err.value.code is ErrorCode.CANCELLED
            # nothing under its final name unless complete and verified; .part are prefixes
            assert_clean_cache(handle, repo)
            assert not [n for n in cache_listing(handle) if n.startswith("big") and
                        not n.endswith(".part")]
            # and a later run resumes from the .part and completes
            parts = {n: len(d) for n, d in cache_listing(handle).items() if n.endswith(".part")}
            seen = [len(s.requests) for s in servers]
            for s in servers:
                s.rate = None
            got = await fetch_packages(handle, packages(handle), settings=SETTINGS)
            assert set(got) == {"big", "small"}
            assert_clean_cache(handle, repo)
            later = [r for s, n in zip(servers, seen, strict=True) for r in s.requests[n:]]
            for name, size in parts.items():
                if size:
                    starts = [int(r.range[6:].split("-")[0]) for r in later
                              if r.path == name[:-5] and r.range]
                    assert min(starts) == size      # nothing before the prefix fetched again
        finally:
            for s in servers:
                await s.close()

    run(go())


def test_task_cancellation(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"big": 1 << 20})

    async def go() -> None:
        async with MirrorServer(files=repo.files(), rate=200_000) as m:
            handle = make_handle(tmp_path, repo, [m.url])
            task = asyncio.ensure_future(fetch_packages(handle, packages(handle)))
            while m.bytes_sent < 50_000:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert_clean_cache(handle, repo)
            assert all(n.endswith(".part") for n in cache_listing(handle))

    run(go())
