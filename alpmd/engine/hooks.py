"""alpm hooks: loading from the hook directories, trigger matching, running (libalpm's hook.c).

Directories are read last to first, so a hook in a later directory overrides
one of the same name in an earlier directory; a symlink to ``/dev/null``
parses as a trigger-less hook, which masks without ever running. Hooks run
sorted by name (the ``.hook`` suffix ignored). A file that cannot be parsed
fails PreTransaction hooks as a whole (as libalpm, the transaction aborts);
a failing AbortOnFail PreTransaction hook raises ``TRANS_HOOK_FAILED``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from alpmd.engine.conflict import fnmatch_patterns
from alpmd.engine.depend import find_satisfier
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import EventCallback, HookEvent, HookRun
from alpmd.engine.formats.hook import (
    Hook,
    HookOp,
    HookWhen,
    Trigger,
    TriggerType,
    parse_hook,
    validate_hook,
)
from alpmd.engine.handle import Handle
from alpmd.engine.log import LogLevel
from alpmd.engine.package import Package, Part
from alpmd.engine.scriptlet import run_chroot

__all__ = ["HOOK_SUFFIX", "LDCONFIG", "Hook", "TransactionInfo", "load_hooks", "matches",
           "run_hooks", "run_ldconfig"]

HOOK_SUFFIX = ".hook"
LDCONFIG = "/sbin/ldconfig"


@dataclass
class TransactionInfo:
    """What a transaction does, as hook triggers see it (computed before the commit).

    ``upgraded`` holds ``(new, old)`` pairs: upgrades, downgrades and reinstalls.
    ``removed`` are installed packages going away without a same-name successor.
    """

    installed: list[Package] = field(default_factory=list)
    upgraded: list[tuple[Package, Package]] = field(default_factory=list)
    removed: list[Package] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Load every file list now: PostTransaction hooks match against the old
        # versions, whose database entries are gone by then.
        for pkg in [*self.installed, *(p for pair in self.upgraded for p in pair), *self.removed]:
            pkg.ensure(Part.FILES)

    @property
    def added(self) -> list[Package]:
        return [*self.installed, *(new for new, _old in self.upgraded)]

    @property
    def files_installed(self) -> list[str]:
        return sorted({f for p in self.added for f in p.files})

    @property
    def files_removed(self) -> list[str]:
        olds = [old for _new, old in self.upgraded] + self.removed
        return sorted({f for p in olds for f in p.files})


def _sort_key(name: str) -> bytes:
    stem = name[:-len(HOOK_SUFFIX)] if name.endswith(HOOK_SUFFIX) else name
    return stem.encode("utf-8", "surrogateescape")


#: Largest hook file read (real ones are a few hundred bytes).
MAX_HOOK_SIZE = 1 << 20


def _read_hook(path: str) -> str:
    """A hook file's text; ``/dev/null`` (the documented mask) reads as empty.

    A package can ship a hook that is a symlink to ``/dev/zero`` or a fifo, or a
    huge file: read before every transaction (as root), it must neither hang nor
    fill the memory, so anything but a regular file of at most MAX_HOOK_SIZE
    bytes raises ValueError (OSError when it cannot be opened).
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
            return ""
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        data = fh.read(MAX_HOOK_SIZE + 1)
    if len(data) > MAX_HOOK_SIZE:
        raise ValueError(f"larger than {MAX_HOOK_SIZE} bytes")
    return data.decode("utf-8", "surrogateescape")


def _load(handle: Handle) -> tuple[list[Hook], list[str]]:
    hooks: dict[str, Hook] = {}
    errors: list[str] = []
    for directory in reversed(handle.options.hookdirs):
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            continue
        except OSError as exc:
            errors.append(f"could not open directory: {directory}: {exc.strerror}")
            continue
        for name in names:
            if len(name) < len(HOOK_SUFFIX) or not name.endswith(HOOK_SUFFIX):
                continue
            if name in hooks:
                continue  # overridden by a later directory
            path = os.path.join(directory, name)
            try:
                if os.path.isdir(path):
                    continue
                text = _read_hook(path)
            except OSError as exc:
                errors.append(f"could not stat file {path}: {exc.strerror}")
                continue
            except ValueError as exc:
                errors.append(f"could not read hook file {path}: {exc}")
                continue
            try:
                hook = parse_hook(text, path)
            except AlpmError as exc:
                errors.append(str(exc))
                continue
            problems = validate_hook(hook, path)
            for warning in hook.warnings:
                handle.log(LogLevel.WARNING, warning)
            if problems:
                errors.extend(problems)
                continue
            hook.name = name
            hooks[name] = hook
    for message in errors:
        handle.log(LogLevel.ERROR, message)
    return sorted(hooks.values(), key=lambda h: _sort_key(h.name)), errors


def load_hooks(handle: Handle) -> list[Hook]:
    """Every usable hook of the handle's hook directories, in run order (masks included)."""
    return _load(handle)[0]


def _match_path(t: Trigger, trans: TransactionInfo, noextract: Sequence[str]
                ) -> tuple[list[str], list[str], list[str]]:
    install = {f for p in trans.added for f in p.files
               if fnmatch_patterns(noextract, f) != 0 and fnmatch_patterns(t.targets, f) == 0}
    olds = [old for _new, old in trans.upgraded] + trans.removed
    remove = {f for p in olds for f in p.files if fnmatch_patterns(t.targets, f) == 0}
    upgrade = install & remove
    return sorted(install - upgrade), sorted(upgrade), sorted(remove - upgrade)


def _match_package(t: Trigger, trans: TransactionInfo) -> tuple[list[str], list[str], list[str]]:
    install = [p.name for p in trans.installed if fnmatch_patterns(t.targets, p.name) == 0]
    upgrade = [new.name for new, _old in trans.upgraded
               if fnmatch_patterns(t.targets, new.name) == 0]
    added = {p.name for p in trans.added}
    remove = [p.name for p in trans.removed
              if fnmatch_patterns(t.targets, p.name) == 0 and p.name not in added]
    return install, upgrade, remove


def matches(hook: Hook, trans: TransactionInfo, noextract: Sequence[str] = ()) -> list[str] | None:
    """The hook's targets for this transaction (sorted, unique), or None when it is not triggered."""
    found: set[str] = set()
    hit = False
    for t in hook.triggers:
        if t.type is TriggerType.PACKAGE:
            install, upgrade, remove = _match_package(t, trans)
        else:
            install, upgrade, remove = _match_path(t, trans, noextract)
        for op, got in ((HookOp.INSTALL, install), (HookOp.UPGRADE, upgrade),
                        (HookOp.REMOVE, remove)):
            if op in t.operations and got:
                hit = True
                found.update(got)
    if not hit:
        return None
    return sorted(found, key=lambda s: s.encode("utf-8", "surrogateescape"))


def _satisfied(handle: Handle, depend: str) -> bool:
    try:
        return find_satisfier(handle.localdb.packages, depend) is not None
    except AlpmError:
        return False


def run_hooks(handle: Handle, when: str, trans: TransactionInfo, *,
              event: EventCallback | None = None) -> None:
    """Run the hooks of ``when`` (``PreTransaction``/``PostTransaction``) this transaction triggers.

    Raises ``AlpmError(TRANS_HOOK_FAILED)`` for PreTransaction when a hook file
    is invalid or an AbortOnFail hook fails; PostTransaction failures are
    only logged.
    """
    stage = HookWhen(when)
    hooks, errors = _load(handle)
    if errors and stage is HookWhen.PRE:
        raise AlpmError(ErrorCode.TRANS_HOOK_FAILED, errors=errors)
    triggered: list[tuple[Hook, list[str]]] = []
    for hook in hooks:
        if hook.action.when is not stage:
            continue
        got = matches(hook, trans, handle.options.noextract)
        if got is not None:
            triggered.append((hook, got))
    if not triggered:
        return
    if event is not None:
        event(HookEvent(done=False, when=when))
    failed: list[str] = []
    total = len(triggered)
    for position, (hook, targets) in enumerate(triggered, 1):
        handle.logaction("ALPM", f"running '{hook.name}'...")
        run = HookRun(done=False, name=hook.name, description=hook.action.description,
                      position=position, total=total)
        if event is not None:
            event(run)
        ok = _run_one(handle, hook, targets, event)
        if event is not None:
            event(HookRun(done=True, name=hook.name, description=hook.action.description,
                          position=position, total=total))
        if not ok and hook.action.abort_on_fail:
            failed.append(hook.name)
            if stage is HookWhen.PRE:
                break
    if event is not None:
        event(HookEvent(done=True, when=when))
    if failed and stage is HookWhen.PRE:
        raise AlpmError(ErrorCode.TRANS_HOOK_FAILED, hooks=failed)


def _run_one(handle: Handle, hook: Hook, targets: list[str], event: EventCallback | None) -> bool:
    for depend in hook.action.depends:
        if not _satisfied(handle, depend):
            handle.log(LogLevel.ERROR, f"unable to run hook {hook.name}: "
                                       "could not satisfy dependencies")
            return False
    argv = hook.action.exec or []
    if not argv:
        return False
    stdin = "".join(t + "\n" for t in targets).encode("utf-8", "surrogateescape") \
        if hook.action.needs_targets else None
    return run_chroot(handle, argv, stdin=stdin, event=event) == 0


def run_ldconfig(handle: Handle, *, event: EventCallback | None = None) -> int:
    """``ldconfig`` chrooted into the root after packages were installed or removed.

    As libalpm: only when the root has ``etc/ld.so.conf`` and an executable
    ``/sbin/ldconfig``; otherwise nothing happens (0).
    """
    root = handle.options.root
    if not os.path.exists(root + "etc/ld.so.conf"):
        return 0
    if not os.access(root + LDCONFIG.lstrip("/"), os.X_OK):
        return 0
    handle.log(LogLevel.DEBUG, "running ldconfig")
    return run_chroot(handle, ["ldconfig"], path=LDCONFIG, event=event)
