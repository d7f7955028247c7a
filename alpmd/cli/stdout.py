"""Standard output that cannot stop a change midway.

pacman ignores failed writes to its output: ``pacman -Qq > /dev/full`` says
nothing and exits 0, and a pacman writing to a pipe whose reader left dies of
SIGPIPE, in the middle of a transaction if one runs. Ours says it and exits 1
(as other tools do: a script must not believe an output that was not written),
and never lets a lost output interrupt a change: an operation that only reads
stops at the first failed write (:class:`OutputLost`), one that may change the
system goes on to its end with the rest of its output dropped. Standard error is
written the same way and never stops anything: a warning that cannot be written
in the middle of a commit is dropped.
"""

from __future__ import annotations

import errno
import io
import os
import sys


class OutputLost(Exception):
    """A read-only operation's output could not be written: it stops there."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


class GuardedOutput(io.FileIO):
    """Descriptor 1 under ``sys.stdout``: remembers the first failed write (``lost``)."""

    def __init__(self, fd: int, *, stop: bool) -> None:
        super().__init__(fd, "w", closefd=False)
        #: Whether a failed write stops the operation (it only reads).
        self.stop = stop
        self.lost: OSError | None = None

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.lost is None:
            try:
                return super().write(b)
            except OSError as exc:
                self.lost = exc
                if self.stop:
                    raise OutputLost(exc) from None
        return memoryview(b).nbytes  # dropped: the rest of the output goes nowhere

    @property
    def quietly(self) -> bool:
        """Lost to a reader that left (``| head``): nothing to say about it."""
        return self.lost is not None and self.lost.errno == errno.EPIPE


def guard_streams(*, stop: bool) -> GuardedOutput | None:
    """Put ``sys.stdout`` on a :class:`GuardedOutput` (None when it is not a real file),
    and ``sys.stderr`` on one that never stops anything: a warning that cannot be written
    in the middle of a commit (``alpm -U … 2>&1 | head -c1``) is dropped, not raised.

    A standard descriptor the command was started without (``alpm -Q >&-``) becomes
    ``/dev/null`` first: a file opened later would otherwise take its number, and a
    scriptlet's or a hook's output would be written into that file.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
    _guard_stderr()
    old = sys.stdout
    if old is None:
        raw = GuardedOutput(1, stop=stop)
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(raw), errors="surrogateescape")
        return raw
    try:
        fd = old.fileno()
    except (OSError, ValueError):  # not a real file (a caller's main() with a StringIO)
        return None
    raw = GuardedOutput(fd, stop=stop)
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(raw), encoding=old.encoding,
                                  errors=old.errors, line_buffering=bool(old.line_buffering))
    return raw


def _guard_stderr() -> None:
    """``sys.stderr`` on descriptor 2 through a :class:`GuardedOutput` that drops what it
    cannot write (unbuffered, as Python's own standard error is written through)."""
    old = sys.stderr
    encoding, errors = "utf-8", "backslashreplace"
    if old is not None:
        try:
            if old.fileno() != 2:
                return  # not the process's own (a caller's main() with a StringIO)
        except (OSError, ValueError):
            return
        encoding, errors = old.encoding, old.errors or errors
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(GuardedOutput(2, stop=False)),
                                  encoding=encoding, errors=errors, line_buffering=True,
                                  write_through=True)
