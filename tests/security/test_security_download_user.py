"""What a compromised DownloadUser can hand back to root: files left in its download
directory (root must follow no symbolic link, adopt no file hard-linked from elsewhere,
keep no file writable by others) and the messages of the download process (data only,
never code). DownloadUser's behaviour itself is in tests/behaviours/test_download_user.py."""

from __future__ import annotations

import os
import pickle
import signal
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from alpmd.engine import download
from alpmd.testing.mirror import MirrorServer
from alpmd.testing.oracle import PacmanRoot
from tests.behaviours import test_download_user as dluser
from tests.behaviours.test_download_user import NOBODY, _alpm, _cache_is_roots, _configure

#: DownloadUser's fixtures: a root and its mirror below a directory the user can reach
world = dluser.world
tmp_path = dluser.tmp_path

#: a uid nobody uses: a file of its would become root's if root followed a link to it
STRANGER = 54321


def test_what_the_download_user_plants_is_not_adopted(world: tuple[PacmanRoot, MirrorServer],
                                                      tmp_path: Path) -> None:
    """The transfer leaves its file world-writable, a symbolic link to another user's file
    and a hard link to a file of its own. Before: the file came into the cache as root's
    but still mode 0666 (any local user could then change a cached package); the moves
    after a check followed whatever a lingering process of the user put in its place."""
    root, mirror = world
    victim = tmp_path / "victim"
    victim.write_bytes(b"someone else's\n")
    os.chown(victim, STRANGER, STRANGER)
    victim.chmod(0o600)
    own = tmp_path / "own"
    own.mkdir()
    os.chown(own, NOBODY.pw_uid, NOBODY.pw_gid)
    script = tmp_path / "xfer"
    script.write_text(
        "#!/bin/sh\nset -e\n/usr/bin/curl -sf -o \"$2\" \"$1\"\nchmod 0666 \"$2\"\n"
        "d=$(dirname \"$2\")\n"
        f"ln -sf {victim} \"$d/link-1.0-1-any.pkg.tar.zst\"\n"
        f"echo mine > {own}/mine\n"
        f"ln -f {own}/mine \"$d/hard-1.0-1-any.pkg.tar.zst\"\n")
    script.chmod(0o755)
    _configure(root, mirror, f"DownloadUser = nobody\nDisableSandbox\n"
                             f"XferCommand = {script} %u %o\n")
    r = _alpm(root, "-S", "-w", "foo")
    assert r.returncode == 0, r.stdout + r.stderr
    _cache_is_roots(root)
    names = sorted(p.name for p in root.cachedir.iterdir())
    assert names == ["foo-1.0-1-any.pkg.tar.zst"], names
    st = os.lstat(root.cachedir / names[0])
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644
    vst = os.lstat(victim)
    assert (vst.st_uid, stat.S_IMODE(vst.st_mode)) == (STRANGER, 0o600)
    ost = os.lstat(own / "mine")
    assert (ost.st_uid, ost.st_nlink) == (NOBODY.pw_uid, 1)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_lingering_writer_cannot_change_the_cached_package(
        world: tuple[PacmanRoot, MirrorServer], tmp_path: Path) -> None:
    """The transfer leaves a process of the download user behind holding the downloaded
    file open for writing; once the download is over it overwrites the file's first bytes.
    Before: root took the file itself back (chown, chmod, rename), and the descriptor still
    wrote into it: the cached package could change after its checksum and signature were
    checked and before it was extracted. Now root keeps a copy of its own."""
    root, mirror = world
    box = tmp_path / "box"
    box.mkdir()
    os.chown(box, NOBODY.pw_uid, NOBODY.pw_gid)
    pidfile = box / "pid"
    script = tmp_path / "xfer"
    script.write_text(
        "#!/bin/sh\nset -e\n/usr/bin/curl -sf -o \"$2\" \"$1\"\n"
        "case \"$2\" in *.pkg.tar.zst*)\n"
        "  setsid sh -c 'exec 3<>\"$1\"; trap \"printf EVIL >&3; exit 0\" USR1; "
        f"echo $$ > {pidfile}; while :; do sleep 0.05; done' linger \"$2\" "
        "</dev/null >/dev/null 2>&1 &\n;;\nesac\n")
    script.chmod(0o755)
    _configure(root, mirror, f"DownloadUser = nobody\nDisableSandbox\n"
                             f"XferCommand = {script} %u %o\n")
    r = _alpm(root, "-S", "-w", "foo")
    assert r.returncode == 0, r.stdout + r.stderr
    for _ in range(400):  # (the lingering process starts on its own time)
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    try:
        assert os.stat(f"/proc/{pid}").st_uid == NOBODY.pw_uid  # it is the user's, alive
        os.kill(pid, signal.SIGUSR1)
        for _ in range(400):
            if _gone(pid):
                break
            time.sleep(0.05)
        assert _gone(pid), "the lingering writer did not write"
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
    name = "foo-1.0-1-any.pkg.tar.zst"
    _cache_is_roots(root)
    assert sorted(p.name for p in root.cachedir.iterdir()) == [name]
    served = (tmp_path / "srv" / name).read_bytes()
    assert (root.cachedir / name).read_bytes() == served
    st = os.lstat(root.cachedir / name)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)


class _Hostile:
    """What a download process taken over could send: unpickled, it runs a command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_the_download_process_cannot_make_root_run_anything(tmp_path: Path) -> None:
    """Root reads the child's messages from a pipe; the child runs as DownloadUser and
    parses what mirrors send. Before: whatever it sent was unpickled as it came, so a
    child taken over could name ``os.system`` and have root run a command."""
    marker = tmp_path / "ran"
    r, w = os.pipe()
    try:
        download._send(w, ("done", _Hostile(marker)))
        with pytest.raises(pickle.UnpicklingError, match="posix.system"):
            download._receive(r)
        assert not marker.exists()
        # what the child really sends still comes through
        sent = ("event", download.DownloadDone("foo.pkg.tar.zst", 3, ("m",)))
        download._send(w, sent)
        assert download._receive(r) == sent
    finally:
        os.close(r)
        os.close(w)


def test_a_file_growing_while_taken_back_is_copied_as_far_as_its_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lingering process of the download user appends to its file while root copies it
    (each copy step is followed by another megabyte, as a writer keeping pace would add).
    Before: root copied until it found an end, which such a writer (or a sparse file grown
    past the disk) never let come: the cache filled. Now the copy stops at the size the
    file had when root opened it."""
    staging, dest = tmp_path / "download-x", tmp_path / "cache"
    staging.mkdir()
    dest.mkdir()
    first = os.urandom(3 << 20)
    (staging / "foo-1.0-1-any.pkg.tar.zst").write_bytes(first)
    real_copy, real_pread = os.copy_file_range, os.pread
    appended = []

    def grow(src: int, n: int) -> None:  # (a writer adding what root just copied)
        if n and len(appended) < 8:
            with open(f"/proc/self/fd/{src}", "ab") as fh:
                fh.write(b"\0" * (1 << 20))
            appended.append(n)

    def copying(src: int, dst: int, count: int, offset: int | None = None) -> int:
        n = real_copy(src, dst, min(count, 1 << 20), offset)
        grow(src, n)
        return n

    def reading(src: int, count: int, offset: int) -> bytes:  # (a file system without it)
        chunk = real_pread(src, min(count, 1 << 20), offset)
        grow(src, len(chunk))
        return chunk
    monkeypatch.setattr(os, "copy_file_range", copying)
    monkeypatch.setattr(os, "pread", reading)
    download._take_back(str(staging), str(dest))
    assert appended, "the file did not grow while it was copied"
    assert (dest / "foo-1.0-1-any.pkg.tar.zst").read_bytes() == first


def test_the_download_process_cannot_make_root_hold_gigabytes(tmp_path: Path) -> None:
    """A child taken over announces a message of 4 GiB and sends it. Before: root read it
    all into memory (appending each pipe read to the rest, quadratic), then unpickled it.
    Now a message over the largest the child sends is refused before its body is read."""
    r, w = os.pipe()
    try:
        os.write(w, (0xFFFFFFFF).to_bytes(4, "big") + b"x" * 1000)
        os.close(w)
        w = -1
        with pytest.raises(pickle.UnpicklingError, match="4294967295 bytes"):
            download._receive(r)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
