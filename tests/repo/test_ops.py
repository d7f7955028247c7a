"""move, update, check, cleanup, history, import and the command line, on real trees."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.repo import ops
from alpmd.engine.repo.tree import Tree, init_tree, open_tree
from tests.signing.conftest import Lab

from .conftest import ARCH, OTHER, Packager, alpm_repo, need, read_db, snapshot
from .test_rules import add, names, refused


def test_move_takes_split_and_debug_packages_together(tree: Tree, packager: Packager) -> None:
    p = packager.pkg
    add(tree, "testing", ARCH, p("pacman", "6.1-1", base="pacman"),
        p("pacman-shared", "6.1-1", base="pacman"), p("pacman-debug", "6.1-1", base="pacman"))
    assert names(tree, "testing-debug", ARCH) == ["pacman-debug-6.1-1"]
    assert names(tree, "testing", ARCH) == ["pacman-6.1-1", "pacman-shared-6.1-1"]
    add(tree, "extra", ARCH, p("pacman", "6.0-1", base="pacman"),
        p("pacman-shared", "6.0-1", base="pacman"))
    ops.move(tree, "testing", "extra", ARCH, ["pacman"], user="tester")
    assert names(tree, "testing", ARCH) == names(tree, "testing-debug", ARCH) == []
    assert names(tree, "extra", ARCH) == ["pacman-6.1-1", "pacman-shared-6.1-1"]
    assert names(tree, "extra-debug", ARCH) == ["pacman-debug-6.1-1"]
    d = Path(tree.cfg.arch_dir("extra", ARCH))
    assert (d / f"pacman-6.1-1-{ARCH}.pkg.tar.zst").is_file()
    assert not (d / f"pacman-6.0-1-{ARCH}.pkg.tar.zst").exists()
    assert not list(Path(tree.cfg.arch_dir("testing", ARCH)).glob("*.pkg.tar.zst"))
    assert [(h.action, h.repo, h.version) for h in tree.tracking.history("pacman")][-2:] == [
        ("move", "extra", "6.1-1"), ("move", "extra-debug", "6.1-1")]
    assert ops.check(tree, verify=True).ok


def test_move_rules(tree: Tree, packager: Packager) -> None:
    add(tree, "extra", ARCH, packager.pkg("foo", "2.0-1"))
    add(tree, "testing", ARCH, packager.pkg("foo", "1.0-1"))
    refused(tree, ErrorCode.PKG_INVALID,
            lambda: ops.move(tree, "testing", "extra", ARCH, ["foo"], user="t"), "older")
    refused(tree, ErrorCode.PKG_NOT_FOUND,
            lambda: ops.move(tree, "core", "extra", ARCH, ["foo"], user="t"))
    refused(tree, ErrorCode.TRANS_DUP_TARGET,
            lambda: ops.move(tree, "testing", "core", ARCH, ["foo"], user="t"), "extra")
    ops.move(tree, "testing", "extra", ARCH, ["foo"], user="t", force=True)
    assert names(tree, "extra", ARCH) == ["foo-1.0-1"]


def test_move_between_repositories_with_different_architectures(tmp_path: Path,
                                                                 packager: Packager,
                                                                 lab: Lab) -> None:
    t = init_tree(str(tmp_path / "t"), ["wide", "narrow"], [ARCH, OTHER], siglevel="Never")
    conf = Path(t.cfg.path)
    conf.write_text(conf.read_text().replace("[narrow]", f"[narrow]\nArchitectures = {ARCH}"))
    t.close()
    t = open_tree(str(tmp_path / "t"))
    add(t, "wide", "any", packager.pkg("data", arch="any"), packager.pkg("bin", arch=OTHER))
    refused(t, ErrorCode.PKG_INVALID_ARCH,
            lambda: ops.move(t, "wide", "narrow", "any", ["bin"], user="t"))
    assert names(t, "wide", OTHER) == ["bin-1.0-1", "data-1.0-1"]
    ops.move(t, "wide", "narrow", "any", ["data"], user="t")
    assert names(t, "narrow", ARCH) == ["data-1.0-1"]
    assert names(t, "wide", OTHER) == ["bin-1.0-1"]
    assert names(t, "wide", ARCH) == []
    ops.move(t, "narrow", "wide", "any", ["data"], user="t")   # any fans out again
    assert names(t, "wide", ARCH) == ["data-1.0-1"]
    assert names(t, "wide", OTHER) == ["bin-1.0-1", "data-1.0-1"]
    assert ops.check(t).ok
    t.close()


def test_update_from_staging(tree: Tree, packager: Packager) -> None:
    staging = Path(tree.cfg.staging)
    for repo, arch_name in (("extra", ARCH), ("extra", OTHER), ("testing", "any"),
                            ("bogus", "any")):
        for i in range(3):
            packager.pkg(f"{repo}{i}", arch=arch_name, base=f"{repo}{i}",
                         outdir=staging / repo)
    before = sorted(os.listdir(staging / "bogus"))
    plan = ops.update(tree, user="tester")
    assert plan.warnings == [f"skipping {staging / 'bogus'}: repository 'bogus' is not "
                             "configured"]
    assert names(tree, "extra", ARCH) == names(tree, "extra", OTHER) == [
        "extra0-1.0-1", "extra1-1.0-1", "extra2-1.0-1"]
    assert names(tree, "testing", OTHER) == ["testing0-1.0-1", "testing1-1.0-1",
                                             "testing2-1.0-1"]
    assert os.listdir(staging / "extra") == os.listdir(staging / "testing") == []
    assert sorted(os.listdir(staging / "bogus")) == before
    assert ops.check(tree, verify=True).ok


def test_update_fails_as_a_whole(tree: Tree, packager: Packager) -> None:
    staging = Path(tree.cfg.staging)
    packager.pkg("fine", outdir=staging / "extra")
    packager.pkg("unsigned", outdir=staging / "core", sign=False)
    refused(tree, ErrorCode.PKG_MISSING_SIG, lambda: ops.update(tree, user="t"))


def test_check_finds_problems_and_repair_fixes_databases(tree: Tree,
                                                        packager: Packager) -> None:
    add(tree, "extra", ARCH, packager.pkg("foo"), packager.pkg("bar"))
    assert ops.check(tree, verify=True).ok
    pool = Path(tree.cfg.pool) / f"foo-1.0-1-{ARCH}.pkg.tar.zst"
    data = pool.read_bytes()
    pool.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert ops.check(tree).ok                        # sizes only: not noticed
    report = ops.check(tree, verify=True)
    assert [str(p) for p in report.problems] == [f"pool file {pool.name} does not match its sha256"]
    pool.write_bytes(data)
    db = Path(tree.cfg.arch_dir("extra", ARCH)) / "extra.db.tar.gz"
    db.write_bytes(b"not a database")
    (Path(tree.cfg.arch_dir("extra", ARCH)) / "extra.files").unlink()
    report = ops.check(tree)
    assert len(report.problems) == 2 and "unreadable" in str(report.problems[0])
    fixed = ops.check(tree, repair=True, verify=True)
    assert fixed.ok, fixed.problems
    assert names(tree, "extra", ARCH) == ["bar-1.0-1", "foo-1.0-1"]


def test_cleanup_removes_only_unreferenced_pool_files(tree: Tree, packager: Packager) -> None:
    add(tree, "extra", "any", packager.pkg("foo"), packager.pkg("bar", arch="any"))
    add(tree, "extra", ARCH, packager.pkg("foo", "1.1-1"))
    ops.remove(tree, "extra", OTHER, ["bar"], user="t")
    assert ops.cleanup(tree, dry_run=True) == [f"foo-1.0-1-{ARCH}.pkg.tar.zst",
                                               f"foo-1.0-1-{ARCH}.pkg.tar.zst.sig"]
    assert ops.cleanup(tree) == [f"foo-1.0-1-{ARCH}.pkg.tar.zst",
                                 f"foo-1.0-1-{ARCH}.pkg.tar.zst.sig"]
    assert sorted(os.listdir(tree.cfg.pool)) == sorted([
        "bar-1.0-1-any.pkg.tar.zst", "bar-1.0-1-any.pkg.tar.zst.sig",
        f"foo-1.1-1-{ARCH}.pkg.tar.zst", f"foo-1.1-1-{ARCH}.pkg.tar.zst.sig"])
    ops.remove(tree, "extra", ARCH, ["bar", "foo"], user="t")
    assert len(ops.cleanup(tree)) == 4
    assert os.listdir(tree.cfg.pool) == []
    assert ops.check(tree, verify=True).ok


@pytest.mark.oracle
def test_import_adopts_a_repo_add_database(tree: Tree, packager: Packager,
                                           tmp_path: Path) -> None:
    need("repo-add")
    where = tmp_path / "old"
    where.mkdir()
    files = [packager.pkg("foo", base="foo", outdir=where),
             packager.pkg("foo-libs", base="foo", outdir=where),
             packager.pkg("bar", "3:1-1", "any", outdir=where)]
    proc = subprocess.run(["repo-add", "-q", "old.db.tar.xz", *[f.name for f in files]],
                          cwd=where, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    theirs = read_db(where / "old.db.tar.xz")
    theirs_files = read_db(where / "old.files.tar.xz")
    ops.import_db(tree, "extra", ARCH, str(where / "old.db"), user="tester")
    d = Path(tree.cfg.arch_dir("extra", ARCH))
    assert read_db(d / "extra.db.tar.gz") == theirs
    assert read_db(d / "extra.files.tar.gz") == theirs_files
    assert ops.check(tree, verify=True).ok
    add(tree, "extra", ARCH, packager.pkg("foo", "1.1-1", base="foo"),
        packager.pkg("foo-libs", "1.1-1", base="foo"))
    assert names(tree, "extra", ARCH) == ["bar-3:1-1", "foo-1.1-1", "foo-libs-1.1-1"]
    refused(tree, ErrorCode.TRANS_DUP_TARGET,
            lambda: ops.import_db(tree, "core", ARCH, str(where / "old.db"), user="t"))


def test_import_refuses_a_package_that_does_not_match(tree: Tree, packager: Packager,
                                                      tmp_path: Path) -> None:
    need("repo-add")
    where = tmp_path / "old"
    f = packager.pkg("foo", outdir=where)
    subprocess.run(["repo-add", "-q", "old.db.tar.gz", f.name], cwd=where, check=True,
                   capture_output=True)
    other = packager.pkg("foo", outdir=tmp_path / "again", desc="another build")
    shutil.copyfile(other, f)   # same name, other bytes
    refused(tree, ErrorCode.PKG_INVALID_CHECKSUM,
            lambda: ops.import_db(tree, "extra", ARCH, str(where / "old.db.tar.gz"), user="t"))


def test_add_streams_takes_open_files(tree: Tree, packager: Packager) -> None:
    f = packager.pkg("foo")
    with open(f, "rb") as pkg, open(f"{f}.sig", "rb") as sig:
        ops.add_streams(tree, "extra", ARCH, [(f.name, pkg, sig)], user="caller")
    assert names(tree, "extra", ARCH) == ["foo-1.0-1"]
    assert [p for p in os.listdir(tree.cfg.state_dir) if p.startswith("incoming-")] == []
    with open(f, "rb") as pkg:
        refused(tree, ErrorCode.PKG_INVALID_NAME,
                lambda: ops.add_streams(tree, "extra", ARCH, [("../evil.pkg.tar.zst", pkg,
                                                               None)], user="caller"))


def test_command_line(tmp_path: Path, lab: Lab, packager: Packager) -> None:
    root = tmp_path / "cli"
    gpgdir = lab.gpgdir
    init = alpm_repo(root, "init", "--repos", "core,extra", "--arches", f"{ARCH},{OTHER}",
                     "--keyring", str(gpgdir))
    assert init.returncode == 0, init.stderr
    assert "SigLevel = Required" in (root / "alpm-repo.conf").read_text()
    f = packager.pkg("foo", arch="any")
    got = alpm_repo(root, "add", "core", "any", str(f))
    assert got.returncode == 0, got.stderr
    assert sorted(got.stdout.splitlines()) == sorted([f"add core {ARCH} foo 1.0-1",
                                                      f"add core {OTHER} foo 1.0-1"])
    ls = alpm_repo(root, "ls", "core")
    assert sorted(ls.stdout.splitlines()) == sorted([f"core {ARCH} foo 1.0-1",
                                                     f"core {OTHER} foo 1.0-1"])
    again = alpm_repo(root, "add", "core", "any", str(f))
    assert again.returncode == 1
    first = min(ARCH, OTHER)
    assert again.stderr == f"error: foo 1.0-1 is already in core {first} [trans-dup-target]\n"
    hist = alpm_repo(root, "history", "foo")
    assert [line.split(" ", 3)[3] for line in hist.stdout.splitlines()] == sorted(
        [f"add core {ARCH} foo 1.0-1", f"add core {OTHER} foo 1.0-1"])
    chk = alpm_repo(root, "check", "-v")
    assert chk.returncode == 0 and chk.stdout.strip() == "tree is consistent"
    rm = alpm_repo(root, "remove", "core", "any", "foo")
    assert rm.returncode == 0, rm.stderr
    clean = alpm_repo(root, "cleanup")
    assert clean.stdout.splitlines() == [f"removed {f.name}", f"removed {f.name}.sig"]
    nothing = alpm_repo(tmp_path / "nowhere", "ls")
    assert nothing.returncode == 1 and "alpm-repo.conf" in nothing.stderr


def test_failed_command_leaves_tree_untouched_on_disk(tree: Tree, packager: Packager) -> None:
    add(tree, "extra", ARCH, packager.pkg("foo"))
    before = snapshot(tree)
    with pytest.raises(AlpmError):
        ops.move(tree, "extra", "nosuch", ARCH, ["foo"], user="t")
    assert snapshot(tree) == before


def test_changes_to_a_large_repository_rewrite_only_what_changed(plain_tree: Tree,
                                                                 packager: Packager) -> None:
    from alpmd.engine.formats.desc import PkgMeta, write_sync_desc
    from alpmd.engine.repo.dbarchive import CHUNK
    from alpmd.engine.repo.tracking import Row
    from alpmd.engine.repo.txn import Plan, commit

    t = plain_tree
    plan = Plan()
    for i in range(CHUNK * 4):
        m = PkgMeta(name=f"lib{i:04d}", version="1.0-1", arch="any",
                    filename=f"lib{i:04d}-1.0-1-any.pkg.tar.zst")
        plan.put(Row("extra", ARCH, m.name, m.name, m.version, m.filename or "", "any", "",
                     0, "", "seed", 0, write_sync_desc(m).encode(), b"%FILES%\n"))
        (Path(t.cfg.pool) / (m.filename or "")).write_bytes(b"")  # check wants pool files
    commit(t.cfg, t.tracking, plan)
    db = Path(t.cfg.arch_dir("extra", ARCH)) / "extra.db.tar.gz"
    before = db.read_bytes()
    add(t, "extra", ARCH, packager.pkg("lib0300a"))
    after = db.read_bytes()
    index = t.tracking.chunks("extra", ARCH, "db")
    assert index is not None and len(index[1]) == 4
    unchanged = [c for c in index[1] if after[c.offset:c.offset + c.length] in before]
    assert len(unchanged) == 3
    ops.remove(t, "extra", ARCH, ["lib0001", "lib0500"], user="t")
    assert len(names(t, "extra", ARCH)) == CHUNK * 4 - 1
    assert ops.check(t).ok
    full = ops.check(t, repair=True)   # a full rewrite gives the same entries
    assert full.ok
    assert len(names(t, "extra", ARCH)) == CHUNK * 4 - 1
