"""Reading a{sv} option bags: unknown keys are ignored, known keys are type-checked."""

from __future__ import annotations

from typing import Any, TypeVar

from dbus_fast.signature import Variant

from alpmd.dbus import errors

T = TypeVar("T")


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
