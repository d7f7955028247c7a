"""Databases written by alpm-repo against repo-add/repo-remove, and pacman syncing from a tree."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from alpmd.engine.repo import ops
from alpmd.engine.repo.tree import Tree, init_tree
from alpmd.testing.mirror import MirrorServer
from alpmd.testing.oracle import PACMAN
from tests.signing.conftest import Lab, Signer

from .conftest import ARCH, OTHER, Packager, need, read_db

MAGIC = {"gz": b"\x1f\x8b", "zst": b"\x28\xb5\x2f\xfd", "xz": b"\xfd7zXZ", "bz2": b"BZh"}


def varied(packager: Packager) -> list[Path]:
    """Split packages, an epoch, an `any` package, every list field, odd whitespace."""
    p = packager.pkg
    return [
        p("foo", "1.2-3", base="foo", depends=["bar>=1", "glibc"], optdepends=["baz: extra"],
          provides=["libfoo.so=1-64"], conflicts=["oldfoo"], replaces=["oldfoo"],
          groups=["grp"], licenses=["GPL", "custom:x y"], url="https://example.org/foo",
          makedepends=["gcc"], checkdepends=["python"]),
        p("foo-libs", "1.2-3", base="foo"),
        p("foo-debug", "1.2-3", base="foo"),
        p("bar", "2:0.9-1", "any"),
        p("baz", "1.0-1", desc="spaced   out\tdescription "),
    ]


def repo_add(files: list[Path], where: Path, db: str, *extra: str) -> Path:
    need("repo-add", "bsdtar")
    where.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copyfile(f, where / f.name)
        if Path(f"{f}.sig").exists():
            shutil.copyfile(f"{f}.sig", where / f"{f.name}.sig")
    proc = subprocess.run(["repo-add", "-q", *extra, db, *[f.name for f in files]], cwd=where,
                          capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    assert proc.returncode == 0, proc.stderr
    return where / db


@pytest.mark.oracle
@pytest.mark.parametrize("compression", ["gz", "zst", "xz", "bz2"])
def test_entries_identical_to_repo_add(tmp_path: Path, packager: Packager,
                                       compression: str) -> None:
    files = varied(packager)
    t = init_tree(str(tmp_path / "t"), ["extra"], [ARCH], compression=compression)
    ops.add(t, "extra", ARCH, [str(f) for f in files], user="tester")
    theirs = repo_add(files, tmp_path / "ra", f"extra.db.tar.{compression}")
    d = Path(t.cfg.arch_dir("extra", ARCH))
    for kind in ("db", "files"):
        ours_file = d / f"extra.{kind}.tar.{compression}"
        theirs_file = theirs.parent / f"extra.{kind}.tar.{compression}"
        ours, ref = read_db(ours_file), read_db(theirs_file)
        assert len(ref) == 5
        assert sorted(ours) == sorted(ref)
        for entry, members in ref.items():
            assert ours[entry] == members, entry   # desc (and files) text, field by field
        assert ours_file.read_bytes()[:len(MAGIC[compression])] == MAGIC[compression]
        assert theirs_file.read_bytes()[:len(MAGIC[compression])] == MAGIC[compression]
        assert os.readlink(d / f"extra.{kind}") == os.readlink(theirs.parent / f"extra.{kind}")
    desc = read_db(d / f"extra.db.tar.{compression}")["foo-1.2-3"]["desc"]
    for field in ("%CSIZE%", "%ISIZE%", "%SHA256SUM%", "%PGPSIG%", "%BUILDDATE%", "%BASE%"):
        assert field in desc
    t.close()


@pytest.mark.oracle
def test_remove_identical_to_repo_remove(plain_tree: Tree, tmp_path: Path,
                                         packager: Packager) -> None:
    files = varied(packager)
    ops.add(plain_tree, "extra", ARCH, [str(f) for f in files], user="tester")
    ops.remove(plain_tree, "extra", ARCH, ["foo"], user="tester")
    theirs = repo_add(files, tmp_path / "ra", "extra.db.tar.gz")
    proc = subprocess.run(["repo-remove", "-q", str(theirs), "foo", "foo-libs", "foo-debug"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    d = Path(plain_tree.cfg.arch_dir("extra", ARCH))
    for kind in ("db", "files"):
        ref = read_db(theirs.parent / f"extra.{kind}.tar.gz")
        assert sorted(ref) == ["bar-2:0.9-1", "baz-1.0-1"]
        assert read_db(d / f"extra.{kind}.tar.gz") == ref
    assert sorted(os.listdir(d)) == sorted(["extra.db", "extra.db.tar.gz", "extra.files",
                                            "extra.files.tar.gz", files[3].name,
                                            files[3].name + ".sig", files[4].name,
                                            files[4].name + ".sig"])


def _pacman_conf(root: Path, lab: Lab, url: str, repos: list[str], dblevel: str) -> Path:
    for sub in ("var/lib/pacman", "var/cache/pacman/pkg", "var/log", "etc/hooks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    lines = ["[options]", f"RootDir = {root}", f"DBPath = {root}/var/lib/pacman/",
             f"CacheDir = {root}/var/cache/pacman/pkg/", f"LogFile = {root}/var/log/pacman.log",
             f"HookDir = {root}/etc/hooks/", f"GPGDir = {lab.gpgdir}/",
             f"Architecture = {ARCH}", f"SigLevel = PackageRequired {dblevel}"]
    for r in repos:
        lines += [f"[{r}]", f"Server = {url}/$repo/os/$arch"]
    conf = root / "pacman.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _pacman(conf: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    need(PACMAN)
    return subprocess.run([PACMAN, *args[:1], "--config", str(conf), "--root", str(root),
                           "--noconfirm", "--color", "never", *args[1:]],
                          capture_output=True, text=True, timeout=120,
                          env={"LC_ALL": "C", "PATH": os.environ["PATH"]})


@pytest.mark.oracle
def test_pacman_syncs_installs_and_upgrades_from_tree(tree: Tree, tmp_path: Path, lab: Lab,
                                                      packager: Packager) -> None:
    files = varied(packager)
    ops.add(tree, "testing", ARCH, [str(f) for f in files], user="tester")
    ops.move(tree, "testing", "extra", "any", ["foo", "bar", "baz"], user="tester")
    ops.add(tree, "core", "any", [str(packager.pkg("glibc", "2.40-1"))], user="tester")
    root = tmp_path / "client"
    with MirrorServer(root=Path(tree.cfg.root)).threaded() as mirror:
        conf = _pacman_conf(root, lab, mirror.url, ["core", "extra", "testing", "extra-debug"],
                            "DatabaseOptional")
        sync = _pacman(conf, root, "-Sy")
        assert sync.returncode == 0, sync.stderr
        listed = _pacman(conf, root, "-Sl")
        assert listed.returncode == 0
        assert sorted(listed.stdout.splitlines()) == sorted([
            "extra bar 2:0.9-1", "extra baz 1.0-1", "extra foo 1.2-3", "extra foo-libs 1.2-3",
            "extra-debug foo-debug 1.2-3", "core glibc 2.40-1"])
        inst = _pacman(conf, root, "-S", "foo", "foo-libs")
        assert inst.returncode == 0, inst.stderr + inst.stdout
        assert (root / "usr/share/foo/1.2-3").read_bytes() == b"foo"
        newer = packager.pkg("foo", "1.2-4", base="foo"), packager.pkg("foo-libs", "1.2-4",
                                                                          base="foo")
        ops.add(tree, "testing", ARCH, [str(f) for f in newer], user="tester")
        ops.move(tree, "testing", "extra", ARCH, ["foo"], user="tester")
        up = _pacman(conf, root, "-Syyu")  # -yy: a database may be of the same second
        assert up.returncode == 0, up.stderr + up.stdout
        q = _pacman(conf, root, "-Q")
        assert q.returncode == 0, q.stderr
        assert q.stdout.splitlines() == ["bar 2:0.9-1", "foo 1.2-4", "foo-libs 1.2-4",
                                         "glibc 2.40-1"]
        fl = _pacman(conf, root, "-Fy")
        assert fl.returncode == 0, fl.stderr
        owner = _pacman(conf, root, "-Fq", "usr/share/foo-libs/1.2-4")
        assert owner.stdout.split() == ["extra/foo-libs"]
    assert ops.check(tree, verify=True).ok


@pytest.mark.oracle
def test_signed_databases_like_repo_add_sign(tmp_path: Path, lab: Lab, signer: Signer,
                                             packager: Packager,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNUPGHOME", str(signer.home))
    t = init_tree(str(tmp_path / "t"), ["extra"], [ARCH], keyring=str(lab.gpgdir),
                  sign_key=signer.fingerprint)
    files = varied(packager)
    ops.add(t, "extra", ARCH, [str(f) for f in files], user="tester")
    theirs = repo_add(files, tmp_path / "ra", "extra.db.tar.gz", "--sign", "--key",
                      signer.fingerprint)
    d = Path(t.cfg.arch_dir("extra", ARCH))
    for name in ("extra.db.sig", "extra.files.sig"):
        assert os.readlink(d / name) == os.readlink(theirs.parent / name)
    root = tmp_path / "client"
    with MirrorServer(root=Path(t.cfg.root)).threaded() as mirror:
        conf = _pacman_conf(root, lab, mirror.url, ["extra"], "DatabaseRequired")
        sync = _pacman(conf, root, "-Sy")
        assert sync.returncode == 0, sync.stderr
        inst = _pacman(conf, root, "-S", "baz")
        assert inst.returncode == 0, inst.stderr
        # a database signed by a key the client does not trust is refused
        stranger = lab.signer("Stranger <s@example.org>")
        stranger.sign(d / "extra.db.tar.gz")
        refused = _pacman(conf, root, "-Syy")
        assert refused.returncode == 1
        assert "signature" in refused.stderr
    t.close()


def test_other_arch_database_holds_any_packages_only(tree: Tree, packager: Packager) -> None:
    files = varied(packager)
    ops.add(tree, "extra", "any", [str(f) for f in files], user="tester")
    other = read_db(Path(tree.cfg.arch_dir("extra", OTHER)) / "extra.db.tar.gz")
    assert sorted(other) == ["bar-2:0.9-1"]
