"""The commit marker names a process by PID and start time: a reused PID, or a live
process that no longer holds the lock, is a crash; the lock's live holder is not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpmd.dbus.recovery import CommitMarker
from alpmd.engine.config import load_config
from alpmd.engine.handle import Handle
from alpmd.engine.process import ProcessId, start_time
from alpmd.testing.oracle import PacmanRoot


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[Handle]:
    root = PacmanRoot(tmp_path / "root")
    root.write_config()
    h, _ = Handle.from_config(load_config(str(root.config)))
    yield h
    h.release()


def _mark(marker: CommitMarker, who: ProcessId, lockfile: str) -> None:
    Path(marker.state_dir).mkdir(parents=True, exist_ok=True)
    Path(marker.path).write_text(f"{who.pid} {who.start}\n{lockfile}\n")


def test_marker_knows_the_process_not_just_the_pid(tmp_path: Path, handle: Handle) -> None:
    marker = CommitMarker(str(tmp_path / "state") + "/")
    Path(handle.lockfile).write_text("")
    holder = subprocess.Popen([sys.executable, "-c", "import sys; f = open(sys.argv[1], \"a\"); "
                               "sys.stdin.read()", handle.lockfile], stdin=subprocess.PIPE)
    try:
        # wait until the child has the lock file open
        for _ in range(200):
            if handle.lock_holder().startswith(f"pid {holder.pid} "):
                break
            time.sleep(0.05)
        assert handle.lock_holder().startswith(f"pid {holder.pid} ")
        start = start_time(holder.pid)
        assert start is not None
        _mark(marker, ProcessId(holder.pid, start), handle.lockfile)
        assert not marker.crashed(handle)            # alive and holding the lock
        _mark(marker, ProcessId(holder.pid, start + 1), handle.lockfile)
        assert marker.crashed(handle)                # the same PID, another process
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    _mark(marker, ProcessId(holder.pid, start), handle.lockfile)
    assert marker.crashed(handle)                    # gone
    # a live process (our parent) that does not hold the lock left its marker: a crash
    parent = ProcessId(os.getppid(), start_time(os.getppid()))
    _mark(marker, parent, handle.lockfile)
    assert marker.crashed(handle)
