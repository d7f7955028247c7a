"""A hostile mirror: whatever it sends, downloads stay bounded and inside the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpmd.engine.config import SigCheck, SigLevel, SigPolicy
from alpmd.engine.download import (
    MAX_SIG_SIZE,
    DownloadSettings,
    fetch_packages,
)
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.testing.mirror import MirrorServer
from tests.download.helpers import cache_listing, make_handle, make_repo, packages, run

pytestmark = pytest.mark.timeout(120)

FAST = DownloadSettings(stall_time=2.0)
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

