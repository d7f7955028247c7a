"""Package and database signatures against real gpg keys, judged as libalpm judges them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from alpmd.engine import keyring
from alpmd.engine.config import SigCheck, SigLevel, SigPolicy, SigTrust, parse_siglevel
from alpmd.engine.db.sync import SyncDatabase
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import CorruptedPackage, ImportKey, Question
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.signing import (
    SigStatus,
    SigValidity,
    check_signature,
    verify_database,
    verify_package,
)
from alpmd.testing.repogen import write_sync_db

from .conftest import Lab, b64

REQUIRED = parse_siglevel("Required")
REQUIRED_ALL = parse_siglevel("Required TrustAll")
OPTIONAL = parse_siglevel("Optional")
NEVER = parse_siglevel("Never")


class Asked:
    """A question callback that records what it was asked and answers ``reply``."""

    def __init__(self, reply: object) -> None:
        self.reply = reply
        self.questions: list[Question] = []

    def __call__(self, q: Question) -> object:
        self.questions.append(q)
        return self.reply


def test_good_signature_fully_trusted(lab: Lab) -> None:
    s = lab.signer()
    lab.trust(s)
    pkg = lab.package()
    s.sign(pkg)
    res = verify_package(lab.handle(), str(pkg), None, REQUIRED)
    assert res.checked and not res.missing
    [sig] = res.signatures
    assert (sig.status, sig.validity) == (SigStatus.VALID, SigValidity.FULL)
    assert sig.fingerprint == s.fingerprint and sig.uid == s.uid


def test_tampered_package_rejected_and_cache_copy_offered_for_deletion(lab: Lab) -> None:
    s = lab.signer()
    lab.trust(s)
    handle = lab.handle()
    cache = Path(handle.options.cachedirs[0])
    pkg = lab.package(outdir=cache)
    s.sign(pkg)
    with pkg.open("ab") as fh:
        fh.write(b"\0tampered")
    keep = Asked(False)
    with pytest.raises(AlpmError) as exc:
        verify_package(handle, str(pkg), None, REQUIRED, question=keep)
    assert exc.value.code is ErrorCode.PKG_INVALID_SIG
    assert [s.status for s in exc.value.details["signatures"]] == [SigStatus.INVALID]
    assert "is invalid" in str(exc.value)
    assert [type(q) for q in keep.questions] == [CorruptedPackage] and pkg.exists()
    delete = Asked(True)
    with pytest.raises(AlpmError):
        verify_package(handle, str(pkg), None, OPTIONAL, question=delete)
    assert not pkg.exists()


def test_tampered_package_outside_cache_is_not_deleted(lab: Lab) -> None:
    s = lab.signer()
    lab.trust(s)
    pkg = lab.package()
    s.sign(pkg, out=Path(str(pkg) + ".sig"))
    other = lab.package("bar")
    shutil.copyfile(str(pkg) + ".sig", str(other) + ".sig")  # a signature of another file
    asked = Asked(True)
    with pytest.raises(AlpmError) as exc:
        verify_package(lab.handle(), str(other), None, REQUIRED, question=asked)
    assert exc.value.code is ErrorCode.PKG_INVALID_SIG
    assert asked.questions == [] and other.exists()


def test_missing_signature_required_optional_never(lab: Lab) -> None:
    pkg = lab.package()
    handle = lab.handle()
    with pytest.raises(AlpmError) as exc:
        verify_package(handle, str(pkg), None, REQUIRED)
    assert exc.value.code is ErrorCode.PKG_MISSING_SIG
    assert str(exc.value) == "foo-1.0-1-any.pkg.tar.zst: missing required signature"
    res = verify_package(handle, str(pkg), None, OPTIONAL)
    assert res.missing and res.signatures == []
    # Never does not even look: a garbage signature file passes
    Path(str(pkg) + ".sig").write_bytes(b"not a signature")
    assert verify_package(handle, str(pkg), None, NEVER).checked is False
    with pytest.raises(AlpmError) as exc:
        verify_package(handle, str(pkg), None, OPTIONAL)
    assert exc.value.code is ErrorCode.PKG_INVALID_SIG


def test_database_good_tampered_missing(lab: Lab) -> None:
    s = lab.signer()
    lab.trust(s)
    handle = lab.handle()
    db = write_sync_db([PkgMeta(name="foo", version="1.0-1")], lab.root / "repo/core.db.tar.gz")
    with pytest.raises(AlpmError) as exc:
        verify_database(handle, str(db), REQUIRED)
    assert exc.value.code is ErrorCode.SIG_MISSING
    assert str(exc.value) == "core: missing required signature"
    assert verify_database(handle, str(db), OPTIONAL).missing
    s.sign(db)
    [sig] = verify_database(handle, str(db), REQUIRED).signatures
    assert sig.status is SigStatus.VALID
    # the same signature embedded (base64) instead of beside
    embedded = b64(Path(str(db) + ".sig"))
    Path(str(db) + ".sig").unlink()
    assert verify_database(handle, str(db), REQUIRED, embedded=embedded).signatures
    s.sign(db)
    write_sync_db([PkgMeta(name="foo", version="1.0-2")], db)
    with pytest.raises(AlpmError) as exc:
        verify_database(handle, str(db), REQUIRED)
    assert exc.value.code is ErrorCode.DB_INVALID_SIG
    assert str(exc.value).startswith('core: signature from "Packager')
    # package-only levels leave databases alone
    pkg_only = SigLevel(package=SigPolicy(SigCheck.REQUIRED), database=SigPolicy(SigCheck.NEVER))
    assert verify_database(handle, str(db), pkg_only).checked is False


def test_embedded_pgpsig_from_sync_database(lab: Lab) -> None:
    s = lab.signer()
    lab.trust(s)
    good, bad = lab.package("foo"), lab.package("bar")
    metas = []
    for path, name in ((good, "foo"), (bad, "bar")):
        sig = s.sign(good)  # bar carries foo's signature: wrong for bar
        metas.append(PkgMeta(name=name, version="1.0-1", filename=path.name, base64_sig=b64(sig)))
        sig.unlink()
    db = SyncDatabase("core", str(write_sync_db(metas, lab.root / "core.db")))
    handle = lab.handle()
    foo, bar = db.get("foo"), db.get("bar")
    assert foo is not None and bar is not None and foo.base64_sig
    [sig] = verify_package(handle, str(good), foo, REQUIRED).signatures
    assert sig.status is SigStatus.VALID
    # the embedded signature wins over a .sig file beside the package
    Path(str(bad) + ".sig").write_bytes(Path(s.sign(bad)).read_bytes())
    with pytest.raises(AlpmError) as exc:
        verify_package(handle, str(bad), bar, REQUIRED)
    assert exc.value.code is ErrorCode.PKG_INVALID_SIG
    assert "bar: signature from" in str(exc.value)


def test_unknown_key_without_a_source_asks_nothing(lab: Lab) -> None:
    s = lab.signer()
    pkg = lab.package()
    s.sign(pkg)
    asked = Asked(True)
    with pytest.raises(AlpmError) as exc:
        verify_package(lab.handle(), str(pkg), None, REQUIRED_ALL, question=asked)
    assert exc.value.code is ErrorCode.PKG_INVALID_SIG
    [sig] = exc.value.details["signatures"]
    assert sig.status is SigStatus.KEY_UNKNOWN and sig.fingerprint == s.fingerprint
    assert str(exc.value) == f'{pkg.name}: key "{s.fingerprint}" is unknown'
    assert asked.questions == []


def test_unknown_key_refused_then_accepted(lab: Lab) -> None:
    s = lab.signer("Key Shipper <ship@example.org>")
    pkg = lab.package()
    s.sign(pkg)
    s.export(pkg.parent / f"{s.fingerprint}.asc")
    handle = lab.handle()
    refuse = Asked(False)
    with pytest.raises(AlpmError):
        verify_package(handle, str(pkg), None, REQUIRED_ALL, question=refuse)
    [q] = refuse.questions
    assert isinstance(q, ImportKey) and q.default is False
    assert (q.fingerprint, q.uid) == (s.fingerprint, s.uid) and q.created > 0
    assert keyring.find_key(str(lab.gpgdir), s.fingerprint) is None
    # no callback: pacman's default (no), never a silent import
    with pytest.raises(AlpmError):
        verify_package(handle, str(pkg), None, REQUIRED_ALL)
    assert keyring.find_key(str(lab.gpgdir), s.fingerprint) is None
    # accepted: imported, but not locally signed, so only TrustAll takes it (as pacman)
    accept = Asked(True)
    with pytest.raises(AlpmError) as exc:
        verify_package(handle, str(pkg), None, REQUIRED, question=accept)
    assert len(accept.questions) == 1
    assert keyring.find_key(str(lab.gpgdir), s.fingerprint) is not None
    assert str(exc.value) == f'{pkg.name}: signature from "{s.uid}" is unknown trust'
    res = verify_package(handle, str(pkg), None, REQUIRED_ALL, question=accept)
    assert res.signatures[0].validity is SigValidity.UNKNOWN
    assert len(accept.questions) == 1  # known now: not asked again


def test_unknown_key_uid_unknown_says_so(lab: Lab) -> None:
    s = lab.signer("Nameless <n@example.org>")
    pkg = lab.package()
    s.sign(pkg)
    # a key file that holds the key without any user id cannot be made with gpg;
    # instead check the packager is offered when the key source has no uid
    src = s.export(pkg.parent / f"{s.fingerprint[-16:]}.gpg", armor=False)
    asked = Asked(False)
    with pytest.raises(AlpmError):
        verify_package(lab.handle(), str(pkg), None, REQUIRED, question=asked)
    [q] = asked.questions
    assert isinstance(q, ImportKey) and q.uid == s.uid and src.exists()


def test_trusted_only_versus_trust_all_marginal(lab: Lab) -> None:
    introducer, packager = lab.signer("Introducer <i@example.org>"), lab.signer()
    lab.trust(introducer)
    keyring.gpg_run(str(lab.gpgdir), "--import-ownertrust",
                    input=f"{introducer.fingerprint}:4:\n".encode())
    introducer.certify(packager)
    keyring.add_keys(str(lab.gpgdir), [str(packager.export(packager.home / "p.asc"))])
    keyring.add_keys(str(lab.gpgdir), [str(introducer.export(introducer.home / "i.asc"))])
    keyring.gpg_run(str(lab.gpgdir), "--check-trustdb", check=False)
    pkg = lab.package()
    packager.sign(pkg)
    handle = lab.handle()
    with pytest.raises(AlpmError) as exc:
        verify_package(handle, str(pkg), None, REQUIRED)
    [sig] = exc.value.details["signatures"]
    assert (sig.status, sig.validity) == (SigStatus.VALID, SigValidity.MARGINAL)
    assert str(exc.value) == f'{pkg.name}: signature from "{packager.uid}" is marginal trust'
    assert verify_package(handle, str(pkg), None, REQUIRED_ALL).signatures[0].validity \
        is SigValidity.MARGINAL
    # a full-trust introducer makes the packager fully valid
    keyring.gpg_run(str(lab.gpgdir), "--import-ownertrust",
                    input=f"{introducer.fingerprint}:5:\n".encode())
    keyring.gpg_run(str(lab.gpgdir), "--check-trustdb", check=False)
    assert verify_package(handle, str(pkg), None, REQUIRED).signatures[0].validity \
        is SigValidity.FULL


def test_expired_key_and_expired_signature(lab: Lab) -> None:
    old = lab.signer("Old <old@example.org>", expire="1d", faked="20200101T000000")
    lab.trust(old)
    handle = lab.handle()
    pkg = lab.package()
    old.sign(pkg, faked="20200101T010000")
    # libalpm counts a good signature from an expired key as valid
    [sig] = check_signature(handle, str(pkg))
    assert sig.status is SigStatus.KEY_EXPIRED
    past = lab.signer("Past <past@example.org>", faked="20200101T000000")
    lab.trust(past)
    other = lab.package("bar")
    past.sign(other, faked="20200101T010000", expire="1d")
    with pytest.raises(AlpmError) as exc:
        verify_package(handle, str(other), None, REQUIRED_ALL)
    [sig] = exc.value.details["signatures"]
    assert sig.status is SigStatus.SIG_EXPIRED
    assert str(exc.value) == f'{other.name}: signature from "{past.uid}" is expired'


def test_revoked_and_disabled_keys(lab: Lab) -> None:
    s = lab.signer()
    lab.trust(s)
    pkg = lab.package()
    s.sign(pkg)
    handle = lab.handle()
    assert verify_package(handle, str(pkg), None, REQUIRED).signatures
    keyring.disable_keys(str(lab.gpgdir), [s.fingerprint])
    with pytest.raises(AlpmError) as exc:
        verify_package(handle, str(pkg), None, REQUIRED_ALL)
    assert exc.value.details["signatures"][0].status is SigStatus.KEY_DISABLED
    assert str(exc.value) == f'{pkg.name}: key "{s.uid}" is disabled'
    keyring.gpg_run(str(lab.gpgdir), "--command-fd", "0", "--edit-key", s.fingerprint,
                    input=b"enable\nquit\n")
    keyring.gpg_run(str(lab.gpgdir), "--import", input=s.revocation())
    assert keyring.find_key(str(lab.gpgdir), s.fingerprint).revoked  # type: ignore[union-attr]
    with pytest.raises(AlpmError) as exc:
        verify_package(handle, str(pkg), None, REQUIRED_ALL)
    assert exc.value.details["signatures"][0].status is SigStatus.INVALID


def test_trust_policy_words_reach_the_check(lab: Lab) -> None:
    """Per-kind words: PackageTrustAll with DatabaseTrustedOnly."""
    s = lab.signer()
    lab.trust(s, lsign=False)
    level = parse_siglevel("Required PackageTrustAll")
    assert level.package.trust is SigTrust.TRUST_ALL
    assert level.database.trust is SigTrust.TRUSTED_ONLY
    pkg = lab.package()
    s.sign(pkg)
    handle = lab.handle()
    assert verify_package(handle, str(pkg), None, level).signatures
    db = write_sync_db([PkgMeta(name="foo", version="1.0-1")], lab.root / "extra.db")
    s.sign(db)
    with pytest.raises(AlpmError) as exc:
        verify_database(handle, str(db), level)
    assert exc.value.code is ErrorCode.DB_INVALID_SIG
    assert "is unknown trust" in str(exc.value)


def test_pacman_key_verify_agrees(lab: Lab) -> None:
    if shutil.which("pacman-key") is None:
        pytest.skip("pacman-key is not installed")
    s = lab.signer()
    lab.trust(s)
    pkg = lab.package()
    sig = s.sign(pkg, out=lab.root / "foo.sig")
    other = lab.package("bar")
    handle = lab.handle()
    for target in (pkg, other):
        shutil.copyfile(sig, str(target) + ".sig")
        theirs = subprocess.run(["pacman-key", "--gpgdir", str(lab.gpgdir), "--verify",
                                 str(target) + ".sig", str(target)],
                                capture_output=True, timeout=60, check=False).returncode == 0
        ours = all(x.status is SigStatus.VALID for x in check_signature(handle, str(target)))
        assert ours == theirs
    assert {True, False} == {all(x.status is SigStatus.VALID
                                 for x in check_signature(handle, str(t))) for t in (pkg, other)}
