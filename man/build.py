"""Build the manual pages: man/<page>.<section>.rst (and man/<lang>/...) -> roff.

One source format (reStructuredText, docutils' man page writer). org.alpm(7) is
generated from data/org.alpm.xml and the descriptions it carries (see
dbus_page.py), so it follows the API.
Any docutils warning stops the build: a page that renders badly is not installed.

    python man/build.py --out build/man
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dbus_page
from docutils.core import publish_string
from docutils.writers import manpage

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def render(source: str, name: str, lang: str = "en") -> str:
    """roff for one page's reStructuredText; raises on any docutils warning."""
    out = publish_string(source, source_path=name, writer=manpage.Writer(),
                         settings_overrides={"report_level": 2, "halt_level": 2,
                                             "language_code": lang,
                                             "input_encoding": "utf-8",
                                             "output_encoding": "unicode"})
    # Plain ASCII roff: other characters as groff's \[uXXXX] escapes, so no input
    # encoding has to be guessed (umlauts in the German pages, arrows in org.alpm).
    return "".join(ch if ord(ch) < 128 else f"\\[u{ord(ch):04X}]" for ch in str(out))


def sources() -> list[tuple[str, str, str]]:
    """(language or "", file name of the page, reStructuredText) of every page."""
    pages: list[tuple[str, str, str]] = []
    for rst in sorted(HERE.glob("*.rst")) + sorted(HERE.glob("*/*.rst")):
        lang = "" if rst.parent == HERE else rst.parent.name
        pages.append((lang, rst.name[:-len(".rst")], rst.read_text(encoding="utf-8")))
    xml = (ROOT / "data" / "org.alpm.xml").read_text(encoding="utf-8")
    pages.append(("", "org.alpm.7", dbus_page.page(xml)))
    return pages


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build the manual pages.")
    ap.add_argument("--out", default=str(ROOT / "build" / "man"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    for lang, page, text in sources():
        section = page.rsplit(".", 1)[1]
        target = out / lang / f"man{section}" / page
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render(text, page, lang or "en"), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
