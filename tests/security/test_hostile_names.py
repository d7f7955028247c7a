"""A hostile package's names cost the reader memory in proportion to the archive, never
more: every walk keeps each entry's path and each directory the paths imply (to refuse
entries below a symlink), and any user may have the daemon read a package (InspectFile)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from alpmd.engine.archive import MAX_NAME_BYTES, read_package_archive
from alpmd.engine.errors import AlpmError, ErrorCode
from tests.security.secworld import World, named

INFO = b"pkgname = deep\npkgbase = deep\npkgver = 1-1\narch = any\nsize = 1\n"


def _package(out: Path, names: list[str], *, level: int = 6) -> Path:
    path = out / "deep-1-1-any.pkg.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=level) as tar:
        meta = tarfile.TarInfo(".PKGINFO")
        meta.size = len(INFO)
        tar.addfile(meta, io.BytesIO(INFO))
        for name in names:
            tar.addfile(tarfile.TarInfo(name))
    path.chmod(0o644)
    return path


def _deep(out: Path, count: int = 400, depth: int = 2000) -> Path:
    """``count`` empty files, each ``depth`` levels down in a tree of its own: 9 KB."""
    deep = "/".join(["a"] * depth)
    return _package(out, [f"b{i}/{deep}/f" for i in range(count)])


def test_deep_paths_in_their_own_trees_are_refused_by_the_daemon(world: World) -> None:
    """Before: the walk kept every ancestor of each path as a string of its own, so a
    9 KB package of 400 paths 2,000 levels deep made the daemon hold 1.6 GB while any
    user's InspectFile read it (2,000 such paths: 8 GB). Now the names a walk keeps are
    bounded and the package is refused as over the archive limits."""
    pkg = _deep(world.public)
    assert pkg.stat().st_size < 16 * 1024
    before = _rss(world.proc.pid)
    results = world.hostile([{"iface": "org.alpm.Query1", "member": "InspectFile",
                              "sig": "h", "body": [0], "fds": [{"open": str(pkg)}]}])
    assert named(results[0]) == "org.alpm.Error.InvalidArgs", results
    assert results[0]["text"].startswith("archive-limit: "), results
    assert "take more than" in results[0]["text"], results
    # what the refusal cost stays well below the archive's names (a coarse bound: RSS)
    assert _rss(world.proc.pid) - before < MAX_NAME_BYTES * 2
    world.healthy()


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_long_names_are_bounded_below_the_inflation_ratio(tmp_path: Path) -> None:
    """Names alone: 36,000 paths of 4,000 characters are 144 MB of names in 190 MB of tar
    (below the 256 MiB read before the inflation ratio is watched), a 1 MB file. They
    were all kept; now the walk stops at MAX_NAME_BYTES."""
    stem = "x" * 3990
    pkg = _package(tmp_path, [f"usr/{i:06d}{stem}" for i in range(36_000)], level=1)
    assert pkg.stat().st_size < 8 * 1024 * 1024
    with pytest.raises(AlpmError) as err:
        read_package_archive(pkg)
    assert err.value.code is ErrorCode.ARCHIVE_LIMIT, err.value
    assert err.value.details["entry"].startswith("usr/"), err.value.details


def test_a_large_real_shaped_package_is_read(tmp_path: Path) -> None:
    """The bound is far above real packages: 100,000 files of 100-character paths in
    2,000 directories read as before."""
    names = [f"usr/share/pkg/d{i % 2000:04d}/{'n' * 70}{i:06d}" for i in range(100_000)]
    pkg = _package(tmp_path, names, level=1)
    got = read_package_archive(pkg)
    assert got.files is not None and len(got.files.files) == 100_000
