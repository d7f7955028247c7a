"""``-Q`` queries on a local database written by hand, not by pacman: ``alpm`` and pacman.

One-shot queries test each stored ``desc``/``files`` as bytes before parsing
(``-Qo``, the required-by of ``-Qi``, ``-Qs``): these entries are the inputs
such a shortcut could get wrong: sections in an odd order, %BACKUP% before
%FILES% and naming paths that are not listed, a list without its last newline,
no %FILES% at all, paths that are prefixes or suffixes of others, non-UTF-8
names, a dependency reached through a provision, a desc naming another
package (pacman reports it whenever it reads that desc: the scans must too). Every
scenario runs on the files store (pacman reads the same tree) and on a copy
converted to alpmd's SQLite store, and must match pacman byte for byte
(stdout, stderr, exit code). Each scenario also checks pacman's own exit code,
so a fixture that stopped meaning what it says fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alpmd.testing.oracle import PACMAN, PacmanRoot

pytestmark = pytest.mark.oracle

ALPM = str(Path(sys.executable).parent / "alpm")


def _desc(name: str, version: str, *extra: str, order: str = "normal") -> bytes:
    head = [f"%NAME%\n{name}\n", f"%VERSION%\n{version}\n"]
    common = ["%ARCH%\nany\n", "%BUILDDATE%\n1600000000\n", "%INSTALLDATE%\n1600000100\n",
              "%PACKAGER%\nHand Writer <h@example.org>\n", "%SIZE%\n1024\n"]
    parts = [*head, *common, *extra] if order == "normal" else [*extra, *common, *head]
    return "\n".join(parts).encode() + b"\n"


#: name-version -> (desc, files or None for no files file); bytes as written on disk.
ENTRIES: dict[str, tuple[bytes, bytes | None]] = {
    # Sections in reverse order; %BACKUP% first, naming a path %FILES% does not list.
    "odd-1.0-1": (
        _desc("odd", "1.0-1", "%DEPENDS%\ntool\n", "%PROVIDES%\nodd-virt=1.0\nlibodd.so=1-64\n",
              "%GROUPS%\nhandgrp\n", "%DESC%\nAn entry written in reverse order\n",
              order="reverse"),
        b"%BACKUP%\netc/odd.conf\td41d8cd98f00b204e9800998ecf8427e\n"
        b"etc/only-backup.conf\td41d8cd98f00b204e9800998ecf8427e\n\n"
        b"%FILES%\netc/\netc/odd.conf\nusr/\nusr/bin/\nusr/bin/odd\n\n"),
    # The last path without a newline after it.
    "tail-1.0-1": (
        _desc("tail", "1.0-1", "%DESC%\nNo newline at the end of its file list\n",
              "%OPTDEPENDS%\nodd: odd things\n"),
        b"%FILES%\nusr/\nusr/share/\nusr/share/tail/\nusr/share/tail/last"),
    # Prefixes and suffixes of another package's paths.
    "tool-1-1": (
        _desc("tool", "1-1", "%DESC%\nThe tool\n", "%PROVIDES%\ntoolkit\n"),
        b"%FILES%\nusr/\nusr/bin/\nusr/bin/tool\nusr/bin/tool.d/\nusr/bin/tool.d/conf\n\n"),
    "toolx-1-1": (
        _desc("toolx", "1-1", "%DESC%\nMentions usr/bin/tool in its description\n",
              "%DEPENDS%\ntoolkit\n"),
        b"%FILES%\nusr/\nusr/bin/\nusr/bin/tool-extra\nusr/bin/xtool\nusr/bin/to\n\n"),
    # No %FILES% section (a backup list only), and an empty files file.
    "nofiles-1-1": (
        _desc("nofiles", "1-1", "%DESC%\nBackup list only\n"),
        b"%BACKUP%\nusr/bin/odd\td41d8cd98f00b204e9800998ecf8427e\n\n"),
    "empty-1-1": (_desc("empty", "1-1", "%DESC%\nEmpty files file\n"), b""),
    # A file name that is not UTF-8.
    "latin-1-1": (
        _desc("latin", "1-1", "%DESC%\nCafe names\n"),
        b"%FILES%\nusr/\nusr/share/\nusr/share/caf\xe9\nusr/share/caf\xc3\xa9\n\n"),
    # Its desc says another name: the directory wins, and both report it when they
    # read that desc (not for -Q or -Qo, which do not).
    "dirname-1-1": (
        _desc("othername", "1-1", "%DESC%\nThe directory names it\n"),
        b"%FILES%\nopt/\nopt/dirname\n\n"),
}

#: Paths made on disk (relative to the root) so that -Qo can stat them.
ON_DISK = ["etc/odd.conf", "etc/only-backup.conf", "usr/bin/odd", "usr/bin/tool",
           "usr/bin/tool-extra", "usr/bin/xtool", "usr/bin/to", "usr/bin/too",
           "usr/share/tail/last", "opt/dirname"]

R = "@ROOT@"
#: Scenario -> (arguments, pacman's expected exit code).
SCENARIOS: dict[str, tuple[list[str], int]] = {
    "Q": (["-Q"], 0),
    "Qq": (["-Qq"], 0),
    "Qo-listed-after-backup": (["-Qo", f"{R}/etc/odd.conf"], 0),
    "Qo-backup-only": (["-Qo", f"{R}/etc/only-backup.conf"], 1),
    "Qo-prefix-of-others": (["-Qo", f"{R}/usr/bin/to"], 0),
    "Qo-others-prefix": (["-Qo", f"{R}/usr/bin/tool"], 0),
    "Qo-suffix": (["-Qo", f"{R}/usr/bin/xtool"], 0),
    "Qo-unowned": (["-Qo", f"{R}/usr/bin/too"], 1),
    "Qo-directory": (["-Qo", f"{R}/usr/bin"], 0),
    "Qo-directory-slash": (["-Qo", f"{R}/usr/bin/"], 0),
    "Qo-no-final-newline": (["-Qo", f"{R}/usr/share/tail/last"], 0),
    "Qo-backup-section-only": (["-Qo", f"{R}/usr/bin/odd"], 0),
    "Qo-renamed-entry": (["-Qo", f"{R}/opt/dirname"], 0),
    "Qo-several": (["-Qo", f"{R}/usr/bin/to", f"{R}/usr/bin/too", f"{R}/etc/odd.conf"], 1),
    "Qi-odd": (["-Qi", "odd"], 0),
    "Qi-tool": (["-Qi", "tool"], 0),
    "Qi-tail": (["-Qi", "tail"], 0),
    "Qi-all": (["-Qi"], 0),
    "Qs-literal": (["-Qs", "tool"], 0),
    "Qs-upper": (["-Qs", "REVERSE"], 0),
    "Qs-provision-only": (["-Qs", "virt"], 0),
    "Qs-group-only": (["-Qs", "handgrp"], 0),
    "Qs-two-words": (["-Qs", "the", "tool"], 0),
    "Qs-regex": (["-Qs", "^t.o"], 0),
    "Qs-name-from-directory": (["-Qs", "dirname"], 0),
    "Qs-desc-name": (["-Qs", "othername"], 1),
    "Qs-none": (["-Qs", "zzz"], 1),
    "Qe": (["-Qe"], 0),
    "Qi-dirname": (["-Qi", "dirname"], 0),
    "Qt": (["-Qt"], 0),
    "Ql-tail": (["-Ql", "tail"], 0),
}

def _build(base: Path) -> PacmanRoot:
    root = PacmanRoot(base / "root")
    local = root.dbpath / "local"
    (local / "ALPM_DB_VERSION").write_text("9\n")
    for dirname, (desc, files) in ENTRIES.items():
        entry = local / dirname
        entry.mkdir()
        (entry / "desc").write_bytes(desc)
        if files is not None:
            (entry / "files").write_bytes(files)
    for rel in ON_DISK:
        path = root.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    os.makedirs(root.root / "usr/share", exist_ok=True)
    (root.root / "usr/share").joinpath(os.fsdecode(b"caf\xe9")).write_bytes(b"")
    return root


def _env() -> dict[str, str]:
    """The C locale; PYTHONPATH kept so that ``alpm`` runs the code under test."""
    env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _run(cmd: list[str], root: PacmanRoot) -> tuple[int, str, str]:
    env = _env()
    argv = [a.replace(R, str(root.root)) for a in cmd]
    p = subprocess.run(argv[:1] + root.args() + ["--color", "never"] + argv[1:],
                       capture_output=True, env=env, timeout=120)
    return p.returncode, p.stdout.decode("utf-8", "surrogateescape"), \
        p.stderr.decode("utf-8", "surrogateescape")


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PacmanRoot]:
    base = tmp_path_factory.mktemp("qhand")
    files = _build(base / "files")
    sqlite = PacmanRoot(base / "sqlite" / "root")
    shutil.rmtree(sqlite.root)
    shutil.copytree(files.root, sqlite.root, symlinks=True)
    sqlite.write_config()  # the copy's own paths
    p = subprocess.run([ALPM, "-D", *sqlite.args(), "--convert", "sqlite"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert p.returncode == 0, p.stderr
    assert (sqlite.dbpath / "local.sqlite").exists()
    assert not (sqlite.dbpath / "local").exists()
    return {"files": files, "sqlite": sqlite}


def _pacman_on(files: PacmanRoot, cmd: list[str], root: PacmanRoot) -> tuple[int, str, str]:
    """pacman's answer on the files copy, with that root's paths written as ``root``'s."""
    code, out, err = _run([PACMAN, *cmd], files)
    return code, out.replace(str(files.root), str(root.root)), \
        err.replace(str(files.root), str(root.root))


@pytest.mark.parametrize("store", ["files", "sqlite"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_handwritten_same_as_pacman(roots: dict[str, PacmanRoot], store: str,
                                    scenario: str) -> None:
    cmd, code = SCENARIOS[scenario]
    root = roots[store]
    want = _pacman_on(roots["files"], cmd, root)
    assert want[0] == code, f"pacman exited {want[0]}: {want[2]}"
    got = _run([ALPM, *cmd], root)
    assert got[1] == want[1], "stdout differs"
    assert got[2] == want[2], "stderr differs"
    assert got[0] == want[0], "exit code differs"


def test_qo_nonutf8_name(roots: dict[str, PacmanRoot]) -> None:
    """A path that is not UTF-8 is found by its bytes (both stores)."""
    files = roots["files"]
    target = os.fsencode(files.root) + b"/usr/share/caf\xe9"
    env = _env()
    want = subprocess.run([PACMAN, "-Qo", *files.args(), "--color", "never", target],
                          capture_output=True, env=env, timeout=60)
    assert want.returncode == 0, want.stderr
    assert want.stdout.endswith(b" is owned by latin 1-1\n")
    for root in roots.values():
        path = os.fsencode(root.root) + b"/usr/share/caf\xe9"
        got = subprocess.run([ALPM, "-Qo", *root.args(), "--color", "never", path],
                             capture_output=True, env=env, timeout=60)
        assert (got.returncode, got.stdout, got.stderr) == (
            0, want.stdout.replace(os.fsencode(files.root), os.fsencode(root.root)),
            want.stderr)


def test_scans_answer_as_the_indexes(roots: dict[str, PacmanRoot]) -> None:
    """The one-shot scans (bytes tested before parsing) and the indexes a second
    question builds agree on every path listed or backed up, every dependency
    name and search word of the fixture, on both stores."""
    from alpmd.engine import query
    from alpmd.engine.handle import Handle
    from alpmd.engine.regex import compile_posix, is_literal

    paths = {"usr/bin/too", "usr/bin/tool/", "etc/only-backup.conf", "usr/share/tail/"}
    words = {"tool", "REVERSE", "virt", "handgrp", "usr", "zzz", "1"}
    for _, (desc, files) in ENTRIES.items():
        for line in (files or b"").splitlines():
            if line and not line.startswith(b"%"):
                paths.add(os.fsdecode(line.partition(b"\t")[0]))
        words.update(w for w in desc.decode().split() if "%" not in w)
    for root in roots.values():
        handle = Handle(root=str(root.root), dbpath=str(root.dbpath))
        db = handle.localdb
        idx = query._index(db)
        scanned_owners = {p: [o.name for o in query._scan_owners(db, p, first=False)]
                          for p in sorted(paths)}
        indexed_owners = {p: [o.name for o in idx.owners.get(p, ())] for p in sorted(paths)}
        assert scanned_owners == indexed_owners
        assert scanned_owners["usr/bin/"] == ["odd", "tool", "toolx"]
        assert scanned_owners["usr/bin/to"] == ["toolx"]
        assert scanned_owners["etc/only-backup.conf"] == []
        assert scanned_owners["usr/share/tail/last"] == ["tail"]
        names = sorted({*db.versions, "toolkit", "odd-virt", "libodd.so", "nothing"})
        deps, opts = query._scan_dependers(db, names)
        assert deps == {n: idx.revdeps[n] for n in names if n in idx.revdeps}
        assert opts == {n: idx.revopt[n] for n in names if n in idx.revopt}
        assert deps["toolkit"] == [("toolx", "toolkit")]
        for word in sorted(words):
            regs = [compile_posix(word)]
            scanned = query._scan_search(db, [word], regs)
            if not is_literal(word):
                assert scanned is None, word  # only literal words narrow a search
                continue
            assert scanned is not None, word
            blob = scanned[0]
            hits = {blob.name_list[g] for g in regs[0].matching_groups(
                blob.text, blob.lower, blob.starts, blob.owner, blob.next_start)}
            full = idx.blob
            want = {full.name_list[g] for g in regs[0].matching_groups(
                full.text, full.lower, full.starts, full.owner, full.next_start)}
            assert hits == want, word
