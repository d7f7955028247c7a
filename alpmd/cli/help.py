"""``alpm -h`` and ``alpm -<op> -h``: the usage of the command or of one operation.

The option lists are generated from :mod:`alpmd.cli.args` (what the parser really
accepts for the operation), so help and parser cannot drift apart; only the
one-line descriptions live here. Layout follows pacman's usage(): options with a
short letter first (by letter), then long-only options (by name).
"""

from __future__ import annotations

from alpmd.cli.args import COMMON_LONG, COMMON_SHORT, OP_FLAGS, VALUE_LONG

#: operation -> (letter, synopsis of its targets), in pacman's order
OPERATION_USAGE = {
    "database": ("D", "<options> <package(s)>"),
    "files": ("F", "[options] [file(s)]"),
    "query": ("Q", "[options] [package(s)]"),
    "remove": ("R", "[options] <package(s)>"),
    "sync": ("S", "[options] [package(s)]"),
    "deptest": ("T", "[options] [package(s)]"),
    "upgrade": ("U", "[options] <file(s)>"),
}

#: the placeholder shown after an option that takes a value (or a target it reads)
_ARG = {
    "dbpath": "<path>", "root": "<path>", "arch": "<arch>", "cachedir": "<dir>",
    "color": "<when>", "config": "<path>", "gpgdir": "<path>", "hookdir": "<dir>",
    "logfile": "<path>", "ignore": "<pkg>", "ignoregroup": "<grp>",
    "assume-installed": "<package=version>", "overwrite": "<glob>",
    "print-format": "<string>", "ask": "<number>",
}

#: descriptions that depend on the operation
_BY_OP: dict[tuple[str, str], str] = {
    ("sync", "clean"): "delete cached packages no longer needed (-cc: every cached file)",
    ("sync", "groups"): "show the packages of a group (-gg: every group with its packages)",
    ("sync", "info"): "show details of repository packages (-ii: more details)",
    ("sync", "list"): "list the packages of a repository <repo>",
    ("sync", "search"): "search the repositories for <regex>",
    ("sync", "quiet"): "print less (names only for searches and lists)",
    ("query", "groups"): "show the installed members of a group",
    ("query", "info"): "show details of installed packages (-ii: with backup files)",
    ("query", "list"): "list the files a package owns",
    ("query", "search"): "search installed packages for <regex>",
    ("query", "check"): "check the files of a package exist (-kk: their properties too)",
    ("query", "quiet"): "print less (names only for searches and lists)",
    ("database", "check"): "check the local database is consistent (-kk: with the repositories)",
    ("database", "quiet"): "do not print success messages",
    ("database", "asdeps"): "mark packages as installed as dependencies",
    ("database", "asexplicit"): "mark packages as explicitly installed",
    ("files", "list"): "list the files of a repository package",
    ("files", "quiet"): "print less (paths or names only)",
    ("deptest", "nodeps"): "skip version checks",
}

_DESCRIPTION = {
    "dbpath": "use another database directory",
    "root": "use another installation root",
    "verbose": "accepted for compatibility; prints nothing more",
    "arch": "use another architecture",
    "cachedir": "use another package cache directory",
    "color": "colour the output: never, always or auto",
    "config": "read another configuration file",
    "confirm": "ask before changing anything (undoes --noconfirm)",
    "debug": "accepted for compatibility; prints nothing more",
    "disable-download-timeout": "accepted for compatibility; downloads keep their timeouts",
    "gpgdir": "use another GnuPG home directory",
    "hookdir": "use another hook directory",
    "logfile": "write the log to another file",
    "noconfirm": "never ask; answer every question with its default",
    "sysroot": "accepted for compatibility; does not change root",
    "ask": "answer questions from a bit mask",
    "help": "show this help",
    "noprogressbar": "do not draw progress bars",
    "nodeps": "skip dependency version checks (-dd: skip dependency checks)",
    "dbonly": "change the database entries only, not the files",
    "noscriptlet": "do not run install scriptlets",
    "print": "print the targets instead of changing anything",
    "print-format": "print the targets in this format (%n %v %l %r %s)",
    "assume-installed": "treat this package as installed when checking dependencies",
    "needed": "do not reinstall packages that are up to date",
    "asdeps": "install packages as dependencies",
    "asexplicit": "install packages as explicitly installed",
    "ignore": "do not upgrade this package (repeatable, comma lists)",
    "ignoregroup": "do not upgrade the packages of this group (repeatable)",
    "overwrite": "overwrite conflicting files matching <glob> (repeatable)",
    "sysupgrade": "upgrade every outdated package (-uu: allow downgrades)",
    "downloadonly": "download the packages but install nothing",
    "convert": "move the local database to another store (files or sqlite)",
    "refresh": "download fresh databases (-yy: even if up to date)",
    "cascade": "also remove every package that depends on the targets",
    "nosave": "remove backup files too, without keeping .pacsave copies",
    "recursive": "also remove dependencies nothing else needs (-ss: explicit ones too)",
    "unneeded": "remove only the targets nothing depends on",
    "changelog": "show a package's changelog",
    "deps": "only packages installed as dependencies [filter]",
    "explicit": "only explicitly installed packages [filter]",
    "foreign": "only packages not found in any repository [filter]",
    "native": "only packages found in a repository [filter]",
    "owns": "show the package owning <file>",
    "file": "query a package file <package> instead of the database",
    "unrequired": "only packages nothing requires (-tt: optional dependencies ignored) [filter]",
    "upgrades": "only outdated packages [filter]",
    "regex": "treat targets as regular expressions",
    "machinereadable": "print machine-readable records",
}

_TARGET_ARG = {("sync", "list"): "<repo>", ("sync", "search"): "<regex>",
               ("query", "owns"): "<file>", ("query", "file"): "<package>",
               ("query", "search"): "<regex>"}


def options(op: str) -> list[tuple[str | None, str]]:
    """(short letter or None, long name) of every option ``op`` accepts, in help order."""
    short_map, op_longs = OP_FLAGS[op]
    letters = {**{v: k for k, v in COMMON_SHORT.items()}, **{v: k for k, v in short_map.items()}}
    names = (COMMON_LONG | op_longs | set(short_map.values())) - {"help", "ask"}
    with_short = sorted((letters[n], n) for n in names if n in letters)
    long_only = sorted(n for n in names if n not in letters)
    return [(s, n) for s, n in with_short] + [(None, n) for n in long_only]


def op_usage(op: str, prog: str) -> str:
    """The help of one operation."""
    letter, synopsis = OPERATION_USAGE[op]
    lines = [f"usage:  {prog} {{-{letter} --{op}}} {synopsis}", "options:"]
    for short, name in options(op):
        arg = _TARGET_ARG.get((op, name)) or (_ARG.get(name) if name in VALUE_LONG else None)
        head = (f"  -{short}, --{name}" if short else f"      --{name}")
        if arg:
            head += f" {arg}"
        desc = _BY_OP.get((op, name)) or _DESCRIPTION[name]
        if len(head) < 22:
            lines.append(f"{head:<22} {desc}".rstrip())
        else:
            lines.append(head)
            lines.append(" " * 23 + desc)
    return "\n".join(lines) + "\n"


def main_usage(prog: str) -> str:
    """The help of the command: its operations."""
    lines = [f"usage:  {prog} <operation> [...]", "operations:",
             f"    {prog} {{-h --help}}", f"    {prog} {{-V --version}}"]
    for op, (letter, synopsis) in OPERATION_USAGE.items():
        lines.append(f"    {prog} " + f"{{-{letter} --{op}}}".ljust(15) + f" {synopsis}")
    lines += ["", f"use '{prog} {{-h --help}}' with an operation for available options"]
    return "\n".join(lines) + "\n"
