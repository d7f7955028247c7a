"""Fixtures of the security tests (see secworld)."""

from secworld import user, world

__all__ = ["user", "world"]
