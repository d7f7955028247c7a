"""The pacman keyring (GPGDir), managed with GnuPG's own tools, as ``pacman-key`` does.

Nothing here speaks OpenPGP itself: every operation is a ``gpg`` run on the
keyring's home directory with machine-readable output (``--with-colons``,
``--status-fd``). The functions take the keyring directory, not a Handle, so
the ``alpm-key`` front end works without a pacman root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from alpmd.engine.errors import AlpmError, ErrorCode

__all__ = [
    "DEFAULT_KEYRING_DIRS",
    "GPG_CONF_OPTIONS",
    "MASTER_KEY_UID",
    "KeyInfo",
    "PopulateResult",
    "add_keys",
    "delete_keys",
    "disable_keys",
    "export_key",
    "find_key",
    "gpg_available",
    "gpg_run",
    "import_key_from",
    "init_keyring",
    "is_lsigned",
    "keyring_dir",
    "kill_agent",
    "list_keys",
    "lsign_keys",
    "master_key",
    "populate",
    "show_key_file",
]

GPG = shutil.which("gpg") or "/usr/bin/gpg"
GPGCONF = shutil.which("gpgconf") or "/usr/bin/gpgconf"
GPG_TIMEOUT = 300

#: What ``pacman-key --init`` names its local master key.
MASTER_KEY_UID = "Pacman Keyring Master Key <pacman@localhost>"

#: The lines ``pacman-key --init`` makes sure gpg.conf has (gnupg >= 2.2.17).
GPG_CONF_OPTIONS = [
    "no-greeting",
    "no-permission-warning",
    "lock-never",
    "keyserver-options timeout=10",
    "keyserver-options import-clean",
    "keyserver-options no-self-sigs-only",
]

#: Where distribution keyrings are looked for: Arch's place, then Debian's.
DEFAULT_KEYRING_DIRS = ["/usr/share/pacman/keyrings", "/usr/share/keyrings"]

# gpg's --import-ownertrust values, by name.
_OWNERTRUST = {"2": "unknown", "3": "never", "4": "marginal", "5": "full", "6": "ultimate"}


def gpg_available() -> bool:
    """Whether GnuPG is installed (signature checks need it)."""
    return os.access(GPG, os.X_OK)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GNUPG")}
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    return env


def gpg_run(gpgdir: str | None, *args: str, input: bytes | None = None,
            check: bool = True, what: str = "gpg") -> subprocess.CompletedProcess[bytes]:
    """Run gpg on the keyring ``gpgdir`` in batch mode, in the C locale.

    With ``check`` a non-zero exit raises ``AlpmError(GPGME)`` carrying gpg's
    message: the engine never guesses what a failed gpg run meant.
    """
    if not gpg_available():
        raise AlpmError(ErrorCode.MISSING_CAPABILITY_SIGNATURES,
                        "signature support needs GnuPG (gpg) installed")
    cmd = [GPG]
    if gpgdir is not None:
        cmd += ["--homedir", gpgdir]
    cmd += ["--no-permission-warning", "--batch", "--no-tty", *args]
    try:
        proc = subprocess.run(cmd, input=input, capture_output=True, env=_env(),
                              timeout=GPG_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AlpmError(ErrorCode.GPGME, f"{what}: gpg did not finish in {GPG_TIMEOUT}s") from exc
    if check and proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AlpmError(ErrorCode.GPGME, f"{what}: {msg[-1] if msg else 'gpg failed'}",
                        returncode=proc.returncode, stderr=proc.stderr.decode(errors="replace"))
    return proc


def kill_agent(gpgdir: str) -> None:
    """Stop the gpg-agent (and dirmngr) a keyring operation may have started."""
    if os.access(GPGCONF, os.X_OK) and os.path.isdir(gpgdir):
        subprocess.run([GPGCONF, "--homedir", gpgdir, "--kill", "all"], capture_output=True,
                       env=_env(), timeout=60, check=False)


@contextmanager
def _scratch_home() -> Iterator[str]:
    """A throwaway GnuPG home (short path: agent sockets have a length limit)."""
    home = tempfile.mkdtemp(prefix="alpmd-gpg-")
    try:
        yield home
    finally:
        kill_agent(home)
        shutil.rmtree(home, ignore_errors=True)


# --------------------------------------------------------------------------- listing


@dataclass
class KeyInfo:
    """One key as ``gpg --with-colons`` describes it."""

    fingerprint: str
    keyid: str
    uids: list[str] = field(default_factory=list)
    created: int = 0
    expires: int | None = None
    #: gpg's validity letter for the key (``f`` full, ``u`` ultimate, ``m`` marginal, ...)
    validity: str = "-"
    #: gpg's owner-trust letter (``u``, ``f``, ``m``, ``n``, ``-``)
    ownertrust: str = "-"
    revoked: bool = False
    expired: bool = False
    disabled: bool = False
    secret: bool = False
    subkeys: list[str] = field(default_factory=list)

    @property
    def uid(self) -> str | None:
        """The primary user id (what gpgme reports first), if any."""
        return self.uids[0] if self.uids else None

    def matches(self, ident: str) -> bool:
        """Whether ``ident`` (fingerprint or key id, any case, ``0x`` allowed) names this key."""
        ident = ident.upper().removeprefix("0X")
        return any(fpr.endswith(ident) and len(ident) >= 8
                   for fpr in (self.fingerprint, *self.subkeys))


def _parse_colons(text: str, secret: bool = False) -> list[KeyInfo]:
    keys: list[KeyInfo] = []
    cur: KeyInfo | None = None
    in_sub = False
    for line in text.splitlines():
        f = line.split(":")
        kind = f[0]
        if kind in ("pub", "sec"):
            caps = f[11] if len(f) > 11 else ""
            cur = KeyInfo(fingerprint="", keyid=f[4], created=int(f[5] or 0),
                          expires=int(f[6]) if f[6] else None, validity=f[1] or "-",
                          ownertrust=f[8] or "-", revoked=f[1] == "r", expired=f[1] == "e",
                          disabled="D" in caps, secret=secret or kind == "sec")
            keys.append(cur)
            in_sub = False
        elif kind in ("sub", "ssb"):
            in_sub = True
        elif kind == "fpr" and cur is not None:
            if in_sub:
                cur.subkeys.append(f[9])
            elif not cur.fingerprint:
                cur.fingerprint = f[9]
        elif kind == "uid" and cur is not None and not in_sub:
            cur.uids.append(_unescape_colons(f[9]))
    return keys


def _unescape_colons(value: str) -> str:
    """gpg escapes ``:`` and control characters in colon listings as ``\\xHH``."""
    if "\\x" not in value:
        return value
    out = bytearray()
    raw = value.encode()
    i = 0
    while i < len(raw):
        if raw[i:i + 2] == b"\\x" and i + 4 <= len(raw):
            try:
                out.append(int(raw[i + 2:i + 4], 16))
                i += 4
                continue
            except ValueError:
                pass
        out.append(raw[i])
        i += 1
    return out.decode(errors="replace")


def list_keys(gpgdir: str, ids: Sequence[str] = (), *, secret: bool = False) -> list[KeyInfo]:
    """The keys in the keyring (or those named by ``ids``); unknown ids are left out."""
    if not os.path.isdir(gpgdir):
        return []
    args = ["--no-auto-check-trustdb", "--with-colons", "--fixed-list-mode", "--with-fingerprint", "--with-subkey-fingerprint",
            "--list-secret-keys" if secret else "--list-keys", *ids]
    proc = gpg_run(gpgdir, *args, check=False)
    return _parse_colons(proc.stdout.decode(errors="replace"), secret=secret)


def find_key(gpgdir: str, ident: str) -> KeyInfo | None:
    """The key ``ident`` names in the keyring, or None (``_alpm_key_in_keychain``)."""
    ident = ident.upper().removeprefix("0X")
    if not ident:
        return None
    for key in list_keys(gpgdir, [ident]):
        if key.matches(ident):
            return key
    return None


def show_key_file(path: str) -> list[KeyInfo]:
    """The keys a key file (armored or binary, one or many) holds, without importing them."""
    with _scratch_home() as home:
        proc = gpg_run(home, "--with-colons", "--fixed-list-mode", "--with-fingerprint",
                       "--with-subkey-fingerprint", "--import-options", "show-only", "--import",
                       path, check=False)
    return _parse_colons(proc.stdout.decode(errors="replace"))


def master_key(gpgdir: str) -> KeyInfo | None:
    """The keyring's local master key: its first secret key (as pacman-key takes it)."""
    keys = list_keys(gpgdir, secret=True)
    return keys[0] if keys else None


# --------------------------------------------------------------------------- changes


def keyring_dir(gpgdir: str) -> str:
    """``gpgdir`` without the trailing slash libalpm keeps (gpg does not mind either way)."""
    return gpgdir.rstrip("/") or "/"


def _add_conf_option(path: str, option: str) -> None:
    """Append ``option`` unless the file has it already, commented out or not."""
    name = option.split()
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        if line.lstrip(" \t#").split() == name:
            return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(option + "\n")


def init_keyring(gpgdir: str, *, key_type: str = "rsa4096") -> str:
    """Set up a keyring as ``pacman-key --init``; returns the master key's fingerprint.

    The directory, ``gpg.conf`` and ``gpg-agent.conf`` get pacman-key's lines;
    a local master key (no passphrase, signing only, never expiring) is created
    unless a secret key exists. pacman-key makes an RSA 4096 key; ``key_type``
    takes any gpg algorithm name (tests use ``ed25519``, which is instant).
    """
    gpgdir = keyring_dir(gpgdir)
    os.makedirs(gpgdir, mode=0o755, exist_ok=True)
    for name, mode in (("pubring.gpg", 0o644), ("trustdb.gpg", 0o644)):
        path = os.path.join(gpgdir, name)
        if name == "pubring.gpg" and not os.path.exists(path):
            open(path, "ab").close()
        if name == "trustdb.gpg" and not os.path.exists(path):
            gpg_run(gpgdir, "--update-trustdb", check=False)
        if os.path.exists(path):
            os.chmod(path, mode)
    conf = os.path.join(gpgdir, "gpg.conf")
    for option in GPG_CONF_OPTIONS:
        _add_conf_option(conf, option)
    os.chmod(conf, 0o644)
    agent = os.path.join(gpgdir, "gpg-agent.conf")
    _add_conf_option(agent, "disable-scdaemon")
    os.chmod(agent, 0o644)
    master = master_key(gpgdir)
    if master is not None:
        return master.fingerprint
    gpg_run(gpgdir, "--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key",
            MASTER_KEY_UID, key_type, "sign", "never", what="generating the master key")
    master = master_key(gpgdir)
    if master is None:
        raise AlpmError(ErrorCode.GPGME, "the master key was not created")
    gpg_run(gpgdir, "--check-trustdb", check=False)
    return master.fingerprint


def add_keys(gpgdir: str, files: Sequence[str]) -> None:
    """Import every key in ``files`` (``pacman-key --add``)."""
    gpg_run(keyring_dir(gpgdir), "--quiet", "--import", *files,
            what="a specified keyfile could not be added to the keyring")


def export_key(gpgdir: str, ident: str, *, armor: bool = False) -> bytes:
    """The public key ``ident`` as OpenPGP data."""
    proc = gpg_run(keyring_dir(gpgdir), *(["--armor"] if armor else []), "--export", ident)
    return proc.stdout


def import_key_from(gpgdir: str, source: str, fingerprint: str) -> KeyInfo:
    """Import only the key ``fingerprint`` from ``source`` (a key file or keyring).

    A key file may hold many keys; the user agreed to one, so the wanted key is
    exported from a scratch home and only that is imported.
    """
    with _scratch_home() as home:
        gpg_run(home, "--quiet", "--import", source, what=f"reading {source}")
        data = gpg_run(home, "--export", fingerprint).stdout
    if not data:
        raise AlpmError(ErrorCode.GPGME, f"key {fingerprint} is not in {source}")
    gpg_run(keyring_dir(gpgdir), "--quiet", "--import", input=data,
            what=f"key {fingerprint} could not be imported")
    key = find_key(gpgdir, fingerprint)
    if key is None:
        raise AlpmError(ErrorCode.GPGME, f"key {fingerprint} could not be imported")
    return key


def _require(gpgdir: str, ids: Sequence[str]) -> list[KeyInfo]:
    keys: list[KeyInfo] = []
    for ident in ids:
        key = find_key(gpgdir, ident)
        if key is None:
            raise AlpmError(ErrorCode.GPGME,
                            f"The key identified by {ident} could not be found locally.",
                            key=ident)
        keys.append(key)
    return keys


def is_lsigned(gpgdir: str, ident: str, master: KeyInfo | None = None) -> bool:
    """Whether the master key has a valid local signature on ``ident``."""
    master = master or master_key(gpgdir)
    if master is None:
        return False
    proc = gpg_run(keyring_dir(gpgdir), "--no-auto-check-trustdb", "--with-colons",
                   "--check-signatures", ident,
                   check=False)
    in_sub = False
    for line in proc.stdout.decode(errors="replace").splitlines():
        f = line.split(":")
        if f[0] in ("sub", "ssb"):
            in_sub = True
        elif f[0] == "pub":
            in_sub = False
        elif f[0] == "sig" and not in_sub and f[1] == "!" and f[4] == master.keyid:
            return True
    return False


def lsign_keys(gpgdir: str, ids: Sequence[str], *, update_trustdb: bool = True) -> int:
    """Locally sign keys with the master key (``pacman-key --lsign-key``): full validity.

    gpg would rebuild the trust database after every signature (seconds each on
    a big keyring); it is rebuilt once at the end instead.
    """
    gpgdir = keyring_dir(gpgdir)
    master = master_key(gpgdir)
    if master is None:
        raise AlpmError(ErrorCode.GPGME, "There is no secret key available to sign with.")
    count = 0
    for key in _require(gpgdir, ids):
        gpg_run(gpgdir, "--quiet", "--no-auto-check-trustdb", "--passphrase", "",
                "--pinentry-mode", "loopback",
                "-u", master.fingerprint, "--quick-lsign-key", key.fingerprint,
                what=f"{key.fingerprint} could not be locally signed")
        count += 1
    if count and update_trustdb:
        gpg_run(gpgdir, "--check-trustdb", check=False)
    return count


def delete_keys(gpgdir: str, ids: Sequence[str]) -> None:
    """Remove public keys (``pacman-key --delete``)."""
    gpgdir = keyring_dir(gpgdir)
    for key in _require(gpgdir, ids):
        gpg_run(gpgdir, "--quiet", "--yes", "--delete-key", key.fingerprint,
                what=f"{key.fingerprint} could not be removed from the keyring")


def disable_keys(gpgdir: str, ids: Sequence[str]) -> int:
    """Mark keys disabled (what ``--populate`` does to a keyring's revoked keys)."""
    gpgdir = keyring_dir(gpgdir)
    count = 0
    for ident in ids:
        gpg_run(gpgdir, "--quiet", "--no-auto-check-trustdb", "--command-fd", "0",
                "--edit-key", ident, input=b"disable\nquit\n", check=False)
        count += 1
    return count


def _set_ownertrust(gpgdir: str, text: str) -> None:
    gpg_run(gpgdir, "--quiet", "--no-auto-check-trustdb", "--import-ownertrust",
            input=text.encode(),
            what="owner trust values could not be imported")


@dataclass
class PopulateResult:
    """What ``populate`` did: keyrings read, keys imported, lsigned and disabled."""

    keyrings: list[str] = field(default_factory=list)
    imported: int = 0
    lsigned: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().splitlines()
    except FileNotFoundError:
        return []


def populate(gpgdir: str, names: Sequence[str] = (), *,
             keyring_dirs: Sequence[str] | None = None) -> PopulateResult:
    """Import distribution keyrings as ``pacman-key --populate`` does.

    Each ``<name>.gpg`` is imported; the fingerprints in ``<name>-trusted``
    (``fingerprint:ownertrust:`` lines) are locally signed by the master key
    and get their owner trust; those in ``<name>-revoked`` are disabled.
    Without ``names`` every ``*.gpg`` of the keyring directory is used.
    """
    gpgdir = keyring_dir(gpgdir)
    dirs = list(keyring_dirs) if keyring_dirs is not None else DEFAULT_KEYRING_DIRS
    base = next((d for d in dirs if os.path.isdir(d)), None)
    if base is None:
        raise AlpmError(ErrorCode.NOT_A_DIR, f"No keyring files exist in {dirs[0]}.")
    if names:
        for name in names:
            if not os.path.isfile(os.path.join(base, name + ".gpg")):
                raise AlpmError(ErrorCode.NOT_A_FILE, f"The keyring file "
                                f"{os.path.join(base, name + '.gpg')} does not exist.")
        wanted = list(names)
    else:
        wanted = sorted(f[:-4] for f in os.listdir(base) if f.endswith(".gpg"))
        if not wanted:
            raise AlpmError(ErrorCode.NOT_A_FILE, f"No keyring files exist in {base}.")
    master = master_key(gpgdir)
    if master is None:
        raise AlpmError(ErrorCode.GPGME, "There is no secret key available to sign with.")
    result = PopulateResult(keyrings=wanted)
    before = {k.fingerprint for k in list_keys(gpgdir)}
    for name in wanted:
        gpg_run(gpgdir, "--quiet", "--no-auto-check-trustdb", "--import",
                os.path.join(base, name + ".gpg"),
                what=f"importing {name}.gpg")
    result.imported = len({k.fingerprint for k in list_keys(gpgdir)} - before)

    trusted: dict[str, str] = {}
    ownertrust: list[str] = []
    revoked: list[str] = []
    for name in wanted:
        for line in _read_lines(os.path.join(base, name + "-trusted")):
            fpr = line.split(":", 1)[0].strip()
            if not fpr or fpr.startswith("#"):
                continue
            ownertrust.append(line.strip())
            trusted.setdefault(fpr, name)
        for line in _read_lines(os.path.join(base, name + "-revoked")):
            fpr = line.strip()
            if fpr and not fpr.startswith("#"):
                revoked.append(fpr)
    to_sign = [fpr for fpr in trusted if find_key(gpgdir, fpr) is not None
               and not is_lsigned(gpgdir, fpr, master)]
    if to_sign:
        lsign_keys(gpgdir, to_sign, update_trustdb=False)
        result.lsigned = to_sign
    if ownertrust:
        _set_ownertrust(gpgdir, "\n".join(ownertrust) + "\n")
    present = {k.fingerprint: k for k in list_keys(gpgdir, revoked)} if revoked else {}
    to_disable = [fpr for fpr in revoked if fpr in present and not present[fpr].disabled]
    if to_disable:
        disable_keys(gpgdir, to_disable)
        result.disabled = to_disable
    gpg_run(gpgdir, "--check-trustdb", check=False)
    return result


def ownertrust_name(letter_or_number: str) -> str:
    """A readable owner-trust name for gpg's letter or ownertrust-file number."""
    letters = {"u": "ultimate", "f": "full", "m": "marginal", "n": "never", "-": "unknown",
               "q": "undefined", "e": "expired", "r": "revoked"}
    return letters.get(letter_or_number) or _OWNERTRUST.get(letter_or_number, "unknown")
