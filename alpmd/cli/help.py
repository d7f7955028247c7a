"""``alpm -h`` and ``alpm -<op> -h``: the usage of the command or of one operation.

The option lists are generated from :mod:`alpmd.cli.args` (what the parser really
accepts for the operation), so help and parser cannot drift apart; only the
one-line descriptions live here. Layout follows pacman's usage(): options with a
short letter first (by letter), then long-only options (by name). Descriptions and
headings are in the user's language; option names, placeholders and synopses stay as
typed, and under ``C`` the text is the English as written.
"""

from __future__ import annotations

from alpmd.cli.args import COMMON_LONG, COMMON_SHORT, OP_FLAGS, VALUE_LONG
from alpmd.i18n import N_
from alpmd.i18n import gettext as _

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
    ("sync", "clean"): N_("delete cached packages no longer needed (-cc: every cached file)"),
    ("sync", "groups"): N_("show the packages of a group (-gg: every group with its packages)"),
    ("sync", "info"): N_("show details of repository packages (-ii: more details)"),
    ("sync", "list"): N_("list the packages of a repository <repo>"),
    ("sync", "search"): N_("search the repositories for <regex>"),
    ("sync", "quiet"): N_("print less (names only for searches and lists)"),
    ("query", "groups"): N_("show the installed members of a group"),
    ("query", "info"): N_("show details of installed packages (-ii: with backup files)"),
    ("query", "list"): N_("list the files a package owns"),
    ("query", "search"): N_("search installed packages for <regex>"),
    ("query", "check"): N_("check the files of a package exist (-kk: their properties too)"),
    ("query", "quiet"): N_("print less (names only for searches and lists)"),
    ("database", "check"): N_("check the local database is consistent (-kk: with the repositories)"),
    ("database", "quiet"): N_("do not print success messages"),
    ("database", "asdeps"): N_("mark packages as installed as dependencies"),
    ("database", "asexplicit"): N_("mark packages as explicitly installed"),
    ("files", "list"): N_("list the files of a repository package"),
    ("files", "quiet"): N_("print less (paths or names only)"),
    ("deptest", "nodeps"): N_("skip version checks"),
}

_DESCRIPTION = {
    "dbpath": N_("use another database directory"),
    "root": N_("use another installation root"),
    "verbose": N_("accepted for compatibility; prints nothing more"),
    "arch": N_("use another architecture"),
    "cachedir": N_("use another package cache directory"),
    "color": N_("colour the output: never, always or auto"),
    "config": N_("read another configuration file"),
    "confirm": N_("ask before changing anything (undoes --noconfirm)"),
    "debug": N_("accepted for compatibility; prints nothing more"),
    "disable-download-timeout": N_("accepted for compatibility; downloads keep their timeouts"),
    "gpgdir": N_("use another GnuPG home directory"),
    "hookdir": N_("use another hook directory"),
    "logfile": N_("write the log to another file"),
    "noconfirm": N_("never ask; answer every question with its default"),
    "sysroot": N_("accepted for compatibility; does not change root"),
    "ask": N_("answer questions from a bit mask"),
    "help": N_("show this help"),
    "noprogressbar": N_("do not draw progress bars"),
    "nodeps": N_("skip dependency version checks (-dd: skip dependency checks)"),
    "dbonly": N_("change the database entries only, not the files"),
    "noscriptlet": N_("do not run install scriptlets"),
    "print": N_("print the targets instead of changing anything"),
    "print-format": N_("print the targets in this format (%n %v %l %r %s)"),
    "assume-installed": N_("treat this package as installed when checking dependencies"),
    "needed": N_("do not reinstall packages that are up to date"),
    "asdeps": N_("install packages as dependencies"),
    "asexplicit": N_("install packages as explicitly installed"),
    "ignore": N_("do not upgrade this package (repeatable, comma lists)"),
    "ignoregroup": N_("do not upgrade the packages of this group (repeatable)"),
    "overwrite": N_("overwrite conflicting files matching <glob> (repeatable)"),
    "sysupgrade": N_("upgrade every outdated package (-uu: allow downgrades)"),
    "downloadonly": N_("download the packages but install nothing"),
    "convert": N_("move the local database to another store (files or sqlite)"),
    "refresh": N_("download fresh databases (-yy: even if up to date)"),
    "cascade": N_("also remove every package that depends on the targets"),
    "nosave": N_("remove backup files too, without keeping .pacsave copies"),
    "recursive": N_("also remove dependencies nothing else needs (-ss: explicit ones too)"),
    "unneeded": N_("remove only the targets nothing depends on"),
    "changelog": N_("show a package's changelog"),
    "deps": N_("only packages installed as dependencies [filter]"),
    "explicit": N_("only explicitly installed packages [filter]"),
    "foreign": N_("only packages not found in any repository [filter]"),
    "native": N_("only packages found in a repository [filter]"),
    "owns": N_("show the package owning <file>"),
    "file": N_("query a package file <package> instead of the database"),
    "unrequired": N_("only packages nothing requires (-tt: optional dependencies ignored) [filter]"),
    "upgrades": N_("only outdated packages [filter]"),
    "regex": N_("treat targets as regular expressions"),
    "machinereadable": N_("print machine-readable records"),
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
    # TRANSLATORS: heading of `alpm -h`, before the command's synopsis
    lines = [_("usage:") + f"  {prog} {{-{letter} --{op}}} {synopsis}",
             # TRANSLATORS: heading of the option list in `alpm -S -h` (and the other operations)
             _("options:")]
    for short, name in options(op):
        arg = _TARGET_ARG.get((op, name)) or (_ARG.get(name) if name in VALUE_LONG else None)
        head = (f"  -{short}, --{name}" if short else f"      --{name}")
        if arg:
            head += f" {arg}"
        desc = _(_BY_OP.get((op, name)) or _DESCRIPTION[name])
        if len(head) < 22:
            lines.append(f"{head:<22} {desc}".rstrip())
        else:
            lines.append(head)
            lines.append(" " * 23 + desc)
    return "\n".join(lines) + "\n"


def main_usage(prog: str) -> str:
    """The help of the command: its operations."""
    lines = [_("usage:") + f"  {prog} <operation> [...]",
             # TRANSLATORS: heading of the operation list in `alpm -h`
             _("operations:"),
             f"    {prog} {{-h --help}}", f"    {prog} {{-V --version}}"]
    for op, (letter, synopsis) in OPERATION_USAGE.items():
        lines.append(f"    {prog} " + f"{{-{letter} --{op}}}".ljust(15) + f" {synopsis}")
    # TRANSLATORS: {command} is "alpm {-h --help}", typed as is
    hint = _("use '{command}' with an operation for available options")
    lines += ["", hint.format(command=f"{prog} {{-h --help}}")]
    return "\n".join(lines) + "\n"
