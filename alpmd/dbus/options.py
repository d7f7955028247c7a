"""Reading a{sv} option bags: unknown keys are ignored, known keys are type-checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

from dbus_fast.signature import Variant

from alpmd.dbus import errors

T = TypeVar("T")
#: language[_territory][.codeset][@modifier], or C / POSIX (it reaches no shell, but still)
LOCALE = re.compile(r"[A-Za-z]{1,8}(_[A-Za-z0-9]{1,8})?(\.[A-Za-z0-9-]{1,16})?(@[A-Za-z0-9]{1,16})?")


def get(options: dict[str, Variant], key: str, kind: type[T], default: T) -> T:
    """``options[key]`` when present and of ``kind``; InvalidArgs when of another type."""
    var = options.get(key)
    if var is None:
        return default
    value: Any = var.value if isinstance(var, Variant) else var
    if kind is int and isinstance(value, bool):
        raise errors.invalid(f"option {key!r} must be an integer")
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise errors.invalid(f"option {key!r} must be a list of strings")
        return value  # type: ignore[return-value]
    if not isinstance(value, kind):
        raise errors.invalid(f"option {key!r} must be of type {kind.__name__}")
    return value


def plain(options: dict[str, Variant]) -> dict[str, Any]:
    """The bag with the variants unwrapped (for logging and the Options property)."""
    return {k: (v.value if isinstance(v, Variant) else v) for k, v in options.items()}


@dataclass(frozen=True)
class Spec:
    """One known option: its Python type and, for integers, its range."""

    kind: type
    low: int = 0
    high: int = 1 << 31


#: Every option a transaction keeps (others are ignored); checked when they arrive.
TRANSACTION_OPTIONS: dict[str, Spec] = {
    **{k: Spec(bool) for k in ("run", "force", "allow-downgrade", "no-sysupgrade", "refresh",
                                "asdeps", "asexplicit", "needed", "cascade", "recursive",
                                "nosave", "download-only", "all")},
    "keep-versions": Spec(int, 0, 10_000),
    "reason": Spec(str),
}
MAX_STRING = 4096


def checked(options: dict[str, Variant], specs: dict[str, Spec] = TRANSACTION_OPTIONS
            ) -> dict[str, Any]:
    """The known options, each of its type and range (InvalidArgs otherwise); the rest
    is dropped, so nothing a client sends ends up where it cannot be marshalled back."""
    out: dict[str, Any] = {}
    for key, spec in specs.items():
        if key not in options:
            continue
        value: object = get(options, key, spec.kind, None)
        if isinstance(value, int) and not isinstance(value, bool) \
                and not spec.low <= value <= spec.high:
            raise errors.invalid(f"option {key!r} must be between {spec.low} and {spec.high}")
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise errors.invalid(f"option {key!r} is too long")
        out[key] = value
    return out


def locale(options: dict[str, Variant]) -> str:
    """The ``locale`` (s) a client asks its answers in ("": English); InvalidArgs unless it
    is shaped like a locale name. A locale without a catalog is simply English."""
    value = get(options, "locale", str, "")
    if value and not LOCALE.fullmatch(value):
        raise errors.invalid(f"not a locale name: {value[:64]!r}")
    return value
