"""Fixtures of the security tests (see secworld)."""

from tests.security.secworld import user, world

__all__ = ["user", "world"]
