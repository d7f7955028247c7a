"""Trusting a key (the engine's one use case behind TrustKey): a known key is locally
signed; a key from a local distribution keyring is imported only if the question for
that very key is answered yes; an unknown key is refused without a question."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpmd.engine import keyring
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import ImportKey, Question
from alpmd.engine.trust import trust_key

from .conftest import Lab


def test_a_known_key_is_locally_signed_once(lab: Lab) -> None:
    s = lab.signer()
    lab.trust(s, lsign=False)
    h = lab.handle(logfile=str(lab.root / "pacman.log"))
    assert not keyring.is_lsigned(str(lab.gpgdir), s.fingerprint)
    res = trust_key(h, s.fingerprint[-16:].lower(), who="uid 1000")
    assert (res.fingerprint, res.imported, res.already_trusted) == (s.fingerprint, False, False)
    assert keyring.is_lsigned(str(lab.gpgdir), s.fingerprint)
    assert f"locally signed key {s.fingerprint} (uid 1000)" in (lab.root / "pacman.log").read_text()
    again = trust_key(h, s.fingerprint)
    assert again.already_trusted and again.message == f"key {s.fingerprint} is already trusted"


@pytest.mark.parametrize("yes", [True, False])
def test_import_from_a_distribution_keyring_asks_for_that_key(lab: Lab, tmp_path: Path,
                                                               yes: bool) -> None:
    s = lab.signer("Distro <d@x.org>")
    kdir = tmp_path / "keyrings"
    kdir.mkdir()
    (kdir / "distro.gpg").write_bytes(s.gpg("--export", s.fingerprint).stdout)
    asked: list[Question] = []

    def question(q: Question) -> object:
        asked.append(q)
        return yes

    h = lab.handle()
    if yes:
        res = trust_key(h, s.fingerprint, question=question, keyring_dirs=[str(kdir)])
        assert res.imported and not res.already_trusted
        assert keyring.is_lsigned(str(lab.gpgdir), s.fingerprint)
    else:
        with pytest.raises(AlpmError) as err:
            trust_key(h, s.fingerprint, question=question, keyring_dirs=[str(kdir)])
        assert err.value.code is ErrorCode.SIG_MISSING
        assert keyring.find_key(str(lab.gpgdir), s.fingerprint) is None
    assert len(asked) == 1 and isinstance(asked[0], ImportKey)
    assert asked[0].fingerprint == s.fingerprint and asked[0].uid == "Distro <d@x.org>"


def test_unknown_or_malformed_keys_are_refused(lab: Lab, tmp_path: Path) -> None:
    asked: list[Question] = []
    h = lab.handle()
    with pytest.raises(AlpmError) as err:
        trust_key(h, "DEADBEEF" * 5, question=lambda q: asked.append(q) or True,
                  keyring_dirs=[str(tmp_path)])
    assert err.value.code is ErrorCode.SIG_MISSING and asked == []
    with pytest.raises(AlpmError) as err:
        trust_key(h, "not-a-key")
    assert err.value.code is ErrorCode.WRONG_ARGS
