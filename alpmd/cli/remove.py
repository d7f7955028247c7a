"""``alpm -R``: remove packages (with -s, -ss, -c, -n, -u, --dbonly), as pacman's remove.c."""

from __future__ import annotations

from alpmd.cli.alpm import Context
from alpmd.cli.upgrade import begin, execute
from alpmd.engine.errors import AlpmError
from alpmd.i18n import N_
from alpmd.i18n import gettext as _


def run(ctx: Context) -> int:
    out = ctx.out
    if not ctx.args.targets:
        out.error(_("no targets specified (use -h for help)"))
        return 1
    trans, cb = begin(ctx)
    with trans:
        localdb = ctx.handle.localdb
        missing = False
        for target in ctx.args.targets:
            name = target[len("local/"):] if target.startswith("local/") else target
            if localdb.get(name) is None:
                members = localdb.groups.get(name)
                if members:
                    for pkg in members:
                        if pkg.name not in trans.remove_targets:
                            trans.add_remove_target(pkg.name)
                    continue
                out.error(_("target not found") + f": {target}")
                missing = True
                continue
            try:
                if name not in trans.remove_targets:
                    trans.add_remove_target(name)
            except AlpmError as exc:
                out.error(f"'{target}': {exc.code.strerror}")
                missing = True
        if missing:
            return 1
        return execute(ctx, trans, cb, prompt=N_("Do you want to remove these packages?"))
