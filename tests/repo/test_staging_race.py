"""A staging file rewritten by its packager while ``alpm-repo update`` checks it: what
the tree publishes must be exactly what passed the signature check. Before: the file
was read again after the check (checksums, then the copy into the pool), and a rewrite
in place that kept its size and modification time went unnoticed, so the tree published
a file nobody had signed, under the checksums of that file."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from alpmd.engine.keyring import GPG
from alpmd.engine.repo.tree import Tree

from .conftest import ARCH, Packager, alpm_repo, read_db

REWRITE = """\
import os, sys
path = sys.argv[1]
st = os.stat(path)
with open(path, "r+b") as fh:      # the last byte changed, in place: same size, same inode
    fh.seek(-1, os.SEEK_END)
    last = fh.read(1)
    fh.seek(-1, os.SEEK_END)
    fh.write(bytes([last[0] ^ 0xFF]))
os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))   # and its times put back
with open(sys.argv[2], "a") as log:
    log.write("rewritten\\n")
"""


def test_a_file_rewritten_after_its_check_is_published_as_checked(
        tree: Tree, packager: Packager, tmp_path: Path) -> None:
    staging = Path(tree.cfg.staging)
    staged = packager.pkg("foo", arch="any", outdir=staging / "extra")
    signed = staged.read_bytes()
    # gpg as the tree runs it, except that right after each signature check the packager
    # rewrites the staged file (a deterministic stand-in for a packager racing the check)
    wrap = tmp_path / "bin"
    wrap.mkdir()
    log = tmp_path / "rewrites"
    (tmp_path / "rewrite.py").write_text(REWRITE)
    gpg = wrap / "gpg"
    gpg.write_text(f"#!/bin/sh\n{GPG} \"$@\"\nrc=$?\n"
                   f"case \" $* \" in *\" --verify \"*) "
                   f"{sys.executable} {tmp_path / 'rewrite.py'} {staged} {log} ;; esac\n"
                   "exit $rc\n")
    gpg.chmod(0o755)
    assert shutil.which("gpg", path=str(wrap)) == str(gpg)
    r = alpm_repo(tree.cfg.root, "update", env={"PATH": f"{wrap}:{os.environ['PATH']}"})
    assert r.returncode == 0, r.stderr
    assert log.read_text() == "rewritten\n"           # the race really happened
    pooled = Path(tree.cfg.pool) / staged.name
    assert pooled.read_bytes() == signed
    db = read_db(Path(tree.cfg.arch_dir("extra", ARCH)) / "extra.db.tar.gz")
    (desc,) = [entry["desc"] for entry in db.values()]
    assert f"%SHA256SUM%\n{hashlib.sha256(signed).hexdigest()}\n" in desc
    assert f"%CSIZE%\n{len(signed)}\n" in desc
    assert not staged.exists()                       # the staging file was released
