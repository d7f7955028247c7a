"""The same keyring and package files judged by Debian's pacman (``pacman -U``) and by us."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from alpmd.engine import keyring
from alpmd.engine.config import load_config
from alpmd.engine.errors import AlpmError
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle, Options
from alpmd.engine.signing import verify_database, verify_package
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.repogen import write_sync_db

from .conftest import Lab


def _good(lab: Lab, pkg: Path) -> None:
    s = lab.signer()
    lab.trust(s)
    s.sign(pkg)


def _tampered(lab: Lab, pkg: Path) -> None:
    _good(lab, pkg)
    with pkg.open("ab") as fh:
        fh.write(b"\0")


def _missing(lab: Lab, pkg: Path) -> None:
    pass


def _not_lsigned(lab: Lab, pkg: Path) -> None:
    s = lab.signer()
    lab.trust(s, lsign=False)
    s.sign(pkg)


def _marginal(lab: Lab, pkg: Path) -> None:
    intro, s = lab.signer("Introducer <i@example.org>"), lab.signer()
    lab.trust(intro)
    keyring.gpg_run(str(lab.gpgdir), "--import-ownertrust",
                    input=f"{intro.fingerprint}:4:\n".encode())
    intro.certify(s)
    lab.trust(s, lsign=False)
    keyring.gpg_run(str(lab.gpgdir), "--check-trustdb", check=False)
    s.sign(pkg)


def _expired_key(lab: Lab, pkg: Path) -> None:
    s = lab.signer("Old <old@example.org>", expire="1d", faked="20200101T000000")
    lab.trust(s)
    s.sign(pkg, faked="20200101T010000")


def _expired_sig(lab: Lab, pkg: Path) -> None:
    s = lab.signer("Past <past@example.org>", faked="20200101T000000")
    lab.trust(s)
    s.sign(pkg, faked="20200101T010000", expire="1d")


def _revoked(lab: Lab, pkg: Path) -> None:
    _good(lab, pkg)
    s = lab.homes[-1]
    rev = next((s / "openpgp-revocs.d").iterdir()).read_text()
    keyring.gpg_run(str(lab.gpgdir), "--import",
                    input=rev.replace(":-----BEGIN", "-----BEGIN").encode())


def _disabled(lab: Lab, pkg: Path) -> None:
    s = lab.signer()
    lab.trust(s)
    s.sign(pkg)
    keyring.disable_keys(str(lab.gpgdir), [s.fingerprint])


SCENARIOS: dict[str, Callable[[Lab, Path], None]] = {
    "good": _good, "tampered": _tampered, "missing": _missing, "not-lsigned": _not_lsigned,
    "marginal": _marginal, "expired-key": _expired_key, "expired-sig": _expired_sig,
    "revoked": _revoked, "disabled": _disabled,
}


@pytest.mark.oracle
@pytest.mark.parametrize("level", ["Required", "Optional TrustAll"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_verdict_as_pacman(lab: Lab, tmp_path: Path, scenario: str, level: str) -> None:
    root = PacmanRoot(tmp_path / "oracle", options={"SigLevel": level})
    gnupg = root.root / "etc/pacman.d/gnupg"
    gnupg.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(lab.gpgdir, gnupg)
    pkg = lab.package(outdir=tmp_path / "in")
    SCENARIOS[scenario](lab, pkg)

    theirs = root.pacman("-U", str(pkg))
    pacman_ok = theirs.returncode == 0

    cfg = load_config(root.config)
    handle = Handle(Options.from_config(cfg, use_snapshots=False))
    try:
        verify_package(handle, str(pkg), None, handle.options.local_file_siglevel)
        ours_ok = True
    except AlpmError:
        ours_ok = False
    assert ours_ok == pacman_ok, theirs.stdout + theirs.stderr


@pytest.mark.oracle
@pytest.mark.parametrize("scenario", ["good", "tampered", "missing", "not-lsigned"])
def test_database_same_verdict_as_pacman_sync(lab: Lab, tmp_path: Path, scenario: str) -> None:
    """``pacman -Sy`` from a file:// server with DatabaseRequired checks core.db.sig."""
    root = PacmanRoot(tmp_path / "oracle", options={"SigLevel": "Required"})
    gnupg = root.root / "etc/pacman.d/gnupg"
    gnupg.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(lab.gpgdir, gnupg)
    srv = root.root / "srv/core"
    db = write_sync_db([PkgMeta(name="foo", version="1.0-1")], srv / "core.db")
    root.repos.append("core")
    root.write_config()
    SCENARIOS[scenario](lab, db)

    theirs = root.pacman("-Sy")
    pacman_ok = theirs.returncode == 0

    handle = Handle(Options.from_config(load_config(root.config), use_snapshots=False))
    repo = load_config(root.config).repo("core")
    assert repo is not None
    try:
        verify_database(handle, str(db), repo.siglevel)
        ours_ok = True
    except AlpmError:
        ours_ok = False
    assert ours_ok == pacman_ok, theirs.stdout + theirs.stderr
