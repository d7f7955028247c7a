"""gettext for every alpmd front end: one domain, catalogs found installed or in the tree.

English is the source language and the fallback: a string with no translation (or a
locale of ``C``/``POSIX``) is printed as written, so pacman-identical output stays
byte-identical. The process's language follows the environment the way GNU gettext
reads it (``LANGUAGE`` first unless the locale is ``C``, then ``LC_ALL``,
``LC_MESSAGES``, ``LANG``); :func:`translate` serves one client's language instead
(the daemon answers each client in the locale it set).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from alpmd import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Protocol

DOMAIN = "alpmd"

#: Catalogs shipped inside the package (the wheel, and the source tree after ``make mo``).
PACKAGE_LOCALEDIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale")


def locale_dirs() -> list[str]:
    """Where catalogs are looked for, first hit wins: the package, the prefix, the system."""
    dirs = [PACKAGE_LOCALEDIR, os.path.join(sys.prefix, "share", "locale"),
            "/usr/local/share/locale", "/usr/share/locale"]
    return list(dict.fromkeys(dirs))


def env_languages(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The languages the environment asks for, in order (empty: English)."""
    env = os.environ if environ is None else environ
    current = ""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        current = env.get(var, "")
        if current:
            break
    if current in ("", "C", "POSIX"):
        # GNU gettext ignores LANGUAGE in the C locale: scripts rely on LC_ALL=C.
        return ()
    langs = [lang for lang in env.get("LANGUAGE", "").split(":") if lang]
    langs.append(current)
    return tuple(langs)


if TYPE_CHECKING:
    class Catalog(Protocol):
        """What front ends use of a catalog (gettext's translation classes have it)."""

        def gettext(self, message: str) -> str: ...

        def ngettext(self, msgid1: str, msgid2: str, n: int) -> str: ...


class English:
    """No catalog: every message is its own translation (gettext is not even imported,
    which keeps ``LC_ALL=C`` start-up as cheap as before)."""

    def gettext(self, message: str) -> str:
        return message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return msgid1 if n == 1 else msgid2


@lru_cache(maxsize=32)
def catalog(languages: tuple[str, ...]) -> Catalog:
    """The catalog for ``languages`` (first language with a catalog wins), else English."""
    if not languages:
        return English()
    import gettext as _gettext

    for lang in languages:
        for localedir in locale_dirs():
            found = _gettext.find(DOMAIN, localedir, languages=[lang])
            if found:
                with open(found, "rb") as f:
                    return _gettext.GNUTranslations(f)
    return English()


_process: Catalog | None = None


def _catalog() -> Catalog:
    global _process
    if _process is None:
        _process = catalog(env_languages())
    return _process


def gettext(message: str) -> str:
    """``message`` in the process's language (the environment's), English without a catalog."""
    return _catalog().gettext(message) if message else message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form of a message for ``n``, in the process's language."""
    return _catalog().ngettext(singular, plural, n)


@dataclass(frozen=True)
class Message:
    """A text with its values kept apart, so each reader formats it in its own language:
    ``str()`` is the English (the engine's reports, logs), :meth:`in_language` a translation."""

    text: str
    values: Mapping[str, object] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text.format(**self.values)

    def in_language(self, gettext_for: Callable[[str], str] | None = None) -> str:
        """The text through ``gettext_for`` (default: the process's language), then filled."""
        text = (gettext_for or gettext)(self.text)
        return text.format(**self.values)


def N_(message: str) -> str:
    """Mark ``message`` for extraction only; it is translated where it is shown."""
    return message


def reset() -> None:
    """Read the environment again on the next call (after a program changed it)."""
    global _process
    _process = None


def client_locale(environ: Mapping[str, str] | None = None) -> str:
    """The locale a client asks the daemon to speak (SetHints ``locale``): the first of the
    environment's languages with a catalog, else the first one; ``""`` under C (English)."""
    langs = env_languages(environ)
    for lang in langs:
        if not isinstance(catalog((lang,)), English):
            return lang
    return langs[0] if langs else ""


def is_yes(reply: str) -> bool:
    """Whether a typed answer means yes: English ``y``/``yes`` or the user's language's
    words (``j``/``ja`` in German), as pacman accepts its translated answers."""
    word = reply.strip().lower()
    # TRANSLATORS: the short answer "yes" at a [Y/n] prompt (the letter of "[Y/n]")
    short = gettext("y")
    # TRANSLATORS: the long answer "yes" at a [Y/n] prompt
    long = gettext("yes")
    return word in ("y", "yes", short.lower(), long.lower())


def client_catalog(locale: str) -> Catalog:
    """The catalog for one client's ``locale`` (English for ``""``, ``C`` or no catalog)."""
    if not locale or locale in ("C", "POSIX"):
        return English()
    return catalog((locale,))


def translator(locale: str) -> Callable[[str], str]:
    """A ``gettext`` for one client's ``locale`` (English for ``""``, ``C`` or no catalog).

    The daemon formats a client's questions and log lines with it, using the same
    messages as the command line: ``_ = translator(hints["locale"])``.
    """
    cat = client_catalog(locale)

    def gettext_for(message: str) -> str:
        return cat.gettext(message) if message else message

    return gettext_for


def translate(message: str, locale: str) -> str:
    """``message`` in ``locale``'s language (``de``, ``de_DE.UTF-8``...), English if unknown.

    Messages shaped ``what: detail`` (``target not found: foo``) are translated by
    their fixed part when the whole text has no entry; the detail stays as it is.
    """
    return _by_head(client_catalog(locale), message) if message else message


def localize(message: str) -> str:
    """:func:`translate` into the process's language (the environment's)."""
    return _by_head(_catalog(), message) if message else message


def speaks_english() -> bool:
    """No catalog serves the process (``C``, English, or a language without one)."""
    return isinstance(_catalog(), English)


def _by_head(cat: Catalog, message: str) -> str:
    """``message`` from ``cat``, or its ``head: detail`` with the head translated."""
    text = cat.gettext(message)
    if text is message or text == message:
        head, sep, rest = message.partition(": ")
        if sep:
            translated = cat.gettext(head)
            if translated != head:
                return f"{translated}: {rest}"
    return text
