"""An output that cannot be written: said, and never a reason to stop a change midway.

pacman ignores failed writes (``pacman -Qq > /dev/full`` exits 0 and says nothing;
``pacman -U x | head -c1`` dies of SIGPIPE, possibly in the middle of its commit).
``alpm`` reports a lost output and exits 1, stops a read-only operation at once, and
finishes a change whatever happens to its output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.journal import journal_path, wait_settled
from alpmd.testing.oracle import PACMAN, PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package

ENV = {**os.environ, "LC_ALL": "C"}
COUNT = 30


def _alpm(root: PacmanRoot, args: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-m", "alpmd.cli.alpm", *args[:1], *root.args(), "--color", "never",
           *args[1:]]
    return subprocess.run(cmd, env=ENV, timeout=120, **kw)  # type: ignore[call-overload, no-any-return]


def _packages(dir: Path) -> list[str]:
    return [str(build_package(dir, PkgMeta(f"lost{i:02d}", "1.0-1"),
                              [FileSpec(f"usr/share/lost{i:02d}/f", b"x\n")]))
            for i in range(COUNT)]


def _installed(root: PacmanRoot) -> list[str]:
    return sorted(p.name for p in (root.dbpath / "local").iterdir() if p.is_dir())


def _all_installed(root: PacmanRoot) -> None:
    """Every package is in, and the commit ended: its journal gone once its settler is."""
    assert _installed(root) == [f"lost{i:02d}-1.0-1" for i in range(COUNT)]
    wait_settled(str(root.dbpath))  # the last flush is the settler's (alpmd.engine.journal)
    assert not os.path.exists(journal_path(str(root.dbpath)))


def test_a_full_output_is_said_and_fails(tmp_path: Path) -> None:
    pkgs = _packages(tmp_path / "pkgs")
    ours, theirs = PacmanRoot(tmp_path / "ours"), PacmanRoot(tmp_path / "theirs")
    assert theirs.pacman("-U", *pkgs).returncode == 0
    assert _alpm(ours, ["-U", *pkgs], capture_output=True).returncode == 0
    with open("/dev/full", "wb") as full:
        pacman = subprocess.run([*_pacman_cmd(theirs), "-q"], stdout=full,
                                stderr=subprocess.PIPE, timeout=60)
        alpm = _alpm(ours, ["-Qq"], stdout=full, stderr=subprocess.PIPE)
    # pacman's weakness, for the record: the names were lost, and it says success
    assert pacman.returncode == 0 and pacman.stderr == b""
    assert theirs.pacman("-Qq").stdout.split() == [f"lost{i:02d}" for i in range(COUNT)]
    assert alpm.returncode == 1
    assert alpm.stderr.decode() == "error: could not write the output: No space left on device\n"


def _pacman_cmd(root: PacmanRoot) -> list[str]:
    return [PACMAN, "-Q", *root.args(), "--color", "never"]


def test_a_change_goes_on_to_its_end_when_its_output_is_lost(tmp_path: Path) -> None:
    pkgs = _packages(tmp_path / "pkgs")
    root = PacmanRoot(tmp_path / "full")
    with open("/dev/full", "wb") as full:
        res = _alpm(root, ["-U", "--debug", *pkgs], stdout=full, stderr=subprocess.PIPE)
    assert res.returncode == 1, res.stderr
    assert res.stderr.decode().endswith(
        "error: could not write the output: No space left on device\n")
    _all_installed(root)


def test_a_change_goes_on_when_the_reader_leaves(tmp_path: Path) -> None:
    """``| head -c1``: the reader leaves after one byte; the commit still ends, quietly."""
    pkgs = _packages(tmp_path / "pkgs")
    root = PacmanRoot(tmp_path / "pipe")
    reader = subprocess.Popen(["head", "-c1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert reader.stdin is not None
    try:
        res = _alpm(root, ["-U", "--debug", *pkgs], stdout=reader.stdin, stderr=subprocess.PIPE)
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    assert res.returncode == 0, res.stderr
    assert b"could not write" not in res.stderr
    _all_installed(root)


def test_a_closed_output_is_the_null_device(tmp_path: Path) -> None:
    """Started without descriptor 1, nothing the command opens may take its number."""
    pkgs = _packages(tmp_path / "pkgs")
    root = PacmanRoot(tmp_path / "closed")
    res = _alpm(root, ["-U", *pkgs], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                pass_fds=(), preexec_fn=lambda: os.close(1))
    assert res.returncode == 0, res.stderr
    assert _installed(root) == [f"lost{i:02d}-1.0-1" for i in range(COUNT)]
    again = _alpm(root, ["-Qq"], stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    assert again.returncode == 0, again.stderr


def _edited_configs(tmp_path: Path, root: PacmanRoot, count: int = 5) -> list[str]:
    """``count`` packages with a backup file the user edited, installed; their upgrades' files
    (each upgrade then warns, in the middle of the commit, that it made a ``.pacnew``)."""
    def build(version: str) -> list[str]:
        return [str(build_package(tmp_path / version, PkgMeta(f"cfg{i}", version),
                                  [FileSpec(f"etc/cfg{i}", f"v={version}\n".encode())],
                                  backup=[f"etc/cfg{i}"]))
                for i in range(count)]
    assert _alpm(root, ["-U", *build("1.0-1")], capture_output=True).returncode == 0
    for i in range(count):
        (root.root / f"etc/cfg{i}").write_text("edited\n")
    return build("2.0-1")


def _upgraded(root: PacmanRoot, count: int = 5) -> None:
    assert _installed(root) == [f"cfg{i}-2.0-1" for i in range(count)]
    assert sorted(p.name for p in (root.root / "etc").glob("cfg*.pacnew")) == [
        f"cfg{i}.pacnew" for i in range(count)]
    wait_settled(str(root.dbpath))
    assert not os.path.exists(journal_path(str(root.dbpath)))


def test_a_lost_standard_error_never_stops_a_change(tmp_path: Path) -> None:
    """The commit's warnings (a .pacnew made) go to a full standard error: dropped, and the
    upgrade goes on to its end."""
    root = PacmanRoot(tmp_path / "err")
    upgrades = _edited_configs(tmp_path, root)
    with open("/dev/full", "wb") as full:
        res = _alpm(root, ["-U", *upgrades], stdout=subprocess.DEVNULL, stderr=full)
    assert res.returncode == 0
    _upgraded(root)


def test_both_streams_to_a_reader_that_leaves(tmp_path: Path) -> None:
    """``alpm -U … 2>&1 | head -c1``: both streams lost after one byte; the upgrade ends."""
    root = PacmanRoot(tmp_path / "both")
    upgrades = _edited_configs(tmp_path, root)
    reader = subprocess.Popen(["head", "-c1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert reader.stdin is not None
    try:
        res = _alpm(root, ["-U", "--debug", *upgrades], stdout=reader.stdin,
                    stderr=subprocess.STDOUT)
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    assert res.returncode == 0
    _upgraded(root)
