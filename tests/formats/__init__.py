"""Helpers for the format tests: real packages, and the real pacman, repo-add and makepkg on them.

The byte-identity tests compare our writers with what these tools write for the
same package, so they need Debian's pacman, makepkg and bsdtar; a test that
lacks one is skipped with the tool's name.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

MTREE_OPTIONS = "!all,use-set,type,uid,gid,mode,time,size,md5,sha256,link"


def need(*tools: str) -> None:
    """Skip the calling test when a tool is missing."""
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def run(cmd: list[str], cwd: Path | None = None, input: bytes | None = None) -> bytes:
    """Run a command, failing the test with its output when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, timeout=120,
                          env={**os.environ, "LC_ALL": "C", "LANG": "C"})
    if proc.returncode != 0:
        pytest.fail(f"{cmd} failed ({proc.returncode}):\n{proc.stdout!r}\n{proc.stderr!r}")
    return proc.stdout


def bsdtar_mtree(root: Path, names: list[str]) -> bytes:
    """The plain mtree text bsdtar writes for ``names`` under ``root``, as makepkg asks for it."""
    listing = b"".join(name.encode("utf-8", "surrogateescape") + b"\0" for name in names)
    return run(["bsdtar", "-cnf", "-", "--format=mtree", f"--options={MTREE_OPTIONS}", "--null",
                "--files-from", "-", "--exclude", ".MTREE"], cwd=root, input=listing)


def tree_names(root: Path) -> list[str]:
    """Every path under ``root``, sorted bytewise as makepkg's ``**/*`` glob with LC_COLLATE=C."""
    names = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            names.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(names, key=lambda n: n.encode("utf-8", "surrogateescape"))


def build_package(dest: Path, filename: str, pkginfo: str, files: dict[str, str],
                  links: dict[str, str] | None = None) -> Path:
    """A package made the way makepkg makes one (.PKGINFO, gzipped .MTREE, the files)."""
    src = dest / (filename + ".src")
    src.mkdir(parents=True)
    (src / ".PKGINFO").write_text(pkginfo)
    for path, content in files.items():
        target = src / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    for path, target_name in (links or {}).items():
        link = src / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target_name)
    names = tree_names(src)
    mtree = bsdtar_mtree(src, names)
    (src / ".MTREE").write_bytes(run(["gzip", "-c", "-f", "-n"], input=mtree))
    pkg = dest / filename
    members = [".MTREE", *names]
    listing = b"".join(m.encode() + b"\0" for m in members)
    run(["bsdtar", "-czf", str(pkg), "--null", "--no-recursion", "--files-from", "-"],
        cwd=src, input=listing)
    return pkg


def pacman_install(pkg: Path, root: Path) -> Path:
    """Install ``pkg`` with the real pacman into an empty ``root``; the local db entry directory."""
    need("pacman")
    dbpath = root / "var/lib/pacman"
    dbpath.mkdir(parents=True, exist_ok=True)
    conf = root / "pacman.conf"
    conf.write_text("[options]\nArchitecture = auto\nSigLevel = Never\n")
    run(["pacman", "-U", "--root", str(root), "--dbpath", str(dbpath), "--config", str(conf),
         "--cachedir", str(root / "cache"), "--logfile", str(root / "pacman.log"),
         "--hookdir", str(root / "hooks"), "--noconfirm", "--noprogressbar", "-dd", str(pkg)])
    entries = [p for p in (dbpath / "local").iterdir() if p.is_dir()]
    assert len(entries) == 1, entries
    return entries[0]


def read_db(path: Path) -> dict[str, dict[str, str]]:
    """The entries of a repository database archive: directory -> file name -> text."""
    out: dict[str, dict[str, str]] = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            directory, _, name = member.name.partition("/")
            f = tar.extractfile(member)
            assert f is not None
            out.setdefault(directory, {})[name] = f.read().decode("utf-8", "surrogateescape")
    return out


def repo_add(pkgs: list[Path], repo: Path) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """Run the real repo-add on ``pkgs``: the entries of the .db and of the .files database."""
    need("repo-add", "bsdtar")
    repo.mkdir(parents=True, exist_ok=True)
    local = []
    for pkg in pkgs:
        copy = repo / pkg.name
        shutil.copyfile(pkg, copy)
        local.append(str(copy))
    run(["repo-add", "-q", str(repo / "test.db.tar.gz"), *local])
    return read_db(repo / "test.db.tar.gz"), read_db(repo / "test.files.tar.gz")


def digests(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    return hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()


_PKGBUILD = """\
pkgname=fmt-made
pkgver=1.2
pkgrel=3
epoch=1
pkgdesc="A  package   built by makepkg "
arch=('any')
url="https://example.org/fmt"
license=('GPL' 'custom:odd licence')
groups=('fmt-group')
depends=('bash>=5' 'glibc')
makedepends=('gcc')
checkdepends=('python-pytest')
optdepends=('python: for   scripts' 'perl')
provides=('fmt=1.2')
conflicts=('old-fmt<1')
replaces=('older-fmt')
backup=('etc/fmt.conf')
options=(!strip !debug)
package() {
  install -Dm644 /dev/null "$pkgdir/etc/fmt.conf"
  mkdir -p "$pkgdir/usr/share/fmt/a dir"
  echo hi > "$pkgdir/usr/share/fmt/file"
  echo x > "$pkgdir/usr/share/fmt/a dir/b#c=d"
  ln -s file "$pkgdir/usr/share/fmt/link"
  chmod 600 "$pkgdir/usr/share/fmt/file"
}
"""


_made: list[Path] = []


def makepkg_package() -> Path:
    """A package built by the real makepkg (as ``nobody`` when we are root), once per run.

    It is built in a fresh world-readable directory under the system temp dir
    (pytest's own is private to its user), removed when the run ends.
    """
    if _made:
        return _made[0]
    need("makepkg", "fakeroot", "bsdtar")
    work = Path(tempfile.mkdtemp(prefix="alpmd-makepkg-"))
    atexit.register(shutil.rmtree, work, True)
    (work / "PKGBUILD").write_text(_PKGBUILD)
    env = ["env", f"HOME={work}", "PKGEXT=.pkg.tar.gz", f"BUILDDIR={work}/build",
           f"PKGDEST={work}", f"SRCDEST={work}", "PACKAGER=Format Tester <fmt@example.org>"]
    cmd = [*env, "makepkg", "--nodeps", "--nocheck", "--noconfirm"]
    if os.geteuid() == 0:
        need("runuser")
        os.chmod(work, 0o755)
        shutil.chown(work, "nobody")
        shutil.chown(work / "PKGBUILD", "nobody")
        cmd = ["runuser", "-u", "nobody", "--", *cmd]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"makepkg could not build the test package: {proc.stderr[-500:]!r}")
    _made.append(next(work.glob("fmt-made-*.pkg.tar.gz")))
    return _made[0]


def member(pkg: Path, name: str) -> bytes:
    """One file of a package archive."""
    return run(["bsdtar", "-xOf", str(pkg), name])
