"""The manual pages: built by make's builder, rendered with every groff warning on, and
complete: every option and command the parsers know is in its page (German ones too)."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from alpmd.cli import args as alpm_args

ROOT = Path(__file__).resolve().parents[2]
PAGES = {"man8/alpm.8", "man8/alpmd.8", "man1/alpmctl.1", "man8/alpm-key.8",
         "man8/alpm-repo.8", "man5/alpmd.conf.5", "man7/org.alpm.7",
         "de/man8/alpm.8", "de/man1/alpmctl.1"}
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MANWIDTH": "250", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("man")
    subprocess.run([sys.executable, str(ROOT / "man" / "build.py"), "--out", str(out)],
                   check=True, env=ENV, timeout=300)
    return out


def text(page: Path) -> str:
    """The page as man shows it, without hyphenation or justification; warnings fail."""
    proc = subprocess.run(["man", "--warnings=all", "--nh", "--nj", "-l", str(page)],
                          capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout


def test_every_page_is_built_and_renders_without_warnings(built: Path) -> None:
    found = {str(p.relative_to(built)) for p in built.rglob("*") if p.is_file()}
    assert found == PAGES
    for rel in sorted(PAGES):
        page = built / rel
        proc = subprocess.run(["groff", "-man", "-ww", "-z", str(page)], capture_output=True,
                              text=True, env=ENV, timeout=60)
        assert proc.returncode == 0 and proc.stderr == "", (rel, proc.stderr)
        assert page.read_bytes().isascii(), rel  # other characters as \[uXXXX]
        shown = text(page)
        name = page.name.rsplit(".", 1)[0]
        assert f"{name}({page.suffix[1:]})" in shown.splitlines()[0], rel


@pytest.mark.parametrize("rel", ["man8/alpm.8", "de/man8/alpm.8"])
def test_alpm_page_has_every_option_of_the_parser(built: Path, rel: str) -> None:
    shown = text(built / rel)
    longs = set(alpm_args.COMMON_LONG) | set(alpm_args.VALUE_LONG)
    for op, (shorts, op_longs) in alpm_args.OP_FLAGS.items():
        longs |= op_longs | set(shorts.values())
        for letter, long in shorts.items():
            assert f"-{letter}, --{long}" in shown, (op, letter, long)
    for letter, op in alpm_args.OPERATIONS.items():
        assert f"-{letter}, --{op}" in shown, op
    for letter, long in alpm_args.VALUE_SHORT.items():
        assert f"-{letter} " in shown and f"--{long}=" in shown, long
    for long in sorted(longs):
        assert re.search(rf"--{re.escape(long)}\b", shown), long


def help_text(module: str, *argv: str) -> str:
    proc = subprocess.run([sys.executable, "-m", module, *argv, "--help"], capture_output=True,
                          text=True, env={**ENV, "COLUMNS": "200"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def options_and_commands(module: str) -> tuple[set[str], set[str]]:
    """What an argparse command accepts, read from its own --help (subcommands' too)."""
    top = help_text(module)
    commands: set[str] = set()
    m = re.search(r"\{([a-z,-]+)\}", top)
    if m:
        commands = set(m.group(1).split(","))
    texts = [top] + [help_text(module, cmd) for cmd in sorted(commands)]
    options = {o for t in texts for o in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", t)}
    return options, commands


COMMANDS = [("alpmd.cli.alpmctl", ["man1/alpmctl.1", "de/man1/alpmctl.1"]),
            ("alpmd.cli.key", ["man8/alpm-key.8"]),
            ("alpmd.dbus.service", ["man8/alpmd.8"])]
if (ROOT / "alpmd" / "cli" / "repo.py").exists():  # alpm-repo lands on its own branch
    COMMANDS.append(("alpmd.cli.repo", ["man8/alpm-repo.8"]))


@pytest.mark.parametrize(("module", "pages"), COMMANDS)
def test_argparse_commands_pages_have_every_option(built: Path, module: str,
                                                   pages: list[str]) -> None:
    options, commands = options_and_commands(module)
    assert "--help" in options and "--version" in options
    for rel in pages:
        shown = text(built / rel)
        for opt in sorted(options):
            assert re.search(rf"(?<![\w-]){re.escape(opt)}\b", shown), (rel, opt)
        for cmd in sorted(commands):
            assert re.search(rf"^ {{7}}{re.escape(cmd)}\b", shown, re.M), (rel, cmd)


def test_dbus_page_follows_the_introspection_xml(built: Path) -> None:
    shown = text(built / "man7/org.alpm.7")
    root = ET.parse(ROOT / "data" / "org.alpm.xml").getroot()
    count = 0
    for iface in root.iter("interface"):
        assert f"INTERFACE {iface.get('name')}" in shown
        for member in iface:
            if member.tag == "annotation":  # documentation of the interface, not a member
                continue
            count += 1
            assert re.search(rf"^ +{member.get('name')}[( ]", shown, re.M), member.get("name")
    assert count > 60


def test_dbus_page_refuses_undocumented_or_stale_members() -> None:
    sys.path.insert(0, str(ROOT / "man"))
    try:
        import dbus_page
    finally:
        sys.path.remove(str(ROOT / "man"))
    xml = (ROOT / "data" / "org.alpm.xml").read_text()
    docs = (ROOT / "man" / "org.alpm.7.docs").read_text()
    assert "``SetHints(a{sv} hints)``" in dbus_page.page(xml, docs)
    without = re.sub(r"== Query1\.Search\n.*?(?=\n== )", "", docs, flags=re.S)
    with pytest.raises(dbus_page.DocError, match="Query1.Search"):
        dbus_page.page(xml, without)
    with pytest.raises(dbus_page.DocError, match="Query1.Gone"):
        dbus_page.page(xml, docs + "\n== Query1.Gone\nA method that is not there.\n")
