"""``alpm -F``: search the files databases, as pacman's files.c."""

from __future__ import annotations

from alpmd.cli.alpm import Context
from alpmd.cli.output import groups_suffix, installed_suffix
from alpmd.engine.db.sync import SyncDatabase
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.filesearch import FileMatch, files_list, files_search
from alpmd.engine.package import Package
from alpmd.engine.regex import compile_posix
from alpmd.i18n import gettext as _
from alpmd.i18n import localize


def _machine(db: SyncDatabase, pkg: Package, path: str) -> str:
    return f"{db.name}\0{pkg.name}\0{pkg.version}\0{path}\n"


def run(ctx: Context) -> int:
    a = ctx.args
    out = ctx.out
    syncs = ctx.handle.syncdbs
    if not syncs:
        out.error(_("no usable package repositories configured."))
        return 1
    if a.has("refresh"):
        out.error(_("this front end does not download databases yet (-Fy)"))
        return 1
    machine = a.has("machinereadable")
    if a.has("list"):
        return _list(ctx, syncs, machine)
    if not a.targets:
        out.error(_("no targets specified (use -h for help)"))
        return 1
    regex = a.has("regex")
    ret = 0
    if regex:
        for t in a.targets:
            pat = t.lstrip("/") or t if "/" in t else t
            try:
                compile_posix(pat)
            except AlpmError:
                out.error(_("invalid regular expression '{pattern}'").format(pattern=pat))
                ret = 1
        if ret:
            return ret
    for target in a.targets:
        matches = files_search(syncs, target, regex=regex)
        if not matches:
            ret = 1
        exact = "/" in target
        for m in matches:
            out.write(_format(ctx, m, exact, machine))
    return ret


def _format(ctx: Context, m: FileMatch, exact: bool, machine: bool) -> str:
    c = ctx.out.c
    if machine:
        return "".join(_machine(m.db, m.pkg, p) for p in m.paths)
    if ctx.quiet:
        return f"{m.db.name}/{m.pkg.name}\n"
    if exact:
        owned = _("{path} is owned by {name} {version}")
        name = f"{c.repo}{m.db.name}/{c.title}{m.pkg.name}"
        version = f"{c.version}{m.pkg.version}{c.nocolor}"
        return "".join(owned.format(path=p, name=name, version=version) + "\n"
                       for p in m.paths)
    head = (f"{c.repo}{m.db.name}/{c.title}{m.pkg.name} {c.version}{m.pkg.version}{c.nocolor}"
            f"{groups_suffix(ctx.out, m.pkg)}{installed_suffix(ctx.out, ctx.handle, m.pkg)}\n")
    return head + "".join(f"    {p}\n" for p in m.paths)


def _list(ctx: Context, syncs: list[SyncDatabase], machine: bool) -> int:
    out = ctx.out
    c = out.c
    ret = 0

    def dump(db: SyncDatabase, pkg: Package) -> None:
        if machine:
            out.write("".join(_machine(db, pkg, p) for p in pkg.files))
        elif ctx.quiet:
            out.write("".join(f"{p}\n" for p in pkg.files))
        else:
            out.write("".join(f"{c.title}{pkg.name}{c.nocolor} {p}\n" for p in pkg.files))

    if not ctx.args.targets:
        for db in syncs:
            for pkg in db.packages:
                dump(db, pkg)
        return 0
    for target in ctx.args.targets:
        try:
            m = files_list(syncs, target)
        except AlpmError as exc:
            out.error(_("package '{name}' was not found").format(name=target)
                      if exc.code is ErrorCode.PKG_NOT_FOUND else localize(exc.msgid))
            ret += 1
            continue
        dump(m.db, m.pkg)
    return ret
