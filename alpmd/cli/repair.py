"""``alpm --repair``: finish or undo what an interrupted commit left (the engine's journal).

A commit killed half-way (power cut, SIGKILL, full disk) leaves the journal
``<dbpath>/alpmd-journal`` and usually the lock. This runs the engine's
recovery on the root: each pending step is rolled forward from its package
file, or back to the old version from the cache; a lock is removed only when
no process holds it and the journal's writer is gone. Exit 0 when the root is
clean afterwards, 1 when something is left for the administrator.
"""

from __future__ import annotations

from alpmd.cli.alpm import Context
from alpmd.engine.errors import AlpmError
from alpmd.engine.trans import Transaction
from alpmd.i18n import gettext as _
from alpmd.i18n import localize, ngettext


def run(ctx: Context) -> int:
    out = ctx.out
    handle = ctx.handle

    try:
        report = Transaction.recover(handle, repair=True, remove_stale_lock=True)
    except AlpmError as exc:
        out.error(_("could not repair the database: {error}").format(error=localize(exc.msgid)))
        return 1
    if report.journal is None and report.stale_lock is None:
        for action in report.actions:
            out.write(f"  {action}\n")
        out.write(_("nothing to repair: no interrupted transaction") + "\n")
        return 0
    if report.pending:
        n = len(report.pending)
        out.write(":: " + ngettext("repairing an interrupted transaction ({n} unfinished step)",
                                   "repairing an interrupted transaction ({n} unfinished steps)",
                                   n).format(n=n) + "\n")
    for action in report.actions:
        out.write(f"  {action}\n")
    for problem in report.unresolved:
        out.error(problem)
    if report.unresolved:
        return 1
    out.write(_("database repaired") + "\n")
    return 0
