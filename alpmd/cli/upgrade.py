"""``alpm -U`` and the part of a transaction every changing operation shares.

pacman's upgrade.c (load the files, then sync.c's ``sync_prepare_execute``):
prepare, show the targets, ask, download, commit, and report failures with
pacman's wording and exit codes. All decisions are the engine's; this module
formats. SIGINT/SIGTERM/SIGHUP become an exception that unwinds through the
commit's ``finally`` blocks (the lock is released, the journal says where).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from alpmd import TYPE_CHECKING
from alpmd.cli.alpm import Context
from alpmd.cli.args import Args
from alpmd.cli.callback import Callbacks, size_lines
from alpmd.engine.conflict import FileConflict
from alpmd.engine.db.sync import SyncDatabase
from alpmd.engine.depend import Depend, DepMod
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import TransFlag
from alpmd.engine.journal import FinalFlush
from alpmd.engine.package import Origin, Package
from alpmd.engine.resolve import Conflict, MissingDep, Plan
from alpmd.engine.trans import Transaction
from alpmd.i18n import N_, localize, ngettext
from alpmd.i18n import gettext as _

if TYPE_CHECKING:
    from typing import Any


class Signalled(BaseException):
    """A terminating signal arrived; unwinds like KeyboardInterrupt."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def signals_unwind() -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP into :class:`Signalled` for the duration."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Signalled(signum)

    saved: dict[int, Any] = {}
    for sig in (int(signal.SIGINT), int(signal.SIGTERM), int(signal.SIGHUP)):
        try:
            saved[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    try:
        yield
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)


def trans_flags(ctx: Context) -> TransFlag:
    """The transaction flags the command line asks for (pacman's parsearg_trans & co)."""
    a = ctx.args
    flags = TransFlag.NONE
    nodeps = a.count("nodeps")
    if nodeps == 1:
        flags |= TransFlag.NODEPVERSION
    elif nodeps > 1:
        flags |= TransFlag.NODEPS | TransFlag.NODEPVERSION
    for name, flag in (("dbonly", TransFlag.DBONLY), ("noscriptlet", TransFlag.NOSCRIPTLET),
                       ("needed", TransFlag.NEEDED), ("asdeps", TransFlag.ALLDEPS),
                       ("asexplicit", TransFlag.ALLEXPLICIT),
                       ("downloadonly", TransFlag.DOWNLOADONLY),
                       ("cascade", TransFlag.CASCADE), ("nosave", TransFlag.NOSAVE),
                       ("unneeded", TransFlag.UNNEEDED)):
        if a.has(name):
            flags |= flag
    if a.has("dbonly"):
        # pacman's --dbonly also skips scriptlets (hooks still run)
        flags |= TransFlag.NOSCRIPTLET
    rec = a.count("recursive")
    if rec:
        flags |= TransFlag.RECURSE
    if rec > 1:
        flags |= TransFlag.RECURSEALL
    if printing(ctx):
        # pacman's print mode: no lock, and no conflict questions (conflicts are not checked)
        flags |= TransFlag.NOLOCK | TransFlag.NOCONFLICTS
    if a.has("downloadonly"):
        flags |= TransFlag.NOCONFLICTS   # pacman's -w does not look for conflicts either
    return flags


def printing(ctx: Context) -> bool:
    return ctx.args.has("print") or ctx.args.value("print-format") is not None


def callbacks(ctx: Context) -> Callbacks:
    a = ctx.args
    noconfirm = a.has("noconfirm") and not _confirm_after(a) or printing(ctx)
    ask = a.value("ask")
    cb = Callbacks(ctx.out, ctx.handle, noconfirm=noconfirm,
                   ask=int(ask) if ask is not None and ask.isdigit() else None,
                   noprogressbar=a.has("noprogressbar") or ctx.config.no_progress_bar,
                   print_mode=printing(ctx))
    return cb


def _confirm_after(a: Args) -> bool:
    """--confirm cancels an earlier --noconfirm (pacman keeps the last one)."""
    return bool(a.has("confirm")) and "confirm" in a.flags and a.flags.get("noconfirm", 0) <= \
        a.flags.get("confirm", 0)


def apply_options(ctx: Context) -> None:
    """Command-line values that are handle options: --overwrite, --assume-installed."""
    opts = ctx.handle.options
    opts.overwrite_files = list(opts.overwrite_files) + ctx.args.all_values("overwrite")
    opts.assume_installed = list(opts.assume_installed) + ctx.args.all_values("assume-installed")


def log_command(ctx: Context) -> None:
    """``[PACMAN] Running '...'``: the command line as typed (pacman's cl_to_log)."""
    argv = list(sys.argv) if sys.argv and sys.argv[0] else ["alpm"]
    ctx.handle.logaction("PACMAN", f"Running '{' '.join(argv)}'")


def begin(ctx: Context) -> tuple[Transaction, Callbacks]:
    """Options applied, the command logged (unless printing), a transaction with pacman's callbacks."""
    apply_options(ctx)
    if not printing(ctx):
        log_command(ctx)
    cb = callbacks(ctx)
    # No bars drawn: no progress reports built (one per archive entry while extracting).
    trans = Transaction(ctx.handle, trans_flags(ctx), event=cb.event,
                        progress=cb.progress if cb.draws_bars else None, question=cb.question)
    trans.final_flush = FinalFlush.PROCESS  # the command does not wait for the disk
    return trans, cb


def location(ctx: Context, pkg: Package) -> str:
    """pacman's ``%l``: server URL + filename, the file's path, or name-version."""
    if pkg.origin is Origin.SYNCDB:
        repo = pkg.db.repo if isinstance(pkg.db, SyncDatabase) else None
        servers = repo.servers if repo is not None else []
        if servers:
            return f"{servers[0]}/{pkg.filename}"
        return pkg.filename or f"{pkg.name}-{pkg.version}"
    if pkg.origin is Origin.FILE:
        return pkg.path or ""
    return f"{pkg.name}-{pkg.version}"


def print_format(ctx: Context, pkg: Package) -> str:
    fmt = ctx.args.value("print-format") or "%l"
    repo = pkg.db.name if pkg.origin is not Origin.FILE and pkg.db is not None else "local"
    values = {"%n": pkg.name, "%v": pkg.version, "%l": location(ctx, pkg), "%r": repo,
              # alpm_pkg_get_size: the archive's size (an installed package's %SIZE%);
              # pacman 6.0.2 knows no %a or %b
              "%s": str((pkg.isize if pkg.origin is Origin.LOCALDB else pkg.csize) or 0)}
    out = fmt
    for k, v in values.items():
        out = out.replace(k, v)
    return out


def display_targets(ctx: Context, plan: Plan, downloads: int) -> None:
    """``Packages (N) a-1  b-2`` and the size lines, as pacman's display_targets."""
    out = ctx.out
    localdb = ctx.handle.localdb
    names: list[tuple[bool, str, str]] = []
    explicit = plan.explicit
    isize = 0
    rsize = 0
    removing = {p.name for p in plan.remove}
    for pkg in plan.add:
        names.append((pkg.name in explicit, pkg.name, f"{pkg.name}-{pkg.version}"))
        isize += pkg.isize or 0
        old = localdb.get(pkg.name)
        if old is not None and pkg.name not in removing:
            rsize += old.isize or 0
    for pkg in plan.remove:
        rsize += pkg.isize or 0
        names.append((pkg.name in explicit and not plan.add, pkg.name,
                      f"{pkg.name}-{pkg.version}" + (" [" + _("removal") + "]" if plan.add else "")))
    # pacman 6.0.2's order: pulled-in packages first, then the ones asked for, by name
    names.sort(key=lambda t: (t[0], t[1].encode()))
    shown = [t[2] for t in names]
    out.write(f"\n{out.c.title}" + _("Packages ({n})").format(n=len(shown))
              + f"{out.c.nocolor} {'  '.join(shown)}\n\n")
    # pacman's rules: a line only for sizes it has (packages without a size add none)
    sizes: list[tuple[str, int]] = []
    if downloads > 0 or ctx.args.has("downloadonly"):
        sizes.append((_("Total Download Size:"), downloads))
    if not ctx.args.has("downloadonly"):
        if isize > 0:
            sizes.append((_("Total Installed Size:"), isize))
        if rsize > 0 and isize == 0:
            sizes.append((_("Total Removed Size:"), rsize))
        if isize > 0 and rsize > 0:
            sizes.append((_("Net Upgrade Size:"), isize - rsize))
    out.write(size_lines(sizes))


def report_prepare_error(ctx: Context, exc: AlpmError, *, removing: bool = False) -> None:
    out = ctx.out
    if exc.code is ErrorCode.PKG_NOT_FOUND:
        targets = exc.details.get("targets") or []
        if targets:
            for t in targets:
                out.error(_("target not found") + f": {t}")
        else:
            out.error(localize(exc.msgid))
        return
    out.error(_("failed to prepare transaction ({error})").format(error=exc.code.strerror))
    if exc.code is ErrorCode.PKG_INVALID_ARCH:
        for name in exc.details.get("packages", []):
            out.write(f"{out.c.meta}::{out.c.nocolor} "
                      + _("package {name} does not have a valid architecture").format(name=name)
                      + "\n")
    elif exc.code is ErrorCode.UNSATISFIED_DEPS:
        missing: list[MissingDep] = exc.details.get("missing", [])
        for miss in missing:
            dep, target, causing = miss.depend, miss.target, miss.causing
            if removing:
                out.write(_(":: removing {pkg} breaks dependency '{dep}' required by {target}")
                          .format(pkg=causing or target, dep=dep, target=target) + "\n")
            elif causing:
                out.write(_(":: installing {pkg} breaks dependency '{dep}' required by {target}")
                          .format(pkg=causing, dep=dep, target=target) + "\n")
            else:
                out.write(_(":: unable to satisfy dependency '{dep}' required by {target}")
                          .format(dep=dep, target=target) + "\n")
    elif exc.code is ErrorCode.CONFLICTING_DEPS:
        conflicts: list[Conflict] = exc.details.get("conflicts", [])
        for c in conflicts:
            p1, p2, reason = c.pkg1, c.pkg2, c.reason
            if reason and Depend.relation(reason).mod is not DepMod.ANY:  # as pacman: news only
                out.write(_(":: {p1} and {p2} are in conflict ({reason})").format(
                    p1=p1, p2=p2, reason=reason) + "\n")
            else:
                out.write(_(":: {p1} and {p2} are in conflict").format(p1=p1, p2=p2) + "\n")


def report_commit_error(ctx: Context, exc: AlpmError) -> None:
    out = ctx.out
    out.error(_("failed to commit transaction ({error})").format(error=exc.code.strerror))
    if exc.code is ErrorCode.FILE_CONFLICTS:
        conflicts: list[FileConflict] = exc.details.get("conflicts", [])
        for c in conflicts:
            if c.kind == "target":
                out.write(_("{file} exists in both '{a}' and '{b}'").format(
                    file=c.file, a=c.target, b=c.other) + "\n")
            elif c.other:
                out.write(_("{pkg}: {file} exists in filesystem (owned by {owner})").format(
                    pkg=c.target, file=c.file, owner=c.other) + "\n")
            else:
                out.write(_("{pkg}: {file} exists in filesystem").format(pkg=c.target, file=c.file)
                          + "\n")
    elif exc.code is ErrorCode.PKG_INVALID_CHECKSUM:
        pass  # pacman 6.0.2 said it in the question to delete the file, and adds nothing
    elif exc.code in (ErrorCode.PKG_INVALID, ErrorCode.PKG_INVALID_SIG):
        path = exc.details.get("path")
        if path:
            out.write(_("{file} is invalid or corrupted").format(file=os.path.basename(path))
                      + "\n")
    elif exc.message != exc.code.strerror:
        out.write(exc.message + "\n")
    completed: list[str] = exc.details.get("completed") or []
    if exc.details.get("unfinished") or completed:
        # pacman says "no packages were upgraded" even after some were: tell the truth
        # (the message above names the package left unfinished and the repair)
        n = len(completed)
        out.write(ngettext("Errors occurred after {n} package was changed",
                           "Errors occurred after {n} packages were changed", n).format(n=n)
                  + (": " + " ".join(completed) if completed else "") + ".\n")
        return
    out.write(_("Errors occurred, no packages were upgraded.") + "\n")


def _hold_confirmed(ctx: Context, plan: Plan, cb: Callbacks) -> bool:
    """pacman's remove.c: name every HoldPkg being removed, then ask (default no)."""
    from alpmd.engine.resolve import held_targets

    held = held_targets(ctx.handle, plan)
    for pkg in held:
        ctx.out.warning(_("{name} is designated as a HoldPkg.").format(name=pkg.name))
    return not held or cb.yesno(_("HoldPkg was found in target list. Do you want to continue?"),
                                False)


def execute(ctx: Context, trans: Transaction, cb: Callbacks, *,
            prompt: str = N_("Proceed with installation?")) -> int:
    """Prepare, show, confirm, download, commit: pacman's sync_prepare_execute."""
    out = ctx.out
    removing = trans.kind == "remove"
    try:
        plan = trans.prepare()
    except AlpmError as exc:
        report_prepare_error(ctx, exc, removing=removing)
        return 1
    # plan.warnings were already shown as they happened (Warning_ events)
    if removing and not _hold_confirmed(ctx, plan, cb):
        return 1
    if not plan.add and not plan.remove:
        if not printing(ctx):
            out.write(" " + _("there is nothing to do") + "\n")
        return 0
    if printing(ctx):
        for pkg in (plan.remove if removing else plan.add):
            out.write(print_format(ctx, pkg) + "\n")
        return 0
    to_fetch = [p for p in plan.add if p.origin is Origin.SYNCDB]
    dlsize = 0
    if to_fetch:  # -U of files needs no HTTP client (its import costs ~0.2 s)
        try:
            from alpmd.engine import download as dl

            dlsize = sum(p.csize or 0 for p in to_fetch
                         if dl.find_cached(ctx.handle, p) is None)
            cb.download_started = lambda e: (e.file if isinstance(e, dl.DownloadStarted)
                                             else None)
        except ImportError:
            dlsize = sum(p.csize or 0 for p in to_fetch)
    display_targets(ctx, plan, dlsize)
    if ctx.args.has("downloadonly"):
        prompt = N_("Proceed with download?")
    out.write("\n")
    if not cb.yesno(_(prompt), True):
        return 1
    try:
        with signals_unwind():
            if to_fetch:
                out.write(f"{out.c.meta}::{out.c.nocolor}{out.c.title} "
                          + _("Retrieving packages...") + f"{out.c.nocolor}\n")
                import asyncio  # only a download needs it

                asyncio.run(trans.download())
            trans.commit()
    except AlpmError as exc:
        report_commit_error(ctx, exc)
        return 1
    except Signalled as sig:
        out.write("\n" + _("Interrupt signal received") + "\n")
        return 128 + sig.signum
    return 0


def run(ctx: Context) -> int:
    """``-U file...``: install package files (and their dependencies from the repositories)."""
    out = ctx.out
    if not ctx.args.targets:
        out.error(_("no targets specified (use -h for help)"))
        return 1
    trans, cb = begin(ctx)
    local: dict[str, str] = {}
    urls = [t for t in ctx.args.targets if "://" in t]   # file:// too: copied to the cache
    if urls:
        code = _fetch_urls(ctx, cb, urls, local)
        if code:
            return code
    out.write(_("loading packages...") + "\n")
    # pacman loads the local files first, then the fetched ones
    ordered = [t for t in ctx.args.targets if t not in local] + \
        [t for t in ctx.args.targets if t in local]
    with trans:
        try:
            # Read by this process and forked ones at once (the second CPU, if any).
            trans.add_files([os.path.abspath(local.get(t) or t) for t in ordered],
                            workers=min(4, len(os.sched_getaffinity(0))))
        except AlpmError as exc:
            target = ordered[exc.details.get("target_index", 0)]
            log = exc.details.get("log")
            if log:  # libalpm's reason, logged before pacman's verdict
                out.error(_(log).format(file=target))
            out.error(f"'{target}': {exc.code.strerror}")
            return 1
        return execute(ctx, trans, cb)



def _fetch_urls(ctx: Context, cb: Callbacks, urls: list[str], local: dict[str, str]) -> int:
    """``-U URL``: the files (and signatures) into the cache first, as pacman's upgrade.c."""
    import asyncio

    from alpmd.engine import download as dl

    out = ctx.out
    if any(dl.url_cached(ctx.handle, u) is None for u in urls) and not printing(ctx):
        out.write(f"{out.c.meta}::{out.c.nocolor}{out.c.title} "
                  + _("Retrieving packages...") + f"{out.c.nocolor}\n")
    cb.download_started = lambda e: e.file if isinstance(e, dl.DownloadStarted) else None
    try:
        with signals_unwind():
            got = asyncio.run(dl.fetch_urls(ctx.handle, urls, event=cb.event))
    except Signalled as sig:
        out.write("\n" + _("Interrupt signal received") + "\n")
        return 128 + sig.signum
    for f in got.failures:
        out.error(_("failed retrieving file '{file}' from {host} : {reason}").format(
            file=f.name, host=f.host, reason=f.reason))
    if got.failures:
        out.warning(_("failed to retrieve some files"))
        return 255  # pacman's -1 from alpm_fetch_pkgurl
    local.update(got.paths)
    return 0
