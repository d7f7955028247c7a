"""``alpm -D``: change install reasons (--asdeps/--asexplicit), check databases (-Dk), and
move the local database to another store (``--convert files|sqlite``, alpmd's own)."""

from __future__ import annotations

import os

from alpmd.cli.alpm import Context
from alpmd.engine.db.convert import convert
from alpmd.engine.db.stores import Store
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import Reason
from alpmd.engine.query import check_db_local, check_db_sync
from alpmd.i18n import gettext as _
from alpmd.i18n import localize


def run(ctx: Context) -> int:
    a = ctx.args
    out = ctx.out
    ret = 0
    target = a.value("convert")
    if target is not None:
        return _convert(ctx, target)
    if a.has("check"):
        msgs = check_db_local(ctx.handle) if a.count("check") == 1 else check_db_sync(ctx.handle)
        for m in msgs:
            out.error(m.in_language())
        ret = len(msgs)
        if ret == 0 and not ctx.quiet:
            out.write(_("No database errors have been found!") + "\n")
    if a.has("asdeps") or a.has("asexplicit"):
        ret = _change_reason(ctx)
    return ret


def _change_reason(ctx: Context) -> int:
    a = ctx.args
    out = ctx.out
    if not a.targets:
        out.error(_("no targets specified (use -h for help)"))
        return 1
    reason = Reason.DEPEND if a.has("asdeps") else Reason.EXPLICIT
    handle = ctx.handle
    try:
        handle.lock()
    except AlpmError:
        out.error(_("failed to init transaction ({error})").format(
            error=ErrorCode.HANDLE_LOCK.strerror))
        out.error(_("could not lock database: {error}").format(error=_("File exists")))
        if os.path.exists(handle.lockfile):
            ctx.out.stderr.write(_("  if you're sure a package manager is not already\n"
                                   "  running, you can remove {path}\n").format(
                                       path=handle.lockfile))
        return 1
    ret = 0
    try:
        for name in a.targets:
            try:
                handle.localdb.set_reason(name, reason)
            except AlpmError as exc:
                code = exc.code if exc.code is not ErrorCode.PKG_NOT_FOUND else exc.code
                out.error(_("could not set install reason for package {name} ({error})")
                          .format(name=name, error=code.strerror))
                ret = 1
                continue
            if not ctx.quiet:
                text = (_("{name}: install reason has been set to 'installed as dependency'")
                        if reason is Reason.DEPEND else
                        _("{name}: install reason has been set to 'explicitly installed'"))
                out.write(text.format(name=name) + "\n")
    finally:
        handle.unlock()
    return ret


def _convert(ctx: Context, target: str) -> int:
    out = ctx.out
    try:
        store = Store(target)
    except ValueError:
        choices = ", ".join(s.value for s in Store)
        out.error(_("invalid backend '{name}' (one of {choices})").format(
            name=target, choices=choices))
        return 1
    try:
        result = convert(ctx.handle, store)
    except AlpmError as exc:
        out.error(_("could not convert the local database: {error}").format(
            error=localize(exc.msgid)))
        return 1
    if not ctx.quiet:
        out.write(_("converted {n} entries from {source} to {target}: {path}").format(
            n=result.entries, source=result.source.value, target=result.target.value,
            path=result.path) + "\n")
        if result.moved_aside is not None:
            out.write(_("the old database was moved to {path}").format(
                path=result.moved_aside) + "\n")
    return 0
