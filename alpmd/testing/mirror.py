"""A package mirror on 127.0.0.1 with injectable faults, for tests, benchmarks and ``make run``.

:class:`MirrorServer` serves files from a directory and/or an in-memory dict over
HTTP/1.1 with what real mirrors do (Range, ETag, Last-Modified, 304) and what
broken ones do (:class:`Fault`: an error status, a reset or truncated body,
extra or wrong bytes, a stall, a redirect, Range ignored), plus bandwidth caps
per connection and per mirror and a per-request latency. Every request is
recorded (:attr:`MirrorServer.requests`) so a test can bound and check traffic.

It runs inside a test's event loop (``async with MirrorServer(...)``), in a
background thread for synchronous callers such as the real pacman
(:meth:`MirrorServer.threaded`), or as a process::

    python -m alpmd.testing.mirror DIR [--port N] [--rate B/s] [--total-rate B/s] [--latency s]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import fnmatch
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from aiohttp import web

__all__ = ["Fault", "MirrorServer", "RequestRecord"]

CHUNK = 64 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class Fault:
    """What goes wrong when a matching file is requested (first ``times`` requests, or all)."""

    status: int | None = None            # answer with this status and a short body
    reset_after: int | None = None       # abort the connection after this many body bytes
    short_by: int = 0                    # announce the full length, send this many bytes less
    extra: bytes = b""                   # bytes appended to the body
    #: "chunked": the extra bytes are part of the (chunked) body; "raw": the announced
    #: Content-Length is the true size and the extra bytes follow it on the wire
    extra_mode: Literal["chunked", "raw"] = "chunked"
    corrupt: bool = False                # flip one byte in every 4 KiB
    stall_after: int | None = None       # send this many bytes, then nothing (connection open)
    drip: float | None = None            # after stall_after bytes, one byte every `drip` s
    redirect: str | None = None          # 302 to this base URL + the path
    redirect_url: str | None = None      # 302 to exactly this URL
    disposition: str | None = None       # Content-Disposition: attachment; filename="..."
    no_range: bool = False               # ignore Range (always 200 with the whole file)
    latency: float = 0.0                 # extra delay before the answer
    times: int | None = None             # apply only this many times

    def use(self) -> bool:
        if self.times is None:
            return True
        if self.times <= 0:
            return False
        self.times -= 1
        return True


@dataclass
class RequestRecord:
    """One request as the mirror saw it."""

    path: str
    method: str
    range: str | None
    status: int
    sent: int = 0
    conditional: bool = False


class _Throttle:
    """A shared bandwidth cap: each write reserves its slot on one virtual timeline."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.next = 0.0

    async def take(self, n: int) -> None:
        now = time.monotonic()
        start = max(now, self.next)
        self.next = start + n / self.rate
        delay = self.next - now
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class MirrorServer:
    """An HTTP mirror on 127.0.0.1 (an ephemeral port unless ``port`` is given)."""

    root: Path | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    rate: float | None = None            # bytes/s per connection
    total_rate: float | None = None      # bytes/s for the whole mirror
    latency: float = 0.0                 # seconds before every answer
    etag: bool = True
    last_modified: bool = True
    ranges: bool = True
    port: int = 0
    faults: dict[str, Fault] = field(default_factory=dict)   # fnmatch pattern on the path
    requests: list[RequestRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None     # created on start (needs a loop)
        self._mtimes: dict[str, float] = {}
        self._throttle = _Throttle(self.total_rate) if self.total_rate else None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bytes_sent = 0

    # -- life cycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> MirrorServer:
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_route("GET", "/{path:.*}", self._handle)
        app.router.add_route("HEAD", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5,
                                     handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None and getattr(server, "sockets", None)
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def close(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> MirrorServer:
        return await self.start()

    async def __aexit__(self, t: type[BaseException] | None, v: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @contextlib.contextmanager
    def threaded(self) -> Iterator[MirrorServer]:
        """Serve from a background thread (for synchronous callers, e.g. pacman)."""
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        thread = threading.Thread(target=run, name="mirror", daemon=True)
        thread.start()
        if not started.wait(10):
            raise RuntimeError("mirror did not start")
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    # -- content ------------------------------------------------------------------------

    def put(self, path: str, data: bytes) -> None:
        """Serve ``data`` at ``/path`` (in memory; wins over a file of the same name)."""
        self.files[path.lstrip("/")] = data
        self._mtimes[path.lstrip("/")] = time.time()

    def _lookup(self, path: str) -> tuple[bytes | Path, int, float] | None:
        if path in self.files:
            data = self.files[path]
            return data, len(data), self._mtimes.setdefault(path, time.time())
        if self.root is None:
            return None
        full = (self.root / path).resolve()
        root = self.root.resolve()
        if root not in full.parents or not full.is_file():
            return None
        st = full.stat()
        return full, st.st_size, st.st_mtime

    def _fault(self, path: str) -> Fault | None:
        for pattern, fault in self.faults.items():
            if fnmatch.fnmatchcase(path, pattern) and fault.use():
                return fault
        return None

    def hits(self, pattern: str = "*") -> list[RequestRecord]:
        """The recorded requests whose path matches ``pattern``."""
        return [r for r in self.requests if fnmatch.fnmatchcase(r.path, pattern)]

    # -- serving ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        rng = request.headers.get("Range")
        cond = "If-None-Match" in request.headers or "If-Modified-Since" in request.headers
        rec = RequestRecord(path, request.method, rng, 0, conditional=cond)
        self.requests.append(rec)
        fault = self._fault(path)
        delay = self.latency + (fault.latency if fault else 0.0)
        if delay:
            await asyncio.sleep(delay)
        if fault and fault.redirect:
            rec.status = 302
            raise web.HTTPFound(fault.redirect.rstrip("/") + "/" + path)
        if fault and fault.redirect_url:
            rec.status = 302
            raise web.HTTPFound(fault.redirect_url)
        if fault and fault.status:
            rec.status = fault.status
            return web.Response(status=fault.status, text=f"injected {fault.status}\n")
        found = self._lookup(path)
        if found is None:
            rec.status = 404
            return web.Response(status=404, text="not found\n")
        source, size, mtime = found
        headers: dict[str, str] = {}
        etag = f'"{size:x}-{int(mtime * 1e6):x}"'
        if self.etag:
            headers["ETag"] = etag
        if self.last_modified:
            headers["Last-Modified"] = email.utils.formatdate(mtime, usegmt=True)
        if self._not_modified(request, etag, mtime):
            rec.status = 304
            return web.Response(status=304, headers=headers)
        start, end = 0, size
        status = 200
        use_range = self.ranges and not (fault and fault.no_range)
        if rng and use_range:
            m = _RANGE.match(rng.strip())
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(size, int(m.group(2)) + 1) if m.group(2) else size
                else:
                    start = max(0, size - int(m.group(2)))
                if start >= size or start >= end:
                    rec.status = 416
                    return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        if self.ranges:
            headers["Accept-Ranges"] = "bytes"
        if fault and fault.disposition:
            headers["Content-Disposition"] = f'attachment; filename="{fault.disposition}"'
        rec.status = status
        resp = web.StreamResponse(status=status, headers=headers)
        extra = fault.extra if fault else b""
        if not (extra and fault and fault.extra_mode == "chunked"):
            resp.content_length = end - start
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp
        await self._send(request, resp, source, start, end, fault, rec)
        if extra and fault and fault.extra_mode == "raw" and request.transport is not None:
            await resp.write_eof()
            request.transport.write(extra)
            return resp
        if extra and fault is not None:
            await resp.write(extra)
        return resp

    def _not_modified(self, request: web.Request, etag: str, mtime: float) -> bool:
        inm = request.headers.get("If-None-Match")
        if inm is not None and self.etag:
            return etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        ims = request.headers.get("If-Modified-Since")
        if ims and self.last_modified:
            try:
                when = email.utils.parsedate_to_datetime(ims).timestamp()
            except (TypeError, ValueError):
                return False
            return int(mtime) <= int(when)
        return False

    async def _send(self, request: web.Request, resp: web.StreamResponse, source: bytes | Path,
                    start: int, end: int, fault: Fault | None, rec: RequestRecord) -> None:
        limit = end
        if fault and fault.short_by:
            limit = max(start, end - fault.short_by)
        cut = fault.reset_after if fault and fault.reset_after is not None else None
        stall = fault.stall_after if fault and fault.stall_after is not None else None
        chunk = CHUNK
        if self.rate:
            chunk = max(1024, min(CHUNK, int(self.rate / 20)))
        t0 = time.monotonic()
        pos = start
        fh = open(source, "rb") if isinstance(source, Path) else None  # noqa: SIM115
        try:
            while pos < limit:
                n = min(chunk, limit - pos)
                if cut is not None:
                    n = min(n, max(0, start + cut - pos))
                if stall is not None and pos >= start + stall and fault and fault.drip:
                    n = 1                                  # a trickle of real bytes
                    await asyncio.sleep(fault.drip)
                elif stall is not None:
                    n = min(n, max(0, start + stall - pos))
                if n == 0:
                    if cut is not None and pos >= start + cut:
                        break
                    await self._stall(resp, fault)
                    return
                if fh is not None:
                    fh.seek(pos)
                    data = fh.read(n)
                else:
                    assert isinstance(source, bytes)
                    data = source[pos:pos + n]
                if fault and fault.corrupt:
                    data = bytes(b ^ 0xFF if (pos + i) % 4096 == 0 else b
                                 for i, b in enumerate(data))
                if self._throttle is not None:
                    await self._throttle.take(len(data))
                await resp.write(data)
                pos += len(data)
                rec.sent += len(data)
                self.bytes_sent += len(data)
                if self.rate:
                    ahead = (pos - start) / self.rate - (time.monotonic() - t0)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        finally:
            if fh is not None:
                fh.close()
        if pos < end and request.transport is not None:   # reset or short body
            request.transport.abort()
            raise asyncio.CancelledError

    async def _stall(self, resp: web.StreamResponse, fault: Fault | None) -> None:
        assert self._closing is not None
        await self._closing.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alpmd.testing.mirror", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--rate", type=float, default=None, help="bytes/s per connection")
    ap.add_argument("--total-rate", type=float, default=None, help="bytes/s for the mirror")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = ap.parse_args(argv)

    async def serve() -> None:
        server = MirrorServer(args.root, rate=args.rate, total_rate=args.total_rate,
                              latency=args.latency, port=args.port)
        await server.start()
        print(server.url, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
