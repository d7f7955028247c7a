"""``alpm -S``: queries (-Ss, -Sg, -Si, -Sl), -Sy, -Sc/-Scc and installs, as pacman's sync.c."""

from __future__ import annotations

from alpmd.cli.alpm import Context
from alpmd.cli.output import Display, installed_suffix, search_results
from alpmd.engine.errors import AlpmError
from alpmd.engine.query import search
from alpmd.engine.target import split_repo
from alpmd.i18n import gettext as _


def run(ctx: Context) -> int:
    a = ctx.args
    out = ctx.out
    if a.has("clean"):
        return _clean(ctx, a.count("clean"))
    if a.has("refresh"):
        code = _refresh(ctx, a.count("refresh") > 1)
        if code != 0:
            return code
        if not (a.targets or a.has("sysupgrade") or a.has("search") or a.has("info")
                or a.has("list") or a.has("groups")):
            return 0
    syncs = ctx.handle.syncdbs
    if not syncs:
        out.error(_("no usable package repositories configured."))
        return 1
    for db in syncs:
        try:
            db.versions  # noqa: B018 - load now (no packages made), so a broken database is reported first
        except AlpmError as exc:
            out.error(_("database '{db}' is not valid ({error})").format(
                db=db.name, error=exc.code.strerror))
            return 1
    if a.has("search"):
        found = 0
        for db in syncs:
            try:
                pkgs = search(db, a.targets)
            except AlpmError as exc:
                out.error(_("search failed: {error}").format(error=exc.code.strerror))
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
        out.error(_("no targets specified (use -h for help)"))
        return 1
    return _install(ctx)


def _install(ctx: Context) -> int:
    """-S targets / -Su / -Sw: one add transaction (pacman's sync_trans)."""
    from alpmd.cli.upgrade import begin, execute, printing

    a = ctx.args
    out = ctx.out
    trans, cb = begin(ctx)
    with trans:
        for target in a.targets:
            try:
                trans.add_sync_target(target)
            except AlpmError as exc:
                out.error(f"'{target}': {exc.code.strerror}")
                return 1
        if a.has("sysupgrade"):
            if not printing(ctx):
                out.write(f"{out.c.meta}::{out.c.nocolor}{out.c.title} "
                          + _("Starting full system upgrade...") + f"{out.c.nocolor}\n")
                ctx.handle.logaction("PACMAN", "starting full system upgrade")
            trans.sysupgrade(allow_downgrade=a.count("sysupgrade") > 1)
        return execute(ctx, trans, cb)


def _refresh(ctx: Context, force: bool) -> int:
    """-Sy/-Syy through download.refresh_databases (pacman's sync_syncdbs)."""
    import asyncio

    from alpmd.engine import download

    out = ctx.out
    out.write(f"{out.c.meta}::{out.c.nocolor}{out.c.title} "
              + _("Synchronizing package databases...") + f"{out.c.nocolor}\n")
    ctx.handle.logaction("PACMAN", "synchronizing package lists")
    try:
        changed = asyncio.run(download.refresh_databases(ctx.handle, force=force))
    except AlpmError as exc:
        out.error(_("failed to synchronize all databases ({error})").format(
            error=exc.code.strerror))
        return 1
    for name, did in changed.items():
        if not did:
            out.write(" " + _("{db} is up to date").format(db=name) + "\n")
    return 0


def _clean(ctx: Context, level: int) -> int:
    """-Sc / -Scc: pacman's sync_cleancache then sync_cleandb_all, one question per directory."""
    from alpmd.cli.upgrade import callbacks
    from alpmd.engine import pkgcache
    from alpmd.engine.config import CleanMethod

    out = ctx.out
    cb = callbacks(ctx)
    method = ctx.config.clean_method or CleanMethod.KEEP_INSTALLED
    ret = 0
    if level == 1:
        out.write(_("Packages to keep:") + "\n")
        if CleanMethod.KEEP_INSTALLED in method:
            out.write("  " + _("All locally installed packages") + "\n")
        if CleanMethod.KEEP_CURRENT in method:
            out.write("  " + _("All current sync database packages") + "\n")
    out.write("\n")
    for d in ctx.handle.options.cachedirs:
        out.write(_("Cache directory: {dir}").format(dir=d) + "\n")
        if level == 1:
            if not cb.yesno(_("Do you want to remove all other packages from cache?"), True):
                out.write("\n")
                continue
            out.write(_("removing old packages from cache...") + "\n")
        else:
            if not cb.yesno(_("Do you want to remove ALL files from cache?"), False):
                out.write("\n")
                continue
            out.write(_("removing all files from cache...") + "\n")
        res = pkgcache.clean_cache(ctx.handle, all=level > 1, dirs=[d],
                                   keep_installed=CleanMethod.KEEP_INSTALLED in method,
                                   keep_current=CleanMethod.KEEP_CURRENT in method)
        if res.unreadable_dirs:
            out.error(_("could not access cache directory {dir}").format(dir=d))
            ret += 1
            continue
        for path, exc in res.unreadable:
            out.error(_load_failure(path, exc))
        out.write("\n")
    out.write(_("Database directory: {dir}").format(dir=ctx.handle.dbpath) + "\n")
    if cb.yesno(_("Do you want to remove unused repositories?"), True):
        out.write(_("removing unused sync repositories...") + "\n")
        pkgcache.clean_sync_dbs(ctx.handle)
    return 1 if ret else 0


def _load_failure(path: str, exc: AlpmError) -> str:
    """libalpm's message for a file that does not load as a package."""
    reason = exc.message.rpartition("(start of archive): ")[2]
    if exc.details.get("entry") == ".PKGINFO":
        return _("missing package metadata in {path}").format(path=path)
    if reason != exc.message:
        return _("could not open file {path}: {reason}").format(path=path, reason=reason)
    return _("could not load {path}: {error}").format(path=path, error=exc.code.strerror)


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
        repo, name = split_repo(target)
        founddb = foundpkg = False
        for db in syncs:
            if repo is not None and db.name != repo:
                continue
            founddb = True
            spkg = db.get(name)
            if spkg is not None:
                disp.pkg_full(ctx.handle, spkg, extra)
                foundpkg = True
                break
        if not founddb:
            out.error(_("repository '{repo}' does not exist").format(repo=repo))
            ret += 1
        if not foundpkg:
            out.error(_("package '{name}' was not found").format(name=target))
            ret += 1
    return ret


def _list(ctx: Context) -> int:
    out = ctx.out
    c = out.c
    syncs = ctx.handle.syncdbs
    dbs = []
    ret = 0
    if ctx.args.targets:
        # pacman reports every missing repository, then lists the ones it found.
        for repo in ctx.args.targets:
            db = ctx.handle.get_syncdb(repo)
            if db is None:
                out.error(_('repository "{repo}" was not found.').format(repo=repo))
                ret = 1
                continue
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
    return ret
