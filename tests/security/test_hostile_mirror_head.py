"""A hostile mirror that answers a request's status line and then drips header bytes: the
read timeout starts again at every byte, so only a bound on the whole head ends it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from alpmd.engine.download import DownloadSettings, fetch_packages, refresh_databases
from alpmd.engine.errors import AlpmError, ErrorCode
from tests.download.helpers import make_handle, make_repo, packages, run

pytestmark = pytest.mark.timeout(120)

FAST = DownloadSettings(stall_time=2.0, connect_timeout=2.0)
BOUND = 60.0  # the test's own hang guard (the head's bound is 4 s here)


async def _dripping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An HTTP server sending one header byte every 0.3 s, for ever."""
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while True:
            for byte in b"X-Drip: a\r\n":
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.3)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@pytest.mark.parametrize("what", ["database", "package"])
def test_a_mirror_dripping_headers_is_given_up(tmp_path: Path, what: str) -> None:
    """Before: a refresh (or a package download) waited for ever (the test's guard fired);
    the daemon's refresh on its timer held the writer queue with it."""
    repo = make_repo(tmp_path, {"alpha": 100}, write=False)

    async def go() -> AlpmError:
        server = await asyncio.start_server(_dripping, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            handle = make_handle(tmp_path, repo, [f"http://127.0.0.1:{port}"],
                                 install_db=what == "package")
            with pytest.raises(AlpmError) as exc:
                if what == "database":
                    await refresh_databases(handle, settings=FAST)
                else:
                    await fetch_packages(handle, packages(handle), settings=FAST)
            return exc.value
        finally:
            server.close()
    err = run(go(), BOUND)
    assert err.code is ErrorCode.RETRIEVE
    assert "no answer (status and headers) within 4 s" in err.message, err.message
