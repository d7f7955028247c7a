"""Twin roots for the differential transaction suite: pacman on one, ``alpm`` on the other.

A scenario describes packages (built with :mod:`alpmd.testing.pkgbuild`), a
repository (served from a ``file://`` server, its database written with
:func:`alpmd.testing.repogen.write_sync_db`), what is installed first (by the
real pacman, then the root is copied so both start identical), and one command.
The command runs under pacman on root A and ``alpm`` (in-process) on root B;
:func:`snapshot` reads each root into comparable data.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alpmd.engine.db.convert import convert_dbpath
from alpmd.engine.db.stores import Store, stores_present
from alpmd.engine.formats.desc import PkgMeta
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package, sync_meta


@dataclass
class Pkg:
    """A package description; ``files`` maps a path to its content (or a FileSpec)."""

    name: str
    version: str = "1.0-1"
    files: dict[str, str | FileSpec] | None = None
    depends: list[str] = field(default_factory=list)
    optdepends: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    backup: list[str] = field(default_factory=list)
    install: str | None = None
    compression: str = "zst"

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"

    def build(self, outdir: Path) -> Path:
        files = self.files
        if files is None:
            files = {f"usr/share/{self.name}/data": f"{self.name} {self.version}\n"}
        specs = [v if isinstance(v, FileSpec) else FileSpec(k, v.encode())
                 for k, v in files.items()]
        meta = PkgMeta(self.name, self.version, desc=f"{self.name} test package",
                       depends=list(self.depends), optdepends=list(self.optdepends),
                       provides=list(self.provides), conflicts=list(self.conflicts),
                       replaces=list(self.replaces), groups=list(self.groups))
        return build_package(outdir, meta, specs, backup=self.backup, install=self.install,
                             compression=self.compression)


@dataclass
class Scenario:
    name: str
    cmd: list[str]
    pkgs: list[Pkg] = field(default_factory=list)
    repo: list[str] = field(default_factory=list)       # keys served in [test]
    local: list[str] = field(default_factory=list)      # keys installed first (explicit)
    local_deps: list[str] = field(default_factory=list)  # keys installed first --asdeps
    options: dict[str, str] = field(default_factory=dict)
    prep: Callable[[Path], None] | None = None
    #: compare exit code only, not the resulting state (where pacman's is not ours to copy)
    exit_only: bool = False
    #: a chrooted /bin/sh in both roots (before ``local``), so scriptlets and hooks run
    shell: bool = False
    #: hook files (name -> text) written into the hook directory after ``local`` is installed
    hooks: dict[str, str] = field(default_factory=dict)
    #: why this scenario asserts something other than pacman's result (empty: pacman's)
    note: str = ""
    #: payload compressions to run with (the extraction path matters only for some)
    compressions: tuple[str, ...] = ("zst", "xz")
    #: substrings pacman's run must produce (its [ALPM] log lines, /hooklog, /scriptlog*):
    #: proof that the scenario exercises what it claims before both roots are compared
    expect: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.name




def build_all(pkgs: list[Pkg], outdir: Path) -> dict[str, Path]:
    """Every package archive once (key -> path); scenarios share the result."""
    return {p.key: p.build(outdir) for p in pkgs}


def setup_twins(tmp: Path, sc: Scenario, built: dict[str, Path] | None = None,
                ) -> tuple[PacmanRoot, PacmanRoot, dict[str, Path]]:
    """Root A prepared by pacman, then copied to root B; ``built`` reuses package archives."""
    from alpmd.testing.repogen import write_sync_db

    if built is None:
        built = build_all(sc.pkgs, tmp / "pkgs")
    a = PacmanRoot(tmp / "a", options=dict(sc.options))
    if sc.shell:
        from tests.commit.support import shell_root

        shell_root(a.root)
    if sc.repo:
        srv = a.root / "srv" / "test"
        srv.mkdir(parents=True)
        metas = []
        for key in sc.repo:
            shutil.copyfile(built[key], srv / built[key].name)
            metas.append(sync_meta(built[key]))
        db = write_sync_db(metas, srv / "test.db")
        a.add_repo("test", db)
    if sc.local or sc.local_deps:
        r = a.pacman("-U", *[str(built[k]) for k in sc.local + sc.local_deps])
        assert r.returncode == 0, r.stderr + r.stdout
    if sc.local_deps:
        r = a.pacman("-D", "--asdeps", *[k.rsplit("-", 2)[0] for k in sc.local_deps])
        assert r.returncode == 0, r.stderr + r.stdout
    for name, text in sc.hooks.items():
        (a.hookdir / name).write_text(text)
    if sc.prep is not None:
        sc.prep(a.root)
    shutil.copytree(a.root, tmp / "b", symlinks=True)
    b = PacmanRoot(tmp / "b", repos=list(a.repos), options=dict(sc.options))
    if sc.repo:
        b.write_config()
    return a, b, built


@contextlib.contextmanager
def on_store(dbpath: Path, store: Store) -> Iterator[None]:
    """Run the body with ``dbpath``'s local database in ``store``, then back in pacman's files.

    The round trip is lossless (tests/db/test_convert.py), so what the body did
    to the database is then compared with pacman's in the files layout.
    """
    if store is Store.FILES:
        yield
        return
    convert_dbpath(str(dbpath), store)
    try:
        yield
        assert stores_present(str(dbpath)) == [store], "the body changed stores"
    finally:
        convert_dbpath(str(dbpath), Store.FILES)
        for name in os.listdir(dbpath):
            if ".alpmd-old-" in name:  # the stores the conversions moved aside
                path = dbpath / name
                shutil.rmtree(path) if path.is_dir() else path.unlink()


def evidence(root: Path, log_before: int) -> str:
    """What a run left to check ``expect`` against: new log lines and the scripts' own logs."""
    logfile = root / "var/log/pacman.log"
    lines = logfile.read_text().splitlines()[log_before:] if logfile.exists() else []
    parts = [line.partition("] ")[2] for line in lines]
    for name in ("hooklog", "scriptlog", "scriptlog2"):
        if (root / name).exists():
            parts.append(f"{name}: " + (root / name).read_text())
    return "\n".join(parts)


def log_length(root: Path) -> int:
    logfile = root / "var/log/pacman.log"
    return len(logfile.read_text().splitlines()) if logfile.exists() else 0


def expand(cmd: list[str], built: dict[str, Path]) -> list[str]:
    return [str(built[c[1:]]) if c.startswith("@") else c for c in cmd]


def alpm_inprocess(argv: list[str]) -> tuple[int, str, str]:
    """``alpm ARGV`` in-process; returns (code, stdout, stderr)."""
    from alpmd.cli.alpm import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def run_alpm(root: PacmanRoot, args: list[str]) -> tuple[int, str, str]:
    """``alpm`` in-process with pacman's argument order; returns (code, stdout, stderr)."""
    return alpm_inprocess([*args[:1], *root.args(), "--color", "never", *args[1:]])


def minimal_conf(tmp_path: Path) -> str:
    """A pacman.conf with nothing but ``Architecture = auto``; its path."""
    conf = tmp_path / "pacman.conf"
    conf.write_text("[options]\nArchitecture = auto\n")
    return str(conf)


_SKIP = ("var/lib/pacman/local", "var/lib/pacman/sync", "var/log", "var/cache/alpmd",
         "etc/pacman.conf", "var/lib/pacman/db.lck", "var/lib/pacman/alpmd-journal", "tmp",
         # the chroot's shell and libraries (tests.commit.support.shell_root), identical copies
         "bin", "lib", "lib64", "usr/bin/dash")


def _sections(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("%") and line.endswith("%"):
            cur = line
            out[cur] = []
        elif cur is not None and line:
            out[cur].append(line)
    return out


def snapshot(root: Path) -> dict[str, object]:
    """The local database (parsed, minus %INSTALLDATE%), the files, and pacman.log actions."""
    db: dict[str, object] = {}
    local = root / "var/lib/pacman/local"
    if local.is_dir():
        for entry in sorted(os.listdir(local)):
            p = local / entry
            if entry.startswith(".") or not p.is_dir():
                db[entry] = "file" if p.is_file() else "other"
                continue
            # (entries may hold any bytes, as pacman writes them)
            desc = _sections((p / "desc").read_text(errors="surrogateescape"))
            desc.pop("%INSTALLDATE%", None)
            files = (_sections((p / "files").read_text(errors="surrogateescape"))
                     if (p / "files").exists() else None)
            db[entry] = {"desc": desc, "files": files,
                         "mtree": (p / "mtree").exists(),
                         "install": (p / "install").read_text() if (p / "install").exists()
                         else None}
    if list(db) == ["ALPM_DB_VERSION"]:
        # Known divergence, not ours to fix here: libalpm writes the version file when it
        # validates an empty local/ (any operation); alpmd's LocalDatabase (db/local.py)
        # writes it with the first entry. Only an otherwise empty database is affected.
        del db["ALPM_DB_VERSION"]
    fs: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if any(rel == s or rel.startswith(s + "/") for s in _SKIP):
                continue
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISLNK(st.st_mode):
                fs[rel] = ("link", os.readlink(os.path.join(dirpath, name)))
            elif stat.S_ISDIR(st.st_mode):
                fs[rel] = ("dir", oct(st.st_mode & 0o7777))
            else:
                fs[rel] = ("file", oct(st.st_mode & 0o7777),
                           Path(dirpath, name).read_bytes())
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    log = []
    logfile = root / "var/log/pacman.log"
    if logfile.exists():
        for line in logfile.read_text(errors="surrogateescape").splitlines():
            _, _, rest = line.partition("] ")
            if rest.startswith("[ALPM"):
                log.append(rest.replace(str(root), "ROOT"))
    return {"db": db, "fs": fs, "log": log}
