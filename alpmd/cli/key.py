"""``alpm-key``: the pacman keyring's essentials, with ``pacman-key``'s options.

A thin front end over :mod:`alpmd.engine.keyring`; the keyring directory comes
from ``--gpgdir``, else ``GPGDir`` in the pacman.conf given by ``--config``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from alpmd.engine import keyring
from alpmd.engine.config import DEFAULT_GPGDIR, load_config
from alpmd.engine.errors import AlpmError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alpm-key",
                                description="Manage pacman's keyring (as pacman-key).")
    ops = p.add_mutually_exclusive_group(required=True)
    ops.add_argument("-a", "--add", action="store_true", help="add the given key files")
    ops.add_argument("-d", "--delete", action="store_true", help="remove the given key ids")
    ops.add_argument("-l", "--list-keys", action="store_true", help="list keys (all or given)")
    ops.add_argument("-v", "--verify", action="store_true",
                     help="verify a signature file (SIG [FILE])")
    ops.add_argument("--init", action="store_true", help="set up the keyring and a master key")
    ops.add_argument("--lsign-key", action="store_true", help="locally sign the given key ids")
    ops.add_argument("--populate", action="store_true",
                     help="import distribution keyrings (all or the given names)")
    p.add_argument("--config", default="/etc/pacman.conf", help="pacman.conf to read GPGDir from")
    p.add_argument("--gpgdir", help="the keyring directory (overrides the config)")
    p.add_argument("--keyring-dir", action="append",
                   help="where --populate looks for <name>.gpg (default: pacman's, Debian's)")
    p.add_argument("--key-type", default="rsa4096",
                   help="algorithm of the master key --init makes (pacman-key: rsa4096)")
    p.add_argument("args", nargs="*")
    return p


def _gpgdir(ns: argparse.Namespace) -> str:
    if ns.gpgdir:
        return str(ns.gpgdir)
    if os.path.exists(ns.config):
        try:
            return load_config(ns.config).gpg_dir
        except AlpmError as exc:
            print(f"==> WARNING: {exc}", file=sys.stderr)
    return DEFAULT_GPGDIR


def _run(ns: argparse.Namespace, out: list[str]) -> int:
    gpgdir = keyring.keyring_dir(_gpgdir(ns))
    if ns.init:
        fpr = keyring.init_keyring(gpgdir, key_type=ns.key_type)
        out.append(f"==> Keyring {gpgdir} ready; master key {fpr}")
        return 0
    if not os.path.isdir(gpgdir):
        print(f"==> ERROR: no keyring at {gpgdir}; use 'alpm-key --init'", file=sys.stderr)
        return 1
    if ns.add:
        if not ns.args:
            print("==> ERROR: no key files given", file=sys.stderr)
            return 1
        keyring.add_keys(gpgdir, ns.args)
    elif ns.delete:
        keyring.delete_keys(gpgdir, ns.args)
    elif ns.lsign_key:
        n = keyring.lsign_keys(gpgdir, ns.args)
        out.append(f"  -> Locally signed {n} keys.")
    elif ns.populate:
        res = keyring.populate(gpgdir, ns.args, keyring_dirs=ns.keyring_dir)
        out.append(f"==> Appending keys from {', '.join(k + '.gpg' for k in res.keyrings)}...")
        if res.lsigned:
            out.append(f"  -> Locally signed {len(res.lsigned)} keys.")
        if res.disabled:
            out.append(f"  -> Disabled {len(res.disabled)} keys.")
    elif ns.list_keys:
        for ident in ns.args:
            if keyring.find_key(gpgdir, ident) is None:
                print(f"==> ERROR: The key identified by {ident} could not be found locally.",
                      file=sys.stderr)
                return 1
        proc = keyring.gpg_run(gpgdir, "--list-keys", *ns.args)
        out.append(proc.stdout.decode(errors="replace").rstrip("\n"))
    elif ns.verify:
        return _verify(gpgdir, ns.args, out)
    return 0


def _verify(gpgdir: str, args: Sequence[str], out: list[str]) -> int:
    if not args:
        print("==> ERROR: no signature file given", file=sys.stderr)
        return 1
    sig = args[0]
    data = args[1] if len(args) > 1 else (sig[:-4] if sig.endswith(".sig") else "")
    if not data or not os.path.exists(data):
        print(f"==> ERROR: no file to verify for {sig}", file=sys.stderr)
        return 1
    proc = keyring.gpg_run(gpgdir, "--status-fd", "1", "--verify", sig, data, check=False)
    good = any(line.startswith("[GNUPG:] GOODSIG ")
               for line in proc.stdout.decode(errors="replace").splitlines())
    out.append(f"==> {'Signature is valid' if good else 'The signature identified by ' + sig + ' could not be verified'}.")
    return 0 if good and proc.returncode == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    out: list[str] = []
    try:
        rc = _run(ns, out)
    except AlpmError as exc:
        print(f"==> ERROR: {exc}", file=sys.stderr)
        rc = 1
    if out:
        print("\n".join(out))
    return rc


if __name__ == "__main__":
    sys.exit(main())
