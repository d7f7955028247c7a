"""Trusting a packager key: the one use case behind ``TrustKey`` and ``alpmctl trust-key``.

The key comes only from a local source the engine knows (a distribution keyring,
see :func:`~alpmd.engine.signing.find_key_source`), never from the network; it is
imported only when the ImportKey question for that very key is answered yes, and
then locally signed by the keyring's master key.
"""

from __future__ import annotations

from dataclasses import dataclass

from alpmd.engine import keyring, signing
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import ImportKey, Question, QuestionCallback, answer
from alpmd.engine.handle import Handle

__all__ = ["TrustResult", "trust_key"]


@dataclass(frozen=True)
class TrustResult:
    """What trusting a key did: imported it, or found it trusted already."""

    fingerprint: str
    imported: bool
    already_trusted: bool

    @property
    def message(self) -> str:
        if self.already_trusted:
            return f"key {self.fingerprint} is already trusted"
        return f"{'imported and ' if self.imported else ''}locally signed key {self.fingerprint}"


def trust_key(handle: Handle, ident: str, *, question: QuestionCallback | None = None,
              who: str = "", keyring_dirs: list[str] | None = None) -> TrustResult:
    """Import (asking) and locally sign the key ``ident`` (a fingerprint or its tail).

    Only the ImportKey question for this key reaches ``question``; anything else is
    answered no. SIG_MISSING when the key cannot be had; ``who`` goes into
    pacman.log's line (e.g. "uid 1000").
    """
    ident = ident.replace(" ", "").upper()
    if not 8 <= len(ident) <= 40 or any(c not in "0123456789ABCDEF" for c in ident):
        raise AlpmError(ErrorCode.WRONG_ARGS, f"not a key fingerprint: {ident[:64]!r}")
    gpgdir = keyring.keyring_dir(handle.options.gpgdir)
    key = keyring.find_key(gpgdir, ident)
    imported = False
    if key is None:
        def only_this(q: Question) -> object:
            if isinstance(q, ImportKey) and q.fingerprint.upper().endswith(ident):
                return answer(question, q)
            return False
        if not signing.import_key(handle, ident, question=only_this, keyring_dirs=keyring_dirs):
            raise AlpmError(ErrorCode.SIG_MISSING,
                            f"key {ident} is not in the keyring and was not imported", key=ident)
        key = keyring.find_key(gpgdir, ident)
        if key is None:
            raise AlpmError(ErrorCode.GPGME, f"key {ident} could not be imported", key=ident)
        imported = True
    if keyring.is_lsigned(gpgdir, key.fingerprint):
        return TrustResult(key.fingerprint, imported, True)
    keyring.lsign_keys(gpgdir, [key.fingerprint])
    handle.logaction("ALPM", f"locally signed key {key.fingerprint}" + (f" ({who})" if who else ""))
    return TrustResult(key.fingerprint, imported, False)
