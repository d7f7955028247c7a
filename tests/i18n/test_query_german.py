"""German from -Q, -D and -F: field names, -Qk findings, -Dk problems, -F/-Qo misses.

Each German run is paired with the same command under ``LC_ALL=C``, and that one with
pacman on the same root (pacman must report the same problem the same way first).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alpmd.engine.db.local import LocalDatabase
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.formats.files import FileList
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.repogen import write_sync_db
from tests.i18n.test_cli_german import GERMAN, alpm, sync_meta_any, three

FILES = ["usr/", "usr/bin/", "usr/bin/app"]


@pytest.fixture()
def root(tmp_path: Path) -> PacmanRoot:
    """core (and its files database): lib, app; installed: app without its dependency lib,
    and without its file usr/bin/app on disk."""
    r = PacmanRoot(tmp_path / "root")
    db = write_sync_db([sync_meta_any("lib"), sync_meta_any("app", depends=["lib"])],
                       tmp_path / "repos" / "core.db", files={"app": FileList(FILES)})
    r.add_repo("core", db, tmp_path / "repos" / "core.files")
    local = LocalDatabase(str(r.dbpath) + "/", durable=False)
    local.add(PkgMeta("app", "1.0-1", arch="any", depends=["lib"], desc="An app",
                      builddate=1700000000, installdate=1700000100),
              FileList(FILES))
    (r.root / "usr/bin").mkdir(parents=True)
    (r.root / "etc/stray").write_text("not from a package\n")
    return r


def test_qi_in_german(root: PacmanRoot) -> None:
    pacman, english, german = three(root, "-Qi", "app")
    assert pacman.returncode == english.returncode == german.returncode == 0
    assert english.stdout == pacman.stdout
    assert "Description     : An app\n" in english.stdout
    assert "\nBeschreibung " in german.stdout and "Description" not in german.stdout
    assert ": An app\n" in german.stdout


def test_qk_findings_in_german(root: PacmanRoot) -> None:
    pacman, english, german = three(root, "-Qk", "app")
    assert pacman.returncode == english.returncode == german.returncode == 1
    assert (english.stdout, english.stderr) == (pacman.stdout, pacman.stderr)
    path = f"{root.root}/usr/bin/app"
    assert english.stderr == f"warning: app: {path} (No such file or directory)\n"
    assert english.stdout == "app: 3 total files, 1 missing file\n"
    assert german.stderr == f"Warnung: app: {path} (Datei oder Verzeichnis fehlt)\n"
    assert german.stdout == "app: 3 Dateien insgesamt, 1 fehlende Datei\n"


def test_dk_problems_in_german(root: PacmanRoot) -> None:
    pacman, english, german = three(root, "-Dk")
    assert pacman.returncode == english.returncode == german.returncode == 1
    assert (english.stdout, english.stderr) == (pacman.stdout, pacman.stderr)
    assert english.stderr == "error: missing 'lib' dependency for 'app'\n"
    assert german.stderr == "Fehler: Abhängigkeit »lib« von »app« fehlt\n"
    # and a sound database says so in German
    (root.root / "usr/bin/app").write_text("")
    sound = alpm(root, GERMAN, "-Dkk")
    assert sound.returncode == 0, sound.stderr
    assert sound.stdout == "Die Datenbank ist fehlerfrei.\n"


def test_files_and_owner_misses_in_german(root: PacmanRoot) -> None:
    for args, english_err, german_err in (
            (["-Fl", "nosuch"], "error: package 'nosuch' was not found\n",
             "Fehler: Paket »nosuch« nicht vorhanden\n"),
            (["-Qo", f"{root.root}/etc/stray"], f"error: No package owns {root.root}/etc/stray\n",
             f"Fehler: {root.root}/etc/stray gehört zu keinem Paket\n")):
        pacman, english, german = three(root, *args)
        assert pacman.returncode == english.returncode == german.returncode == 1, args
        assert (english.stdout, english.stderr) == (pacman.stdout, pacman.stderr) == (
            "", english_err)
        assert (german.stdout, german.stderr) == ("", german_err)
    # a hit: the owner line in German, the same in C as pacman's
    pacman, english, german = three(root, "-F", "/usr/bin/app")
    assert pacman.returncode == english.returncode == german.returncode == 0
    assert english.stdout == pacman.stdout == "usr/bin/app is owned by core/app 1.0-1\n"
    assert german.stdout == "usr/bin/app gehört zu core/app 1.0-1\n"


def test_usage_errors_in_german(root: PacmanRoot) -> None:
    pacman, english, german = three(root, "-Q", "-S")
    assert pacman.returncode == english.returncode == german.returncode == 1
    assert english.stderr == pacman.stderr == "error: only one operation may be used at a time\n"
    assert german.stderr == "Fehler: nur ein Vorgang auf einmal ist erlaubt\n"
    pacman, english, german = three(root, "-Q", "--bogus")
    assert pacman.returncode == english.returncode == german.returncode == 1
    assert pacman.stderr.endswith("pacman: unrecognized option '--bogus'\n")
    assert english.stderr.split(": ", 1)[1] == pacman.stderr.split(": ", 1)[1]
    assert german.stderr.split(": ", 1)[1] == "unbekannte Option »--bogus«\n"
