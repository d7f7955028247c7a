"""``alpm -S`` (query side): -Ss, -Sg/-Sgg, -Si/-Sii and -Sl, as pacman's sync.c."""

from __future__ import annotations

from alpmd.cli.alpm import Context
from alpmd.cli.output import Display, installed_suffix, search_results
from alpmd.engine.errors import AlpmError
from alpmd.engine.query import search


def run(ctx: Context) -> int:
    a = ctx.args
    out = ctx.out
    if a.has("clean") or a.has("refresh"):
        out.error("this front end does not modify the system yet (-Sc, -Sy)")
        return 1
    syncs = ctx.handle.syncdbs
    if not syncs:
        out.error("no usable package repositories configured.")
        return 1
    for db in syncs:
        try:
            db.packages  # noqa: B018 - load now, so a broken database is reported first
        except AlpmError as exc:
            out.error(f"database '{db.name}' is not valid ({exc.code.strerror})")
            return 1
    if a.has("search"):
        found = 0
        for db in syncs:
            try:
                pkgs = search(db, a.targets)
            except AlpmError as exc:
                out.error(f"search failed: {exc.code.strerror}")
                return 1
            if pkgs:
                found += 1
                search_results(out, ctx.handle, db.name, pkgs, quiet=ctx.quiet,
                               show_status=True)
        return 0 if found else 1
    if a.has("groups"):
        return _groups(ctx, a.count("groups"))
    if a.has("info"):
        return _info(ctx, a.count("info") > 1)
    if a.has("list"):
        return _list(ctx)
    if not a.targets and not a.has("sysupgrade"):
        out.error("no targets specified (use -h for help)")
        return 1
    out.error("this front end does not install packages yet")
    return 1


def _groups(ctx: Context, level: int) -> int:
    out = ctx.out
    syncs = ctx.handle.syncdbs
    ret = 0
    if ctx.args.targets:
        for name in ctx.args.targets:
            found = False
            for db in syncs:
                members = db.groups.get(name)
                if members is None:
                    continue
                found = True
                out.write("".join(f"{p.name}\n" if ctx.quiet else f"{name} {p.name}\n"
                                  for p in members))
            if not found:
                ret = 1
        return ret
    ret = 1
    seen: set[str] = set()
    for db in syncs:
        for name, members in db.groups.items():
            ret = 0
            if level > 1:
                out.write("".join(f"{name} {p.name}\n" for p in members))
            elif name not in seen:
                seen.add(name)
                out.write(name + "\n")
    return ret


def _info(ctx: Context, extra: bool) -> int:
    out = ctx.out
    disp = Display(out)
    syncs = ctx.handle.syncdbs
    if not ctx.args.targets:
        for db in syncs:
            for pkg in db.packages:
                disp.pkg_full(ctx.handle, pkg, extra)
        return 0
    ret = 0
    for target in ctx.args.targets:
        repo, slash, name = target.partition("/")
        if not slash:
            repo, name = "", target
        founddb = foundpkg = False
        for db in syncs:
            if slash and db.name != repo:
                continue
            founddb = True
            spkg = db.get(name)
            if spkg is not None:
                disp.pkg_full(ctx.handle, spkg, extra)
                foundpkg = True
                break
        if not founddb:
            out.error(f"repository '{repo}' does not exist")
            ret += 1
        if not foundpkg:
            out.error(f"package '{target}' was not found")
            ret += 1
    return ret


def _list(ctx: Context) -> int:
    out = ctx.out
    c = out.c
    syncs = ctx.handle.syncdbs
    dbs = []
    if ctx.args.targets:
        for repo in ctx.args.targets:
            db = ctx.handle.get_syncdb(repo)
            if db is None:
                out.error(f'repository "{repo}" was not found.')
                return 1
            dbs.append(db)
    else:
        dbs = list(syncs)
    for db in dbs:
        lines = []
        for pkg in db.packages:
            if ctx.quiet:
                lines.append(pkg.name + "\n")
            else:
                lines.append(f"{c.repo}{db.name} {c.title}{pkg.name} {c.version}{pkg.version}"
                             f"{c.nocolor}{installed_suffix(out, ctx.handle, pkg)}\n")
        out.write("".join(lines))
    return 0
