"""GnuPG fixtures: a fresh pacman keyring and signers with their own homes, per test.

Keys are ed25519 (instant); every home lives in a short /tmp directory (gpg-agent
sockets have a path limit) and its agent is killed at teardown.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from alpmd.engine import keyring
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle, Options
from alpmd.testing.pkgbuild import FileSpec, build_package

GPG = shutil.which("gpg")


def _home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="alpmd-t-", dir="/tmp"))
    home.chmod(0o700)
    return home


@dataclass
class Signer:
    """A packager: a key in a home of its own."""

    home: Path
    uid: str
    fingerprint: str = ""

    def gpg(self, *args: str, faked: str | None = None,
            input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        cmd = [GPG or "gpg", "--homedir", str(self.home), "--batch", "--no-tty", "--passphrase", "",
               "--pinentry-mode", "loopback"]
        if faked:
            cmd += ["--faked-system-time", faked]
        return subprocess.run([*cmd, *args], capture_output=True, input=input, check=True,
                              timeout=60)

    def sign(self, path: Path, *, out: Path | None = None, faked: str | None = None,
             expire: str | None = None) -> Path:
        """A detached binary signature (``path.sig`` unless ``out``)."""
        out = out or Path(str(path) + ".sig")
        out.unlink(missing_ok=True)
        extra = ["--default-sig-expire", expire] if expire else []
        self.gpg(*extra, "-u", self.fingerprint, "--detach-sign", "-o", str(out), str(path),
                 faked=faked)
        return out

    def export(self, dest: Path, *, armor: bool = True) -> Path:
        dest.write_bytes(self.gpg(*(["--armor"] if armor else []), "--export",
                                  self.fingerprint).stdout)
        return dest

    def certify(self, other: Signer) -> None:
        """An exportable signature by this key on ``other``'s key (a web-of-trust edge)."""
        imported = self.gpg("--import", input=other.gpg("--export", other.fingerprint).stdout)
        assert imported.returncode == 0
        self.gpg("-u", self.fingerprint, "--quick-sign-key", other.fingerprint)
        other.gpg("--import", input=self.gpg("--export", other.fingerprint).stdout)

    def revocation(self) -> bytes:
        """The revocation certificate gpg stored at key creation, made importable."""
        text = (self.home / "openpgp-revocs.d" / f"{self.fingerprint}.rev").read_text()
        return text.replace(":-----BEGIN", "-----BEGIN").encode()


@dataclass
class Lab:
    """A pacman keyring (GPGDir with a master key) plus signers and a Handle on a root."""

    root: Path
    gpgdir: Path
    master: str
    homes: list[Path] = field(default_factory=list)

    def signer(self, uid: str = "Packager <packager@example.org>", *, expire: str = "never",
               faked: str | None = None) -> Signer:
        s = Signer(_home(), uid)
        self.homes.append(s.home)
        s.gpg("--quick-gen-key", uid, "ed25519", "sign", expire, faked=faked)
        out = s.gpg("--with-colons", "--list-keys", uid).stdout.decode()
        s.fingerprint = next(line.split(":")[9] for line in out.splitlines()
                             if line.startswith("fpr:"))
        return s

    def trust(self, s: Signer, *, lsign: bool = True) -> None:
        """Import ``s``'s key into the pacman keyring, locally signed when ``lsign``."""
        keyring.add_keys(str(self.gpgdir), [str(s.export(s.home / "pub.asc"))])
        if lsign:
            keyring.lsign_keys(str(self.gpgdir), [s.fingerprint])

    def handle(self, **kw: object) -> Handle:
        opts = Options(root=str(self.root), gpgdir=str(self.gpgdir) + "/", use_snapshots=False,
                       **kw)  # type: ignore[arg-type]
        return Handle(opts)

    def package(self, name: str = "foo", version: str = "1.0-1", outdir: Path | None = None,
                packager: str | None = None) -> Path:
        meta = PkgMeta(name=name, version=version, packager=packager)
        return build_package(outdir or self.root / "pkgs", meta,
                             [FileSpec(f"usr/share/{name}/data", b"payload of " + name.encode())])


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    if GPG is None:
        pytest.skip("GnuPG (gpg) is not installed")
    gpgdir = _home()
    master = keyring.init_keyring(str(gpgdir), key_type="ed25519")
    root = tmp_path / "root"
    (root / "var/cache/pacman/pkg").mkdir(parents=True)
    (root / "var/lib/pacman").mkdir(parents=True)
    lab = Lab(root, gpgdir, master)
    try:
        yield lab
    finally:
        for home in (gpgdir, *lab.homes):
            keyring.kill_agent(str(home))
            shutil.rmtree(home, ignore_errors=True)
