"""Assertion messages from the shared twin-root runner."""

import pytest

pytest.register_assert_rewrite("tests.behaviours.twin")
