"""PGP signatures of packages and databases, judged as libalpm judges them.

GnuPG does the cryptography (``gpg --verify --status-fd``); this module turns
its status lines into libalpm's per-signature status and validity
(``_alpm_gpgme_checksig``), applies the SigLevel (``_alpm_check_pgp_helper``)
and explains a failure the way ``_alpm_process_siglist`` does, with the
ImportKey question for keys the keyring lacks.

pacman asks a keyserver for unknown keys; we never touch the network: a key
may come only from a key file shipped beside the signed file
(``<fingerprint>.asc`` or ``<keyid>.asc``/``.gpg``/``.pub``/``.key``) or from a
distribution keyring on this machine, and only after the user said yes.
"""

from __future__ import annotations

import base64
import binascii
import enum
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

from alpmd.engine import keyring
from alpmd.engine.config import SigCheck, SigLevel, SigPolicy, SigTrust
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import CorruptedPackage, ImportKey, QuestionCallback, answer
from alpmd.engine.handle import Handle
from alpmd.engine.log import LogLevel
from alpmd.engine.package import Package

__all__ = [
    "KEY_FILE_SUFFIXES",
    "KeySource",
    "SigResult",
    "SigStatus",
    "SigValidity",
    "Signature",
    "check_signature",
    "decode_signature",
    "find_key_source",
    "import_key",
    "key_in_keyring",
    "sigpath",
    "verify_database",
    "verify_file",
    "verify_package",
]

KEY_FILE_SUFFIXES = (".asc", ".gpg", ".pub", ".key")


class SigStatus(enum.Enum):
    """What GnuPG said of one signature (``alpm_sigstatus_t``)."""

    VALID = "valid"
    KEY_EXPIRED = "key expired"
    SIG_EXPIRED = "signature expired"
    KEY_UNKNOWN = "key unknown"
    KEY_DISABLED = "key disabled"
    INVALID = "invalid"


class SigValidity(enum.Enum):
    """How far the keyring trusts the signing key (``alpm_sigvalidity_t``)."""

    FULL = "full"
    MARGINAL = "marginal"
    NEVER = "never"
    UNKNOWN = "unknown"


@dataclass
class Signature:
    """One signature: its verdict, the key's validity and the key as far as it is known."""

    status: SigStatus
    validity: SigValidity
    #: primary key fingerprint when the key is known, else the issuer's fingerprint or key id
    fingerprint: str
    uid: str | None = None
    created: int = 0
    expires: int | None = None
    #: when the signature was made (seconds since the epoch)
    timestamp: int = 0

    @property
    def name(self) -> str:
        """How pacman names the signer in messages: the uid, else the fingerprint."""
        return self.uid or self.fingerprint


@dataclass
class SigResult:
    """The outcome of checking one file under a SigLevel.

    ``checked`` is False when the level says ``Never``; ``missing`` is True when
    there was no signature and the level allowed that. Failures are raised, so a
    returned result is always acceptable; ``messages`` holds pacman's warnings.
    """

    signatures: list[Signature] = field(default_factory=list)
    checked: bool = True
    missing: bool = False
    imported: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return True


@dataclass(frozen=True)
class KeySource:
    """Where an unknown key could be imported from, and what it says of itself."""

    path: str
    fingerprint: str
    uid: str | None
    created: int


# --------------------------------------------------------------------------- gpg


def sigpath(path: str) -> str:
    """The detached signature beside a file (``_alpm_sigpath``)."""
    return path + ".sig"


def decode_signature(base64_sig: str) -> bytes:
    """A %PGPSIG% value as signature bytes; garbage is an invalid signature."""
    try:
        return base64.b64decode("".join(base64_sig.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AlpmError(ErrorCode.SIG_INVALID, "invalid PGP signature (bad base64)") from exc


_STATUS_OF = {
    "GOODSIG": SigStatus.VALID,
    "EXPSIG": SigStatus.SIG_EXPIRED,
    "EXPKEYSIG": SigStatus.KEY_EXPIRED,
    "REVKEYSIG": SigStatus.INVALID,   # gpgme: CERT_REVOKED, which libalpm counts as invalid
    "BADSIG": SigStatus.INVALID,
}
_VALIDITY_OF = {
    "TRUST_UNDEFINED": SigValidity.UNKNOWN,
    "TRUST_NEVER": SigValidity.NEVER,
    "TRUST_MARGINAL": SigValidity.MARGINAL,
    "TRUST_FULLY": SigValidity.FULL,
    "TRUST_ULTIMATE": SigValidity.FULL,
}


@dataclass
class _Raw:
    """One signature's status as gpgv reported it, before it is judged."""

    status: SigStatus | None = None
    validity: SigValidity = SigValidity.UNKNOWN
    ident: str = ""
    primary: str = ""
    timestamp: int = 0


def _parse_status(text: str) -> list[_Raw]:
    """gpg's status lines to raw signatures, as gpgme's verify parser reads them."""
    sigs: list[_Raw] = []
    cur: _Raw | None = None

    def current() -> _Raw:
        nonlocal cur
        if cur is None:
            cur = _Raw()
            sigs.append(cur)
        return cur

    for line in text.splitlines():
        if not line.startswith("[GNUPG:] "):
            continue
        words = line[9:].split(" ")
        kw, args = words[0], words[1:]
        if kw == "NEWSIG":
            cur = _Raw()
            sigs.append(cur)
        elif kw in _STATUS_OF:
            sig = current()
            if sig.status is not None and sig.status is not _STATUS_OF[kw]:
                cur = None  # a second signature without NEWSIG (old gpg)
                sig = current()
            sig.status = _STATUS_OF[kw]
            sig.ident = sig.ident or (args[0] if args else "")
        elif kw == "ERRSIG":
            sig = current()
            rc = args[5] if len(args) > 5 else ""
            sig.status = SigStatus.KEY_UNKNOWN if rc == "9" else SigStatus.INVALID
            if len(args) > 6 and args[6] != "-":
                sig.ident = args[6]
            elif args:
                sig.ident = sig.ident or args[0]
            if len(args) > 4 and args[4].isdigit():
                sig.timestamp = int(args[4])
        elif kw == "VALIDSIG":
            sig = current()
            sig.ident = args[0]
            if args[2].isdigit():
                sig.timestamp = int(args[2])
            sig.primary = args[9] if len(args) > 9 else args[0]
        elif kw in _VALIDITY_OF:
            current().validity = _VALIDITY_OF[kw]
    return sigs


def _run_verify(gpgdir: str, sig: bytes, path: str) -> list[_Raw]:
    with tempfile.NamedTemporaryFile(prefix="alpmd-sig-", suffix=".sig") as tmp:
        tmp.write(sig)
        tmp.flush()
        proc = keyring.gpg_run(gpgdir, "--status-fd", "1", "--verify", tmp.name, path,
                               check=False)
    return _parse_status(proc.stdout.decode(errors="replace"))


def check_signature(handle: Handle, path: str, base64_sig: str | None = None) -> list[Signature]:
    """Every signature on ``path`` with its status and validity (``_alpm_gpgme_checksig``).

    The signature is ``base64_sig`` when given (a sync database's %PGPSIG%),
    else ``path.sig``. No signature raises ``SIG_MISSING``; a signature file
    gpg cannot parse counts as one invalid signature.
    """
    if not os.access(path, os.R_OK):
        raise AlpmError(ErrorCode.NOT_A_FILE, f"could not find or read file: {path}", path=path)
    if base64_sig is not None:
        data = decode_signature(base64_sig)
    else:
        try:
            with open(sigpath(path), "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise AlpmError(ErrorCode.SIG_MISSING, f"missing PGP signature: {sigpath(path)}",
                            path=path) from exc
    gpgdir = keyring.keyring_dir(handle.options.gpgdir)
    raws = _run_verify(gpgdir, data, path) if data else []
    if not raws:
        # gpg found no signature packet at all: libalpm fails such a check outright.
        return [Signature(SigStatus.INVALID, SigValidity.UNKNOWN, "")]
    out: list[Signature] = []
    wanted = [r.primary or r.ident for r in raws
              if r.status is not SigStatus.KEY_UNKNOWN and (r.primary or r.ident)]
    known = {k.fingerprint: k for k in keyring.list_keys(gpgdir, wanted)} if wanted else {}
    for raw in raws:
        status = raw.status or SigStatus.INVALID
        key = None
        ident = raw.primary or raw.ident
        if status is not SigStatus.KEY_UNKNOWN and ident:
            key = known.get(ident) or next((k for k in known.values() if k.matches(ident)), None)
        if key is not None and key.disabled:
            status = SigStatus.KEY_DISABLED
        out.append(Signature(
            status=status, validity=raw.validity,
            fingerprint=key.fingerprint if key is not None else ident.upper(),
            uid=key.uid if key is not None else None,
            created=key.created if key is not None else 0,
            expires=key.expires if key is not None else None,
            timestamp=raw.timestamp))
    return out


def _acceptable(sig: Signature, policy: SigPolicy) -> bool:
    """One signature under a policy (``_alpm_check_pgp_helper``): expired keys still count."""
    if sig.status not in (SigStatus.VALID, SigStatus.KEY_EXPIRED):
        return False
    if sig.validity is SigValidity.FULL:
        return True
    if sig.validity is SigValidity.NEVER:
        return False
    return policy.trust is SigTrust.TRUST_ALL


def _explain(identifier: str, sig: Signature, policy: SigPolicy) -> str | None:
    """pacman's error line for a rejected signature (``_alpm_process_siglist``)."""
    name = sig.name
    if sig.status in (SigStatus.VALID, SigStatus.KEY_EXPIRED):
        if sig.validity is SigValidity.NEVER:
            return f'{identifier}: signature from "{name}" should never be trusted'
        if policy.trust is SigTrust.TRUST_ALL or sig.validity is SigValidity.FULL:
            return None
        return f'{identifier}: signature from "{name}" is {sig.validity.value} trust'
    return {
        SigStatus.KEY_UNKNOWN: f'{identifier}: key "{name}" is unknown',
        SigStatus.KEY_DISABLED: f'{identifier}: key "{name}" is disabled',
        SigStatus.SIG_EXPIRED: f'{identifier}: signature from "{name}" is expired',
        SigStatus.INVALID: f'{identifier}: signature from "{name}" is invalid',
    }.get(sig.status)


# --------------------------------------------------------------------------- keys


def key_in_keyring(handle: Handle, fingerprint: str) -> bool:
    """Whether the keyring has the key (``_alpm_key_in_keychain``)."""
    return keyring.find_key(keyring.keyring_dir(handle.options.gpgdir), fingerprint) is not None


def _candidate_files(near: str | None, ident: str, dirs: Sequence[str]) -> list[str]:
    ident = ident.upper()
    names = {ident, ident[-16:], ident[-8:], ident.lower(), ident[-16:].lower()}
    out: list[str] = []
    if near:
        base = os.path.dirname(os.path.abspath(near))
        out += [os.path.join(base, n + s) for n in sorted(names) for s in KEY_FILE_SUFFIXES]
    for d in dirs:
        try:
            out += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".gpg"))
        except OSError:
            continue
    return [p for p in out if os.path.isfile(p)]


def find_key_source(ident: str, *, near: str | None = None,
                    keyring_dirs: Sequence[str] | None = None) -> KeySource | None:
    """A local file that holds the key ``ident``: one shipped beside ``near``, or a
    distribution keyring (``keyring_dirs``, by default pacman's and Debian's)."""
    dirs = keyring.DEFAULT_KEYRING_DIRS if keyring_dirs is None else keyring_dirs
    for path in _candidate_files(near, ident, dirs):
        for key in keyring.show_key_file(path):
            if key.matches(ident):
                return KeySource(path, key.fingerprint, key.uid, key.created)
    return None


def import_key(handle: Handle, ident: str, *, uid: str | None = None, near: str | None = None,
               question: QuestionCallback | None = None,
               keyring_dirs: Sequence[str] | None = None) -> bool:
    """Offer to import an unknown key (``_alpm_key_import``); True when it was imported.

    The ImportKey question is always asked when a source exists, with the
    source's own uid (or ``uid``, e.g. the packager, else "unknown"); with no
    one to ask the answer is pacman's default, no. Without a local source the
    key cannot be had and nothing is asked.
    """
    gpgdir = keyring.keyring_dir(handle.options.gpgdir)
    source = find_key_source(ident, near=near, keyring_dirs=keyring_dirs)
    if source is None:
        handle.log(LogLevel.ERROR, f'key "{ident}" could not be looked up locally')
        return False
    q = ImportKey(fingerprint=source.fingerprint, uid=source.uid or uid or "unknown",
                  created=source.created)
    if not answer(question, q):
        return False
    if not os.access(gpgdir, os.W_OK):
        handle.log(LogLevel.ERROR, "keyring is not writable")
        return False
    keyring.import_key_from(gpgdir, source.path, source.fingerprint)
    handle.logaction("ALPM", f"imported PGP key {source.fingerprint} ({q.uid})")
    return True


# --------------------------------------------------------------------------- levels


def _verify(handle: Handle, path: str, base64_sig: str | None, policy: SigPolicy,
            identifier: str, uid_hint: str | None,
            question: QuestionCallback | None) -> tuple[list[Signature], list[str], list[str]]:
    """Check, offer imports for unknown keys and retry once; (sigs, imported, errors)."""
    imported: list[str] = []
    sigs = check_signature(handle, path, base64_sig)
    for _ in range(2):
        if sigs and all(_acceptable(s, policy) for s in sigs):
            return sigs, imported, []
        retry = False
        for s in sigs:
            if s.status is SigStatus.KEY_UNKNOWN and s.fingerprint \
                    and not key_in_keyring(handle, s.fingerprint):
                if import_key(handle, s.fingerprint, uid=uid_hint, near=path,
                              question=question):
                    imported.append(s.fingerprint)
                    retry = True
        if not retry:
            break
        sigs = check_signature(handle, path, base64_sig)
    errors = [m for s in sigs if (m := _explain(identifier, s, policy)) is not None]
    return sigs, imported, errors


def _identifier_for_db(db_path: str) -> str:
    name = os.path.basename(db_path)
    for ext in (".db", ".files"):
        if ext in name:
            return name[:name.index(ext)]
    return name


def verify_file(handle: Handle, path: str, policy: SigPolicy, *, base64_sig: str | None = None,
                identifier: str | None = None, question: QuestionCallback | None = None,
                uid_hint: str | None = None) -> SigResult:
    """Check any file under one policy; raises ``SIG_MISSING`` / ``SIG_INVALID``."""
    identifier = identifier or os.path.basename(path)
    if policy.check is SigCheck.NEVER:
        return SigResult(checked=False)
    has_sig = base64_sig is not None or os.path.exists(sigpath(path))
    if not has_sig:
        if policy.check is SigCheck.REQUIRED:
            raise AlpmError(ErrorCode.SIG_MISSING, f"{identifier}: missing required signature",
                            path=path)
        return SigResult(missing=True)
    sigs, imported, errors = _verify(handle, path, base64_sig, policy, identifier,
                                     uid_hint, question)
    if errors or not sigs:
        for m in errors:
            handle.log(LogLevel.ERROR, m)
        raise AlpmError(ErrorCode.SIG_INVALID, errors[0] if errors else None, path=path,
                        signatures=sigs, messages=errors)
    return SigResult(signatures=sigs, imported=imported)


def _in_cache(handle: Handle, path: str) -> bool:
    real = os.path.realpath(path)
    return any(real.startswith(os.path.realpath(d) + os.sep) for d in handle.options.cachedirs)


def verify_package(handle: Handle, path: str, pkg: Package | None, level: SigLevel, *,
                   question: QuestionCallback | None = None) -> SigResult:
    """Check a package file under ``level.package`` (``_alpm_pkg_validate_internal``).

    The signature is the sync database's %PGPSIG% when ``pkg`` has one, else
    ``path.sig``. Failures raise ``PKG_MISSING_SIG`` or ``PKG_INVALID_SIG``
    (details: ``signatures``, ``messages``); when the file sits in a cache
    directory and the signature is bad (not merely from an unknown key) the
    CorruptedPackage question is asked and a yes deletes the file, as pacman.
    """
    policy = level.package
    identifier = pkg.name if pkg is not None else os.path.basename(path)
    if policy.check is SigCheck.NEVER:
        return SigResult(checked=False)
    base64_sig = pkg.base64_sig if pkg is not None else None
    uid_hint = None
    if pkg is not None:
        try:
            uid_hint = pkg.packager
        except AlpmError:
            uid_hint = None
    try:
        return verify_file(handle, path, policy, base64_sig=base64_sig or None,
                           identifier=identifier, question=question, uid_hint=uid_hint)
    except AlpmError as exc:
        if exc.code is ErrorCode.SIG_MISSING:
            raise AlpmError(ErrorCode.PKG_MISSING_SIG, f"{identifier}: missing required signature",
                            path=path, package=identifier) from exc
        if exc.code is not ErrorCode.SIG_INVALID:
            raise
        sigs: list[Signature] = exc.details.get("signatures", [])
        messages: list[str] = exc.details.get("messages", [])
        deleted = False
        unknown_only = bool(sigs) and all(s.status is SigStatus.KEY_UNKNOWN for s in sigs)
        if not unknown_only and _in_cache(handle, path):
            q = CorruptedPackage(filepath=path, reason=ErrorCode.PKG_INVALID_SIG.strerror)
            if answer(question, q):
                try:
                    os.unlink(path)
                    deleted = True
                except OSError:
                    pass
        raise AlpmError(ErrorCode.PKG_INVALID_SIG,
                        messages[0] if messages else ErrorCode.PKG_INVALID_SIG.strerror,
                        path=path, package=identifier, signatures=sigs, messages=messages,
                        deleted=deleted) from exc


def verify_database(handle: Handle, db_path: str, level: SigLevel, *, embedded: str | None = None,
                    question: QuestionCallback | None = None) -> SigResult:
    """Check a sync database under ``level.database`` before it replaces the old one.

    The signature is ``db_path.sig`` (or ``embedded``, base64). A missing
    signature under Required raises ``SIG_MISSING``; a bad one ``DB_INVALID_SIG``.
    """
    policy = level.database
    identifier = _identifier_for_db(db_path)
    try:
        return verify_file(handle, db_path, policy, base64_sig=embedded,
                           identifier=identifier, question=question)
    except AlpmError as exc:
        if exc.code is ErrorCode.SIG_INVALID:
            messages: list[str] = exc.details.get("messages", [])
            raise AlpmError(ErrorCode.DB_INVALID_SIG,
                            messages[0] if messages else ErrorCode.DB_INVALID_SIG.strerror,
                            path=db_path, database=identifier,
                            signatures=exc.details.get("signatures", []),
                            messages=messages) from exc
        raise
