"""``alpm-key``: the pacman keyring's essentials, with ``pacman-key``'s options.

A thin front end over :mod:`alpmd.engine.keyring`; the keyring directory comes
from ``--gpgdir``, else ``GPGDir`` in the pacman.conf given by ``--config``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from alpmd import __version__
from alpmd.engine import keyring
from alpmd.engine.config import DEFAULT_GPGDIR, load_config
from alpmd.engine.errors import AlpmError
from alpmd.i18n import gettext as _


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alpm-key",
                                description=_("Manage pacman's keyring (as pacman-key)."))
    p.add_argument("--version", action="version", version=f"alpm-key (alpmd) {__version__}")
    ops = p.add_mutually_exclusive_group(required=True)
    ops.add_argument("-a", "--add", action="store_true", help=_("add the given key files"))
    ops.add_argument("-d", "--delete", action="store_true", help=_("remove the given key ids"))
    ops.add_argument("-l", "--list-keys", action="store_true", help=_("list keys (all or given)"))
    ops.add_argument("-v", "--verify", action="store_true",
                     help=_("verify a signature file (SIG [FILE])"))
    ops.add_argument("--init", action="store_true", help=_("set up the keyring and a master key"))
    ops.add_argument("--lsign-key", action="store_true", help=_("locally sign the given key ids"))
    ops.add_argument("--populate", action="store_true",
                     help=_("import distribution keyrings (all or the given names)"))
    p.add_argument("--config", default="/etc/pacman.conf", help=_("pacman.conf to read GPGDir from"))
    p.add_argument("--gpgdir", help=_("the keyring directory (overrides the config)"))
    p.add_argument("--keyring-dir", action="append",
                   help=_("where --populate looks for <name>.gpg (default: pacman's, Debian's)"))
    p.add_argument("--key-type", default="rsa4096",
                   help=_("algorithm of the master key --init makes (pacman-key: rsa4096)"))
    p.add_argument("args", nargs="*")
    return p


def _gpgdir(ns: argparse.Namespace) -> str:
    if ns.gpgdir:
        return str(ns.gpgdir)
    if os.path.exists(ns.config):
        try:
            return load_config(ns.config).gpg_dir
        except AlpmError as exc:
            print(_("==> WARNING: {error}").format(error=exc), file=sys.stderr)
    return DEFAULT_GPGDIR


def _run(ns: argparse.Namespace, out: list[str]) -> int:
    gpgdir = keyring.keyring_dir(_gpgdir(ns))
    if ns.init:
        fpr = keyring.init_keyring(gpgdir, key_type=ns.key_type)
        out.append(_("==> Keyring {dir} ready; master key {fpr}").format(dir=gpgdir, fpr=fpr))
        return 0
    if not os.path.isdir(gpgdir):
        print(_("==> ERROR: no keyring at {dir}; use 'alpm-key --init'").format(dir=gpgdir), file=sys.stderr)
        return 1
    if ns.add:
        if not ns.args:
            print(_("==> ERROR: no key files given"), file=sys.stderr)
            return 1
        keyring.add_keys(gpgdir, ns.args)
    elif ns.delete:
        keyring.delete_keys(gpgdir, ns.args)
    elif ns.lsign_key:
        n = keyring.lsign_keys(gpgdir, ns.args)
        out.append(_("  -> Locally signed {n} keys.").format(n=n))
    elif ns.populate:
        res = keyring.populate(gpgdir, ns.args, keyring_dirs=ns.keyring_dir)
        out.append(_("==> Appending keys from {files}...").format(files=', '.join(k + '.gpg' for k in res.keyrings)))
        if res.lsigned:
            out.append(_("  -> Locally signed {n} keys.").format(n=len(res.lsigned)))
        if res.disabled:
            out.append(_("  -> Disabled {n} keys.").format(n=len(res.disabled)))
    elif ns.list_keys:
        for ident in ns.args:
            if keyring.find_key(gpgdir, ident) is None:
                print(_("==> ERROR: The key identified by {key} could not be found locally.").format(key=ident),
                      file=sys.stderr)
                return 1
        proc = keyring.gpg_run(gpgdir, "--list-keys", *ns.args)
        out.append(proc.stdout.decode(errors="replace").rstrip("\n"))
    elif ns.verify:
        return _verify(gpgdir, ns.args, out)
    return 0


def _verify(gpgdir: str, args: Sequence[str], out: list[str]) -> int:
    if not args:
        print(_("==> ERROR: no signature file given"), file=sys.stderr)
        return 1
    sig = args[0]
    data = args[1] if len(args) > 1 else (sig[:-4] if sig.endswith(".sig") else "")
    if not data or not os.path.exists(data):
        print(_("==> ERROR: no file to verify for {sig}").format(sig=sig), file=sys.stderr)
        return 1
    proc = keyring.gpg_run(gpgdir, "--status-fd", "1", "--verify", sig, data, check=False)
    good = any(line.startswith("[GNUPG:] GOODSIG ")
               for line in proc.stdout.decode(errors="replace").splitlines())
    out.append(_("==> Signature is valid.") if good else
               _("==> The signature identified by {sig} could not be verified.").format(sig=sig))
    return 0 if good and proc.returncode == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    out: list[str] = []
    try:
        rc = _run(ns, out)
    except AlpmError as exc:
        print(_("==> ERROR: {error}").format(error=exc), file=sys.stderr)
        rc = 1
    if out:
        print("\n".join(out))
    return rc


if __name__ == "__main__":
    sys.exit(main())
