"""Package ids (``name;version;arch;repo``) and package attributes as a{sv}."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dbus_fast.signature import Variant

from alpmd.dbus import errors
from alpmd.engine import query
from alpmd.engine.db.sync import SyncDatabase
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.handle import Handle
from alpmd.engine.package import Origin, Package
from alpmd.engine.target import LOCAL


def package_id(pkg: Package, repo: str | None = None) -> str:
    """``name;version;arch;repo``; installed packages are in repo ``local``, files in ``file``."""
    if repo is None:
        if pkg.origin is Origin.LOCALDB:
            repo = LOCAL
        elif pkg.origin is Origin.FILE:
            repo = "file"
        else:
            repo = repo_name(pkg)
    return f"{pkg.name};{pkg.version};{pkg.arch or ''};{repo}"


def repo_name(pkg: Package) -> str:
    """The name of the database a package came from ("" when none)."""
    return pkg.db.name if isinstance(pkg.db, SyncDatabase) else ""


def parse_id(pid: str) -> tuple[str, str, str, str]:
    if len(pid) > 1024:
        raise errors.invalid("not a package id (too long)")
    parts = pid.split(";")
    if len(parts) != 4 or not parts[0]:
        raise errors.invalid(f"not a package id (name;version;arch;repo): {pid!r}")
    return parts[0], parts[1], parts[2], parts[3]


def lookup(handle: Handle, pid: str) -> Package:
    """The package an id names; NotFound when its repo no longer has that version."""
    name, version, _arch, repo = parse_id(pid)
    if repo == LOCAL:
        pkg = handle.localdb.get(name)
    else:
        db = handle.get_syncdb(repo)
        pkg = db.get(name) if db is not None else None
    if pkg is None or (version and pkg.version != version):
        raise errors.from_alpm(AlpmError(ErrorCode.PKG_NOT_FOUND, f"package not found: {pid}"))
    return pkg


def _v(sig: str, value: Any) -> Variant:
    return Variant(sig, value)


def _s(value: str | None) -> Variant:
    return Variant("s", value or "")


def _as(value: Sequence[str]) -> Variant:
    return Variant("as", list(value))


def _t(value: int | None) -> Variant:
    return Variant("t", max(0, value or 0))


Getter = Callable[[Handle, Package], Variant]

ATTRIBUTES: dict[str, Getter] = {
    "id": lambda h, p: _s(package_id(p)),
    "name": lambda h, p: _s(p.name),
    "version": lambda h, p: _s(p.version),
    "arch": lambda h, p: _s(p.arch),
    "repo": lambda h, p: _s(package_id(p).rsplit(";", 1)[1]),
    "base": lambda h, p: _s(p.base),
    "description": lambda h, p: _s(p.desc),
    "url": lambda h, p: _s(p.url),
    "licenses": lambda h, p: _as(p.licenses),
    "groups": lambda h, p: _as(p.groups),
    "provides": lambda h, p: _as(p.provides),
    "depends": lambda h, p: _as(p.depends),
    "optdepends": lambda h, p: _as(p.optdepends),
    "conflicts": lambda h, p: _as(p.conflicts),
    "replaces": lambda h, p: _as(p.replaces),
    "makedepends": lambda h, p: _as(p.makedepends),
    "checkdepends": lambda h, p: _as(p.checkdepends),
    "installed_size": lambda h, p: _t(p.isize),
    "download_size": lambda h, p: _t(p.csize if p.origin is not Origin.LOCALDB else 0),
    "packager": lambda h, p: _s(p.packager),
    "build_date": lambda h, p: _t(p.builddate),
    "install_date": lambda h, p: _t(p.installdate),
    "reason": lambda h, p: _s("explicit" if int(p.reason) == 0 else "dependency"),
    "validation": lambda h, p: _as(p.validation),
    "filename": lambda h, p: _s(p.filename),
    "sha256sum": lambda h, p: _s(p.sha256sum),
    "has_scriptlet": lambda h, p: _v("b", bool(p.has_scriptlet)),
    "required_by": lambda h, p: _as(query.required_by(h, p)),
    "optional_for": lambda h, p: _as(query.optional_for(h, p)),
    "installed": lambda h, p: _v("b", p.name in h.localdb),
    "installed_version": lambda h, p: _s(h.localdb.versions.get(p.name)),
}

#: What GetPackages returns when no attribute is asked for: what a list view needs.
DEFAULT_ATTRIBUTES = ("id", "name", "version", "arch", "repo", "description", "installed_size",
                      "download_size", "installed_version")


def attributes(handle: Handle, pkg: Package, names: Sequence[str]) -> dict[str, Variant]:
    out: dict[str, Variant] = {}
    for name in names or DEFAULT_ATTRIBUTES:
        getter = ATTRIBUTES.get(name)
        if getter is None:
            raise errors.invalid(f"unknown attribute {name!r} (known: {', '.join(ATTRIBUTES)})")
        out[name] = getter(handle, pkg)
    return out
