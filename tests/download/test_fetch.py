"""Package downloads against real aiohttp mirrors on 127.0.0.1 with injected faults."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from alpmd.engine.download import (
    DownloadDone,
    DownloadProgress,
    DownloadRetry,
    DownloadSettings,
    MirrorDisabled,
    RangeFallback,
    fetch_packages,
    find_cached,
)
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import Event
from alpmd.testing.mirror import Fault, MirrorServer

from .helpers import (
    assert_clean_cache,
    cache_listing,
    make_handle,
    make_repo,
    packages,
    run,
)

pytestmark = pytest.mark.timeout(60)

FAST = DownloadSettings(stall_time=1.0, split_min_size=256 << 10, min_steal=32 << 10)
SIZES = {"alpha": 30_000, "beta": 120_000, "gamma": 5_000, "delta": 64_000, "eps": 1}


def fetch_all(handle, *, events=None, progress=None, settings=FAST, names=None, cancel=None):
    return fetch_packages(handle, packages(handle, names), settings=settings,
                          event=events.append if events is not None else None,
                          progress=progress, cancel=cancel)


def test_fetch_from_one_mirror(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, SIZES, write=False)
    seen: list[DownloadProgress] = []
    events: list[Event] = []

    async def go() -> dict[str, str]:
        async with MirrorServer(files=repo.files()) as m:
            handle = make_handle(tmp_path, repo, [m.url])
            got = await fetch_all(handle, events=events, progress=seen.append)
            assert len(m.requests) == len(SIZES)           # one request per file, no more
            return got

    got = run(go())
    assert sorted(got) == sorted(SIZES)
    for path in got.values():
        assert Path(path).read_bytes() == repo.blobs[Path(path).name]
    assert len([e for e in events if isinstance(e, DownloadDone)]) == len(SIZES)
    finals = [p for p in seen if p.finished]
    assert len(finals) == len(SIZES)
    assert finals[-1].overall_done == finals[-1].overall_total == sum(SIZES.values())
    assert finals[-1].files_done == len(SIZES)


def test_cached_files_are_not_fetched_again(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, SIZES, write=False)

    async def go() -> None:
        async with MirrorServer(files=repo.files()) as m:
            handle = make_handle(tmp_path, repo, [m.url])
            await fetch_all(handle)
            n = len(m.requests)
            again = await fetch_all(handle)
            assert len(m.requests) == n
            for pkg in packages(handle):
                assert find_cached(handle, pkg) == again[pkg.name]

    run(go())


@pytest.mark.parametrize("fault", [
    Fault(status=404), Fault(status=500), Fault(reset_after=10_000), Fault(short_by=7),
    Fault(extra=b"x" * 100), Fault(corrupt=True), Fault(stall_after=1000),
    Fault(stall_after=100, drip=0.05),
], ids=["404", "500", "reset", "short", "long", "corrupt", "stall", "drip"])
def test_bad_first_mirror_the_next_one_wins(tmp_path: Path, fault: Fault) -> None:
    repo = make_repo(tmp_path, {"beta": 120_000})
    settings = DownloadSettings(stall_time=1.0, stall_rate=1000)
    events: list[Event] = []

    async def go() -> None:
        async with MirrorServer(files=repo.files(), faults={"*.pkg.tar.zst": fault}) as bad, \
                MirrorServer(files=repo.files()) as good:
            handle = make_handle(tmp_path, repo, [bad.url, good.url])
            got = await fetch_all(handle, events=events, settings=settings)
            assert Path(got["beta"]).read_bytes() == repo.blobs[Path(got["beta"]).name]
            assert len(good.requests) == 1
            assert_clean_cache(handle, repo)
            assert not any(n.endswith(".part") for n in cache_listing(handle))

    run(go())
    retries = [e for e in events if isinstance(e, DownloadRetry)]
    assert len(retries) == 1 and retries[0].next_mirror is not None
    assert retries[0].mirror.startswith("http://127.0.0.1:")


def test_body_longer_than_announced_still_yields_the_right_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"alpha": 30_000, "beta": 50_000})

    async def go() -> None:
        fault = Fault(extra=b"garbage" * 10, extra_mode="raw")
        async with MirrorServer(files=repo.files(), faults={"alpha*": fault}) as m, \
                MirrorServer(files=repo.files()) as good:
            handle = make_handle(tmp_path, repo, [m.url, good.url], parallel=1)
            await fetch_all(handle)
            assert_clean_cache(handle, repo)
            assert len(cache_listing(handle)) == 2

    run(go())


def test_every_mirror_fails_names_each(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"alpha": 30_000})

    async def go() -> None:
        async with MirrorServer(files=repo.files(), faults={"*.zst": Fault(status=500)}) as a, \
                MirrorServer(files=repo.files(), faults={"*.zst": Fault(corrupt=True)}) as b:
            handle = make_handle(tmp_path, repo, [a.url, b.url])
            with pytest.raises(AlpmError) as err:
                await fetch_all(handle)
            assert err.value.code is ErrorCode.RETRIEVE
            assert a.url in err.value.message and b.url in err.value.message
            assert "HTTP 500" in err.value.message and "checksum" in err.value.message
            assert cache_listing(handle) == {}

    run(go())


def test_redirect_is_followed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, SIZES)

    async def go() -> None:
        async with MirrorServer(files=repo.files()) as target:
            async with MirrorServer(faults={"*": Fault(redirect=target.url)}) as m:
                handle = make_handle(tmp_path, repo, [m.url])
                await fetch_all(handle)
                assert len(target.requests) == len(SIZES)
                assert_clean_cache(handle, repo)
                assert len(cache_listing(handle)) == len(SIZES)

    run(go())


def test_failing_mirror_is_skipped_after_repeated_errors(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, SIZES)
    events: list[Event] = []

    async def go() -> None:
        async with MirrorServer(faults={"*": Fault(status=500)}) as bad, \
                MirrorServer(files=repo.files()) as good:
            handle = make_handle(tmp_path, repo, [bad.url, good.url], parallel=1)
            await fetch_all(handle, events=events)
            assert len(bad.requests) == FAST.mirror_error_limit
            assert len(good.requests) == len(SIZES)

    run(go())
    assert [e for e in events if isinstance(e, MirrorDisabled)][0].errors == 3


def test_cache_server_first_and_its_failures_do_not_count(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, SIZES)
    events: list[Event] = []
    settings = DownloadSettings(stall_time=1.0, mirror_error_limit=1)

    async def go() -> None:
        half = dict(list(repo.files().items())[:2])
        async with MirrorServer(files=half, faults={"beta*": Fault(status=500)}) as cache, \
                MirrorServer(files=repo.files()) as mirror:
            handle = make_handle(tmp_path, repo, [mirror.url], cache_servers=[cache.url])
            await fetch_all(handle, events=events, settings=settings)
            served_by_cache = {r.path for r in cache.requests if r.status == 200}
            assert served_by_cache
            assert not served_by_cache & {r.path for r in mirror.requests}
            assert len(cache.requests) == len(SIZES)      # asked first for every file
            assert_clean_cache(handle, repo)
            assert len(cache_listing(handle)) == len(SIZES)

    run(go())
    assert not [e for e in events if isinstance(e, MirrorDisabled)]
    # a 404 on a cache server is not even reported
    assert all("404" not in e.reason for e in events if isinstance(e, DownloadRetry))


def test_large_file_split_across_mirrors(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"big": 3 << 20})
    events: list[Event] = []

    async def go() -> None:
        servers = [MirrorServer(files=repo.files(), rate=2_000_000) for _ in range(3)]
        for s in servers:
            await s.start()
        try:
            handle = make_handle(tmp_path, repo, [s.url for s in servers])
            got = await fetch_all(handle, events=events)
            assert Path(got["big"]).read_bytes() == repo.blobs[Path(got["big"]).name]
            for s in servers:       # every mirror contributed ranges
                assert s.bytes_sent > 0 and all(r.range for r in s.requests)
        finally:
            for s in servers:
                await s.close()

    run(go())
    done = [e for e in events if isinstance(e, DownloadDone)]
    assert len(done[0].mirrors) == 3


def test_split_moves_work_from_a_slow_mirror(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"big": 2 << 20})

    async def go() -> None:
        async with MirrorServer(files=repo.files(), rate=150_000) as slow, \
                MirrorServer(files=repo.files(), rate=8_000_000) as fast:
            handle = make_handle(tmp_path, repo, [slow.url, fast.url])
            await fetch_all(handle)
            assert fast.bytes_sent > 4 * slow.bytes_sent
            assert_clean_cache(handle, repo)

    run(go())


def test_split_falls_back_when_a_mirror_ignores_range(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"big": 1 << 20})
    events: list[Event] = []

    async def go() -> None:
        async with MirrorServer(files=repo.files(), ranges=False) as a, \
                MirrorServer(files=repo.files(), rate=3_000_000) as b:
            handle = make_handle(tmp_path, repo, [a.url, b.url])
            await fetch_all(handle, events=events)
            assert_clean_cache(handle, repo)
            assert len(cache_listing(handle)) == 1

    run(go())
    assert [e for e in events if isinstance(e, RangeFallback)]


def test_split_with_a_corrupting_mirror_blames_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"big": 1 << 20})
    events: list[Event] = []

    async def go() -> None:
        async with MirrorServer(files=repo.files(), faults={"*": Fault(corrupt=True)}) as bad, \
                MirrorServer(files=repo.files()) as good:
            handle = make_handle(tmp_path, repo, [bad.url, good.url])
            await fetch_all(handle, events=events)
            assert_clean_cache(handle, repo)
            assert len(cache_listing(handle)) == 1

    run(go())
    blamed = [e.mirror for e in events if isinstance(e, DownloadRetry)]
    assert blamed and all(":" in b for b in blamed)


def test_partial_file_is_resumed(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"beta": 120_000})
    name = next(iter(repo.blobs))

    async def go() -> None:
        async with MirrorServer(files=repo.files()) as m:
            handle = make_handle(tmp_path, repo, [m.url])
            cache = Path(handle.options.cachedirs[0])
            cache.mkdir(parents=True)
            (cache / f"{name}.part").write_bytes(repo.blobs[name][:50_000])
            await fetch_all(handle)
            assert [r.range for r in m.requests] == ["bytes=50000-"]
            assert m.bytes_sent == 70_000
            assert (cache / name).read_bytes() == repo.blobs[name]
            assert not (cache / f"{name}.part").exists()

    run(go())


def test_resume_against_a_mirror_without_range_restarts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"beta": 120_000})
    name = next(iter(repo.blobs))

    async def go() -> None:
        async with MirrorServer(files=repo.files(), ranges=False) as m:
            handle = make_handle(tmp_path, repo, [m.url])
            cache = Path(handle.options.cachedirs[0])
            cache.mkdir(parents=True)
            (cache / f"{name}.part").write_bytes(b"\0" * 50_000)   # not even a valid prefix
            await fetch_all(handle)
            assert (cache / name).read_bytes() == repo.blobs[name]

    run(go())


def test_file_servers(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, SIZES)
    handle = make_handle(tmp_path, repo, [f"file://{tmp_path}/nowhere", f"file://{repo.srv}"])
    run(fetch_all(handle))
    assert_clean_cache(handle, repo)
    assert len(cache_listing(handle)) == len(SIZES)


def test_xfer_command(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, SIZES)
    script = ("import sys, urllib.request; "
              "open(sys.argv[2], 'wb').write(urllib.request.urlopen(sys.argv[1]).read())")
    xfer = f"{sys.executable} -c \"{script}\" %u %o"

    async def go() -> None:
        async with MirrorServer(files=repo.files()) as m:
            await asyncio.to_thread(lambda: None)
            handle = make_handle(tmp_path, repo, [m.url], xfer_command=xfer)
            await fetch_all(handle)
            assert len(m.requests) == len(SIZES)
            assert_clean_cache(handle, repo)
            assert len(cache_listing(handle)) == len(SIZES)

    run(go())
