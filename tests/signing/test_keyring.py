"""The keyring manager (pacman-key's essentials) and the alpm-key front end."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from alpmd.cli import key as cli
from alpmd.engine import keyring
from alpmd.engine.errors import AlpmError, ErrorCode

from .conftest import Lab

ARCH_KEYRINGS = Path("/usr/share/keyrings")


def test_init_as_pacman_key(lab: Lab) -> None:
    conf = (lab.gpgdir / "gpg.conf").read_text().splitlines()
    for line in ("no-greeting", "no-permission-warning", "lock-never",
                 "keyserver-options timeout=10", "keyserver-options import-clean"):
        assert line in conf
    assert "disable-scdaemon" in (lab.gpgdir / "gpg-agent.conf").read_text().splitlines()
    master = keyring.master_key(str(lab.gpgdir))
    assert master is not None and master.fingerprint == lab.master
    assert master.uid == "Pacman Keyring Master Key <pacman@localhost>"
    [pub] = keyring.list_keys(str(lab.gpgdir), [lab.master])
    assert pub.ownertrust == "u" and pub.expires is None
    # a second init keeps the key and does not repeat lines
    assert keyring.init_keyring(str(lab.gpgdir), key_type="ed25519") == lab.master
    assert (lab.gpgdir / "gpg.conf").read_text().splitlines() == conf


def test_add_lsign_list_delete(lab: Lab) -> None:
    s = lab.signer()
    gpgdir = str(lab.gpgdir)
    keyring.add_keys(gpgdir, [str(s.export(s.home / "k.asc"))])
    key = keyring.find_key(gpgdir, s.fingerprint[-16:])
    assert key is not None and key.fingerprint == s.fingerprint and key.uid == s.uid
    assert not keyring.is_lsigned(gpgdir, s.fingerprint)
    keyring.lsign_keys(gpgdir, [s.fingerprint])
    assert keyring.is_lsigned(gpgdir, s.fingerprint)
    assert keyring.list_keys(gpgdir, [s.fingerprint])[0].validity == "f"
    assert {k.fingerprint for k in keyring.list_keys(gpgdir)} == {lab.master, s.fingerprint}
    keyring.delete_keys(gpgdir, [s.fingerprint])
    assert keyring.find_key(gpgdir, s.fingerprint) is None
    with pytest.raises(AlpmError) as exc:
        keyring.delete_keys(gpgdir, [s.fingerprint])
    assert exc.value.code is ErrorCode.GPGME and "could not be found locally" in str(exc.value)


def test_cli_mirrors_pacman_key(lab: Lab, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    gpgdir = tmp_path / "gnupg"
    conf = tmp_path / "pacman.conf"
    conf.write_text(f"[options]\nGPGDir = {gpgdir}/\n")
    try:
        assert cli.main(["--config", str(conf), "--init", "--key-type", "ed25519"]) == 0
        assert (gpgdir / "gpg.conf").exists()
        s = lab.signer("Cli Packager <cli@example.org>")
        assert cli.main(["--gpgdir", str(gpgdir), "--add",
                         str(s.export(s.home / "c.asc"))]) == 0
        capsys.readouterr()
        assert cli.main(["--gpgdir", str(gpgdir), "--list-keys", s.fingerprint]) == 0
        listing = capsys.readouterr().out
        assert s.fingerprint in listing and "Cli Packager" in listing
        assert cli.main(["--gpgdir", str(gpgdir), "--lsign-key", s.fingerprint]) == 0
        assert keyring.is_lsigned(str(gpgdir), s.fingerprint)
        data = tmp_path / "data"
        data.write_bytes(b"data")
        s.sign(data)
        assert cli.main(["--gpgdir", str(gpgdir), "--verify", str(data) + ".sig"]) == 0
        data.write_bytes(b"other")
        assert cli.main(["--gpgdir", str(gpgdir), "--verify", str(data) + ".sig"]) == 1
        assert cli.main(["--gpgdir", str(gpgdir), "--delete", s.fingerprint]) == 0
        assert cli.main(["--gpgdir", str(gpgdir), "--list-keys", s.fingerprint]) == 1
        assert "could not be found locally" in capsys.readouterr().err
    finally:
        keyring.kill_agent(str(gpgdir))


def test_populate_from_a_keyring_directory(lab: Lab, tmp_path: Path) -> None:
    """A small distribution keyring built here: trusted keys lsigned, revoked disabled."""
    a, b, c = lab.signer("A <a@x.org>"), lab.signer("B <b@x.org>"), lab.signer("C <c@x.org>")
    kdir = tmp_path / "keyrings"
    kdir.mkdir()
    blob = b"".join(s.gpg("--export", s.fingerprint).stdout for s in (a, b, c))
    (kdir / "distro.gpg").write_bytes(blob)
    (kdir / "distro-trusted").write_text(f"# masters\n{a.fingerprint}:4:\n\n")
    (kdir / "distro-revoked").write_text(f"{c.fingerprint}\n")
    gpgdir = str(lab.gpgdir)
    res = keyring.populate(gpgdir, ["distro"], keyring_dirs=[str(kdir)])
    assert res.imported == 3 and res.lsigned == [a.fingerprint]
    assert res.disabled == [c.fingerprint]
    keys = {k.fingerprint: k for k in keyring.list_keys(gpgdir)}
    assert keys[a.fingerprint].ownertrust == "m" and keyring.is_lsigned(gpgdir, a.fingerprint)
    assert keys[c.fingerprint].disabled and not keys[b.fingerprint].disabled
    # a second run has nothing left to do
    again = keyring.populate(gpgdir, ["distro"], keyring_dirs=[str(kdir)])
    assert (again.imported, again.lsigned, again.disabled) == (0, [], [])
    with pytest.raises(AlpmError):
        keyring.populate(gpgdir, ["nosuch"], keyring_dirs=[str(kdir)])


@pytest.fixture(scope="module")
def archlinux_keyring() -> Path:
    """Debian's archlinux-keyring package (installed with apt when missing)."""
    if not (ARCH_KEYRINGS / "archlinux.gpg").exists() and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "archlinux-keyring"], capture_output=True,
                       timeout=300, check=False)
    if not (ARCH_KEYRINGS / "archlinux.gpg").exists():
        pytest.skip("archlinux-keyring is not installed and apt-get could not install it")
    return ARCH_KEYRINGS


def test_populate_real_archlinux_keyring(lab: Lab, archlinux_keyring: Path) -> None:
    gpgdir = str(lab.gpgdir)
    res = keyring.populate(gpgdir, ["archlinux"], keyring_dirs=[str(archlinux_keyring)])
    trusted = [line.split(":")[0] for line in
               (archlinux_keyring / "archlinux-trusted").read_text().splitlines()
               if line and not line.startswith("#")]
    revoked = [line.strip() for line in
               (archlinux_keyring / "archlinux-revoked").read_text().splitlines() if line.strip()]
    keys = {k.fingerprint: k for k in keyring.list_keys(gpgdir)}
    assert res.imported == len(keys) - 1 > len(trusted)
    for fpr in trusted:
        assert keyring.is_lsigned(gpgdir, fpr), fpr
        assert keys[fpr].ownertrust == "m"
    present = [fpr for fpr in revoked if fpr in keys]
    assert present and all(keys[fpr].disabled for fpr in present)
    # packager keys certified by three marginally trusted master keys become fully valid,
    # as on an Arch system after `pacman-key --populate`
    validities = {k.validity for fpr, k in keys.items() if fpr not in trusted
                  and fpr != lab.master and not k.disabled and not k.revoked and not k.expired}
    assert "f" in validities
