"""German from -S/-R, their [J/n] prompt, alpm-repo and alpmctl; C output stays pacman's.

Each German run is paired with the same command under ``LC_ALL=C``, and that one with
pacman on the same root (pacman must fail or refuse the same way first).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from alpmd.engine.db.local import LocalDatabase
from alpmd.engine.formats.desc import PkgMeta, Reason
from alpmd.i18n import client_locale
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package, sync_meta
from alpmd.testing.repogen import write_sync_db
from alpmd.testing.sandbox import REPO, Sandbox

ROOT = Path(__file__).resolve().parents[2]
GERMAN = {"LANG": "de_DE.UTF-8"}
C = {"LC_ALL": "C"}


def sync_meta_any(name: str, **fields: object) -> PkgMeta:
    return PkgMeta(name, "1.0-1", arch="any", filename=f"{name}-1.0-1-any.pkg.tar.zst",
                   csize=100, isize=100, **fields)  # type: ignore[arg-type]


@pytest.fixture()
def root(tmp_path: Path) -> PacmanRoot:
    """core: lib, app (needs lib); installed: lib (a dependency), app, leaf."""
    r = PacmanRoot(tmp_path / "root")
    r.add_repo("core", write_sync_db([sync_meta_any("lib"), sync_meta_any("app", depends=["lib"])],
                                     tmp_path / "repos" / "core.db"))
    local = LocalDatabase(str(r.dbpath) + "/", durable=False)
    for meta in (PkgMeta("lib", "1.0-1", arch="any", reason=Reason.DEPEND),
                 PkgMeta("app", "1.0-1", arch="any", depends=["lib"]),
                 PkgMeta("leaf", "1.0-1", arch="any")):
        local.add(meta, None)
    return r


def run(cmd: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TZ": "UTC", **env}
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=full_env,
                          timeout=120)


def alpm(root: PacmanRoot, env: dict[str, str], *args: str,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``alpm`` on the root; with ``stdin`` it asks (--confirm after the root's --noconfirm)."""
    confirm = ["--confirm"] if stdin is not None else []
    return run([sys.executable, "-m", "alpmd.cli.alpm", *args, *root.args(), "--color", "never",
                *confirm], env, stdin or "")


def three(root: PacmanRoot, *args: str
          ) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str],
                     subprocess.CompletedProcess[str]]:
    """The same command by pacman, by alpm under ``LC_ALL=C`` and by alpm in German."""
    return root.pacman(*args), alpm(root, C, *args), alpm(root, GERMAN, *args)


def installed(root: PacmanRoot) -> set[str]:
    return {d.name.rsplit("-", 2)[0] for d in (root.dbpath / "local").iterdir() if d.is_dir()}


def test_sync_target_not_found_in_german(root: PacmanRoot) -> None:
    pacman, english, german = three(root, "-S", "nosuch")
    assert pacman.returncode == english.returncode == german.returncode == 1
    assert pacman.stderr == english.stderr == "error: target not found: nosuch\n"
    assert german.stderr == "Fehler: Ziel nicht vorhanden: nosuch\n"


def test_remove_breaking_a_dependency_in_german(root: PacmanRoot) -> None:
    pacman, english, german = three(root, "-R", "lib")
    assert pacman.returncode == english.returncode == german.returncode == 1
    assert (english.stdout, english.stderr) == (pacman.stdout, pacman.stderr)
    assert ":: removing lib breaks dependency 'lib' required by app\n" in english.stdout
    assert german.stderr == ("Fehler: Transaktion ließ sich nicht vorbereiten "
                             "(Abhängigkeiten lassen sich nicht erfüllen)\n")
    assert german.stdout == ("Abhängigkeiten werden geprüft …\n"
                             ":: das Entfernen von lib verletzt die Abhängigkeit »lib« von app\n")
    assert installed(root) == {"lib", "app", "leaf"}


def test_yes_no_prompt_speaks_the_users_language(root: PacmanRoot) -> None:
    # "j" is no answer in English: pacman and we keep the package
    pacman = root.pacman("-R", "leaf", "--confirm", input="j\n")
    english = alpm(root, C, "-R", "leaf", stdin="j\n")
    assert pacman.returncode == english.returncode == 1
    assert english.stderr == pacman.stderr == (
        ":: Do you want to remove these packages? [Y/n] j\n")
    assert installed(root) == {"lib", "app", "leaf"}
    # German: the question and its letters in German, and "j" means yes
    german = alpm(root, GERMAN, "-R", "leaf", stdin="j\n")
    assert german.returncode == 0, german.stderr
    assert german.stderr == ":: Sollen diese Pakete entfernt werden? [J/n] j\n"
    assert "\nPakete (1) leaf-1.0-1\n" in german.stdout
    assert installed(root) == {"lib", "app"}
    # English words still count in German ("yes" typed by habit)
    german_yes = alpm(root, GERMAN, "-R", "app", stdin="yes\n")
    assert german_yes.returncode == 0 and installed(root) == {"lib"}, german_yes.stderr


def test_alpm_repo_in_german(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    repo = [sys.executable, "-m", "alpmd.cli.repo", "--tree", str(tree)]
    init = run([*repo, "init", "--repos", "core", "--arches", "x86_64"], GERMAN)
    assert init.returncode == 0, init.stderr
    assert init.stdout == f"{tree / 'alpm-repo.conf'} angelegt\n"
    english = run([*repo, "remove", "core", "x86_64", "nosuch"], C)
    german = run([*repo, "remove", "core", "x86_64", "nosuch"], GERMAN)
    assert english.returncode == german.returncode == 1
    assert english.stderr == "error: nosuch is not in core x86_64 [pkg-not-found]\n"
    # the detail names what is involved and stays as it is, after the code's German text
    assert german.stderr == ("Fehler: Paket fehlt oder ist nicht lesbar: nosuch is not in core x86_64 "
                             "[pkg-not-found]\n")
    check = run([*repo, "check"], GERMAN)
    assert (check.returncode, check.stdout) == (0, "der Baum ist stimmig\n"), check.stderr
    # check's notes and problems are in German too (the names in them stay as they are)
    (tree / "pool/packages/stray-1.0-1-any.pkg.tar.zst").write_bytes(b"")
    noted = run([*repo, "check"], GERMAN)
    assert noted.returncode == 0, noted.stderr
    assert "1 Pool-Dateien, auf die keine Datenbank verweist (cleanup entfernt sie)\n" \
        in noted.stdout, noted.stdout
    usage = run([*repo, "--help"], GERMAN)
    assert "einen Baum samt alpm-repo.conf anlegen" in usage.stdout


def test_client_locale_is_the_first_language_with_a_catalog() -> None:
    assert client_locale({"LANG": "de_DE.UTF-8"}) == "de_DE.UTF-8"
    assert client_locale({"LANG": "en_US.UTF-8", "LANGUAGE": "fr:de"}) == "de"
    assert client_locale({"LANG": "fr_FR.UTF-8"}) == "fr_FR.UTF-8"   # the daemon falls back
    assert client_locale({"LC_ALL": "C", "LANGUAGE": "de"}) == client_locale({}) == ""


def _pkg(out: Path, name: str, *, depends: tuple[str, ...] = (),
         provides: tuple[str, ...] = ()) -> Path:
    meta = PkgMeta(name, "1.0-1", desc=name, depends=list(depends), provides=list(provides))
    return build_package(out, meta, [FileSpec(f"usr/share/{name}/data", b"x\n")],
                         compression="gz")


def test_alpmctl_questions_in_each_clients_language(tmp_path: Path) -> None:
    """Two clients of one daemon: the German one is asked in German, the other in English."""
    root = PacmanRoot(tmp_path / "root")
    srv = root.root / "srv" / REPO
    srv.mkdir(parents=True)
    paths = [_pkg(srv, "editor", depends=("sh-provider",)),
             _pkg(srv, "prov-a", provides=("sh-provider",)),
             _pkg(srv, "prov-b", provides=("sh-provider",)),
             _pkg(srv, "viewer", depends=("pager",)),
             _pkg(srv, "pager-a", provides=("pager",)), _pkg(srv, "pager-b", provides=("pager",))]
    write_sync_db([sync_meta(p) for p in paths], srv / f"{REPO}.db")
    root.add_repo(REPO, srv / f"{REPO}.db")
    with Sandbox(root, polkit=False) as sb:
        def alpmctl(env: dict[str, str], *args: str) -> list[dict[str, object]]:
            got = run([sys.executable, "-m", "alpmd.cli.alpmctl", f"--address={sb.address}",
                       "--json", *args], env)
            assert got.returncode == 0, got.stderr
            return [json.loads(line) for line in got.stdout.splitlines()]

        german = alpmctl(GERMAN, "install", "editor")
        english = alpmctl(C, "install", "viewer")
    asked_de = [e for e in german if e["event"] == "question"]
    asked_en = [e for e in english if e["event"] == "question"]
    assert [(e["kind"], e["text"], e["choices"]) for e in asked_de] == [
        ("SelectProvider", "sh-provider wird von 2 Paketen bereitgestellt:", ["prov-a-1.0-1", "prov-b-1.0-1"])]
    assert [(e["kind"], e["text"], e["choices"]) for e in asked_en] == [
        ("SelectProvider", "There are 2 providers available for pager:",
         ["pager-a-1.0-1", "pager-b-1.0-1"])]
    # the log lines of each client's transaction follow its language too
    assert any(e["event"] == "log" and e["text"] == "Frage 1: sh-provider wird von 2 Paketen bereitgestellt:"
               for e in german)
    assert any(e["event"] == "log" and e["text"].startswith("question 1 not answered")
               for e in english)
    assert german[-1]["result"] == english[-1]["result"] == "success"
