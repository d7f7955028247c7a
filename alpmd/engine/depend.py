"""Dependency strings (``name[op version][: description]``) and when a package satisfies one.

Everything here follows libalpm's deps.c to the letter, because the resolver,
``-T`` and conflict checks must agree with pacman on every package database:

* parsing is ``alpm_dep_from_string``: the description starts at the first
  ``": "``; then the first ``<`` anywhere in the rest wins, else the first
  ``>``, else the first ``=``; the operator is two characters only when ``=``
  follows ``<`` or ``>``.  Nothing else is checked, so ``foo>=`` has an empty
  version and ``foo>=1<2`` is the package ``foo>=1`` below version ``2``;
* ``str()`` is ``alpm_dep_compute_string`` and gives back the parsed text
  exactly;
* satisfaction is ``_alpm_depcmp``: the package itself by name and version,
  or one of its provisions by name, where a versioned dependency is only met
  by a provision pinned with ``=`` (``provides=('foo')`` never satisfies
  ``foo>=1``).  Versions are compared with :func:`vercmp`, which ignores the
  pkgrel unless both sides have one, so ``foo=1.0`` accepts ``foo 1.0-7``.

One deliberate difference: libalpm accepts a dependency with an empty name
(``""``, ``">=1"``, ``": text"``), which nothing can ever satisfy; we refuse
it, and text containing NUL (which no C string can hold), with
``AlpmError(WRONG_ARGS)`` so bad metadata is reported instead of silently
unsatisfiable.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from alpmd import TYPE_CHECKING
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.version import vercmp

if TYPE_CHECKING:
    from typing import Protocol, TypeVar

__all__ = [
    "DepMod",
    "Depend",
    "find_satisfier",
    "satisfies",
    "satisfies_literal",
]


class DepMod(enum.Enum):
    """A version constraint's operator (``alpm_depmod_t``); the value is its spelling."""

    ANY = ""
    EQ = "="
    GE = ">="
    LE = "<="
    GT = ">"
    LT = "<"

    @property
    def op(self) -> str:
        """The operator as written in a dependency string (empty for ANY)."""
        return self.value


if TYPE_CHECKING:
    class PkgLike(Protocol):
        """What satisfaction needs from a package: our Package, a test stub, a target."""

        @property
        def name(self) -> str: ...

        @property
        def version(self) -> str: ...

        @property
        def provides(self) -> Iterable[str | Depend]: ...


def _split(s: str) -> tuple[str, DepMod, str | None, str | None]:
    """Cut a dependency string into name, operator, version and description like libalpm."""
    cut = s.find(": ")
    if cut >= 0:
        desc: str | None = s[cut + 2 :]
        head = s[:cut]
    else:
        desc = None
        head = s
    pos = head.find("<")
    if pos >= 0:
        if head[pos + 1 : pos + 2] == "=":
            return head[:pos], DepMod.LE, head[pos + 2 :], desc
        return head[:pos], DepMod.LT, head[pos + 1 :], desc
    pos = head.find(">")
    if pos >= 0:
        if head[pos + 1 : pos + 2] == "=":
            return head[:pos], DepMod.GE, head[pos + 2 :], desc
        return head[:pos], DepMod.GT, head[pos + 1 :], desc
    pos = head.find("=")
    if pos >= 0:
        return head[:pos], DepMod.EQ, head[pos + 1 :], desc
    return head, DepMod.ANY, None, desc


@dataclass(frozen=True, slots=True)
class Depend:
    """One parsed dependency, provision, conflict or replacement (``alpm_depend_t``).

    ``version`` is None exactly when ``mod`` is ANY for anything :meth:`parse`
    returns; ``desc`` is the optional-dependency reason (None when absent, ""
    when the text ended in ``": "``).
    """

    name: str
    mod: DepMod = DepMod.ANY
    version: str | None = None
    desc: str | None = None

    @classmethod
    def parse(cls, s: str) -> Depend:
        """Parse ``name[op version][: description]`` as ``alpm_dep_from_string`` does.

        Raises AlpmError(WRONG_ARGS) for non-text, text with NUL, or an empty
        name; every other string parses.
        """
        if not isinstance(s, str):
            raise AlpmError(
                ErrorCode.WRONG_ARGS,
                f"dependency must be a string, not {type(s).__name__}",
            )
        if "\0" in s:
            raise AlpmError(ErrorCode.WRONG_ARGS, f"dependency {s!r} contains a NUL character")
        name, mod, version, desc = _split(s)
        if not name:
            raise AlpmError(ErrorCode.WRONG_ARGS, f"dependency {s!r} has no package name")
        return cls(name, mod, version, desc)

    @classmethod
    def relation(cls, s: str) -> Depend:
        """A relation a package declares (depends, conflicts, provides...), read as
        libalpm reads package metadata: like :meth:`parse`, but an empty name
        (``=1``, ``: x``) is kept, not refused. It names no package, so such a
        dependency cannot be met and such a conflict meets nothing (pacman 6.0.2).
        """
        if "\0" in s:
            raise AlpmError(ErrorCode.WRONG_ARGS, f"dependency {s!r} contains a NUL character")
        name, mod, version, desc = _split(s)
        return cls(name, mod, version, desc)

    def __str__(self) -> str:
        """The dependency string, as ``alpm_dep_compute_string`` prints it."""
        text = self.name
        if self.mod is not DepMod.ANY:
            text += self.mod.value
            if self.version:
                text += self.version
        if self.desc is not None:
            text += ": " + self.desc
        return text

    @property
    def versioned(self) -> bool:
        """Whether the dependency constrains the version at all."""
        return self.mod is not DepMod.ANY

    def satisfied_by(self, pkg: PkgLike) -> bool:
        """Whether ``pkg`` satisfies this dependency, itself or through a provision.

        ``pkg.provides`` is only read when the name does not match, so a
        lazily loaded package is not loaded for a literal match.
        """
        if _literal(pkg.name, pkg.version, self):
            return True
        return _by_provision(self, pkg.provides)


if TYPE_CHECKING:
    P = TypeVar("P", bound=PkgLike)


def _c_vercmp(a: str | None, b: str | None) -> int:
    """alpm_pkg_vercmp including its NULL handling (a missing version is the oldest)."""
    if a is None or b is None:
        if a is None and b is None:
            return 0
        return -1 if a is None else 1
    return vercmp(a, b)


def _version_ok(have: str | None, mod: DepMod, want: str | None) -> bool:
    """libalpm's dep_vercmp: does version ``have`` meet ``mod want``?"""
    if mod is DepMod.ANY:
        return True
    cmp = _c_vercmp(have, want)
    if mod is DepMod.EQ:
        return cmp == 0
    if mod is DepMod.GE:
        return cmp >= 0
    if mod is DepMod.LE:
        return cmp <= 0
    if mod is DepMod.GT:
        return cmp > 0
    return cmp < 0


def _literal(name: str, version: str, dep: Depend) -> bool:
    return name == dep.name and _version_ok(version, dep.mod, dep.version)


@lru_cache(maxsize=8192)
def _provision(s: str) -> tuple[str, DepMod, str | None]:
    """A provision string's name, operator and version; cached since packages share them."""
    name, mod, version, _desc = _split(s)
    return name, mod, version


def _by_provision(dep: Depend, provides: Iterable[str | Depend]) -> bool:
    """libalpm's _alpm_depcmp_provides over one package's provisions."""
    want = dep.name
    for prov in provides:
        if isinstance(prov, Depend):
            pname, pmod, pver = prov.name, prov.mod, prov.version
        else:
            # The name is a prefix of the string: skip parsing when it cannot match.
            if not prov.startswith(want):
                continue
            pname, pmod, pver = _provision(prov)
        if pname != want:
            continue
        if dep.mod is DepMod.ANY:
            return True
        if pmod is DepMod.EQ and _version_ok(pver, dep.mod, dep.version):
            return True
    return False


def satisfies_literal(name: str, version: str, dep: Depend) -> bool:
    """Whether a package called ``name`` at ``version`` satisfies ``dep`` by itself.

    This is ``_alpm_depcmp_literal``: provisions are not looked at.
    """
    return _literal(name, version, dep)


def satisfies(name: str, version: str, provides: Iterable[str | Depend], dep: Depend) -> bool:
    """Whether a package (name, version, provisions) satisfies ``dep`` (``_alpm_depcmp``).

    ``provides`` may hold strings as found in package metadata or parsed
    :class:`Depend` objects.
    """
    return _literal(name, version, dep) or _by_provision(dep, provides)


def find_satisfier(
    pkgs: Iterable[P], dep: Depend | str, *, prefer_literal: bool = False
) -> P | None:
    """The first package of ``pkgs`` that satisfies ``dep``, or None.

    By default this is ``alpm_find_satisfier``: list order decides, whether a
    package matches by name or through a provision.  With ``prefer_literal``
    it searches like libalpm's ``resolvedep`` within one list: first a package
    with the dependency's own name and a fitting version, then the first
    *other* package that provides it.  A string ``dep`` is parsed with
    :meth:`Depend.parse` (and may raise AlpmError).
    """
    if isinstance(dep, str):
        dep = Depend.parse(dep)
    if not prefer_literal:
        for pkg in pkgs:
            if dep.satisfied_by(pkg):
                return pkg
        return None
    candidates = list(pkgs)
    for pkg in candidates:
        if _literal(pkg.name, pkg.version, dep):
            return pkg
    for pkg in candidates:
        if pkg.name != dep.name and _by_provision(dep, pkg.provides):
            return pkg
    return None
