"""Reading many package files at once (``-U``): forked readers give what one process reads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from alpmd.engine.archive import load_package_files
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle
from alpmd.engine.package import Package
from alpmd.engine.trans import Transaction
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.trans.harness import run_alpm

COUNT = 24


def _build(dir: Path, count: int = COUNT) -> list[Path]:
    out = []
    for i in range(count):
        name = f"many{i:02d}"
        files = [FileSpec(f"usr/share/{name}/f{j}", f"{name} {j}\n".encode() * (i + 1))
                 for j in range(i % 5 + 1)]
        files.append(FileSpec(f"etc/{name}.conf", b"x=1\n"))
        out.append(build_package(dir, PkgMeta(name, f"1.{i}-1", desc=f"number {i}"), files,
                                 backup=[f"etc/{name}.conf"],
                                 install="post_install() {\n  :\n}\n" if i % 7 == 0 else None))
    return out


def _seen(pkg: Package) -> tuple[object, ...]:
    return (pkg.name, pkg.version, pkg.path, pkg.meta, pkg.filelist, pkg.mtree, pkg.scriptlet,
            pkg.has_scriptlet)


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_forked_readers_give_what_one_process_reads(tmp_path: Path) -> None:
    assert threading.active_count() == 1  # else nothing is forked and this proves nothing
    paths = [str(p) for p in _build(tmp_path)]
    serial = [_seen(p) for p in load_package_files(paths, workers=1)]
    forked = [_seen(p) for p in load_package_files(paths, workers=2)]
    three = [_seen(p) for p in load_package_files(paths, workers=3)]
    assert len(serial) == COUNT
    assert forked == serial
    assert three == serial
    assert [s[0] for s in serial] == [f"many{i:02d}" for i in range(COUNT)]


@pytest.mark.parametrize("bad", [[20], [20, 22], [3, 20], [0], [COUNT - 1]])
def test_the_first_bad_file_in_order_fails(tmp_path: Path, bad: list[int]) -> None:
    """A file a forked reader cannot read is read again here: its own error, in order."""
    paths = [str(p) for p in _build(tmp_path)]
    for i in bad:
        _corrupt(Path(paths[i]))
    errors = []
    for workers in (1, 2):
        with pytest.raises(AlpmError) as err:
            list(load_package_files(paths, workers=workers))
        errors.append((err.value.code, err.value.message))
        trans = Transaction(Handle(root=str(tmp_path / f"root{workers}")))
        with pytest.raises(AlpmError) as err:
            trans.add_files(paths, workers=workers)
        assert err.value.details["target_index"] == bad[0]
        assert paths[bad[0]] in err.value.message
        # as add_file one by one: the files before the bad one were added
        assert [p.name for p in trans.files] == [f"many{i:02d}" for i in range(bad[0])]
    assert errors[0] == errors[1]
    assert errors[0][0] in (ErrorCode.LIBARCHIVE, ErrorCode.PKG_INVALID, ErrorCode.PKG_OPEN)


def test_cli_names_the_bad_target_like_pacman(tmp_path: Path) -> None:
    paths = [str(p) for p in _build(tmp_path / "pkgs")]
    _corrupt(Path(paths[17]))
    ours, theirs = PacmanRoot(tmp_path / "ours"), PacmanRoot(tmp_path / "theirs")
    got = theirs.pacman("-U", *paths)
    code, out, err = run_alpm(ours, ["-U", *paths])
    assert got.returncode == 1
    assert f"'{paths[17]}'" in got.stderr
    assert code == got.returncode
    assert err.strip().splitlines()[-1] == got.stderr.strip().splitlines()[-1]
    assert not list((ours.dbpath / "local").glob("many*"))
    assert not list((theirs.dbpath / "local").glob("many*"))
