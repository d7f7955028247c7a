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


DOCSTRING = "org.gtk.GDBus.DocString"


def _documented() -> list[tuple[str, ET.Element]]:
    """(where, element) for every interface, method, argument, signal and property."""
    root = ET.parse(ROOT / "data" / "org.alpm.xml").getroot()
    out: list[tuple[str, ET.Element]] = []
    for iface in root.iter("interface"):
        out.append((str(iface.get("name")), iface))
        for member in iface:
            if member.tag == "annotation":
                continue
            where = f"{iface.get('name')}.{member.get('name')}"
            out.append((where, member))
            out += [(f"{where}({arg.get('name')})", arg) for arg in member.findall("arg")]
    return out


def _docstring(element: ET.Element) -> str:
    return " ".join(a.get("value", "") for a in element.findall("annotation")
                    if a.get("name") == DOCSTRING).strip()


def test_every_element_of_the_interface_xml_is_documented() -> None:
    elements = _documented()
    assert {e.tag for _, e in elements} == {"interface", "method", "arg", "signal", "property"}
    assert len(elements) > 150
    undocumented = [where for where, e in elements if not _docstring(e)]
    assert undocumented == []
    # every argument is named (signals' and results' too), so the page can refer to it
    assert [where for where, e in elements if e.tag == "arg" and not e.get("name")] == []


def test_dbus_page_follows_the_introspection_xml(built: Path) -> None:
    shown = text(built / "man7/org.alpm.7")
    flat = " ".join(shown.split())
    count = 0
    for where, element in _documented():
        if element.tag == "interface":
            assert f"INTERFACE {where}" in shown
        elif element.tag != "arg":
            count += 1
            assert re.search(rf"^ +{element.get('name')}[( ]", shown, re.M), where
        # the description is on the page (its first words: man hyphenates the rest)
        words = re.sub(r"[*`\\]", "", _docstring(element)).split()[:3]
        assert " ".join(words) in flat, (where, words)
    assert count > 60


def test_dbus_page_refuses_an_undocumented_element() -> None:
    sys.path.insert(0, str(ROOT / "man"))
    try:
        import dbus_page
    finally:
        sys.path.remove(str(ROOT / "man"))
    xml = (ROOT / "data" / "org.alpm.xml").read_text()
    assert "``SetHints(a{sv} hints)``" in dbus_page.page(xml)
    root = ET.fromstring(xml)
    search = next(m for m in root.iter("method") if m.get("name") == "Search")
    terms = next(a for a in search.iter("arg") if a.get("name") == "terms")
    for element in (search, terms):
        cut = ET.fromstring(xml)
        for twin in cut.iter(element.tag):
            if twin.get("name") == element.get("name"):
                for ann in twin.findall("annotation"):
                    twin.remove(ann)
        with pytest.raises(dbus_page.DocError, match=r"Query1\.Search"):
            dbus_page.page(ET.tostring(cut, encoding="unicode"))
    # any interface is documented the same way: a new one needs its descriptions too
    extra = ET.fromstring(xml)
    new = ET.SubElement(extra, "interface", name="org.alpm.Example1")
    ET.SubElement(new, "method", name="Ping")
    with pytest.raises(dbus_page.DocError, match=r"org\.alpm\.Example1, Example1\.Ping"):
        dbus_page.page(ET.tostring(extra, encoding="unicode"))
