"""``alpm -h`` and ``alpm -<op> -h`` in German; under ``C`` the English help as written.

Each German help is paired line by line with the same help under ``LC_ALL=C``: the
option column (names, placeholders) is identical, the description is the catalog's
German for the English one, and no description is left in English.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from alpmd.cli.help import OPERATION_USAGE, options
from alpmd.i18n import catalog

ROOT = Path(__file__).resolve().parents[2]
GERMAN = catalog(("de",))
COLUMN = 23  # where pacman's usage() (and ours) starts a description


def help_text(env: dict[str, str], *args: str) -> str:
    full_env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env}
    proc = subprocess.run([sys.executable, "-m", "alpmd.cli.alpm", *args, "-h"],
                          capture_output=True, text=True, env=full_env, timeout=120)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    return proc.stdout


def split(line: str) -> tuple[str, str]:
    """(option column, description) of a line: an option too long for the column stands
    alone (no description), its description follows on a line indented to the column."""
    if line[COLUMN - 2:COLUMN] == "  ":  # a head is padded, a long one has no double space
        return line[:COLUMN], line[COLUMN:]
    return line, ""


def test_sync_help_in_german_and_in_english() -> None:
    english = help_text({"LC_ALL": "C"}, "-S")
    german = help_text({"LANG": "de_DE.UTF-8"}, "-S")
    assert english.startswith("usage:  alpm.py {-S --sync} [options] [package(s)]\noptions:\n")
    assert "  -y, --refresh        download fresh databases (-yy: even if up to date)\n" in english
    assert ("  -s, --search <regex>\n"
            "                       search the repositories for <regex>\n") in english
    assert german.startswith("Aufruf:  alpm.py {-S --sync} [options] [package(s)]\nOptionen:\n")
    assert ("  -y, --refresh        die Datenbanken neu herunterladen "
            "(-yy: auch wenn sie aktuell sind)\n") in german
    assert ("  -s, --search <regex>\n"
            "                       die Paketquellen nach <regex> durchsuchen\n") in german
    # the same under LANGUAGE=de when the locale is C: GNU gettext ignores LANGUAGE there
    assert help_text({"LC_ALL": "C", "LANGUAGE": "de"}, "-S") == english


@pytest.mark.parametrize("op", list(OPERATION_USAGE))
def test_every_operation_help_is_german_line_by_line(op: str) -> None:
    letter = OPERATION_USAGE[op][0]
    english = help_text({"LC_ALL": "C"}, f"-{letter}").splitlines()
    german = help_text({"LANG": "de_DE.UTF-8"}, f"-{letter}").splitlines()
    assert len(english) == len(german) > 3
    assert english[0].startswith("usage:  ") and german[0].startswith("Aufruf:  ")
    assert english[0][len("usage:"):] == german[0][len("Aufruf:"):]
    assert (english[1], german[1]) == ("options:", "Optionen:")
    described = 0
    for en_line, de_line in zip(english[2:], german[2:], strict=True):
        (en_head, en_desc), (de_head, de_desc) = split(en_line), split(de_line)
        assert en_head == de_head  # option names and placeholders are not translated
        if en_desc:
            assert de_desc == GERMAN.gettext(en_desc) != en_desc, en_line
            described += 1
    assert described == len(options(op))  # every option's description was compared


def test_command_help_in_german_and_in_english() -> None:
    english = help_text({"LC_ALL": "C"})
    german = help_text({"LANG": "de_DE.UTF-8"})
    assert english.startswith("usage:  alpm.py <operation> [...]\noperations:\n")
    assert english.endswith("\nuse 'alpm.py {-h --help}' with an operation for available options\n")
    assert german.startswith("Aufruf:  alpm.py <operation> [...]\nVorgänge:\n")
    assert german.endswith("\n»alpm.py {-h --help}« zusammen mit einem Vorgang zeigt dessen "
                           "Optionen\n")
    # the synopses between the headings and the hint are the same in both languages
    assert english.splitlines()[2:-1] == german.splitlines()[2:-1]
    assert "    alpm.py {-S --sync}     [options] [package(s)]\n" in german
