"""Fixtures of the security tests (see secworld)."""

from tests.security.secworld import sqlite_world, user, world

__all__ = ["sqlite_world", "user", "world"]
