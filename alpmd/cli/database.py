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
            out.error(m)
        ret = len(msgs)
        if ret == 0 and not ctx.quiet:
            out.write("No database errors have been found!\n")
    if a.has("asdeps") or a.has("asexplicit"):
        ret = _change_reason(ctx)
    return ret


def _change_reason(ctx: Context) -> int:
    a = ctx.args
    out = ctx.out
    if not a.targets:
        out.error("no targets specified (use -h for help)")
        return 1
    reason = Reason.DEPEND if a.has("asdeps") else Reason.EXPLICIT
    handle = ctx.handle
    try:
        handle.lock()
    except AlpmError:
        out.error("failed to init transaction (unable to lock database)")
        out.error("could not lock database: File exists")
        if os.path.exists(handle.lockfile):
            ctx.out.stderr.write("  if you're sure a package manager is not already\n"
                                 f"  running, you can remove {handle.lockfile}\n")
        return 1
    ret = 0
    try:
        for name in a.targets:
            try:
                handle.localdb.set_reason(name, reason)
            except AlpmError as exc:
                code = exc.code if exc.code is not ErrorCode.PKG_NOT_FOUND else exc.code
                out.error(f"could not set install reason for package {name} "
                          f"({code.strerror})")
                ret = 1
                continue
            if not ctx.quiet:
                what = ("installed as dependency" if reason is Reason.DEPEND
                        else "explicitly installed")
                out.write(f"{name}: install reason has been set to '{what}'\n")
    finally:
        handle.unlock()
    return ret


def _convert(ctx: Context, target: str) -> int:
    out = ctx.out
    try:
        store = Store(target)
    except ValueError:
        choices = ", ".join(s.value for s in Store)
        out.error(f"invalid backend '{target}' (one of {choices})")
        return 1
    try:
        result = convert(ctx.handle, store)
    except AlpmError as exc:
        out.error(f"could not convert the local database: {exc.message}")
        return 1
    if not ctx.quiet:
        out.write(f"converted {result.entries} entries from {result.source.value} to "
                  f"{result.target.value}: {result.path}\n")
        if result.moved_aside is not None:
            out.write(f"the old database was moved to {result.moved_aside}\n")
    return 0
