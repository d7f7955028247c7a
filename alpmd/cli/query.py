"""``alpm -Q``: pacman's query.c over the engine's query API."""

from __future__ import annotations

import os

from alpmd.cli.alpm import Context
from alpmd.cli.output import Display, local_search_results
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.package import Package
from alpmd.engine.query import (
    Scope,
    find_owner,
    find_satisfier,
    in_scope,
    new_version,
    search_rows,
    should_ignore,
)
from alpmd.i18n import N_, localize, ngettext
from alpmd.i18n import gettext as _


def run(ctx: Context) -> int:
    a = ctx.args
    targets = a.targets
    if a.has("search"):
        try:
            rows = search_rows(ctx.handle.localdb, targets)
        except AlpmError as exc:
            if exc.code is ErrorCode.INVALID_REGEX:
                ctx.out.error(_("search failed: {error}").format(error=exc.code.strerror))
                return 1
            raise
        if not rows:
            return 1
        local_search_results(ctx.out, rows, quiet=ctx.quiet)
        return 0
    if a.has("groups"):
        return _groups(ctx)
    if a.has("foreign") or a.has("native") or a.has("upgrades"):
        if not ctx.handle.syncdbs:
            ctx.out.error(_("no usable package repositories configured."))
            return 1
    if not targets:
        if a.has("file") or a.has("owns"):
            ctx.out.error(_("no targets specified (use -h for help)"))
            return 1
        return _all(ctx, _Shown(ctx))
    if a.has("owns"):
        return _owns(ctx, targets)
    return _named(ctx, targets, _Shown(ctx))


def _all(ctx: Context, shown: _Shown) -> int:
    if shown.scope == Scope.INSTALLED and shown.line and not shown.upgrades:
        return _names(ctx)
    ret = 0
    match = False
    for pkg in ctx.handle.localdb.packages:
        if _filter(ctx, pkg, shown.scope):
            if _display(ctx, pkg, shown):
                ret = 1
            match = True
    return ret if match else 1


def _names(ctx: Context) -> int:
    """Plain ``-Q``/``-Qq``: names and versions from the listing, in pacman's name order;
    no entry is read and no package made."""
    versions = ctx.handle.localdb.versions
    names = sorted(versions)
    if ctx.quiet:
        ctx.out.write("".join([name + "\n" for name in names]))
    else:
        c = ctx.out.c
        ctx.out.write("".join([f"{c.title}{name} {c.version}{versions[name]}{c.nocolor}\n"
                               for name in names]))
    return 0 if names else 1


def _named(ctx: Context, targets: list[str], shown: _Shown) -> int:
    from alpmd.engine.target import LOCAL, split_repo  # named targets only (not -Qs, -Qo, -Q)

    a = ctx.args
    localdb = ctx.handle.localdb
    ret = 0
    match = False
    for target in targets:
        repo, rest = split_repo(target)
        name = rest if repo == LOCAL else target
        pkg: Package | None
        if a.has("file"):
            try:
                from alpmd.engine.archive import load_package_file  # libarchive: -Qp only

                pkg = load_package_file(name)
            except AlpmError as exc:
                log = exc.details.get("log")
                if log:  # libalpm's reason, logged before pacman's verdict
                    ctx.out.error(_(log).format(file=name))
                ctx.out.error(_("could not load package '{name}': {error}").format(
                    name=name, error=exc.code.strerror))
                pkg = None
        else:
            pkg = localdb.get(name)
            if pkg is None:
                try:
                    pkg = find_satisfier(localdb, name)
                except AlpmError:
                    pkg = None
            if pkg is None:
                ctx.out.error(_("package '{name}' was not found").format(name=name))
                if os.access(name, os.R_OK):
                    ctx.out.warning(_("'{name}' is a file, you might want to use -p/--file.").format(
                        name=name))
        if pkg is None:
            ret = 1
            continue
        if _filter(ctx, pkg, shown.scope):
            if _display(ctx, pkg, shown):
                ret = 1
            match = True
    return ret if match else 1


def _scope(ctx: Context) -> Scope:
    """The -e/-d/-m/-n/-t/-u flags as a scope (read once per command, not per package)."""
    scope = Scope.INSTALLED
    for flag, bit in _SCOPE_FLAGS:
        if ctx.args.has(flag):
            scope |= bit
    return scope


def _filter(ctx: Context, pkg: Package, scope: Scope) -> bool:
    """pacman's filter(): the -e/-d/-m/-n/-t/-u conditions, all of which must hold."""
    return scope == Scope.INSTALLED or in_scope(
        ctx.handle, pkg, scope, unrequired_level=ctx.args.count("unrequired"))


_SCOPE_FLAGS = (("explicit", Scope.EXPLICIT), ("deps", Scope.DEPENDENCIES),
                ("foreign", Scope.FOREIGN), ("native", Scope.NATIVE),
                ("unrequired", Scope.UNREQUIRED), ("upgrades", Scope.UPGRADABLE))


class _Shown:
    """What every package of one listing shares, worked out once rather than per package:
    the -i layout (its padded titles translated and measured), the filter and the flags."""

    def __init__(self, ctx: Context) -> None:
        a = ctx.args
        self.display = Display(ctx.out) if a.has("info") else None
        self.scope = _scope(ctx)
        self.quiet = ctx.quiet
        self.list, self.changelog = a.has("list"), a.has("changelog")
        self.check, self.upgrades = a.count("check"), a.has("upgrades")
        #: neither -i, -l, -c nor -k: one line per package
        self.line = not (a.has("info") or self.list or self.changelog or self.check)


def _display(ctx: Context, pkg: Package, shown: _Shown) -> bool:
    """Show one package as the flags ask; True when a check found problems."""
    a = ctx.args
    out = ctx.out
    bad = False
    if shown.display is not None:
        shown.display.pkg_full(ctx.handle, pkg, a.count("info") > 1 and not a.has("file"))
    if shown.list:
        root = ctx.handle.options.root
        c = out.c
        if shown.quiet:
            out.write("".join(f"{root}{f}\n" for f in pkg.files))
        else:
            out.write("".join(f"{c.title}{pkg.name}{c.nocolor} {root}{f}\n" for f in pkg.files))
    if shown.changelog:
        _changelog(ctx, pkg)
    if shown.check:
        bad = _check(ctx, pkg, shown.check)
    if shown.line:
        c = out.c
        if shown.quiet:
            out.write(pkg.name + "\n")
        else:
            line = f"{c.title}{pkg.name} {c.version}{pkg.version}{c.nocolor}"
            if shown.upgrades:
                newpkg = new_version(ctx.handle, pkg)
                assert newpkg is not None
                line += f" -> {c.version}{newpkg.version}{c.nocolor}"
                if should_ignore(ctx.handle, pkg):
                    line += " " + _("[ignored]")
            out.write(line + "\n")
    return bad


def _changelog(ctx: Context, pkg: Package) -> None:
    data = pkg.changelog
    if data is None:
        ctx.out.error(_("no changelog available for '{name}'.").format(name=pkg.name))
        return
    text = data.decode("utf-8", "surrogateescape")
    ctx.out.write(_("Changelog for {name}:").format(name=pkg.name) + f"\n{text}\n")


def _check(ctx: Context, pkg: Package, level: int) -> bool:
    from alpmd.engine.check import check_files, check_mtree  # -Qk only

    out = ctx.out
    quiet = ctx.quiet
    if level == 1:
        res = check_files(ctx.handle, pkg)
        for p in res.problems:
            if quiet:
                out.write(f"{pkg.name} {p.path}\n")
            else:
                out.warning(f"{pkg.name}: {p.path} ({_(p.reason)})")
        if not quiet:
            out.write(_totals(pkg.name, res.total)
                      + ngettext("{n} missing file", "{n} missing files", res.errors)
                      .format(n=res.errors) + "\n")
        return res.errors != 0
    full = check_mtree(ctx.handle, pkg)
    if full.no_mtree:
        if not quiet:
            out.write(_("{name}: no mtree file").format(name=pkg.name) + "\n")
        return False
    printed: set[str] = set()
    for p in full.problems:
        if p.level == "backup":
            if not quiet:
                c = out.c
                out.write(f"{c.title}" + _("backup file") + f"{c.nocolor}: {pkg.name}: {p.path} "
                          f"({_(p.reason)})\n")
        elif p.level == "error":
            out.error(f"{_(p.reason)}: {p.path}")
        elif p.level == "unknown":
            out.warning(f"{_(p.reason)}: {p.path}")
        elif not quiet:
            out.warning(f"{pkg.name}: {p.path} ({_(p.reason)})")
    if quiet:
        for path in full.bad:
            if path not in printed:
                printed.add(path)
                out.write(f"{pkg.name} {path}\n")
    else:
        out.write(_totals(pkg.name, full.total)
                  + ngettext("{n} altered file", "{n} altered files", full.errors)
                  .format(n=full.errors) + "\n")
    return full.errors != 0


def _totals(name: str, total: int) -> str:
    """The first half of a -Qk summary line (pacman prints it in two translated parts)."""
    return ngettext("{name}: {n} total file, ", "{name}: {n} total files, ", total).format(
        name=name, n=total)


#: System error texts a -Qk check shows (os.strerror), translated like the rest.
_STRERROR = (N_("No such file or directory"), N_("Permission denied"),
             N_("Not a directory"))


def _owns(ctx: Context, targets: list[str]) -> int:
    ret = 0
    c = ctx.out.c
    for target in targets:
        try:
            res = find_owner(ctx.handle, target, search_path=os.environ.get("PATH"))
        except AlpmError as exc:
            path = exc.details.get("path")
            ctx.out.error(_("No package owns {path}").format(path=path)
                          if exc.code is ErrorCode.PKG_NOT_FOUND and path is not None
                          else localize(exc.msgid))
            ret += 1
            continue
        for pkg in res.owners:
            if ctx.quiet:
                ctx.out.write(pkg.name + "\n")
            else:
                ctx.out.write(_("{path} is owned by {name} {version}").format(
                    path=res.path, name=f"{c.title}{pkg.name}",
                    version=f"{c.version}{pkg.version}{c.nocolor}") + "\n")
    return ret


def _groups(ctx: Context) -> int:
    localdb = ctx.handle.localdb
    groups = localdb.groups
    out = ctx.out
    ret = 0
    scope = _scope(ctx)
    if not ctx.args.targets:
        for name, pkgs in groups.items():
            for pkg in pkgs:
                if _filter(ctx, pkg, scope):
                    out.write(f"{name} {pkg.name}\n")
        return 0
    for name in ctx.args.targets:
        members = groups.get(name)
        if members is None:
            out.error(_("group '{name}' was not found").format(name=name))
            ret += 1
            continue
        for pkg in members:
            if not _filter(ctx, pkg, scope):
                continue
            out.write(f"{pkg.name}\n" if ctx.quiet else f"{name} {pkg.name}\n")
    return ret
