"""alpm hook files (``*.hook``, man alpm-hooks(5)): parse/write pair.

A hook is an ini file with one or more ``[Trigger]`` sections and one
``[Action]``. We read it as libalpm's ``_alpm_hook_parse_cb`` does (same
errors for unknown sections, options and values; repeated single-valued
options overwrite with a warning) and keep validation separate
(:func:`validate_hook`), because a trigger-less file is a valid *mask* (a
symlink to ``/dev/null`` disables a hook of the same name).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.sections import wordsplit

__all__ = [
    "Action",
    "Hook",
    "HookOp",
    "HookWhen",
    "Trigger",
    "TriggerType",
    "parse_hook",
    "quote_word",
    "validate_hook",
    "wordsplit",
    "write_hook",
]


class TriggerType(enum.Enum):
    PACKAGE = "Package"
    PATH = "Path"


class HookOp(enum.Flag):
    NONE = 0
    INSTALL = enum.auto()
    UPGRADE = enum.auto()
    REMOVE = enum.auto()


_OPS = {"Install": HookOp.INSTALL, "Upgrade": HookOp.UPGRADE, "Remove": HookOp.REMOVE}


class HookWhen(enum.Enum):
    PRE = "PreTransaction"
    POST = "PostTransaction"


@dataclass
class Trigger:
    """What a hook reacts to: package names or paths (globs, ``!`` negates), per operation."""

    type: TriggerType | None = None
    operations: HookOp = HookOp.NONE
    targets: list[str] = field(default_factory=list)


@dataclass
class Action:
    """What a hook does; ``exec`` is already word-split (no shell is involved)."""

    when: HookWhen | None = None
    exec: list[str] | None = None
    description: str | None = None
    depends: list[str] = field(default_factory=list)
    abort_on_fail: bool = False
    needs_targets: bool = False


@dataclass
class Hook:
    """One hook file; ``name`` is its file name (``foo.hook``), set by the loader."""

    triggers: list[Trigger] = field(default_factory=list)
    action: Action = field(default_factory=Action)
    name: str = ""
    warnings: list[str] = field(default_factory=list)


def _invalid(where: str, message: str) -> AlpmError:
    return AlpmError(ErrorCode.CONFIG_INVALID, f"hook {where} {message}")


_BLANKS = " \t\n\r\v\f"  # C isspace
_QUOTES = "'\""


def quote_word(word: str) -> str:
    """One word written so that :func:`wordsplit` gives it back unchanged.

    Quote characters get a backslash; a blank goes inside double quotes
    (together with a backslash just before it, which would otherwise escape the
    opening quote), so a written line never ends in a blank the reader strips.
    """
    if word == "":
        return "''"
    out: list[str] = []
    i = 0
    while i < len(word):
        c = word[i]
        if c == "\\" and i + 1 < len(word) and word[i + 1] in _BLANKS:
            out.append('"\\' + word[i + 1] + '"')
            i += 2
            continue
        if c in _BLANKS:
            out.append(f'"{c}"')
        elif c in _QUOTES:
            out.append("\\" + c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def parse_hook(text: str, where: str = "<hook>") -> Hook:
    """Read a hook file's text; syntax errors raise ``AlpmError(CONFIG_INVALID)``.

    Warnings (options given twice) are collected in ``Hook.warnings``.
    """
    hook = Hook()
    section: str | None = None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(_BLANKS)
        if not line or line.startswith("#"):
            continue
        at = f"{where} line {lineno}:"
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            if section == "Trigger":
                hook.triggers.append(Trigger())
            elif section != "Action":
                raise _invalid(at, f"invalid section {section}")
            continue
        key, eq, value = line.partition("=")
        key = key.strip(_BLANKS)
        val: str | None = value.strip(_BLANKS) if eq else None
        if section is None:
            raise _invalid(at, f"invalid option {key}")
        if section == "Trigger":
            _trigger_option(hook, hook.triggers[-1], key, val, at)
        else:
            _action_option(hook, key, val, at)
    return hook


def _need(val: str | None, at: str) -> str:
    if val is None:
        raise _invalid(at, "invalid value (null)")
    return val


def _trigger_option(hook: Hook, t: Trigger, key: str, val: str | None, at: str) -> None:
    if key == "Operation":
        op = _OPS.get(_need(val, at))
        if op is None:
            raise _invalid(at, f"invalid value {val}")
        t.operations |= op
    elif key == "Type":
        v = _need(val, at)
        if t.type is not None:
            hook.warnings.append(f"hook {at} overwriting previous definition of Type")
        if v == "Package":
            t.type = TriggerType.PACKAGE
        elif v in ("Path", "File"):  # File: the deprecated spelling of Path
            t.type = TriggerType.PATH
        else:
            raise _invalid(at, f"invalid value {v}")
    elif key == "Target":
        t.targets.append(_need(val, at))
    else:
        raise _invalid(at, f"invalid option {key}")


def _action_option(hook: Hook, key: str, val: str | None, at: str) -> None:
    a = hook.action
    if key == "When":
        v = _need(val, at)
        if a.when is not None:
            hook.warnings.append(f"hook {at} overwriting previous definition of When")
        try:
            a.when = HookWhen(v)
        except ValueError:
            raise _invalid(at, f"invalid value {v}") from None
    elif key == "Description":
        if a.description is not None:
            hook.warnings.append(f"hook {at} overwriting previous definition of Description")
        a.description = _need(val, at)
    elif key == "Depends":
        a.depends.append(_need(val, at))
    elif key == "AbortOnFail":
        a.abort_on_fail = True
    elif key == "NeedsTargets":
        a.needs_targets = True
    elif key == "Exec":
        v = _need(val, at)
        if a.exec is not None:
            hook.warnings.append(f"hook {at} overwriting previous definition of Exec")
        try:
            a.exec = wordsplit(v)
        except ValueError:
            raise _invalid(at, f"invalid value {v}") from None
    else:
        raise _invalid(at, f"invalid option {key}")


def validate_hook(hook: Hook, where: str = "<hook>") -> list[str]:
    """The errors that make libalpm refuse the hook (empty: usable); warnings are appended.

    A hook without any trigger is valid: it only masks lower-priority hooks.
    """
    if not hook.triggers:
        return []
    errors = []
    for t in hook.triggers:
        if not t.targets:
            errors.append(f"Missing trigger targets in hook: {where}")
        if t.type is None:
            errors.append(f"Missing trigger type in hook: {where}")
        if not t.operations:
            errors.append(f"Missing trigger operation in hook: {where}")
    if hook.action.exec is None:
        errors.append(f"Missing Exec option in hook: {where}")
    if hook.action.when is None:
        errors.append(f"Missing When option in hook: {where}")
    elif hook.action.when is not HookWhen.PRE and hook.action.abort_on_fail:
        hook.warnings.append(f"AbortOnFail set for PostTransaction hook: {where}")
    return errors


def _check_value(value: str) -> str:
    if "\n" in value or "\r" in value or value != value.strip(_BLANKS) or value == "":
        raise AlpmError(ErrorCode.WRONG_ARGS, f"hook value cannot be written: {value!r}")
    return value


def write_hook(hook: Hook) -> str:
    """The hook as a file: each ``[Trigger]``, then ``[Action]``; :func:`parse_hook` reads it back."""
    out: list[str] = []
    for t in hook.triggers:
        out.append("[Trigger]")
        if t.type is not None:
            out.append(f"Type = {t.type.value}")
        for name, op in _OPS.items():
            if op in t.operations:
                out.append(f"Operation = {name}")
        out += [f"Target = {_check_value(x)}" for x in t.targets]
        out.append("")
    a = hook.action
    out.append("[Action]")
    if a.description is not None:
        out.append(f"Description = {_check_value(a.description)}")
    if a.when is not None:
        out.append(f"When = {a.when.value}")
    if a.exec is not None:
        out.append("Exec = " + _check_value(" ".join(quote_word(w) for w in a.exec)))
    out += [f"Depends = {_check_value(d)}" for d in a.depends]
    if a.abort_on_fail:
        out.append("AbortOnFail")
    if a.needs_targets:
        out.append("NeedsTargets")
    return "\n".join(out) + "\n"
