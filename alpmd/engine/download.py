"""Package downloads and database refresh: asyncio + one aiohttp session per run.

What pacman does, and where we go further:

* every repository's ``CacheServer`` list is tried first (a failure there never
  counts against a mirror, a 404 is not even reported), then its ``Server``
  list; a failed transfer moves on to the next mirror, and a mirror that fails
  :attr:`DownloadSettings.mirror_error_limit` times is skipped for the rest of
  the run (pacman 7);
* a transfer that moves less than 1 byte/s for 10 s is an error (pacman's
  low-speed limit) unless ``DisableDownloadTimeout`` is set;
* beyond pacman, a wrong size or checksum is that mirror's error: the bytes are
  deleted and the next mirror is tried; and a large file is fetched in ranges
  from several mirrors at once (idle mirrors take over half of a busy one's
  remaining range, as aria2 does), so a run gets the sum of the mirrors'
  bandwidth; small files go to the least busy mirror;
* a file reaches its final name in the cache only after its size matches
  ``%CSIZE%`` and its SHA-256 the database (temp name + rename). Interrupted
  transfers leave ``<file>.part`` holding a valid prefix, which the next run
  resumes with a Range request; nothing is ever left under the final name;
* databases are refreshed with conditional requests (ETag, If-Modified-Since),
  so an unchanged mirror costs one round trip and nothing is rewritten; a new
  database (and its ``.sig``) replace the old ones atomically (fsync + rename).

``ParallelDownloads`` bounds the files in flight; a split file uses up to
:attr:`DownloadSettings.max_split` connections of its own. Nothing here takes
the database lock: downloads never run while holding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import email.message
import email.utils
import hashlib
import io
import json
import os
import pickle
import pwd
import shutil
import stat
import struct
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import yarl

from alpmd.engine import signing
from alpmd.engine.config import SigCheck, SigLevel, split_xfer_command
from alpmd.engine.db.sync import SyncDatabase, read_db_archive
from alpmd.engine.durable import fsync_dir
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import Event, EventCallback, QuestionCallback
from alpmd.engine.fdcopy import copy_prefix
from alpmd.engine.handle import Handle
from alpmd.engine.package import Package

__all__ = [
    "DatabaseUpToDate",
    "DownloadDone",
    "DownloadProgress",
    "DownloadProgressCallback",
    "DownloadRetry",
    "DownloadSettings",
    "DownloadStarted",
    "MirrorDisabled",
    "RangeFallback",
    "UrlFailure",
    "UrlFetch",
    "download_dir",
    "fetch_packages",
    "fetch_urls",
    "find_cached",
    "url_cached",
    "refresh_databases",
]

_READ = 256 * 1024
#: Most bytes accepted of a file whose size is not known in advance.
MAX_DB_SIZE = 1 << 30
#: pacman's hard limit on a downloaded database (``-Sy``/``-Fy``).
MAX_DB_DOWNLOAD = 128 * 1024 * 1024
#: pacman's cap on a detached signature (a hostile mirror's endless ``.sig`` stops here).
MAX_SIG_SIZE = 16 * 1024


@dataclass
class DownloadSettings:
    """Tunables of a run; the defaults are pacman's where pacman has one."""

    stall_time: float = 10.0          # CURLOPT_LOW_SPEED_TIME
    stall_rate: float = 1.0           # CURLOPT_LOW_SPEED_LIMIT (bytes/s)
    connect_timeout: float = 10.0     # CURLOPT_CONNECTTIMEOUT
    mirror_error_limit: int = 3       # pacman 7's server_error_limit
    split_min_size: int = 4 << 20     # files at least this large are split across mirrors
    max_split: int = 4                # connections one split file may use
    min_steal: int = 512 << 10        # smallest remainder worth taking over
    progress_interval: float = 0.2    # per-file progress at most this often (seconds)


DEFAULT_SETTINGS = DownloadSettings()


# -- events and progress --------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadStarted(Event):
    """A transfer of ``file`` begins (``total``: its size when known)."""

    file: str = ""
    total: int | None = None


@dataclass(frozen=True)
class DownloadDone(Event):
    """A file is in place (``cached``: it was there already; ``mirrors``: who served it)."""

    file: str = ""
    size: int = 0
    mirrors: tuple[str, ...] = ()
    cached: bool = False


@dataclass(frozen=True)
class DownloadRetry(Event):
    """A transfer from ``mirror`` failed for ``reason``; the next mirror (if any) is tried."""

    file: str = ""
    mirror: str = ""
    reason: str = ""
    next_mirror: str | None = None


@dataclass(frozen=True)
class MirrorDisabled(Event):
    """``mirror`` failed too often and is skipped for the rest of the run."""

    mirror: str = ""
    errors: int = 0
    reason: str = ""


@dataclass(frozen=True)
class RangeFallback(Event):
    """``mirror`` ignores Range: ``file`` is fetched as one stream instead."""

    file: str = ""
    mirror: str = ""


@dataclass(frozen=True)
class DatabaseUpToDate(Event):
    """A sync database download found the mirror's copy unchanged."""

    dbname: str = ""


@dataclass(frozen=True)
class DownloadProgress:
    """One file's progress and the run's: bytes, rate (bytes/s), files, ETA (seconds)."""

    file: str
    bytes_done: int
    total: int | None
    rate: float
    overall_done: int
    overall_total: int
    files_done: int
    files_total: int
    overall_rate: float
    eta: float | None
    finished: bool = False


DownloadProgressCallback = Callable[[DownloadProgress], None]


# -- errors inside a run -------------------------------------------------------------------


class _MirrorError(Exception):
    """A transfer from one mirror failed; ``counts`` says whether it is the mirror's fault."""

    def __init__(self, reason: str, *, not_found: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.not_found = not_found


class _NoRange(Exception):
    """The mirror answered a Range request with the whole file."""


# -- the run -------------------------------------------------------------------------------


@dataclass(eq=False)
class _Mirror:
    """A server as one run uses it: its errors so far, and whether it is skipped."""

    base: str
    cache: bool = False
    errors: int = 0
    disabled: bool = False
    active: int = 0
    no_range: bool = False

    def url(self, filename: str) -> str:
        return self.base.rstrip("/") + "/" + filename


@dataclass(eq=False)
class _Job:
    """One file to fetch into ``dest``."""

    filename: str
    dest: str                      # final path
    mirrors: list[_Mirror]
    size: int | None = None
    sha256: str | None = None
    optional: bool = False         # a missing optional file is not an error (signatures)
    resume: bool = True
    conditional: dict[str, str] = field(default_factory=dict)
    #: extra content check (raises AlpmError): a database must read as one
    check: Callable[[str], None] | None = None
    #: most bytes accepted when the size is not known in advance
    limit: int = MAX_DB_SIZE
    done: int = 0
    served_by: list[str] = field(default_factory=list)
    last_report: float = 0.0
    started: float = 0.0
    #: (size, sha256) of ``part`` as the last single stream wrote it (hashed on the way in)
    digest: tuple[int, str] | None = None

    @property
    def part(self) -> str:
        return self.dest + ".part"


@dataclass
class _Outcome:
    """What one transfer ended with: the HTTP status and the validators to keep."""

    status: int = 200
    etag: str | None = None
    last_modified: str | None = None


class _Run:
    """State shared by the transfers of one call: session, mirrors, progress, events."""

    def __init__(self, handle: Handle, settings: DownloadSettings,
                 progress: DownloadProgressCallback | None, event: EventCallback | None) -> None:
        self.handle = handle
        self.settings = settings
        self.progress_cb = progress
        self.event_cb = event
        self.mirrors: dict[tuple[str, bool], _Mirror] = {}
        self.session: aiohttp.ClientSession | None = None
        self.total = 0
        self.done = 0
        self.files_total = 0
        self.files_done = 0
        self.t0 = time.monotonic()
        self.resumed = 0
        no_timeout = handle.options.disable_download_timeout
        self.stall = None if no_timeout else settings.stall_time
        xfer = handle.options.xfer_command
        self.xfer = split_xfer_command(xfer) if xfer else None

    def mirror(self, base: str, cache: bool) -> _Mirror:
        key = (base, cache)
        if key not in self.mirrors:
            # a local directory is no bandwidth to add up: never split onto it
            self.mirrors[key] = _Mirror(base, cache, no_range=base.startswith("file://"))
        return self.mirrors[key]

    def mirrors_for(self, db: SyncDatabase | None) -> list[_Mirror]:
        repo = db.repo if db is not None else None
        if repo is None:
            return []
        return ([self.mirror(u, True) for u in repo.cache_servers]
                + [self.mirror(u, False) for u in repo.servers])

    def emit(self, ev: Event) -> None:
        if self.event_cb is not None:
            self.event_cb(ev)

    def fail(self, mirror: _Mirror, reason: str) -> None:
        """Count an error against a (non-cache) mirror; skip it after too many."""
        if mirror.cache:
            return
        mirror.errors += 1
        if not mirror.disabled and mirror.errors >= self.settings.mirror_error_limit:
            mirror.disabled = True
            self.emit(MirrorDisabled(mirror.base, mirror.errors, reason))

    def report(self, job: _Job, n: int, *, final: bool = False) -> None:
        job.done += n
        self.done += n
        if self.progress_cb is None:
            return
        now = time.monotonic()
        if not final and now - job.last_report < self.settings.progress_interval:
            return
        job.last_report = now
        elapsed = max(now - self.t0, 1e-6)
        rate = (self.done - self.resumed) / elapsed
        left = max(self.total - self.done, 0)
        self.progress_cb(DownloadProgress(
            file=job.filename, bytes_done=job.done, total=job.size,
            rate=job.done / max(now - job.started, 1e-6), overall_done=self.done,
            overall_total=self.total, files_done=self.files_done, files_total=self.files_total,
            overall_rate=rate, eta=left / rate if rate > 0 else None, finished=final))

    def timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout,
                                     sock_read=self.stall)

    # -- one stream ---------------------------------------------------------------------

    async def stream(self, job: _Job, mirror: _Mirror, *, offset: int = 0,
                     end: int | None = None, fd: int | None = None,
                     piece: _Piece | None = None) -> _Outcome:
        """GET ``job.filename`` from ``mirror`` into ``job.part`` (or ``fd`` at ranges).

        Single-stream mode (``fd`` None) resumes from ``offset`` and may restart from 0
        when the server ignores Range; range mode writes ``[offset, piece.end)``.
        """
        url = mirror.url(job.filename)
        job.digest = None
        if url.startswith("file://"):
            return await self._local(job, url[len("file://"):], offset)
        assert self.session is not None
        headers: dict[str, str] = dict(job.conditional)
        if piece is not None:
            headers["Range"] = f"bytes={offset}-{(end or 0) - 1}"
        elif offset:
            headers["Range"] = f"bytes={offset}-"
        mirror.active += 1
        try:
            # The status line and headers within a bound: the read timeout restarts at every
            # byte, so a mirror dripping header bytes held a refresh (and the daemon's writer
            # queue) forever; curl's low-speed check, which counts body bytes, stops that.
            head = None if self.stall is None else self.settings.connect_timeout + self.stall
            try:
                async with asyncio.timeout(head):
                    resp = await self.session.get(url, headers=headers, timeout=self.timeout())
            except TimeoutError as exc:
                raise _MirrorError(f"no answer (status and headers) within {head:g} s") from exc
            async with resp:
                out = _Outcome(resp.status, resp.headers.get("ETag"),
                               resp.headers.get("Last-Modified"))
                if resp.status == 304:
                    return out
                if resp.status == 404:
                    raise _MirrorError("404 Not Found", not_found=True)
                if resp.status == 416 and piece is None and offset:
                    # our .part may hold the whole file already; verification decides
                    return out
                if resp.status not in (200, 206):
                    raise _MirrorError(f"HTTP {resp.status} {resp.reason or ''}".strip())
                start = 0
                if resp.status == 206:
                    start = _range_start(resp.headers.get("Content-Range"))
                    if start != offset:
                        raise _MirrorError("server sent the wrong range")
                elif piece is not None:
                    raise _NoRange()
                length = resp.content_length
                if length is not None and job.size is not None and start + length > job.size:
                    raise _MirrorError(f"server announced {start + length} bytes, "
                                       f"expected {job.size}")
                if piece is not None:
                    await self._read_ranged(job, resp, fd, piece)
                else:
                    await self._read_whole(job, resp, start)
                return out
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as exc:
            raise _MirrorError(f"connection closed mid-transfer ({_why(exc)})") from exc
        except TimeoutError as exc:      # before OSError: it is one
            raise _MirrorError(f"stalled: no data for {self.stall:g} s"
                               if self.stall else "timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise _MirrorError(_why(exc)) from exc
        finally:
            mirror.active -= 1

    async def _local(self, job: _Job, path: str, offset: int) -> _Outcome:
        """A ``file://`` server: copy (from ``offset``), with If-Modified-Since as curl does."""
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise _MirrorError("404 Not Found", not_found=True) from exc
        except OSError as exc:
            raise _MirrorError(_why(exc)) from exc
        modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        since = _http_time(job.conditional.get("If-Modified-Since"))
        if since is not None and int(st.st_mtime) <= int(since):
            return _Outcome(304, None, modified)
        if job.size is not None and st.st_size != job.size:
            raise _MirrorError(f"size {st.st_size} does not match the expected {job.size}")
        if offset > st.st_size:
            offset = 0
        cap = job.size if job.size is not None else job.limit
        if st.st_size > cap:
            raise _MirrorError(f"file larger than {cap} bytes")

        def copy() -> None:
            with open(path, "rb") as src, open(job.part, "r+b" if offset else "wb") as dst:
                src.seek(offset)
                dst.seek(offset)
                dst.truncate()
                while chunk := src.read(1 << 20):
                    dst.write(chunk)

        try:
            await asyncio.to_thread(copy)
        except OSError as exc:
            raise _MirrorError(_why(exc)) from exc
        self.report(job, st.st_size - job.done)
        return _Outcome(200, None, modified)

    def _stall_check(self, window: list[float], n: int) -> None:
        """pacman's low-speed limit: fewer than rate*time bytes in a time window is an error."""
        if self.stall is None:
            return
        now = time.monotonic()
        window[1] += n
        if now - window[0] >= self.stall:
            if window[1] < self.settings.stall_rate * self.stall:
                raise _MirrorError(f"stalled: under {self.settings.stall_rate:g} B/s "
                                   f"for {self.stall:g} s")
            window[0], window[1] = now, 0

    async def _read_whole(self, job: _Job, resp: aiohttp.ClientResponse, start: int) -> None:
        cap = job.size if job.size is not None else job.limit
        mode = "r+b" if start and os.path.exists(job.part) else "wb"
        if start != job.done:
            self.report(job, start - job.done)
        window = [time.monotonic(), 0.0]
        # hashed as it arrives: verifying then needs no second pass over the file
        hasher = None
        if job.sha256 is not None:
            hasher = (await asyncio.to_thread(_prefix_hash, job.part, start) if start
                      else hashlib.sha256())
        with open(job.part, mode) as fh:
            fh.seek(start)
            fh.truncate()
            pos = start
            async for chunk in resp.content.iter_any():
                if pos + len(chunk) > cap:
                    raise _MirrorError(f"body longer than the expected {cap} bytes")
                fh.write(chunk)
                if hasher is not None:
                    hasher.update(chunk)
                pos += len(chunk)
                self.report(job, len(chunk))
                self._stall_check(window, len(chunk))
        if job.size is not None and pos != job.size:
            raise _MirrorError(f"body ended after {pos} of {job.size} bytes")
        if hasher is not None:
            job.digest = (pos, hasher.hexdigest())

    async def _read_ranged(self, job: _Job, resp: aiohttp.ClientResponse, fd: int | None,
                           piece: _Piece) -> None:
        assert fd is not None
        window = [time.monotonic(), 0.0]
        async for chunk in resp.content.iter_any():
            room = piece.end - piece.pos
            if room <= 0:
                return                       # another mirror took over the rest
            data = chunk[:room]
            os.pwrite(fd, data, piece.pos)
            piece.pos += len(data)
            self.report(job, len(data))
            self._stall_check(window, len(data))
            if piece.pos >= piece.end:
                return
        if piece.pos < piece.end:
            raise _MirrorError(f"range ended at {piece.pos}, expected {piece.end}")

    # -- one file -----------------------------------------------------------------------

    async def fetch(self, job: _Job) -> _Outcome | None:
        """Fetch and verify ``job`` into ``job.part``; None when an optional file is missing."""
        failures: list[tuple[str, str]] = []
        job.started = time.monotonic()
        job.digest = None
        self.emit(DownloadStarted(job.filename, job.size))
        if self.xfer is not None:
            if (out := await self._with_xfer(job, failures)) is not None:
                return out
        else:
            for mirror in [m for m in job.mirrors if m.cache]:
                if (out := await self._single(job, mirror, failures)) is not None:
                    return out
            regular = [m for m in job.mirrors if not m.cache]
            if (job.size is not None and job.size >= self.settings.split_min_size
                    and len(self._usable(regular, ranges=True)) >= 2):
                if await self._split(job, regular, failures):
                    return _Outcome(200)
            tried: set[int] = set()
            while True:
                left = [m for m in self._usable(regular) if id(m) not in tried]
                if not left:
                    break
                mirror = min(left, key=lambda m: (m.active, regular.index(m)))
                tried.add(id(mirror))
                if (out := await self._single(job, mirror, failures)) is not None:
                    return out
        if job.optional and all(r == "404 Not Found" for _, r in failures):
            return None
        if not job.mirrors:
            raise AlpmError(ErrorCode.SERVER_NONE,
                            f"no servers configured to download {job.filename}",
                            file=job.filename)
        listed = "; ".join(f"{m} ({r})" for m, r in failures) or "every mirror is disabled"
        raise AlpmError(ErrorCode.RETRIEVE, f"failed retrieving file '{job.filename}' "
                        f"from every mirror: {listed}", file=job.filename, mirrors=failures,
                        servers=[m.base for m in job.mirrors])

    @staticmethod
    def _usable(mirrors: list[_Mirror], *, ranges: bool = False) -> list[_Mirror]:
        return [m for m in mirrors if not m.disabled and not (ranges and m.no_range)]

    def _next_name(self, job: _Job, after: _Mirror) -> str | None:
        later = job.mirrors[job.mirrors.index(after) + 1:]
        nxt = next((m for m in later if not m.disabled), None)
        return nxt.base if nxt is not None else None

    async def _single(self, job: _Job, mirror: _Mirror,
                      failures: list[tuple[str, str]]) -> _Outcome | None:
        """One mirror, one stream (resuming ``.part``); the outcome once verified."""
        offset = 0
        if job.resume and job.size is not None:
            with contextlib.suppress(OSError):
                offset = os.stat(job.part).st_size
            if offset > job.size:
                offset = 0
        elif os.path.exists(job.part):
            os.unlink(job.part)
        try:
            if offset and offset == job.size:
                out = _Outcome(416)
            else:
                if offset and not job.done:
                    self.resumed += offset
                out = await self.stream(job, mirror, offset=offset)
            if out.status == 304:
                return out
            if out.status == 416 and job.size is not None and offset != job.size:
                raise _MirrorError("416 Range Not Satisfiable")
            try:
                await self._verify(job)
            except _MirrorError:
                if not offset:
                    raise
                # the bad bytes may be the old .part's: once more from zero before blaming
                out = await self.stream(job, mirror)
                await self._verify(job)
        except _MirrorError as exc:
            self._lost(job, mirror, exc, failures)
            return None
        job.served_by.append(mirror.base)
        return out

    def _lost(self, job: _Job, mirror: _Mirror, exc: _MirrorError,
              failures: list[tuple[str, str]]) -> None:
        failures.append((mirror.base, exc.reason))
        if not job.resume:
            _unlink(job.part)                          # nothing to resume: no debris
        if mirror.cache and exc.not_found:
            return                                     # a cache miss is no error
        if not (job.optional and exc.not_found):
            self.fail(mirror, exc.reason)
        self.emit(DownloadRetry(job.filename, mirror.base, exc.reason,
                                self._next_name(job, mirror)))

    async def _verify(self, job: _Job) -> None:
        """Size and SHA-256 against the database; bad bytes are deleted, never kept."""
        if job.check is not None:
            try:
                await asyncio.to_thread(job.check, job.part)
            except AlpmError as exc:
                _unlink(job.part)
                self.report(job, -job.done)
                raise _MirrorError(exc.message) from exc
        inline, job.digest = job.digest, None
        if job.size is None and job.sha256 is None:
            return
        if inline is not None and job.sha256 is not None:
            size, digest = inline
        else:
            size, digest = await asyncio.to_thread(_digest, job.part, job.sha256 is not None)
        if job.size is not None and size != job.size:
            _unlink(job.part)
            self.report(job, -job.done)
            raise _MirrorError(f"size {size} does not match the expected {job.size}")
        if job.sha256 is not None and digest != job.sha256.lower():
            _unlink(job.part)
            self.report(job, -job.done)
            raise _MirrorError("SHA-256 checksum mismatch")

    # -- split across mirrors ------------------------------------------------------------

    async def _split(self, job: _Job, mirrors: list[_Mirror],
                     failures: list[tuple[str, str]]) -> bool:
        """Fetch ranges from several mirrors at once; False leaves a valid ``.part`` prefix."""
        assert job.size is not None
        size = job.size
        start = 0
        with contextlib.suppress(OSError):
            start = os.stat(job.part).st_size
        if start >= size:
            start = 0
        if start:
            self.resumed += start
            self.report(job, start - job.done)
        workers = self._usable(mirrors, ranges=True)[: self.settings.max_split]
        n = len(workers)
        bounds = [start + (size - start) * i // n for i in range(n + 1)]
        pending = [_Piece(bounds[i], bounds[i + 1]) for i in range(n) if bounds[i] < bounds[i + 1]]
        active: list[_Piece] = []
        fd = os.open(job.part, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                os.ftruncate(fd, size)
            except OSError:     # a %CSIZE% no file here can have (EFBIG): single streams
                return False

            async def worker(mirror: _Mirror) -> None:
                while not mirror.disabled:
                    piece = pending.pop(0) if pending else self._steal(active)
                    if piece is None:
                        return
                    active.append(piece)
                    try:
                        await self.stream(job, mirror, offset=piece.pos, end=piece.end,
                                          fd=fd, piece=piece)
                    except _NoRange:
                        mirror.no_range = True
                        self.emit(RangeFallback(job.filename, mirror.base))
                        return
                    except _MirrorError as exc:
                        failures.append((mirror.base, exc.reason))
                        self.fail(mirror, exc.reason)
                        self.emit(DownloadRetry(job.filename, mirror.base, exc.reason, None))
                        return
                    finally:
                        active.remove(piece)
                        if piece.pos < piece.end:     # unfinished, whatever stopped it
                            pending.append(piece)
                    if mirror.base not in job.served_by:
                        job.served_by.append(mirror.base)

            await asyncio.gather(*(worker(m) for m in workers))
        finally:
            os.close(fd)
            if pending or active:
                # keep only the contiguous prefix, so a later single stream can resume it
                holes = [p.pos for p in pending + active]
                prefix = min(holes) if holes else size
                os.truncate(job.part, prefix)
                self.report(job, prefix - job.done)
        if pending:
            return False
        job.digest = None
        try:
            await self._verify(job)
        except _MirrorError as exc:
            failures.append(("+".join(job.served_by), exc.reason))
            job.served_by.clear()
            return False            # blame is found by the single streams that follow
        return True

    def _steal(self, active: list[_Piece]) -> _Piece | None:
        """Take over the upper half of the largest range still being fetched."""
        if not active:
            return None
        victim = max(active, key=lambda p: p.end - p.pos)
        left = victim.end - victim.pos
        if left < 2 * self.settings.min_steal:
            return None
        cut = victim.pos + left // 2
        piece = _Piece(cut, victim.end)
        victim.end = cut
        return piece

    # -- XferCommand ----------------------------------------------------------------------

    async def _with_xfer(self, job: _Job, failures: list[tuple[str, str]]) -> _Outcome | None:
        """pacman's XferCommand: ``%u`` the URL, ``%o`` the ``.part`` file; no shell."""
        assert self.xfer is not None
        for mirror in job.mirrors:
            if mirror.disabled:
                continue
            url = mirror.url(job.filename)
            uses_o = any("%o" in w for w in self.xfer)
            argv = [w.replace("%u", url).replace("%o", job.part) for w in self.xfer]
            cwd = os.path.dirname(job.dest)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, cwd=cwd, stdin=asyncio.subprocess.DEVNULL)
                try:
                    rc = await proc.wait()
                except asyncio.CancelledError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
                    raise
            except OSError as exc:
                raise AlpmError(ErrorCode.EXTERNAL_DOWNLOAD,
                                f"could not run XferCommand: {exc}") from exc
            if not uses_o:
                got = os.path.join(cwd, os.path.basename(url))
                if rc == 0 and os.path.exists(got):
                    os.replace(got, job.part)
            try:
                if rc != 0:
                    raise _MirrorError(f"XferCommand exited with status {rc}")
                if not os.path.exists(job.part):
                    raise _MirrorError("XferCommand wrote no file")
                await self._verify(job)
            except _MirrorError as exc:
                _unlink(job.part)
                self._lost(job, mirror, exc, failures)
                continue
            job.served_by.append(mirror.base)
            return _Outcome(200)
        return None


@dataclass(eq=False)
class _Piece:
    """A byte range of a split file: ``pos`` advances, ``end`` may shrink (stolen)."""

    pos: int
    end: int


def _range_start(value: str | None) -> int:
    try:
        assert value is not None
        return int(value.split()[1].split("-")[0])
    except (AssertionError, IndexError, ValueError) as exc:
        raise _MirrorError(f"bad Content-Range {value!r}") from exc


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _digest(path: str, want: bool) -> tuple[int, str]:
    """Size and SHA-256 of a file, read into one reused buffer (no 1 MiB allocation a read)."""
    if not want:
        return os.stat(path).st_size, ""
    h = hashlib.sha256()
    size = 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            size += n
            h.update(view[:n])
    return size, h.hexdigest()


def _prefix_hash(path: str, length: int) -> Any:
    """A SHA-256 object fed with the first ``length`` bytes of ``path`` (a resumed .part)."""
    h = hashlib.sha256()
    left = length
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while left > 0 and (n := fh.readinto(view[:min(left, len(buf))])):
            h.update(view[:n])
            left -= n
    if left:
        raise _MirrorError(f".part is shorter than {length} bytes")
    return h


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _commit(src: str, dest: str) -> None:
    """fsync ``src`` and rename it to ``dest`` (same directory or file system)."""
    fd = os.open(src, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(src, dest)
    fsync_dir(os.path.dirname(dest) or ".")


async def _cancellable(work: Awaitable[Any], cancel: asyncio.Event | None) -> Any:
    """Run ``work``; when ``cancel`` is set first, stop it and raise AlpmError(CANCELLED)."""
    task = asyncio.ensure_future(work)
    if cancel is None:
        return await task
    waiter = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    finally:
        waiter.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise AlpmError(ErrorCode.CANCELLED, "download cancelled")
    return task.result()


def _session(run: _Run) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    return aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                 headers={"User-Agent": "alpmd (pacman compatible)"})


# -- packages ------------------------------------------------------------------------------


def download_dir(handle: Handle) -> str:
    """The first writable CacheDir (pacman downloads there), created when missing."""
    for d in handle.options.cachedirs:
        with contextlib.suppress(OSError):
            os.makedirs(d, exist_ok=True)
        if os.access(d, os.W_OK | os.X_OK):
            return d
    raise AlpmError(ErrorCode.SYSTEM, "no writable cache directory "
                    f"({', '.join(handle.options.cachedirs)})")


def seed_shadow(handle: Handle, target_dir: str) -> None:
    """Start a shadow database directory as copies of the live databases (mtimes kept).

    A refresh into ``target_dir`` asks mirrors conditionally; an unchanged mirror
    answers 304, and the shadow directory must then already hold that database.
    """
    ext = handle.options.dbext
    for db in handle.syncdbs:
        live_dir = os.path.dirname(db.path)
        for name in (db.name + ext, db.name + ext + ".sig"):
            src, dst = os.path.join(live_dir, name), os.path.join(target_dir, name)
            if os.path.exists(src) and not os.path.exists(dst):
                with contextlib.suppress(OSError):
                    shutil.copy2(src, dst)


def find_cached(handle: Handle, pkg: Package) -> str | None:
    """The package's file in any CacheDir (first wins), if present with the expected size.

    The checksum is left to the integrity check, as pacman does; a file of the
    wrong size is not the package and will be downloaded again.
    """
    name = pkg.filename
    if not name:
        return None
    for d in handle.options.cachedirs:
        path = os.path.join(d, name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if os.path.isfile(path) and (pkg.csize is None or st.st_size == pkg.csize):
            return path
    return None


async def fetch_packages(handle: Handle, pkgs: Sequence[Package], *,
                         progress: DownloadProgressCallback | None = None,
                         event: EventCallback | None = None,
                         cancel: asyncio.Event | None = None,
                         settings: DownloadSettings | None = None,
                         _sandboxed: bool = False) -> dict[str, str]:
    """Make every package's file available in a CacheDir; ``name -> verified path``.

    With ``DownloadUser`` set (and running as root), the transfers run in a child
    process with that user's identity (see :func:`_as_user`), as pacman 7 does.

    Files already cached are used as they are; the others are fetched largest
    first, at most ``ParallelDownloads`` at once. Detached signatures (``.sig``)
    are fetched too when the package's signature level checks signatures and
    the database has no ``%PGPSIG%`` (missing is fine unless Required).
    Raises ``AlpmError(RETRIEVE)`` naming each mirror and its reason when a file
    cannot be had, ``AlpmError(CANCELLED)`` when ``cancel`` is set; task
    cancellation propagates as ``CancelledError``. Either way an interrupted
    transfer leaves at most ``<file>.part`` (resumed next time).
    """
    user = _download_user(handle)
    if user is not None and not _sandboxed:
        got, final = await _as_user(
            handle, user, lambda p, e: fetch_packages(handle, pkgs, progress=p, event=e,
                                                      settings=settings, _sandboxed=True),
            progress, event, cancel)
        return {name: final(path) for name, path in got.items()}
    run = _Run(handle, settings or DEFAULT_SETTINGS, progress, event)
    result: dict[str, str] = {}
    jobs: list[tuple[Package, _Job]] = []
    dest_dir: str | None = None
    for pkg in pkgs:
        if not pkg.filename:
            raise AlpmError(ErrorCode.PKG_INVALID, f"{pkg.name} has no file name", pkg=pkg.name)
        cached = find_cached(handle, pkg)
        if cached is not None:
            result[pkg.name] = cached
            run.emit(DownloadDone(pkg.filename, pkg.csize or 0, (), cached=True))
            continue
        if dest_dir is None:
            dest_dir = download_dir(handle)
        mirrors = run.mirrors_for(pkg.db if isinstance(pkg.db, SyncDatabase) else None)
        job = _Job(pkg.filename, os.path.join(dest_dir, pkg.filename), mirrors,
                   size=pkg.csize, sha256=pkg.sha256sum)
        jobs.append((pkg, job))
        if _wants_sig(pkg, handle):
            level = _pkg_level(pkg, handle)
            sig = _Job(pkg.filename + ".sig", job.dest + ".sig", mirrors,
                       optional=level.package.check is not SigCheck.REQUIRED, resume=False,
                       limit=MAX_SIG_SIZE)
            jobs.append((pkg, sig))
    if not jobs:
        return result
    jobs.sort(key=lambda pj: -(pj[1].size or 0))
    run.total = sum(j.size or 0 for _, j in jobs)
    run.files_total = len(jobs)
    slots = asyncio.Semaphore(max(1, handle.options.parallel_downloads))

    errors: list[AlpmError] = []

    async def one(pkg: Package, job: _Job) -> None:
        async with slots:
            try:
                got = await run.fetch(job)
            except AlpmError as exc:      # the others go on, as pacman's do
                errors.append(exc)
                return
            if got is not None:
                os.replace(job.part, job.dest)     # verified: now under its final name
                run.files_done += 1
                run.report(job, 0, final=True)
                run.emit(DownloadDone(job.filename, job.done, tuple(job.served_by)))
                if not job.filename.endswith(".sig"):
                    result[pkg.name] = job.dest
            else:
                run.files_done += 1

    async def everything() -> None:
        async with _session(run) as run.session:
            tasks = [asyncio.ensure_future(one(p, j)) for p, j in jobs]
            try:
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    await _cancellable(everything(), cancel)
    if dest_dir is not None:
        with contextlib.suppress(OSError):
            fsync_dir(dest_dir)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise AlpmError(ErrorCode.RETRIEVE, summarize_failures(errors),
                        errors=errors, done=result)
    return result


#: how many failing files a summary names; the others are counted (each one's whole
#: story stays in the error's ``errors`` detail and in the transaction's log)
SUMMARY_LINES = 8


def summarize_failures(failures: Sequence[AlpmError], *, limit: int = SUMMARY_LINES) -> str:
    """A short account of failed downloads: one line per file (its first cause and the
    mirrors tried), at most ``limit`` of them, then how many more there are."""
    lines = [f"failed retrieving {len(failures)} files:" if len(failures) != 1
             else "failed retrieving 1 file:"]
    for exc in failures[:limit]:
        tried: list[tuple[str, str]] = list(exc.details.get("mirrors") or [])
        servers: list[str] = list(exc.details.get("servers") or [])
        name = str(exc.details.get("file") or "")
        if name and tried:
            mirrors = list(dict.fromkeys(base for base, _ in tried))
            lines.append(f"  {name}: {tried[0][1]} (mirrors tried: {', '.join(mirrors)})")
        elif name and servers:
            lines.append(f"  {name}: not tried, every mirror was disabled after repeated "
                         f"errors ({', '.join(servers)})")
        else:
            lines.append(f"  {exc.message}")
    if len(failures) > limit:
        lines.append(f"  ... and {len(failures) - limit} more (every cause is in the log)")
    return "\n".join(lines)


# -- DownloadUser: transfers in a child process with the user's identity ---------------------


def _download_user(handle: Handle) -> pwd.struct_passwd | None:
    """The DownloadUser's passwd entry when downloads must switch to it (we are root)."""
    name = handle.options.download_user
    if not name or os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise AlpmError(ErrorCode.SYSTEM, f"download user '{name}' does not exist",
                        user=name) from None


def _send(fd: int, message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message)
    view = memoryview(len(data).to_bytes(4, "big") + data)
    while view:
        view = view[os.write(fd, view):]


#: the largest message the download child sends (its result names every file: a few MB)
MAX_CHILD_MESSAGE = 64 << 20


def _receive(fd: int) -> tuple[Any, ...] | None:
    def exactly(n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    head = exactly(4)
    if head is None:
        return None
    size = int.from_bytes(head, "big")
    if size > MAX_CHILD_MESSAGE:  # (a child taken over would have root hold it all)
        raise pickle.UnpicklingError(f"the download process sent a message of {size} bytes")
    body = exactly(size)
    if body is None:
        return None
    message: tuple[Any, ...] = _ChildUnpickler(io.BytesIO(body)).load()
    if not isinstance(message, tuple) or not message:
        raise pickle.UnpicklingError("the download process sent no message")
    return message


class _ChildUnpickler(pickle.Unpickler):
    """Reads what the download child sends as data only. The child runs as DownloadUser
    and parses what mirrors send: taken over, it could send root a pickle naming any
    callable (``os.system``...). Only the plain classes of the messages may be named."""

    def find_class(self, module: str, name: str) -> Any:
        cls = _CHILD_TYPES.get(f"{module}:{name}")
        if cls is None:
            raise pickle.UnpicklingError(f"the download process named {module}.{name}")
        return cls


# Landlock (linux/landlock.h): the write-type file-system rights a ruleset can handle
_LL_WRITE_FILE, _LL_REMOVE_DIR, _LL_REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_LL_MAKE = sum(1 << b for b in range(6, 13))     # char, dir, reg, sock, fifo, block, sym
_LL_REFER, _LL_TRUNCATE = 1 << 13, 1 << 14        # ABI 2, ABI 3
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_PR_SET_NO_NEW_PRIVS = 38


def _confine_writes(writable: str) -> bool:
    """Landlock: from now on this process may write only below ``writable`` (and /dev/null).

    pacman 7's file-system sandbox for downloads (``DisableSandboxFilesystem``
    turns it off). Reading stays unrestricted. False when the kernel has no
    Landlock (the download then runs with the user switch alone, as pacman 7).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return False
    handled = _LL_WRITE_FILE | _LL_REMOVE_DIR | _LL_REMOVE_FILE | _LL_MAKE
    handled |= (_LL_REFER if abi >= 2 else 0) | (_LL_TRUNCATE if abi >= 3 else 0)
    attr = ctypes.c_uint64(handled)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(8),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    try:
        file_rights = handled & (_LL_WRITE_FILE | _LL_TRUNCATE)
        for path, rights in ((writable, handled), ("/dev/null", file_rights)):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = struct.pack("=Qi", rights, fd)     # landlock_path_beneath_attr (packed)
                buf = ctypes.create_string_buffer(rule, len(rule))
                if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(1), buf,
                                ctypes.c_uint32(0)) < 0:
                    raise OSError(ctypes.get_errno(), "landlock_add_rule")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 or \
                libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return True


def _child_run(handle: Handle, user: pwd.struct_passwd, staging: str,
               work: Callable[[DownloadProgressCallback, EventCallback],
                              Coroutine[Any, Any, Any]],
               fd: int) -> None:
    """In the child: become the user, run ``work`` writing only to ``staging``, report."""
    try:
        # what the transfers import lazily, loaded while the interpreter's files are
        # certainly readable (the user may not be able to read them)
        import asyncio.subprocess  # noqa: F401
        import concurrent.futures.thread  # noqa: F401
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
        if not handle.options.disable_sandbox_filesystem:
            _confine_writes(staging)
        # the cache is read as before; the only writable place is the staging directory
        handle.options.cachedirs = [staging, *handle.options.cachedirs]
        got: Any = asyncio.run(work(lambda p: _send(fd, ("progress", p)),
                               lambda e: _send(fd, ("event", e))))
        _send(fd, ("done", got))
    except AlpmError as exc:
        _send(fd, ("error", exc.code.value, exc.message))
    except BaseException as exc:   # noqa: BLE001 - everything must reach the parent
        _send(fd, ("error", ErrorCode.SYSTEM.value, f"download process failed: {exc}"))


async def _as_user(handle: Handle, user: pwd.struct_passwd,
                   work: Callable[[DownloadProgressCallback, EventCallback],
                                  Coroutine[Any, Any, Any]],
                   progress: DownloadProgressCallback | None, event: EventCallback | None,
                   cancel: asyncio.Event | None) -> tuple[Any, Callable[[str], str]]:
    """Run a download ``work`` as ``DownloadUser`` (pacman 7's download sandbox, user part).

    A child process drops to the user's uid/gid (no supplementary groups), is
    confined by Landlock to writing below a fresh ``download-*`` directory of the
    cache (unless ``DisableSandbox``/``DisableSandboxFilesystem``) and works there;
    its events and progress come back over a pipe. Every file it left there is
    then moved into the cache and given back to root, so the user never owns
    anything in the cache. Returns the child's result and the mapping of a
    staging path to its final place.
    """
    dest_dir = download_dir(handle)
    staging = tempfile.mkdtemp(prefix="download-", dir=dest_dir)
    os.chown(staging, user.pw_uid, user.pw_gid)
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(rfd)
        try:
            _child_run(handle, user, staging, work, wfd)
        finally:
            os._exit(0)
    os.close(wfd)

    def pump() -> tuple[Any, ...]:
        while (msg := _receive(rfd)) is not None:
            if msg[0] == "progress" and progress is not None:
                progress(msg[1])
            elif msg[0] == "event" and event is not None:
                event(msg[1])
            elif msg[0] in ("done", "error"):
                return msg
        return ("error", ErrorCode.SYSTEM.value, "download process ended without a result")

    caches = {os.path.normpath(d) for d in handle.options.cachedirs}

    def final(path: str) -> str:
        """Where a file the child names is now: one it fetched is in ``dest_dir``; one it
        found cached must be in a cache directory (a path elsewhere, perhaps the user's
        own file, is refused: root would check it, then read it again to install it)."""
        if os.path.dirname(path) == staging:
            return os.path.join(dest_dir, os.path.basename(path))
        if os.path.dirname(os.path.normpath(path)) not in caches:
            raise AlpmError(ErrorCode.SYSTEM,
                            f"the download process named a file outside the cache: {path}")
        return path

    try:
        try:
            outcome = await _cancellable(asyncio.to_thread(pump), cancel)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            raise
        finally:
            await asyncio.to_thread(os.waitpid, pid, 0)
            os.close(rfd)
        _take_back(staging, dest_dir)
        if outcome[0] == "error":
            raise AlpmError(ErrorCode(outcome[1]), outcome[2])
        return outcome[1], final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _take_back(staging: str, dest_dir: str) -> None:
    """Copy what the download user left in ``staging`` into ``dest_dir``, root's.

    A process of that user may outlive the child and keep changing the directory. So
    the directory is made root's (0700) first, through a descriptor opened without
    following a link: from then on no name in it changes under us. Each file is then
    opened without following a symbolic link (one planted there is never followed, so
    root never reads what it points to) and must be a regular file with a single link
    (not another file of the user's hard-linked in). Its bytes are copied into a new
    file of root's (mode 0644, the times kept): a lingering process of the user still
    holding the downloaded file open for writing could otherwise change the package
    after its checksum and signature were checked and before it was extracted."""
    dfd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchown(dfd, os.geteuid(), os.getegid())
        os.fchmod(dfd, 0o700)
        for name in os.listdir(dfd):
            if name.endswith(".part"):
                continue
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                             dir_fd=dfd)
            except OSError:
                continue  # a symbolic link, a FIFO that went away...: left to be removed
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                    continue
                _copy_in(fd, st, os.path.join(dest_dir, name))
            finally:
                os.close(fd)
    finally:
        os.close(dfd)


def _copy_in(src: int, st: os.stat_result, dest: str) -> None:
    """``src``'s bytes at ``dest`` in a new file of root's (0644, ``st``'s times), put in
    place by a rename (``dest`` is never half written). Only ``st.st_size`` bytes, what
    the file held when opened: a process of the user appending meanwhile never lets the
    copy end (it filled the cache)."""
    out, tmp = tempfile.mkstemp(prefix=".take-", dir=os.path.dirname(dest))
    try:
        with os.fdopen(out, "wb") as fh:
            copy_prefix(src, fh.fileno(), st.st_size)
            os.fchmod(fh.fileno(), 0o644)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, dest)
    except BaseException:
        _unlink(tmp)
        raise


def _pkg_level(pkg: Package, handle: Handle) -> SigLevel:
    repo = pkg.db.repo if isinstance(pkg.db, SyncDatabase) else None
    return repo.siglevel if repo is not None else handle.options.siglevel


def _wants_sig(pkg: Package, handle: Handle) -> bool:
    return (_pkg_level(pkg, handle).package.check is not SigCheck.NEVER
            and not pkg.base64_sig)


# -- package URLs (-U URL) -------------------------------------------------------------------


@dataclass
class UrlFailure:
    """A URL that could not be fetched: the name shown, the host, curl's wording of why."""

    url: str
    name: str
    host: str
    reason: str


@dataclass
class UrlFetch:
    """What :func:`fetch_urls` got: ``url -> local path`` and the failures."""

    paths: dict[str, str] = field(default_factory=dict)
    failures: list[UrlFailure] = field(default_factory=list)


#: What the download child's messages may hold besides plain values (see _ChildUnpickler)
_CHILD_TYPES: dict[str, type] = {
    f"{cls.__module__}:{cls.__qualname__}": cls
    for cls in (DownloadStarted, DownloadDone, DownloadRetry, MirrorDisabled, RangeFallback,
                DatabaseUpToDate, DownloadProgress, UrlFailure, UrlFetch)}


def _url_name(url: str) -> str:
    return url.rstrip("?").split("?", 1)[0].rsplit("/", 1)[-1]


def url_cached(handle: Handle, url: str) -> str | None:
    """The cached file a package URL names, if any (pacman downloads nothing then)."""
    name = _url_name(url)
    if not name:
        return None
    for d in handle.options.cachedirs:
        path = os.path.join(d, name)
        if os.path.isfile(path):
            return path
    return None


def _disposition_name(value: str | None) -> str | None:
    if not value:
        return None
    msg = email.message.Message()
    msg["content-disposition"] = value
    name = msg.get_filename()
    return os.path.basename(name) if name else None


async def fetch_urls(handle: Handle, urls: Sequence[str], *,
                     event: EventCallback | None = None,
                     settings: DownloadSettings | None = None,
                     cancel: asyncio.Event | None = None,
                     _sandboxed: bool = False) -> UrlFetch:
    """Fetch package URLs into the cache as pacman's ``alpm_fetch_pkgurl`` (``-U URL``).

    A URL whose file name is already cached is not fetched. Otherwise the file is
    written under the URL's name when it looks like a package (``.pkg``), else
    under a temporary ``alpmtmp.*`` name, and renamed after the transfer to the
    server's ``Content-Disposition`` name or, failing that, the name in the URL
    the redirects ended at. The detached ``.sig`` is fetched too when SigLevel
    checks package signatures (its absence is an error only when they are
    required). With ``DownloadUser`` the transfers run as that user.
    """
    settings = settings or DEFAULT_SETTINGS
    result = UrlFetch()
    todo: list[str] = []
    for url in urls:
        cached = url_cached(handle, url)
        if cached is not None:
            result.paths[url] = cached
        else:
            todo.append(url)
    if not todo:
        return result
    user = _download_user(handle)
    if user is not None and not _sandboxed:
        got, final = await _as_user(
            handle, user, lambda _p, e: fetch_urls(handle, todo, event=e, settings=settings,
                                                   _sandboxed=True),
            None, event, cancel)
        result.paths.update({url: final(path) for url, path in got.paths.items()})
        result.failures += got.failures
        return result
    dest_dir = download_dir(handle)
    level = handle.options.siglevel.package.check   # libalpm looks at SigLevel here
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout,
                                    sock_read=None if handle.options.disable_download_timeout
                                    else settings.stall_time)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                     headers={"User-Agent": "alpmd (pacman compatible)"},
                                     timeout=timeout) as session:
        for url in todo:
            got = await _cancellable(_fetch_url(session, url, dest_dir, event), cancel)
            if isinstance(got, UrlFailure):
                result.failures.append(got)
                continue
            result.paths[url] = got
            if level is SigCheck.NEVER:
                continue
            sig = await _cancellable(_fetch_url(session, url + ".sig", dest_dir, None,
                                                dest=got + ".sig"), cancel)
            if isinstance(sig, UrlFailure) and level is SigCheck.REQUIRED:
                result.failures.append(sig)
    return result


def _copy_url(url: str, tmp: str, dest: str | None, dest_dir: str, shown: str) -> str | UrlFailure:
    """A ``file://`` URL: copied into the cache like any download (curl does that for pacman)."""
    source = urllib.parse.unquote(url[len("file://"):])
    try:
        shutil.copyfile(source, tmp)
    except OSError:
        _unlink(tmp)
        return UrlFailure(url, _url_name(url) or shown, "disk", f"Couldn't open file {source}")
    final = dest or os.path.join(dest_dir, _url_name(url) or shown)
    _commit(tmp, final)
    return final


async def _fetch_url(session: aiohttp.ClientSession, url: str, dest_dir: str,
                     event: EventCallback | None, dest: str | None = None) -> str | UrlFailure:
    """One URL into ``dest_dir`` (or exactly ``dest``): the final path or why it failed."""
    remote = _url_name(url)
    if dest is not None:
        tmp = dest + ".part"
    elif ".pkg" in remote:
        tmp = os.path.join(dest_dir, remote + ".part")
    else:
        fd, tmp = tempfile.mkstemp(prefix="alpmtmp.", dir=dest_dir)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    shown = os.path.basename(tmp[:-len(".part")] if tmp.endswith(".part") else tmp)
    parsed = yarl.URL(url)
    where = f"{parsed.host or ''}:{parsed.explicit_port}" if parsed.explicit_port \
        else parsed.host or ""
    if event is not None:
        event(DownloadStarted(shown, None))
    if url.startswith("file://"):
        return _copy_url(url, tmp, dest, dest_dir, shown)
    try:
        async with session.get(url, allow_redirects=True) as resp:
            if resp.status >= 400:
                _unlink(tmp)
                return UrlFailure(url, _url_name(url) or shown, where,
                                  f"The requested URL returned error: {resp.status}")
            with open(tmp, "wb") as f:
                async for chunk in resp.content.iter_chunked(_READ):
                    f.write(chunk)
            final_name = _disposition_name(resp.headers.get("Content-Disposition"))
            effective = _url_name(str(resp.url))
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        _unlink(tmp)
        return UrlFailure(url, _url_name(url) or shown, where, _why(exc))
    if dest is not None:
        final = dest
    elif final_name:
        final = os.path.join(dest_dir, final_name)
    elif effective:
        final = os.path.join(dest_dir, effective)
    else:
        final = tmp[:-len(".part")] if tmp.endswith(".part") else tmp
    _commit(tmp, final)
    return final


# -- databases -----------------------------------------------------------------------------


def _validators_path(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.validators")


def _read_validators(path: str) -> dict[str, str]:
    try:
        with open(_validators_path(path)) as fh:
            data = json.load(fh)
        return {k: str(v) for k, v in data.items() if k in ("etag", "last_modified")}
    except (OSError, ValueError, AttributeError):
        return {}


def _conditional_headers(current: str) -> dict[str, str]:
    """If-None-Match / If-Modified-Since for the database file we have (if any)."""
    try:
        st = os.stat(current)
    except OSError:
        return {}
    headers = {"If-Modified-Since": email.utils.formatdate(st.st_mtime, usegmt=True)}
    etag = _read_validators(current).get("etag")
    if etag:
        headers["If-None-Match"] = etag
    return headers


async def refresh_databases(handle: Handle, dbs: Sequence[SyncDatabase] | None = None, *,
                            force: bool = False, target_dir: str | None = None,
                            progress: DownloadProgressCallback | None = None,
                            cancel: asyncio.Event | None = None,
                            event: EventCallback | None = None,
                            question: QuestionCallback | None = None,
                            settings: DownloadSettings | None = None) -> dict[str, bool]:
    """``-Sy`` (``force``: ``-Syy``): ``name -> changed`` for every database refreshed.

    Fetches ``<name><dbext>`` (``.files`` for ``-Fy``) from the repository's
    mirrors with conditional requests unless ``force``; a 304 leaves the file
    untouched. The detached ``.sig`` is fetched when the database signature
    level checks signatures and verified with :mod:`alpmd.engine.signing` when
    that module is available. The new files replace the old ones atomically in
    ``target_dir`` (default ``<dbpath>/sync/``); validators for the next
    conditional request come from ``target_dir`` or, failing that, the live
    sync directory. Databases not usable for syncing (``Usage``) are skipped.
    Raises ``AlpmError(RETRIEVE)`` after trying all of them if any failed
    (``details['changed']`` holds the others' results, ``details['failed']``
    the reasons).
    """
    run = _Run(handle, settings or DEFAULT_SETTINGS, progress, event)
    from alpmd.engine.config import Usage

    chosen = list(dbs) if dbs is not None else list(handle.syncdbs)
    chosen = [db for db in chosen if db.repo is None or Usage.SYNC in db.repo.usage]
    ext = handle.options.dbext
    results: dict[str, bool] = {}
    failed: dict[str, str] = {}
    run.files_total = len(chosen)

    async def one(db: SyncDatabase) -> None:
        live_dir = os.path.dirname(db.path)
        out_dir = target_dir or live_dir
        os.makedirs(out_dir, exist_ok=True)
        filename = db.name + ext
        dest = os.path.join(out_dir, filename)
        mirrors = [m for m in run.mirrors_for(db) if not m.cache]   # never for databases
        if not mirrors:
            failed[db.name] = "no servers configured for repository"
            return
        current = dest if os.path.exists(dest) else os.path.join(live_dir, filename)
        tmp = tempfile.mkdtemp(prefix=".alpmd-refresh-", dir=out_dir)
        try:
            job = _Job(filename, os.path.join(tmp, filename), mirrors, resume=False,
                       conditional={} if force else _conditional_headers(current),
                       check=lambda path: _check_db(path, filename), limit=MAX_DB_DOWNLOAD)
            try:
                outcome = await run.fetch(job)
            except AlpmError as exc:
                failed[db.name] = exc.message
                return
            assert outcome is not None
            run.files_done += 1
            if outcome.status == 304:
                results[db.name] = False
                run.emit(DatabaseUpToDate(db.name))
                return
            os.replace(job.part, job.dest)
            level = db.repo.siglevel if db.repo is not None else handle.options.siglevel
            has_sig = False
            if level.database.check is not SigCheck.NEVER:
                sig = _Job(filename + ".sig", job.dest + ".sig", mirrors, resume=False,
                           optional=level.database.check is SigCheck.OPTIONAL,
                           limit=MAX_SIG_SIZE)
                try:
                    has_sig = await run.fetch(sig) is not None
                    if has_sig:
                        os.replace(sig.part, sig.dest)
                    await asyncio.to_thread(_verify_db_signature, handle, job.dest, level,
                                            question)
                except AlpmError as exc:
                    failed[db.name] = exc.message
                    return
            mtime = _http_time(outcome.last_modified)
            if mtime is not None:
                os.utime(job.dest, (mtime, mtime))
            if has_sig:
                _commit(job.dest + ".sig", dest + ".sig")
            else:
                _unlink(dest + ".sig")
            _commit(job.dest, dest)
            _write_validators(dest, outcome)
            results[db.name] = True
            if target_dir is None:
                db.invalidate()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    async def everything() -> None:
        async with _session(run) as run.session:
            await asyncio.gather(*(one(db) for db in chosen))

    await _cancellable(everything(), cancel)
    if failed:
        text = "; ".join(f"{name}: {why}" for name, why in failed.items())
        raise AlpmError(ErrorCode.RETRIEVE, f"failed to synchronize databases: {text}",
                        failed=failed, changed=results)
    return results


def _check_db(path: str, label: str) -> None:
    """A mirror's answer must read as a database archive (not an error page)."""
    with open(path, "rb") as fh:
        data = fh.read()
    read_db_archive(data, label)


def _verify_db_signature(handle: Handle, path: str, level: SigLevel,
                         question: QuestionCallback | None) -> None:
    signing.verify_database(handle, path, level, question=question)


def _http_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def _write_validators(dest: str, outcome: _Outcome) -> None:
    path = _validators_path(dest)
    data = {k: v for k, v in (("etag", outcome.etag), ("last_modified", outcome.last_modified))
            if v}
    if not data:
        _unlink(path)
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
