"""Who holds the database lock is found by reading every process's descriptors (/proc):
work any user can make as long as they like (by keeping many descriptors open), so the
daemon never does it on its event loop, where it would stall every client's calls."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.security.secworld import World, manager_property

WATCH = 2.0  # seconds of the event loop's system calls looked at (4 watcher rounds)


def test_the_lock_holder_is_looked_for_off_the_event_loop(world: World) -> None:
    """While another program (here this test, as pacman would) holds the database lock,
    the event loop's thread (the daemon's main thread) reads no process's descriptors."""
    assert shutil.which("strace"), "strace is needed (Makefile APT_PACKAGES)"
    w = world
    lock = w.root.root.dbpath / "db.lck"
    with open(lock, "x") as held, tempfile.NamedTemporaryFile("r") as out:
        try:
            # the daemon sees it held (the watcher's round: a bounded wait, a hang guard)
            deadline = time.monotonic() + 30
            while not str(manager_property(w, "LockHolder")).startswith(f"pid {os.getpid()} "):
                assert time.monotonic() < deadline, str(manager_property(w, "LockHolder"))
                time.sleep(0.1)
            # the main thread only (no -f): the event loop's own system calls
            tracer = subprocess.Popen(
                ["strace", "-p", str(w.proc.pid), "-e", "trace=readlink,readlinkat",
                 "-o", out.name], stderr=subprocess.PIPE)
            time.sleep(WATCH)
            assert tracer.poll() is None, tracer.communicate()[1]
            tracer.send_signal(signal.SIGINT)
            err = tracer.communicate(timeout=30)[1]
            trace = Path(out.name).read_text()
        finally:
            held.close()
            lock.unlink()
    assert b"attached" in err, err
    scans = [line for line in trace.splitlines() if re.search(r'"/proc/\d+/fd/', line)]
    assert not scans, scans[:5]
    w.healthy()

