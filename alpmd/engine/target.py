"""Package targets as people write them: ``name``, ``repo/name``, ``name>=1.2``, a group.

The one parser and lookup behind ``alpm``, the resolver and the daemon: the part
before the first ``/`` names a repository (pacman's rule: ``/name`` names the
repository ""), the rest is a dependency expression (a name, or a name with a
version constraint, or a provision).
"""

from __future__ import annotations

from dataclasses import dataclass

from alpmd.engine.depend import Depend, satisfies_literal
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.handle import Handle
from alpmd.engine.package import Package
from alpmd.engine.query import find_satisfier

__all__ = ["LOCAL", "Target", "find_package", "parse_target", "split_repo"]

#: the repository name that means the installed packages (``local/bash``)
LOCAL = "local"


def split_repo(text: str) -> tuple[str | None, str]:
    """``(repo, rest)``: the repository before the first ``/`` (None without one)."""
    repo, slash, rest = text.partition("/")
    return (repo, rest) if slash else (None, text)


@dataclass(frozen=True)
class Target:
    """A parsed target: ``depend`` holds the name and any version constraint."""

    text: str
    repo: str | None
    depend: Depend

    @property
    def name(self) -> str:
        return self.depend.name


def parse_target(text: str) -> Target:
    """Parse ``[repo/]name[<op>version]``; PKG_INVALID_NAME for an empty or bad one."""
    repo, rest = split_repo(text)
    if not rest:
        raise AlpmError(ErrorCode.PKG_INVALID_NAME, f"invalid target: '{text}'", target=text)
    try:
        dep = Depend.parse(rest)
    except AlpmError as exc:
        raise AlpmError(ErrorCode.PKG_INVALID_NAME, f"invalid target: '{text}'",
                        target=text) from exc
    if not dep.name:
        raise AlpmError(ErrorCode.PKG_INVALID_NAME, f"invalid target: '{text}'", target=text)
    return Target(text, repo, dep)


def find_package(handle: Handle, target: str | Target, *, prefer_local: bool = True
                 ) -> Package | None:
    """The one package a target means, for showing it (not for installing it).

    ``local/x`` is the installed package; ``repo/x`` that repository's package (or
    what there satisfies x); a bare name is the installed package when
    ``prefer_local``, else the first repository's, and finally any satisfier.
    """
    t = parse_target(target) if isinstance(target, str) else target

    def exact(pkg: Package | None) -> Package | None:
        """The package of exactly that name, if it meets the version constraint."""
        if pkg is None or not satisfies_literal(pkg.name, pkg.version, t.depend):
            return None
        return pkg

    if t.repo == LOCAL:
        return exact(handle.localdb.get(t.name)) or find_satisfier(handle.localdb, t.depend)
    if t.repo is not None:
        db = handle.get_syncdb(t.repo)
        if db is None:
            return None
        return exact(db.get(t.name)) or find_satisfier(db, t.depend)
    local = exact(handle.localdb.get(t.name))
    if local is not None and prefer_local:
        return local
    for db in handle.syncdbs:
        pkg = exact(db.get(t.name))
        if pkg is not None:
            return pkg
    return local or find_satisfier(handle.syncdbs, t.depend)
