"""Fixtures for alpm-repo: real package files, a real pacman keyring with real gpg keys,
trees made through the engine, and snapshots proving a failed command changed nothing."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from alpmd.engine import keyring
from alpmd.engine.db.sync import read_db_archive
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.repo.tree import Tree, init_tree
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.signing.conftest import Lab, Signer

ARCH = platform.machine()
OTHER = "aarch64" if ARCH != "aarch64" else "x86_64"
REPO_ROOT = Path(__file__).resolve().parents[2]


def need(*tools: str) -> None:
    """A missing tool fails the test (the suite installs them: see the Makefile)."""
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (make deps installs it)")


@dataclass
class Packager:
    """Builds package files in ``outdir``, signed by ``signer`` when there is one."""

    outdir: Path
    signer: Signer | None = None
    built: list[Path] = field(default_factory=list)

    def pkg(self, name: str, version: str = "1.0-1", arch: str = ARCH, *,
            base: str | None = None, sign: bool = True, outdir: Path | None = None,
            **meta: object) -> Path:
        meta.setdefault("desc", f"the {name} package")
        m = PkgMeta(name=name, version=version, arch=arch, base=base,
                    **meta)  # type: ignore[arg-type]
        out = outdir or self.outdir
        path = build_package(out, m, [FileSpec(f"usr/share/{name}/{version}", name.encode()),
                                      FileSpec(f"usr/bin/{name}", b"#!/bin/sh\n", mode=0o755)])
        if sign and self.signer is not None:
            self.signer.sign(path)
        self.built.append(path)
        return path


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A pacman keyring (GNUPGHOME) with its master key; signers are added per test."""
    need("gpg")
    home = Path(f"/tmp/alpmd-r-{os.getpid()}-{len(os.listdir('/tmp'))}")
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(mode=0o700)
    master = keyring.init_keyring(str(home), key_type="ed25519")
    lab = Lab(tmp_path / "root", home, master)
    try:
        yield lab
    finally:
        for h in (home, *lab.homes):
            keyring.kill_agent(str(h))
            shutil.rmtree(h, ignore_errors=True)


@pytest.fixture
def signer(lab: Lab) -> Signer:
    """A packager whose key the tree's keyring trusts."""
    s = lab.signer()
    lab.trust(s)
    return s


@pytest.fixture
def packager(tmp_path: Path, signer: Signer) -> Packager:
    return Packager(tmp_path / "pkgs", signer)


@pytest.fixture
def tree(tmp_path: Path, lab: Lab) -> Iterator[Tree]:
    """core, extra, testing (+ extra-debug) over two architectures; signatures required."""
    t = init_tree(str(tmp_path / "tree"), ["core", "extra", "testing", "extra-debug",
                                           "testing-debug"], [ARCH, OTHER],
                  keyring=str(lab.gpgdir))
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def plain_tree(tmp_path: Path) -> Iterator[Tree]:
    """A tree that does not check signatures (SigLevel = Never), one architecture."""
    t = init_tree(str(tmp_path / "plain"), ["core", "extra"], [ARCH])
    try:
        yield t
    finally:
        t.close()


def read_db(path: Path) -> dict[str, dict[str, str]]:
    """The entries of a database archive (any compression): directory -> member -> text."""
    out: dict[str, dict[str, str]] = {}
    for name, data in read_db_archive(path.read_bytes(), str(path)):
        directory, _, member = name.partition("/")
        out.setdefault(directory, {})[member] = data.decode("utf-8", "surrogateescape")
    return out


def snapshot(tree: Tree) -> dict[str, object]:
    """Every file, link and directory of the tree, plus the tracking rows and history."""
    out: dict[str, object] = {}
    root = tree.cfg.root
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel.startswith(".alpm-repo"):
            continue
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            key = os.path.relpath(p, root)
            if os.path.islink(p):
                out[key] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                out[key] = ("dir",)
            else:
                out[key] = ("file", Path(p).read_bytes())
    out["<rows>"] = tree.tracking.rows()
    out["<history>"] = tree.tracking.history()
    return out


def alpm_repo(tree_root: Path | str, *args: str, timeout: float = 120,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``alpm-repo`` command line (this checkout's code) on a tree."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LC_ALL": "C", **(env or {})}
    return subprocess.run([sys.executable, "-m", "alpmd.cli.repo", "--tree", str(tree_root),
                           *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout)
