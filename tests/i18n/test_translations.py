"""gettext: German under a German locale, English under C, per-client languages, completeness."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from alpmd.cli.output import Display
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.i18n import catalog, env_languages, translate, translator
from alpmd.testing.oracle import PacmanRoot

ROOT = Path(__file__).resolve().parents[2]
GERMAN = catalog(("de",))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, arch_sync: Path) -> PacmanRoot:
    r = PacmanRoot(tmp_path_factory.mktemp("i18n") / "root")
    r.add_repo("core", arch_sync / "core.db.tar.gz")
    return r


def alpm(root: PacmanRoot, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TZ": "UTC", **env}
    return subprocess.run([sys.executable, "-m", "alpmd.cli.alpm", *args, *root.args(),
                           "--color", "never"], capture_output=True, text=True, env=full_env,
                          timeout=120)


def fields(text: str) -> list[tuple[str, str]]:
    """(title, value) of each ``Title   : value`` line, title without its padding."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\S.*?) +: (.*)$", line)
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def test_si_in_german_has_german_titles_in_pacmans_layout(root: PacmanRoot) -> None:
    english = alpm(root, {"LC_ALL": "C"}, "-Si", "bash", "glibc")
    german = alpm(root, {"LANG": "de_DE.UTF-8"}, "-Si", "bash", "glibc")
    assert english.returncode == 0 and german.returncode == 0, german.stderr
    assert "Description     : The GNU Bourne Again shell" in english.stdout
    # Our own wording, titles padded to the longest German title (as pacman pads).
    width = max(len(GERMAN.gettext(t)) for t in Display.TITLES)
    assert width == len("Optionale Abhängigkeiten")
    for title, value in (("Paketquelle", "core"), ("Beschreibung", "The GNU Bourne Again shell"),
                         ("Architektur", "x86_64"), ("Gruppen", "Keine"),
                         ("Bestätigt durch", "MD5-Summe  SHA-256-Summe  Signatur")):
        assert f"\n{title.ljust(width)} : {value}\n" in german.stdout
    assert "Description" not in german.stdout
    # Same lines in the same order; each German title is the translation of the English one,
    # values are the same except the translated words.
    en, de = fields(english.stdout), fields(german.stdout)
    assert len(en) == len(de) == 2 * 18
    words = {"None": "Keine", "MD5 Sum  SHA-256 Sum  Signature": "MD5-Summe  SHA-256-Summe  Signatur"}
    for (en_title, en_value), (de_title, de_value) in zip(en, de, strict=True):
        assert de_title == GERMAN.gettext(en_title) != ""
        assert de_value == words.get(en_value, en_value)
    for line in german.stdout.splitlines():
        if line:  # a title line, or a continuation indented past the colon
            assert line[width:width + 3] == " : " or line.startswith(" " * (width + 3)), line
    assert german.stdout.count("\n\n") == english.stdout.count("\n\n") == 2


def test_c_locale_and_untranslated_languages_stay_english(root: PacmanRoot) -> None:
    english = alpm(root, {"LC_ALL": "C"}, "-Si", "bash")
    assert english.returncode == 0 and "Name            : bash\n" in english.stdout
    for env in ({"LC_ALL": "C", "LANGUAGE": "de"},           # GNU: LANGUAGE ignored under C
                {"LANGUAGE": "de"},                          # no locale at all: C
                {"LANG": "de_DE.UTF-8", "LC_ALL": "POSIX"},  # LC_ALL wins over LANG
                {"LANG": "fr_FR.UTF-8"},                     # no French catalog: English
                {"LANG": "C.UTF-8"}):
        other = alpm(root, env, "-Si", "bash")
        assert (other.returncode, other.stdout, other.stderr) == (
            english.returncode, english.stdout, english.stderr), env
    # LANGUAGE picks the language when the locale is a real one.
    german = alpm(root, {"LANG": "en_US.UTF-8", "LANGUAGE": "fr:de"}, "-Si", "bash")
    assert "Beschreibung" in german.stdout


def test_errors_are_translated(root: PacmanRoot) -> None:
    german = alpm(root, {"LANG": "de_DE.UTF-8"}, "-Si", "no-such-package")
    english = alpm(root, {"LC_ALL": "C"}, "-Si", "no-such-package")
    assert german.returncode == english.returncode == 1
    assert english.stderr == "error: package 'no-such-package' was not found\n"
    assert german.stderr == "Fehler: Paket »no-such-package« nicht vorhanden\n"
    # (a text without a translation stays English: test_per_client_locale_translates_engine_errors
    # and test_cli_german's alpm-repo detail)


def test_env_languages_follows_gnu_gettext() -> None:
    assert env_languages({"LC_ALL": "C", "LANGUAGE": "de"}) == ()
    assert env_languages({"LANG": "de_DE.UTF-8"}) == ("de_DE.UTF-8",)
    assert env_languages({"LANG": "de_DE.UTF-8", "LC_MESSAGES": "fr_FR"}) == ("fr_FR",)
    assert env_languages({"LANG": "en_GB.UTF-8", "LANGUAGE": "de:fr"}) == ("de", "fr",
                                                                          "en_GB.UTF-8")
    assert env_languages({}) == ()


def test_per_client_locale_translates_engine_errors() -> None:
    exc = AlpmError(ErrorCode.PKG_NOT_FOUND, "target not found: foo")
    assert exc.localized("de") == "Ziel nicht vorhanden: foo"
    assert exc.localized("de_DE.UTF-8") == "Ziel nicht vorhanden: foo"
    assert exc.localized("en_US.UTF-8") == "target not found: foo"
    assert exc.localized("C") == exc.localized("") == "target not found: foo"
    plain = AlpmError(ErrorCode.HANDLE_LOCK)
    assert plain.msgid == "unable to lock database"  # the stable English text
    assert plain.localized("de") == "Datenbank lässt sich nicht sperren"
    # Two clients, two languages, from the same error object.
    assert {plain.localized("de"), plain.localized("fr")} == {
        "Datenbank lässt sich nicht sperren", "unable to lock database"}
    # Unknown text: English, never empty; an empty message stays empty (not the header).
    assert translate("no such message in any catalog", "de") == "no such message in any catalog"
    assert translate("", "de") == ""


def test_german_catalog_is_complete(tmp_path: Path) -> None:
    """Every string the sources mark (and every engine error text) has a German translation."""
    pot = tmp_path / "alpmd.pot"
    subprocess.run(["make", "-s", f"POT={pot}", f"PY={sys.executable}", str(pot)], cwd=ROOT,
                   check=True, capture_output=True, timeout=120)
    text = pot.read_text()
    for must in ('msgid "Description"', 'msgid "unable to lock database"',
                 'msgid "Processing package changes..."', 'msgid "target not found"'):
        assert must in text
    merged = tmp_path / "de.po"
    subprocess.run(["msgmerge", "-q", "--no-fuzzy-matching", "-o", str(merged),
                    str(ROOT / "po" / "de.po"), str(pot)], check=True, timeout=60)
    for flag in ("--untranslated", "--only-fuzzy"):
        left = subprocess.run(["msgattrib", flag, "--no-obsolete", str(merged)],
                              capture_output=True, text=True, check=True, timeout=60).stdout
        assert left.strip() == "", f"German entries {flag[2:]}:\n{left}"
    stats = subprocess.run(["msgfmt", "--check", "--statistics", "-o", os.devnull, str(merged)],
                           capture_output=True, text=True, check=True, timeout=60).stderr
    assert "untranslated" not in stats and "fuzzy" not in stats, stats


def test_translator_gives_each_client_its_language() -> None:
    """The daemon's questions use the command line's messages in each client's language."""
    question = "{name} is in IgnorePkg/IgnoreGroup. Install anyway?"
    german, english, c = translator("de_DE.UTF-8"), translator("en_US.UTF-8"), translator("C")
    assert german(question).format(name="foo") == (
        "foo steht in IgnorePkg/IgnoreGroup. Trotzdem installieren?")
    assert english(question) == c(question) == translator("")(question) == question
    assert german("a message nobody translated") == "a message nobody translated"
    assert german("") == ""


def test_daemon_questions_in_the_clients_language() -> None:
    """The text a client is asked (QuestionAsked) comes from its catalog, English without."""
    from alpmd.dbus.transaction import describe
    from alpmd.engine import events as ev
    from alpmd.engine.package import Origin, Package

    old, new = Package("foo", "1.0-1", Origin.LOCALDB), Package("foo", "2.0-1", Origin.SYNCDB)
    unresolvable = ev.RemoveUnresolvable(packages=[old])
    for question, english, german in (
            (ev.InstallIgnored(pkg=new), "foo-2.0-1 is in IgnorePkg/IgnoreGroup. Install anyway?",
             "foo-2.0-1 steht in IgnorePkg/IgnoreGroup. Trotzdem installieren?"),
            (unresolvable, "foo-1.0-1 cannot be upgraded due to unresolvable dependencies. "
             "Skip it for this upgrade?", "foo-1.0-1 lässt sich wegen unauflösbarer "
             "Abhängigkeiten nicht aktualisieren. Bei dieser Aktualisierung auslassen?")):
        assert describe(question)[0] == describe(question, catalog(("C",)))[0] == english
        assert describe(question, GERMAN)[0] == german
    text, choices, details = describe(ev.ImportKey(fingerprint="ABCD", uid="Jo <jo@x>"), GERMAN)
    assert text == GERMAN.gettext('Import PGP key {fingerprint}, "{uid}"?').format(
        fingerprint="ABCD", uid="Jo <jo@x>") != 'Import PGP key ABCD, "Jo <jo@x>"?'
    assert choices == ["yes", "no"] and details["fingerprint"].value == "ABCD"
