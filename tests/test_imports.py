"""Whole-process queries import only what they need (issue 16: start-up is most of a query).

Each ``alpm -Q…`` runs in a fresh interpreter, as the command does, and reports the
modules it imported. What a query never uses must stay out: the downloader (aiohttp,
ssl), asyncio, logging (the engine imports it on its first log message), ctypes (only
a regular-expression search binds libc's regcomp) and, on pacman's files store,
sqlite3. Every command must still print what pacman prints on the same system, on
both local stores (the SQLite root is a converted copy of pacman's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from alpmd.engine.db.convert import convert_dbpath
from alpmd.engine.db.stores import Store
from alpmd.engine.formats.desc import PkgMeta
from alpmd.testing.oracle import PACMAN, PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package
from alpmd.testing.repogen import generate_repo, make_local_db, write_sync_db

ROOT = Path(__file__).resolve().parents[1]

_RUN = """
import sys
from alpmd.cli.alpm import main
sys.argv = ["alpm", *sys.argv[1:]]
try:
    code = main()
except SystemExit as exc:
    code = exc.code
modules = sorted(sys.modules)
import json  # the report's own, after the modules are listed
sys.stdout.flush()
print("\\n" + json.dumps({"code": code, "modules": modules}))
"""

#: Never needed by a query (sqlite3 is checked on the files store only).
UNNEEDED = {"aiohttp", "ssl", "asyncio", "logging", "ctypes", "urllib.parse", "sqlite3",
            "gettext", "json"}


def _env() -> dict[str, str]:
    return {"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT)}


def _alpm(*args: str) -> tuple[int, set[str], str]:
    proc = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True, text=True,
                          env=_env(), timeout=120)
    out, _, last = proc.stdout.rpartition("\n\n")
    report = json.loads(last)
    return int(report["code"] or 0), set(report["modules"]), out + "\n" if out else ""


def _pacman(*args: str) -> tuple[int, str]:
    proc = subprocess.run([PACMAN, *args], capture_output=True, text=True, env=_env(),
                          timeout=120)
    return proc.returncode, proc.stdout


@dataclass
class Roots:
    files: PacmanRoot
    sqlite: PacmanRoot
    one: str         # an installed package with dependants
    owned: str       # a path below the root that one package owns


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Roots:
    base = tmp_path_factory.mktemp("imports")
    metas = generate_repo(2, 300)
    write_sync_db(metas, base / "extra.db")
    files = PacmanRoot(base / "files")
    files.add_repo("extra", base / "extra.db")
    local = make_local_db(files.dbpath, metas, installed=40, outdated=5, seed=2)
    assert len(local) == 40
    depended = {d.split(">")[0].split("<")[0].split("=")[0] for m in local for d in m.depends}
    one = next(m.name for m in local if m.name in depended)
    lists = [(files.dbpath / "local" / f"{m.name}-{m.version}" / "files").read_text()
             .splitlines() for m in local]
    rel = next(line for lines in lists for line in lines[1:]
               if line and not line.startswith("%") and not line.endswith("/"))
    (files.root / rel).parent.mkdir(parents=True, exist_ok=True)
    (files.root / rel).write_bytes(b"")  # -Qo stats the path (pacman refuses a missing one)
    shutil.copytree(files.root, base / "sqlite", symlinks=True)
    sqlite = PacmanRoot(base / "sqlite")
    sqlite.add_repo("extra", base / "extra.db")
    convert_dbpath(str(sqlite.dbpath), Store.SQLITE)
    return Roots(files, sqlite, one, rel)


QUERIES = [["-Qs", "lib"], ["-Qi"], ["-Qi", "{one}"], ["-Q"], ["-Ql", "{one}"],
           ["-Qo", "{owned}"]]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: " ".join(q))
def test_queries_import_only_what_they_need(roots: Roots, backend: Store,
                                            query: list[str]) -> None:
    root = roots.files if backend is Store.FILES else roots.sqlite
    args = [a.format(one=roots.one, owned=str(root.root / roots.owned)) for a in query]
    want_code, want = _pacman("--config", str(roots.files.config), *[
        a.replace(str(roots.sqlite.root), str(roots.files.root)) for a in args])
    assert want_code == 0 and want  # pacman found what the scenario asks for
    code, modules, out = _alpm("--config", str(root.config), *args)
    # -Ql and -Qo print paths below the root: pacman ran on the files twin.
    assert (code, out) == (0, want.replace(str(roots.files.root), str(root.root)))
    # -Qs compiles a POSIX regex (ctypes binds libc's regcomp); SQLite needs sqlite3.
    allowed = {"ctypes"} if query[0] == "-Qs" else set()
    if backend is Store.SQLITE:
        allowed.add("sqlite3")
        assert "sqlite3" in modules
    assert sorted((UNNEEDED - allowed) & modules) == []


#: Never needed by ``-U`` of local files (json is the journal's; ctypes binds libarchive):
#: no hashing without backup files, no temporary-name module without scriptlets, no
#: disk space check without CheckSpace.
UNNEEDED_BY_LOCAL_INSTALL = {"aiohttp", "ssl", "asyncio", "logging", "concurrent.futures",
                             "urllib.parse", "subprocess", "alpmd.engine.signing",
                             "alpmd.engine.download", "hashlib", "tempfile", "shutil",
                             "alpmd.engine.diskspace"}


def test_install_of_local_files_imports_no_downloader(tmp_path: Path) -> None:
    pkgs = [build_package(tmp_path / "pkgs", PkgMeta(f"imp{i}", "1.0-1"),
                          [FileSpec(f"usr/share/imp{i}/f", f"{i}\n".encode())])
            for i in range(2)]
    theirs, ours = PacmanRoot(tmp_path / "pacman"), PacmanRoot(tmp_path / "alpm")
    want = theirs.pacman("-U", *map(str, pkgs))
    assert want.returncode == 0, want.stderr
    assert (theirs.root / "usr/share/imp1/f").read_bytes() == b"1\n"
    code, modules, _ = _alpm("-U", *ours.args(), *map(str, pkgs))
    assert code == 0
    for i in range(2):
        assert (ours.root / f"usr/share/imp{i}/f").read_bytes() == f"{i}\n".encode()
    assert sorted(os.listdir(ours.dbpath / "local")) == sorted(os.listdir(theirs.dbpath / "local"))
    assert sorted(UNNEEDED_BY_LOCAL_INSTALL & modules) == []
