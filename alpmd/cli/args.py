"""pacman's command line: one operation, combined short flags, options anywhere.

Short letters mean different things per operation (``-s`` searches under -Q and
recurses under -R), so parsing only counts letters and collects values; the
operation's meaning is looked up afterwards in :data:`OP_FLAGS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alpmd.i18n import gettext as _

OPERATIONS = {
    "D": "database", "F": "files", "Q": "query", "R": "remove", "S": "sync",
    "T": "deptest", "U": "upgrade", "V": "version", "h": "help",
}
LONG_OPERATIONS = {v: k for k, v in OPERATIONS.items()}

# Long options that take a value, and the short letters that do.
VALUE_LONG = {
    "dbpath", "root", "arch", "cachedir", "color", "config", "gpgdir", "hookdir", "logfile",
    "ask", "ignore", "ignoregroup", "assume-installed", "overwrite", "print-format", "sysroot",
    "convert",
}
VALUE_SHORT = {"b": "dbpath", "r": "root"}

# Flags every operation accepts.
COMMON_LONG = {
    "dbpath", "root", "verbose", "arch", "cachedir", "color", "config", "confirm", "debug",
    "disable-download-timeout", "gpgdir", "hookdir", "logfile", "noconfirm", "sysroot", "ask",
    "help",
}
COMMON_SHORT = {"b": "dbpath", "r": "root", "v": "verbose", "h": "help"}

TRANSACTION_LONG = {
    "nodeps", "assume-installed", "dbonly", "noprogressbar", "noscriptlet", "print",
    "print-format",
}

# Per operation: short letter -> long name, plus the long names it accepts.
OP_FLAGS: dict[str, tuple[dict[str, str], set[str]]] = {
    "query": ({"c": "changelog", "d": "deps", "e": "explicit", "g": "groups", "i": "info",
               "k": "check", "l": "list", "m": "foreign", "n": "native", "o": "owns",
               "p": "file", "q": "quiet", "s": "search", "t": "unrequired", "u": "upgrades"},
              set()),
    "sync": ({"c": "clean", "d": "nodeps", "g": "groups", "i": "info", "l": "list",
              "p": "print", "q": "quiet", "s": "search", "u": "sysupgrade", "w": "downloadonly",
              "y": "refresh"},
             TRANSACTION_LONG | {"needed", "asdeps", "asexplicit", "ignore", "ignoregroup",
                                 "overwrite"}),
    "remove": ({"c": "cascade", "d": "nodeps", "n": "nosave", "p": "print", "s": "recursive",
                "u": "unneeded"}, TRANSACTION_LONG),
    "upgrade": ({"d": "nodeps", "p": "print", "w": "downloadonly"},
                TRANSACTION_LONG | {"needed", "asdeps", "asexplicit", "ignore", "ignoregroup",
                                    "overwrite"}),
    "database": ({"k": "check", "q": "quiet"}, {"asdeps", "asexplicit", "convert"}),
    "files": ({"l": "list", "q": "quiet", "x": "regex", "y": "refresh"}, {"machinereadable"}),
    "deptest": ({}, set()),
    "repair": ({}, set()),
    "version": ({}, set()),
    "help": ({}, set()),
}


class UsageError(Exception):
    """A command line pacman would refuse; ``message`` is pacman's wording."""


@dataclass(repr=False)
class Args:
    """What the command line asked for."""

    op: str | None = None
    flags: dict[str, int] = field(default_factory=dict)
    values: dict[str, list[str]] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)

    def count(self, name: str) -> int:
        return self.flags.get(name, 0)

    def has(self, name: str) -> bool:
        return self.flags.get(name, 0) > 0

    def value(self, name: str) -> str | None:
        vals = self.values.get(name)
        return vals[-1] if vals else None

    def all_values(self, name: str) -> list[str]:
        return self.values.get(name, [])


def _set_op(args: Args, op: str) -> None:
    if args.op is not None:  # pacman refuses even the same operation twice
        raise UsageError(_("error: ") + _("only one operation may be used at a time"))
    args.op = op


def parse(argv: list[str]) -> Args:
    """Parse pacman-style arguments; raise :class:`UsageError` as pacman would refuse them."""
    args = Args()
    shorts: list[str] = []  # letters in order, interpreted once the operation is known
    longs: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok == "--":
            args.targets.extend(argv[i:])
            break
        if tok.startswith("--") and len(tok) > 2:
            name, eq, val = tok[2:].partition("=")
            if name in LONG_OPERATIONS and name != "help":
                _set_op(args, OPERATIONS[LONG_OPERATIONS[name]])
                continue
            if name == "repair":  # ours, no pacman letter: journal recovery
                _set_op(args, "repair")
                continue
            if name in VALUE_LONG:
                if not eq:
                    if i >= len(argv):
                        raise UsageError("alpm: " + _("option '--{name}' requires an argument")
                                         .format(name=name))
                    val = argv[i]
                    i += 1
                args.values.setdefault(name, []).append(val)
            elif eq:
                raise UsageError("alpm: " + _("option '--{name}' doesn't allow an argument")
                                 .format(name=name))
            longs.append(name)
            continue
        if tok.startswith("-") and len(tok) > 1:
            j = 1
            while j < len(tok):
                ch = tok[j]
                j += 1
                if ch in OPERATIONS and ch.isupper() or ch == "V":
                    _set_op(args, OPERATIONS[ch])
                elif ch in VALUE_SHORT:
                    val = tok[j:]
                    if not val:
                        if i >= len(argv):
                            raise UsageError("alpm: " + _("option requires an argument -- '{ch}'")
                                                .format(ch=ch))
                        val = argv[i]
                        i += 1
                    args.values.setdefault(VALUE_SHORT[ch], []).append(val)
                    longs.append(VALUE_SHORT[ch])
                    break
                else:
                    shorts.append(ch)
            continue
        args.targets.append(tok)
    op = args.op
    if op is None:
        if "h" in shorts or "help" in longs:
            args.op = "help"
            return args
        raise UsageError(_("error: ") + _("no operation specified (use -h for help)"))
    # pacman's first pass (getopt over every option it has) refuses unknown options;
    # then -h shows the operation's help before the options are checked against it.
    known_short = set(COMMON_SHORT) | {c for m, _values in OP_FLAGS.values() for c in m}
    known_long = COMMON_LONG | {n for m, ls in OP_FLAGS.values() for n in (*m.values(), *ls)}
    for ch in shorts:
        if ch not in known_short:
            raise UsageError("alpm: " + _("invalid option -- '{ch}'").format(ch=ch))
    for name in longs:
        if name not in known_long:
            raise UsageError("alpm: " + _("unrecognized option '--{name}'").format(name=name))
    if "h" in shorts or "help" in longs:
        args.flags["help"] = 1
        return args
    short_map, op_longs = OP_FLAGS[op]
    allowed_long = COMMON_LONG | op_longs | set(short_map.values())
    for ch in shorts:
        short = COMMON_SHORT.get(ch) or short_map.get(ch)
        if short is None:
            raise UsageError(_("error: ") + _("invalid option '-{ch}'").format(ch=ch))
        args.flags[short] = args.flags.get(short, 0) + 1
    for name in longs:
        if name not in allowed_long:
            raise UsageError(_("error: ") + _("invalid option '--{name}'").format(name=name))
        args.flags[name] = args.flags.get(name, 0) + 1
    return args
