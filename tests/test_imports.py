"""Whole-process queries import only what they need (issue 16: start-up is most of a query).

Each ``alpm -Q…`` runs in a fresh interpreter, as the command does, and reports the
modules it imported. What a query never uses must stay out: the downloader (aiohttp,
ssl), asyncio, logging (the engine imports it on its first log message), ctypes (only
a search for a regular expression, not for a word, binds libc's regcomp), typing
(annotations only), inspect (dataclasses' import of it is deferred by the ``alpm``
command), the sync, transaction, event, signing and -Qk modules, -F's search and the
daemon's list of leftover configuration files and, on pacman's files
store, sqlite3. Every command must still print what pacman prints on the same system,
on both local stores (the SQLite root is a converted copy of pacman's).
"""

from __future__ import annotations

import ast
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
from alpmd.cli.alpm import DeferredModule, main
sys.argv = ["alpm", *sys.argv[1:]]
try:
    code = main(sys.argv[1:])  # as the command runs it, but returning here to report
except SystemExit as exc:
    code = exc.code
# A stand-in never loaded (inspect's, see alpmd.cli.alpm) is not an import.
modules = sorted(n for n, m in sys.modules.items() if not isinstance(m, DeferredModule))
import json  # the report's own, after the modules are listed
sys.stdout.flush()
print("\\n" + json.dumps({"code": code, "modules": modules}))
"""

#: Never needed by a query (sqlite3 is checked on the files store only).
UNNEEDED = {"aiohttp", "ssl", "asyncio", "logging", "ctypes", "urllib.parse", "sqlite3",
            "gettext", "json", "typing", "inspect", "ast", "dis", "tokenize", "threading",
            "alpmd.engine.db.sync", "alpmd.engine.db.snapshot", "alpmd.engine.events",
            "alpmd.engine.trans", "alpmd.engine.resolve", "alpmd.engine.download",
            "alpmd.engine.signing", "alpmd.engine.larchive", "alpmd.engine.process",
            "alpmd.engine.journal", "alpmd.engine.hooks", "alpmd.engine.check", "syslog",
            # -F's search and the daemon's leftover .pacnew list (types a -Q never builds)
            "alpmd.engine.filesearch", "alpmd.engine.leftovers"}


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


QUERIES = [["-Qs", "lib"], ["-Qs", "^li[b]"], ["-Qi"], ["-Qi", "{one}"], ["-Q"], ["-Ql", "{one}"],
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
    # A -Qs regex is checked by libc's regcomp (bound with ctypes), a plain word is not;
    # SQLite needs sqlite3.
    regex = query[0] == "-Qs" and query[1] != "lib"
    assert ("ctypes" in modules) == regex
    allowed = {"ctypes"} if regex else set()
    if backend is Store.SQLITE:
        allowed |= {"sqlite3", "threading"}  # the SQLite store guards its connection
        assert "sqlite3" in modules
    assert sorted((UNNEEDED - allowed) & modules) == []
    # Only package names given as targets ("pkg", "local/pkg") need the target parser.
    named = len(query) > 1 and query[0] not in ("-Qs", "-Qo")
    assert ("alpmd.engine.target" in modules) == named
    # Dependencies are parsed for -Qi's optional deps and by the target parser only (the
    # SQLite store's module parses them for its columns).
    if backend is Store.FILES:
        assert ("alpmd.engine.depend" in modules) == (named or query[0] == "-Qi")


_COMMAND = "import sys; from alpmd.cli.alpm import main; sys.argv[0] = 'alpm'; main()"


@pytest.mark.parametrize(("query", "status"), [
    (["-Qi"], 0),                  # a long stdout
    (["-Qi", "nosuchpackage"], 1),  # an error
    (["-Qk"], 1),                  # a warning per missing file on stderr, then a summary
], ids=["-Qi", "-Qi missing", "-Qk"])
def test_command_output_and_status_survive_the_fast_exit(roots: Roots, query: list[str],
                                                         status: int) -> None:
    """The command ends with os._exit (no interpreter teardown): everything it wrote to
    the pipes must still arrive, and its status must be pacman's."""
    args = ["--config", str(roots.files.config), *query]
    want = subprocess.run([PACMAN, *args], capture_output=True, text=True, env=_env(),
                          timeout=120)
    assert want.returncode == status and (want.stdout or want.stderr)
    got = subprocess.run([sys.executable, "-c", _COMMAND, *args], capture_output=True,
                         text=True, env=_env(), timeout=120)
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout,
                                                        want.stderr)


_LOADING = """
import gc, json
gc.collect()  # what start-up left is not the command's
seen = []
gc.callbacks.append(lambda phase, info: seen.append(info["generation"]) if phase == "start" else None)
import alpmd.cli.alpm
print(json.dumps([len(seen), gc.isenabled(), gc.get_freeze_count()]))
"""


def test_loading_the_command_runs_no_collection() -> None:
    """The command's modules load with the collector paused and then go straight to the
    oldest generation: no collection walks the tens of thousands of objects they made
    (the first allocation after re-enabling used to start one). A program importing the
    module keeps its collector on, and nothing stays frozen for it."""
    proc = subprocess.run([sys.executable, "-c", _LOADING], capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [0, True, 0]


#: Never needed by ``-U`` of local files (json is the journal's; ctypes binds libarchive):
#: no hashing without backup files, no temporary-name module without scriptlets, no
#: disk space check without CheckSpace, and no ``typing`` (names only annotations use
#: are imported under ``alpmd.TYPE_CHECKING``).
UNNEEDED_BY_LOCAL_INSTALL = {"aiohttp", "ssl", "asyncio", "logging", "concurrent.futures",
                             "urllib.parse", "subprocess", "alpmd.engine.signing",
                             "alpmd.engine.download", "hashlib", "tempfile", "shutil",
                             "alpmd.engine.diskspace", "typing"}


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


def _dataclasses_without_docstring(path: Path) -> list[str]:
    """``file:line class`` for each ``@dataclass`` class in ``path`` that has no docstring."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for deco in node.decorator_list:
            target = deco.func if isinstance(deco, ast.Call) else deco
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if name == "dataclass" and not ast.get_docstring(node):
                out.append(f"{path.name}:{node.lineno} {node.name}")
    return out


def test_every_dataclass_has_a_docstring(tmp_path: Path) -> None:
    """Without one, dataclasses calls inspect.signature to write it (loading inspect)."""
    sample = tmp_path / "sample.py"
    sample.write_text("import dataclasses\nfrom dataclasses import dataclass\n\n"
                      "@dataclass(frozen=True)\nclass A:\n    x: int\n\n"
                      "@dataclasses.dataclass\nclass B:\n    'Has one.'\n")
    assert _dataclasses_without_docstring(sample) == ["sample.py:5 A"]
    files = sorted((ROOT / "alpmd").rglob("*.py"))
    assert len(files) > 50
    assert [bad for f in files for bad in _dataclasses_without_docstring(f)] == []


_USES_INSPECT = """
import sys
{setup}
from dataclasses import dataclass, fields
stand_in = type(sys.modules.get("inspect")).__name__

@dataclass
class Undocumented:
    name: str
    size: int = 0

import inspect
from inspect import signature
import json
print(json.dumps([stand_in, Undocumented.__doc__, str(signature(Undocumented)),
                  inspect.getdoc(fields), sys.modules["inspect"] is inspect,
                  inspect.__name__, hasattr(inspect, "getsource")]))
"""


def test_deferred_inspect_behaves_as_the_real_one() -> None:
    """A dataclass without a docstring, and any use of inspect, still work after the
    ``alpm`` command's stand-in is in place, exactly as without it."""
    def run(setup: str) -> list[object]:
        proc = subprocess.run([sys.executable, "-c", _USES_INSPECT.format(setup=setup)],
                              capture_output=True, text=True, env=_env(), timeout=60)
        assert proc.returncode == 0, proc.stderr
        return list(json.loads(proc.stdout))

    plain = run("")
    deferred = run("import alpmd.cli.alpm")
    assert plain[0] == "module" and deferred[0] == "DeferredModule"
    assert deferred[1:] == plain[1:]
    assert plain[1] == "Undocumented(name: str, size: int = 0)" and plain[4] is True
