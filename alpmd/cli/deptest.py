"""``alpm -T``: print the dependencies the installed packages do not satisfy (exit 127)."""

from __future__ import annotations

from alpmd.cli.alpm import Context
from alpmd.engine.errors import AlpmError
from alpmd.engine.query import find_satisfier


def run(ctx: Context) -> int:
    missing = []
    localdb = ctx.handle.localdb
    for target in ctx.args.targets:
        try:
            pkg = find_satisfier(localdb, target)
        except AlpmError:
            pkg = None
        if pkg is None:
            missing.append(target)
    if not missing:
        return 0
    ctx.out.write("".join(f"{t}\n" for t in missing))
    return 127
