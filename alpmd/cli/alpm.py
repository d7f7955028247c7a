"""The ``alpm`` command: pacman's command line over the alpmd engine.

main() parses the arguments (pacman's grammar), reads pacman.conf with the
command-line overrides, builds a Handle with the configured repositories and
hands over to the module of the operation (query.py for -Q, sync.py for -S...,
mirroring pacman's own source files). Exit codes and messages are pacman's.
Nothing here needs PATH or HOME: ``env -i alpm -Q`` works.

Start-up is most of a query's time (pacman answers ``-Qo`` in 10 ms), so the
command loads only what the operation needs: each operation's module is
imported by _dispatch, ``inspect`` is deferred (see DeferredModule), the cyclic
collector waits while modules load (what they made then goes to its oldest
generation unwalked), and a query ends with ``os._exit`` once its output is
flushed. tests/test_imports.py pins what each query imports and that loading
runs no collection.
"""

from __future__ import annotations

import _thread
import atexit
import gc
import sys
from types import ModuleType


class DeferredModule(ModuleType):
    """A stand-in in ``sys.modules`` that imports the real module on first attribute use.

    ``dataclasses`` imports ``inspect`` (with ``ast``, ``dis``, ``tokenize``: about
    8 ms of every command's start-up) only to write a docstring for a dataclass
    that has none; every alpmd dataclass has one (tests/test_imports.py), so a
    query never touches it. Whoever does use ``inspect`` gets the real module:
    the first attribute read imports it, every read is delegated to it, and
    ``import inspect`` from then on returns the real module itself.
    """

    def __getattr__(self, attr: str) -> object:
        real = sys.modules.get(self.__name__)
        if real is None or real is self:
            sys.modules.pop(self.__name__, None)
            real = __import__(self.__name__)
        return getattr(real, attr)


def defer_import(name: str) -> None:
    """Put a :class:`DeferredModule` for ``name`` in ``sys.modules`` unless it is loaded.

    Only the ``alpm`` command does this, first thing (a short-lived, single-threaded
    process); a program that imports alpmd as a library keeps its imports as they are.
    """
    if name not in sys.modules:
        sys.modules[name] = DeferredModule(name)


if "dataclasses" not in sys.modules:
    defer_import("inspect")

# The imports below come after the stand-in is in place, with the cyclic garbage
# collector paused: loading the engine creates tens of thousands of objects and no
# garbage, and a dozen collections would otherwise walk them all (1-2 ms).
_collecting = gc.isenabled()
gc.disable()
try:
    import os
    from collections.abc import Callable
    from dataclasses import dataclass

    from alpmd.cli.args import Args, UsageError, parse
    from alpmd.cli.output import Colors, Out
    from alpmd.cli.stdout import GuardedOutput, OutputLost, guard_streams
    from alpmd.engine.config import Config, load_config
    from alpmd.engine.errors import AlpmError, ErrorCode
    from alpmd.engine.handle import Handle
    from alpmd.engine.log import LogLevel
    from alpmd.i18n import gettext as _
    from alpmd.i18n import localize
finally:
    # What loading made lives on: it goes to the oldest generation at once (freeze, then
    # unfreeze, moves every tracked object there) instead of being walked by the young
    # collection that the first allocation after gc.enable() would start.
    gc.freeze()
    gc.unfreeze()
    if _collecting:
        gc.enable()

DEFAULT_CONFIG = "/etc/pacman.conf"


@dataclass(eq=False, repr=False)
class Context:
    """What every operation gets: the parsed arguments, the handle, the output."""

    args: Args
    handle: Handle
    out: Out
    config: Config

    @property
    def quiet(self) -> bool:
        return self.args.has("quiet")


def _use_color(args: Args, config_color: bool) -> bool:
    mode = args.value("color")
    if mode is None:
        mode = "auto" if config_color else "never"
    if mode == "always":
        return True
    if mode == "auto":
        return sys.stdout.isatty()
    return False


def _log_callback(out: Out, op: str) -> Callable[[LogLevel, str], None]:
    def cb(level: LogLevel, message: str) -> None:
        if op == "files":
            message = message.replace("(use '-Sy' to download)", "(use '-Fy' to download)")
        if level & LogLevel.ERROR:
            out.error(message)
        elif level & LogLevel.WARNING:
            out.warning(message)

    return cb


def build_handle(args: Args, out: Out) -> tuple[Handle, Config]:
    """Read the configuration (command-line values first) and open a handle on it."""
    config = load_config(
        args.value("config") or DEFAULT_CONFIG,
        root_override=args.value("root"),
        dbpath_override=args.value("dbpath"),
        gpgdir_override=args.value("gpgdir"),
        logfile_override=args.value("logfile"),
        cachedir_overrides=args.all_values("cachedir"),
        hookdir_overrides=args.all_values("hookdir"),
        arch_overrides=args.all_values("arch"),
    )
    handle, errors = Handle.from_config(
        config,
        ignorepkg=list(config.ignore_pkg) + _split_values(args.all_values("ignore")),
        ignoregroup=list(config.ignore_group) + _split_values(args.all_values("ignoregroup")),
        dbext=".files" if args.op == "files" else ".db",
    )
    handle.add_log_callback(_log_callback(out, args.op or ""))
    for exc in errors:
        # pacman reports a repository it cannot register and goes on without it.
        out.error(_("could not register '{db}' database ({error})").format(
            db=exc.details.get("name", ""), error=exc.code.strerror))
    return handle, config


def _split_values(values: list[str]) -> list[str]:
    """--ignore a,b --ignore c: comma-separated lists, as pacman accepts them."""
    return [v for value in values for v in value.split(",") if v]


#: Operations that only read: the command may end them with ``os._exit`` (see main).
_READ_ONLY_OPS = frozenset({"query", "deptest"})
#: Operations that write and may still end with ``os._exit`` (see main): ``-U`` writes its
#: files, database entries and log lines through descriptors it closes (or the handle's
#: release closes) before returning, and leaves its journal's last flush to a detached
#: process.
_FAST_EXIT_WRITERS = frozenset({"upgrade"})


class _Ending:
    """Whether the running operation only read, or writes but may end without the
    interpreter's teardown (set by _dispatch, read by main), and the command's guarded
    standard output (see :mod:`alpmd.cli.stdout`)."""

    read_only = False
    fast_exit = False
    output: GuardedOutput | None = None


def _dispatch(ctx: Context) -> int:
    op = ctx.args.op
    _Ending.read_only = op in _READ_ONLY_OPS
    _Ending.fast_exit = op in _FAST_EXIT_WRITERS
    if _Ending.output is not None:
        _Ending.output.stop = _Ending.read_only  # a change goes on to its end
    if op == "query":
        from alpmd.cli import query

        return query.run(ctx)
    if op == "sync":
        from alpmd.cli import sync

        return sync.run(ctx)
    if op == "files":
        from alpmd.cli import files

        return files.run(ctx)
    if op == "database":
        from alpmd.cli import database

        return database.run(ctx)
    if op == "upgrade":
        from alpmd.cli import upgrade

        return upgrade.run(ctx)
    if op == "remove":
        from alpmd.cli import remove

        return remove.run(ctx)
    if op == "repair":
        from alpmd.cli import repair

        return repair.run(ctx)
    if op == "deptest":
        from alpmd.cli import deptest

        return deptest.run(ctx)
    ctx.out.error(_("the {op} operation is not supported by this front end yet").format(op=op))
    return 1


def _tune_gc() -> None:
    """For the short-lived command only: fewer collections while databases load.

    Loading creates many containers and few cycles; the imported modules' objects
    are frozen out of the collector's way (not done when a caller runs main()
    in its own long-lived process).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``alpm`` command; returns (and exits with) pacman's exit code."""
    prog = sys.argv[0] if sys.argv and sys.argv[0] else "alpm"
    command = argv is None  # the ``alpm`` process itself, not a caller's main(argv)
    if argv is None:
        argv = sys.argv[1:]
        _tune_gc()
        _Ending.output = guard_streams(stop=True)
    try:
        code = _main(argv, prog)
    except OutputLost:
        code = 1
    except BrokenPipeError:
        # Like pacman under `| head`: stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 1
    except KeyboardInterrupt:
        code = 130
    try:
        sys.stdout.flush()
    except OutputLost:
        code = 1
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    output = _Ending.output
    if output is not None and output.lost is not None:
        output.stop = False  # what is still buffered goes nowhere, quietly
        if not output.quietly:
            sys.stderr.write(_("error: ") + _("could not write the output: {error}").format(
                error=output.lost.strerror) + "\n")
            code = code or 1
    if command and (_Ending.read_only or (_Ending.fast_exit and _thread._count() == 0
                                          and atexit._ncallbacks() == 0)):
        # Skip the interpreter's teardown, which frees every object one by one (a few
        # milliseconds after a query read 1,500 packages, 2% of a 200-package -U's
        # instructions): the handle was released (log and database closed), the
        # output is flushed, and alpmd registers no exit handlers; a writer also needs
        # no thread but this one and no exit handler left (else it keeps the teardown,
        # as every other operation that writes does).
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _conflicting(args: Args) -> tuple[str, str] | None:
    """The first pair of options pacman refuses together (its checkargs_* functions)."""
    def has(name: str) -> bool:
        return args.has(name)

    pairs: list[tuple[bool, str, str]] = []
    if args.op == "query":
        display = ["changelog", "check", "info", "list"]
        filters = ["deps", "explicit", "upgrades", "unrequired", "native", "foreign"]
        if has("file"):
            pairs += [(has(o), "--file", f"--{o}") for o in ("groups", "search", "owns")]
        elif has("search") or has("owns"):
            first = "--search" if has("search") else "--owns"
            pairs += [(has(o), first, f"--{o}") for o in display + filters]
            if first == "--owns":
                pairs.append((has("groups"), "--owns", "--groups"))
        pairs.append((has("deps") and has("explicit"), "--deps", "--explicit"))
        pairs.append((has("native") and has("foreign"), "--native", "--foreign"))
    elif args.op == "sync":
        chains = [("info", ["groups", "list", "search", "sysupgrade", "downloadonly"]),
                  ("search", ["groups", "list", "sysupgrade", "downloadonly"]),
                  ("list", ["groups", "sysupgrade", "downloadonly"]),
                  ("groups", ["sysupgrade"])]
        if not has("clean"):
            for first, others in chains:
                if has(first):
                    pairs += [(has(o), f"--{first}", f"--{o}") for o in others]
                    break
    elif args.op == "database":
        pairs.append((has("asdeps") and has("asexplicit"), "--asdeps", "--asexplicit"))
        if has("check"):
            pairs.append((has("asdeps"), "--asdeps", "--check"))
            pairs.append((has("asexplicit"), "--asexplicit", "--check"))
    for bad, first, second in pairs:
        if bad:
            return first, second
    return None


def _main(argv: list[str], prog: str) -> int:
    try:
        args = parse(argv)
    except UsageError as exc:
        msg = str(exc)
        if msg.startswith("alpm: "):
            msg = f"{prog}: " + msg[len("alpm: "):]
        sys.stderr.write(msg + "\n")
        return 1
    if args.op == "help" or args.has("help"):
        from alpmd.cli.help import OPERATION_USAGE, main_usage, op_usage

        name = os.path.basename(prog)
        sys.stdout.write(op_usage(args.op, name) if args.op in OPERATION_USAGE
                         else main_usage(name))
        return 0
    clash = _conflicting(args)
    if clash is not None:
        sys.stderr.write(_("error: ") + _("invalid option: '{a}' and '{b}' may not be used "
                                          "together").format(a=clash[0], b=clash[1]) + "\n")
        return 1
    if args.op == "version":
        sys.stdout.write("alpm (alpmd) 0.1.0 - pacman-compatible front end\n")
        return 0
    out = Out()
    if (args.has("print") or args.value("print-format") is not None) and not args.has("clean"):
        out.show_warnings = False  # pacman's print mode displays errors only
    # The engine also logs to Python logging (imported on its first message, quiet
    # unless configured: engine.log.python_log); people get the handle's callbacks.
    try:
        handle, config = build_handle(args, out)
    except AlpmError as exc:
        out.error(localize(exc.msgid))
        return 1
    if not os.path.isdir(handle.dbpath):
        # alpm_initialize refuses a missing database directory; pacman exits with -1.
        out.error(_("failed to initialize alpm library:"))
        sys.stderr.write(_("(root: {root}, dbpath: {dbpath})").format(
            root=config.root_dir, dbpath=config.db_path) + "\n"
            + ErrorCode.NOT_A_DIR.strerror + "\n")
        return 255
    if _use_color(args, config.color):
        out.c = Colors.on()
    ctx = Context(args, handle, out, config)
    try:
        return _dispatch(ctx)
    except AlpmError as exc:
        out.error(localize(exc.msgid))
        return 1
    finally:
        handle.release()


if __name__ == "__main__":
    main()
