"""TrustKey: a packager key already in the keyring is locally signed by the keyring's
master key through the daemon; an unknown key is refused without asking anything."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from dbus_e2e import Client, Pkg, make_root, mirror, private_bus, run, running_daemon

from alpmd.engine import keyring
from alpmd.testing.dbusenv import have_tools

pytestmark = [pytest.mark.skipif(have_tools() is not None, reason=f"no private bus: {have_tools()}"),
              pytest.mark.skipif(shutil.which("gpg") is None, reason="GnuPG (gpg) is not installed")]


def _packager_key(home: Path) -> tuple[str, Path]:
    gpg = ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--passphrase", "",
           "--pinentry-mode", "loopback"]
    subprocess.run([*gpg, "--quick-gen-key", "Packager <p@example.org>", "ed25519", "sign",
                    "never"], check=True, capture_output=True, timeout=60)
    out = subprocess.run([*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True,
                         timeout=60, text=True).stdout
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    pub = home / "pub.asc"
    pub.write_bytes(subprocess.run([*gpg, "--armor", "--export", fpr], check=True,
                                   capture_output=True, timeout=60).stdout)
    return fpr, pub


def test_trust_key_lsigns_a_known_key(tmp_path: Path) -> None:
    gpgdir = Path(tempfile.mkdtemp(prefix="alpmd-k-", dir="/tmp"))
    home = Path(tempfile.mkdtemp(prefix="alpmd-p-", dir="/tmp"))
    try:
        keyring.init_keyring(str(gpgdir), key_type="ed25519")
        fpr, pub = _packager_key(home)
        keyring.add_keys(str(gpgdir), [str(pub)])
        assert not keyring.is_lsigned(str(gpgdir), fpr)
        srv = tmp_path / "srv"
        srv.mkdir()
        with mirror(root=srv) as m:
            srv.rmdir()
            e = make_root(tmp_path, [Pkg("p1")], [], m.url)
            conf = e.root.config.read_text()
            conf = "\n".join(f"GPGDir = {gpgdir}/" if line.startswith("GPGDir") else line
                             for line in conf.splitlines())
            e.root.config.write_text(conf + "\n")
            with private_bus(tmp_path) as env, running_daemon(env, e.root.config):
                async def go() -> tuple[Any, Any, list[Any]]:
                    c = await Client.open(env.address)
                    try:
                        path = await c.manager("TrustKey", "sa{sv}", fpr, {})
                        await c.tx(path, "Run")
                        good = await c.finished(path)
                        unknown = await c.manager("TrustKey", "sa{sv}", "DEADBEEF" * 5, {})
                        await c.tx(unknown, "Run")
                        bad = await c.finished(unknown)
                        return good, bad, c.of(unknown, "QuestionAsked")
                    finally:
                        c.close()
                good, bad, asked = run(go())
        assert good[0] == "success", good
        assert keyring.is_lsigned(str(gpgdir), fpr)
        assert bad[0] == "failed" and bad[1] == "org.alpm.Error.Signature", bad
        assert asked == []
    finally:
        keyring.kill_agent(str(gpgdir))
        keyring.kill_agent(str(home))
        shutil.rmtree(gpgdir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
