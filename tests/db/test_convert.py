"""``alpm -D --convert``: files → SQLite → files, with pacman reading before and after.

pacman installs packages (a scriptlet, a changelog, backup files, an mtree) on a
root; alpm converts the local database to SQLite, answers the same queries as
pacman did, and converts back: every file of every entry is byte-identical
and pacman's -Qi/-Ql/-Qkk/-Qc say what they said before.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alpmd.engine.db.convert import convert_dbpath
from alpmd.engine.db.sqlite import STORE_NAME
from alpmd.engine.db.stores import Store, stores_present
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.journal import journal_path
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.trans.harness import run_alpm

pytestmark = pytest.mark.oracle

QUERIES = [("-Qi",), ("-Qii", "app"), ("-Ql",), ("-Qkk",), ("-Qc", "app"), ("-Q",),
           ("-Qs", "lib"), ("-Qo", "usr/lib/libfoo.so.1"), ("-Dk",)]


def _entries(dbpath: Path) -> dict[str, bytes]:
    local = dbpath / "local"
    out = {}
    for dirpath, _dirs, files in os.walk(local):
        for name in files:
            full = Path(dirpath, name)
            out[str(full.relative_to(local))] = full.read_bytes()
    return out


@pytest.fixture
def installed(pacman_root: PacmanRoot, tmp_path: Path) -> PacmanRoot:
    pkgs = tmp_path / "pkgs"
    app = build_package(pkgs, PkgMeta("app", "1:2.0-3", desc="An app", depends=["libfoo>=1"],
                                      optdepends=["vim: edit"], groups=["tools"]),
                        [FileSpec("etc/app.conf", b"k=v\n"), FileSpec("usr/bin/app", b"#!\n",
                                                                       mode=0o755)],
                        backup=["etc/app.conf"], install="post_install() {\n  :\n}\n",
                        extra_members=[(".CHANGELOG", b"2.0: better\n")], compression="gz")
    lib = build_package(pkgs, PkgMeta("libfoo", "1.2-1", desc="The foo library",
                                      provides=["libfoo.so=1-64"]),
                        [FileSpec("usr/lib/libfoo.so.1", b"\x7fELF")])
    pacman_root.pacman("-U", "--asdeps", str(lib), check=True)
    pacman_root.pacman("-U", str(app), check=True)
    (pacman_root.root / "etc/app.conf").write_bytes(b"k=changed\n")  # -Qkk has a finding
    return pacman_root


def _pacman_says(root: PacmanRoot) -> dict[tuple[str, ...], tuple[int, str, str]]:
    out = {}
    for q in QUERIES:
        r = root.pacman(*q)
        out[q] = (r.returncode, r.stdout, r.stderr)
    return out


def test_round_trip_is_lossless_and_pacman_reads_it(installed: PacmanRoot) -> None:
    dbpath = installed.dbpath
    before = _entries(dbpath)
    assert "app-1:2.0-3/changelog" in before and "app-1:2.0-3/install" in before
    pacman_before = _pacman_says(installed)
    assert pacman_before[("-Qc", "app")][1] == "Changelog for app:\n2.0: better\n\n"
    assert "app: 6 total files" in pacman_before[("-Qkk",)][1]  # .INSTALL is checked too

    code, out, err = run_alpm(installed, ["-D", "--convert", "sqlite"])
    assert code == 0, err
    assert "converted 2 entries from files to sqlite" in out
    assert stores_present(str(dbpath)) == [Store.SQLITE]
    moved = [n for n in os.listdir(dbpath) if n.startswith("local.alpmd-old-")]
    assert len(moved) == 1, os.listdir(dbpath)
    aside = {str(p.relative_to(dbpath / moved[0])): p.read_bytes()
             for p in (dbpath / moved[0]).rglob("*") if p.is_file()}
    assert aside == before  # the old store is kept, untouched

    # Every query alpm answers from SQLite is what pacman answered from the files.
    for q, want in pacman_before.items():
        if q == ("-Dk",):
            continue  # pacman's -Dk reads local/ itself
        got = run_alpm(installed, list(q))
        assert got == want, repr((q, got, want))

    code, _out, err = run_alpm(installed, ["-D", "--convert", "sqlite"])
    assert code == 1 and "already uses the sqlite backend" in err

    code, out, err = run_alpm(installed, ["-D", "--convert", "files"])
    assert code == 0, err
    assert stores_present(str(dbpath)) == [Store.FILES]
    assert any(n.startswith(STORE_NAME + ".alpmd-old-") for n in os.listdir(dbpath))
    assert _entries(dbpath) == before
    after = _pacman_says(installed)
    for q, want in pacman_before.items():
        assert after[q] == want, repr((q, after[q], want))


def test_refusals(tmp_path: Path) -> None:
    root = PacmanRoot(tmp_path / "r")
    dbpath = str(root.dbpath) + "/"
    result = convert_dbpath(dbpath, Store.SQLITE)  # an empty database converts too
    assert result.entries == 0 and stores_present(dbpath) == [Store.SQLITE]
    with pytest.raises(AlpmError) as exc:
        convert_dbpath(dbpath, Store.SQLITE)
    assert exc.value.code is ErrorCode.DB_NOT_NULL
    Path(journal_path(dbpath)).write_text("")
    with pytest.raises(AlpmError) as exc:
        convert_dbpath(dbpath, Store.FILES)
    assert exc.value.code is ErrorCode.TRANS_ABORT
    os.unlink(journal_path(dbpath))
    result = convert_dbpath(dbpath, Store.FILES)
    assert result.entries == 0 and result.moved_aside is not None
    assert (root.dbpath / "local/ALPM_DB_VERSION").read_text() == "9\n"
    code, _out, err = run_alpm(root, ["-D", "--convert", "xml"])
    assert code == 1 and "invalid backend 'xml'" in err


def test_failed_conversion_leaves_the_old_store_untouched(tmp_path: Path) -> None:
    """The system refuses the new store's writes (file size limit): the files stay as they were."""
    import resource
    import signal

    from alpmd.engine.db.local import LocalDatabase
    from alpmd.engine.formats.files import FileList

    root = PacmanRoot(tmp_path / "r")
    db = LocalDatabase(str(root.dbpath), durable=False)
    for i in range(30):
        db.add(PkgMeta(f"p{i:02}", "1.0-1", desc="d" * 500),
               FileList(files=[f"usr/share/p{i:02}/{'f' * 100}{j}" for j in range(300)]))
    before = _entries(root.dbpath)
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 17, resource.RLIM_INFINITY))
            try:
                convert_dbpath(str(root.dbpath), Store.SQLITE)
                code = 2
            except AlpmError as exc:
                code = 0 if exc.code in (ErrorCode.DB_WRITE, ErrorCode.DISK_SPACE,
                                         ErrorCode.DB_CREATE) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _entries(root.dbpath) == before
    assert sorted(os.listdir(root.dbpath)) == ["local", "sync"]
    assert stores_present(str(root.dbpath)) == [Store.FILES]
