"""Names and versions that cannot name a database entry are refused before anything is written.

The packages are written by hand with Python's ``tarfile`` (no builder that might
refuse them first). Whichever gate stops them — the package reader or the
transaction's own check at prepare — nothing is extracted, no journal or lock
is left, and the next transaction works.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import TransFlag
from alpmd.engine.handle import Handle
from alpmd.engine.journal import journal_path, staging_dir
from alpmd.engine.package import Origin, Package
from alpmd.engine.trans import Transaction, check_identity

BAD = [("a/b", "1.0-1"), ("..", "1.0-1"), (".hidden", "1.0-1"), ("-dash", "1.0-1"),
       ("x", "1.0/2-1"), ("x", "../../1-1"), ("x", ".1-1"), ("x", "1.0"), ("x", "1 0-1"),
       ("x", "1.0-1/2")]
GOOD = [("a", "1.0-1"), ("lib32-gcc+extra_2@x", "2:1.0.r12.gabc_def+x~y-1.5"),
        ("Upper.Case", "0-0")]


def _handcrafted(path: Path, name: str, version: str) -> Path:
    info = f"pkgname = {name}\npkgver = {version}\narch = any\nsize = 5\n".encode()
    with tarfile.open(path, "w:gz") as tar:
        for member, data in ((".PKGINFO", info), ("usr/share/evil/data", b"data\n")):
            ti = tarfile.TarInfo(member)
            ti.size = len(data)
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(data))
    return path


def _handle(root: Path) -> Handle:
    return Handle(root=str(root), cachedirs=[str(root / "var/cache/pacman/pkg")],
                  use_snapshots=False)


@pytest.mark.parametrize(("name", "version"), BAD)
def test_invalid_identity_is_refused_before_anything_is_written(tmp_path: Path, name: str,
                                                                version: str) -> None:
    root = tmp_path / "root"
    (root / "var/lib/pacman").mkdir(parents=True)
    bad = _handcrafted(tmp_path / "bad.pkg.tar.gz", name, version)
    h = _handle(root)
    try:
        with Transaction(h, TransFlag.NONE) as t, pytest.raises(AlpmError) as err:
            t.add_file(str(bad))
            t.prepare()
            t.commit()
        assert err.value.code in (ErrorCode.PKG_INVALID, ErrorCode.PKG_INVALID_NAME), err.value
        assert t.plan is None, "refused at prepare at the latest"
    finally:
        h.release()
    assert not (root / "usr").exists()
    dbpath = root / "var/lib/pacman"
    assert not os.path.exists(journal_path(str(dbpath)))
    assert not (dbpath / "db.lck").exists()
    assert not (dbpath / "local").exists() or not os.listdir(dbpath / "local") or \
        os.listdir(dbpath / "local") == ["ALPM_DB_VERSION"]
    assert not os.path.exists(staging_dir(str(dbpath)))
    # the next transaction works
    good = _handcrafted(tmp_path / "good.pkg.tar.gz", "good", "1.0-1")
    h = _handle(root)
    try:
        with Transaction(h, TransFlag.NONE) as t:
            t.add_file(str(good))
            t.prepare()
            t.commit()
        assert h.localdb.versions == {"good": "1.0-1"}
    finally:
        h.release()
    assert (root / "usr/share/evil/data").read_bytes() == b"data\n"


@pytest.mark.parametrize(("name", "version"), BAD)
def test_the_transaction_gate_refuses_what_a_reader_let_through(name: str, version: str) -> None:
    """The last gate on its own (a package object as any reader could produce it)."""
    with pytest.raises(AlpmError) as err:
        check_identity(Package(name, version, Origin.FILE, path="/x/p.pkg.tar.zst"))
    assert err.value.code is ErrorCode.PKG_INVALID
    assert "p.pkg.tar.zst" in err.value.message


@pytest.mark.parametrize(("name", "version"), GOOD)
def test_valid_identities_pass(name: str, version: str) -> None:
    check_identity(Package(name, version, Origin.FILE, path="/x/p.pkg.tar.zst"))
