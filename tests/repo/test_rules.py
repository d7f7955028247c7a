"""The release rules: each failing command raises a stable error and changes nothing anywhere."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.repo import ops
from alpmd.engine.repo.config import load_tree_config
from alpmd.engine.repo.tree import Tree, open_tree
from alpmd.engine.repo.txn import tree_lock
from tests.signing.conftest import Lab

from .conftest import ARCH, OTHER, Packager, alpm_repo, read_db, snapshot


def refused(tree: Tree, code: ErrorCode, action: Callable[[], object],
            text: str | None = None) -> AlpmError:
    """``action`` fails with ``code`` and leaves the tree exactly as it was."""
    before = snapshot(tree)
    with pytest.raises(AlpmError) as info:
        action()
    assert info.value.code is code, info.value
    if text is not None:
        assert text in info.value.message
    assert snapshot(tree) == before
    return info.value


def add(tree: Tree, repo: str, arch: str, *files: Path, force: bool = False) -> None:
    ops.add(tree, repo, arch, [str(f) for f in files], user="tester", force=force)


def names(tree: Tree, repo: str, arch: str) -> list[str]:
    return sorted(read_db(Path(tree.cfg.arch_dir(repo, arch)) / f"{repo}.db.tar.gz"))


def test_same_version_again_fails(tree: Tree, packager: Packager) -> None:
    f = packager.pkg("foo")
    add(tree, "extra", ARCH, f)
    refused(tree, ErrorCode.TRANS_DUP_TARGET, lambda: add(tree, "extra", ARCH, f),
            "already in extra")


def test_older_fails_unless_forced(tree: Tree, packager: Packager) -> None:
    add(tree, "extra", ARCH, packager.pkg("foo", "2.0-1"))
    old = packager.pkg("foo", "1.9-1")
    refused(tree, ErrorCode.PKG_INVALID, lambda: add(tree, "extra", ARCH, old), "older")
    add(tree, "extra", ARCH, old, force=True)
    assert names(tree, "extra", ARCH) == ["foo-1.9-1"]
    assert [h.detail for h in tree.tracking.history("foo")] == ["", "replaces 2.0-1"]


def test_epoch_wins_over_version(tree: Tree, packager: Packager) -> None:
    add(tree, "extra", ARCH, packager.pkg("foo", "2.0-1"))
    add(tree, "extra", ARCH, packager.pkg("foo", "1:1.0-1"))
    assert names(tree, "extra", ARCH) == ["foo-1:1.0-1"]
    refused(tree, ErrorCode.PKG_INVALID,
            lambda: add(tree, "extra", ARCH, packager.pkg("foo", "3.0-1")), "older")


def test_same_pkgbase_in_second_repository_fails(tree: Tree, packager: Packager) -> None:
    add(tree, "core", ARCH, packager.pkg("foo"))
    refused(tree, ErrorCode.TRANS_DUP_TARGET,
            lambda: add(tree, "extra", ARCH, packager.pkg("foo", "1.1-1")), "use move")
    # a split package of the same pkgbase under another name counts too
    refused(tree, ErrorCode.TRANS_DUP_TARGET,
            lambda: add(tree, "extra", ARCH, packager.pkg("foo-doc", "1.1-1", base="foo")))
    # but a testing repository may hold the next version beside the stable one
    add(tree, "testing", ARCH, packager.pkg("foo", "1.1-1"))


def test_incomplete_split_set_fails(tree: Tree, packager: Packager) -> None:
    add(tree, "extra", ARCH, packager.pkg("foo", base="foo"), packager.pkg("libfoo", base="foo"))
    refused(tree, ErrorCode.PKG_INVALID,
            lambda: add(tree, "extra", ARCH, packager.pkg("foo", "1.1-1", base="foo")),
            "libfoo missing")
    refused(tree, ErrorCode.PKG_INVALID,
            lambda: add(tree, "extra", ARCH, packager.pkg("foo", "1.1-1", base="foo"),
                        packager.pkg("libfoo", "1.2-1", base="foo")), "different versions")
    add(tree, "extra", ARCH, packager.pkg("foo", "1.1-1", base="foo"),
        packager.pkg("libfoo", "1.1-1", base="foo"))
    assert names(tree, "extra", ARCH) == ["foo-1.1-1", "libfoo-1.1-1"]


def test_name_owned_by_another_pkgbase_fails(tree: Tree, packager: Packager) -> None:
    add(tree, "extra", ARCH, packager.pkg("libfoo", base="foo"))
    refused(tree, ErrorCode.CONFLICTING_DEPS,
            lambda: add(tree, "extra", ARCH, packager.pkg("libfoo", "2.0-1", base="other")))


def test_unsigned_package_fails(tree: Tree, packager: Packager) -> None:
    f = packager.pkg("foo", sign=False)
    refused(tree, ErrorCode.PKG_MISSING_SIG, lambda: add(tree, "extra", ARCH, f))


def test_invalid_signature_fails(tree: Tree, packager: Packager) -> None:
    f = packager.pkg("foo")
    other = packager.pkg("bar")
    shutil.copyfile(f"{other}.sig", f"{f}.sig")   # a good signature of another file
    refused(tree, ErrorCode.PKG_INVALID_SIG, lambda: add(tree, "extra", ARCH, f))


def test_tampered_package_fails(tree: Tree, packager: Packager) -> None:
    f = packager.pkg("foo")
    data = bytearray(f.read_bytes())
    data[-5] ^= 1
    f.write_bytes(bytes(data))
    with pytest.raises(AlpmError) as info:
        add(tree, "extra", ARCH, f)
    assert info.value.code in (ErrorCode.PKG_INVALID_SIG, ErrorCode.PKG_INVALID,
                               ErrorCode.PKG_OPEN, ErrorCode.LIBARCHIVE)


@pytest.mark.parametrize("content", [b"", b"garbage that is not OpenPGP", b"\x89\x01\x33" * 20])
def test_broken_sig_file_fails(tree: Tree, packager: Packager, content: bytes) -> None:
    f = packager.pkg("foo")
    Path(f"{f}.sig").write_bytes(content)
    refused(tree, ErrorCode.PKG_INVALID_SIG, lambda: add(tree, "extra", ARCH, f))


def test_armored_sig_file_fails(tree: Tree, packager: Packager) -> None:
    f = packager.pkg("foo", sign=False)
    assert packager.signer is not None
    packager.signer.gpg("-u", packager.signer.fingerprint, "--armor", "--detach-sign", "-o",
                        f"{f}.sig", str(f))
    refused(tree, ErrorCode.PKG_INVALID_SIG, lambda: add(tree, "extra", ARCH, f), "armored")


def test_key_outside_keyring_fails(tree: Tree, lab: Lab, tmp_path: Path) -> None:
    stranger = lab.signer("Stranger <stranger@example.org>")   # never imported
    f = Packager(tmp_path / "s", stranger).pkg("foo")
    refused(tree, ErrorCode.PKG_INVALID_SIG, lambda: add(tree, "extra", ARCH, f), "unknown")


def test_untrusted_key_in_keyring_fails(tree: Tree, lab: Lab, tmp_path: Path) -> None:
    s = lab.signer("Half <half@example.org>")
    lab.trust(s, lsign=False)  # known but not signed by the master key: unknown trust
    f = Packager(tmp_path / "s", s).pkg("foo")
    refused(tree, ErrorCode.PKG_INVALID_SIG, lambda: add(tree, "extra", ARCH, f))


def test_one_bad_file_fails_the_whole_add(tree: Tree, packager: Packager) -> None:
    good = packager.pkg("good")
    bad = packager.pkg("bad", sign=False)
    refused(tree, ErrorCode.PKG_MISSING_SIG, lambda: add(tree, "extra", ARCH, good, bad))
    assert os.listdir(tree.cfg.pool) == []


@pytest.mark.parametrize("wrong", ["foo-1.0-2-{a}.pkg.tar.zst", "fob-1.0-1-{a}.pkg.tar.zst",
                                   "foo-1.0-1-any.pkg.tar.zst", "foo-1.0-1-{a}.pkg.tar.zst.old"])
def test_file_name_must_match_pkginfo(tree: Tree, packager: Packager, wrong: str) -> None:
    f = packager.pkg("foo")
    moved = f.with_name(wrong.format(a=ARCH))
    f.rename(moved)
    Path(f"{f}.sig").rename(f"{moved}.sig")
    refused(tree, ErrorCode.PKG_INVALID_NAME, lambda: add(tree, "extra", ARCH, moved),
            "does not match")


def test_package_must_be_a_regular_file(tree: Tree, packager: Packager, tmp_path: Path) -> None:
    f = packager.pkg("foo")
    link_dir = tmp_path / "links"
    link_dir.mkdir()
    link = link_dir / f.name
    link.symlink_to(f)
    Path(f"{link}.sig").symlink_to(f"{f}.sig")
    refused(tree, ErrorCode.PKG_OPEN, lambda: add(tree, "extra", ARCH, link), "regular file")
    fifo = tmp_path / "fifo" / f.name
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    refused(tree, ErrorCode.PKG_OPEN, lambda: add(tree, "extra", ARCH, fifo), "regular file")
    refused(tree, ErrorCode.PKG_OPEN,
            lambda: add(tree, "extra", ARCH, Path("/dev/null")), "regular file")


def test_unconfigured_arch_and_wrong_arch_fail(tree: Tree, packager: Packager) -> None:
    refused(tree, ErrorCode.PKG_INVALID_ARCH,
            lambda: add(tree, "extra", ARCH, packager.pkg("foo", arch="riscv64")))
    refused(tree, ErrorCode.PKG_INVALID_ARCH,
            lambda: add(tree, "extra", OTHER, packager.pkg("bar", arch=ARCH)))
    refused(tree, ErrorCode.DB_NOT_FOUND,
            lambda: add(tree, "nosuch", ARCH, packager.pkg("baz")))


def test_any_fans_out_and_any_removes_everywhere(tree: Tree, packager: Packager) -> None:
    add(tree, "extra", ARCH, packager.pkg("data", arch="any"),
        packager.pkg("tool", base="data"))
    assert names(tree, "extra", ARCH) == ["data-1.0-1", "tool-1.0-1"]
    assert names(tree, "extra", OTHER) == ["data-1.0-1"]
    ops.remove(tree, "extra", "any", ["data"], user="tester")
    assert names(tree, "extra", ARCH) == names(tree, "extra", OTHER) == []
    refused(tree, ErrorCode.PKG_NOT_FOUND,
            lambda: ops.remove(tree, "extra", "any", ["data"], user="tester"))


def test_same_pkgbase_any_and_per_arch_packages(tree: Tree, packager: Packager) -> None:
    add(tree, "extra", "any", packager.pkg("app", base="app"),
        packager.pkg("app", arch=OTHER, base="app"),
        packager.pkg("app-data", arch="any", base="app"))
    assert names(tree, "extra", ARCH) == ["app-1.0-1", "app-data-1.0-1"]
    assert names(tree, "extra", OTHER) == ["app-1.0-1", "app-data-1.0-1"]
    # an update of one architecture must bring the whole set for it
    refused(tree, ErrorCode.PKG_INVALID,
            lambda: add(tree, "extra", ARCH, packager.pkg("app", "1.1-1", base="app")))


def test_permission_on_one_repository_blocks_everything(tree: Tree, packager: Packager,
                                                        tmp_path: Path) -> None:
    conf = Path(tree.cfg.path)
    conf.write_text(conf.read_text().replace("[core]", "[core]\nAllow = alice"))
    t = open_tree(tree.cfg.root)
    staging = Path(t.cfg.staging)
    for repo, name in (("extra", "one"), ("core", "two")):
        (staging / repo).mkdir(parents=True, exist_ok=True)
        f = packager.pkg(name, outdir=staging / repo)
        assert f.parent == staging / repo
    refused(t, ErrorCode.BADPERMS, lambda: ops.update(t, user="mallory"), "may not change")
    plan = ops.update(t, user="alice")
    assert {h.base for h in plan.history} == {"one", "two"}
    assert sorted(os.listdir(staging / "extra")) == []
    t.close()


def test_second_writer_waits_bounded_then_fails_clearly(tree: Tree, packager: Packager) -> None:
    conf = Path(tree.cfg.path)
    conf.write_text(conf.read_text().replace("LockTimeout = 30", "LockTimeout = 0.5"))
    cfg = load_tree_config(tree.cfg.root)
    f = packager.pkg("foo")
    with tree_lock(cfg):
        proc = alpm_repo(tree.cfg.root, "add", "extra", ARCH, str(f))
    assert proc.returncode == 1
    assert f"is locked by process {os.getpid()}" in proc.stderr
    assert "[handle-lock]" in proc.stderr
    assert names(tree, "extra", ARCH) == []
    proc = alpm_repo(tree.cfg.root, "add", "extra", ARCH, str(f))
    assert proc.returncode == 0, proc.stderr
    assert names(tree, "extra", ARCH) == ["foo-1.0-1"]
