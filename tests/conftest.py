"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from alpmd.engine.db.stores import Store
from alpmd.testing.oracle import PacmanRoot, have_pacman

# CI runs the property tests on a fixed sequence of examples, so a landing never depends on
# what a random draw finds that day; developers' runs keep exploring.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

SHARED = Path(__file__).resolve().parents[2] / "shared"
ARCH_SYNC = SHARED / "data" / "arch-sync-2022"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Oracle tests need Debian's pacman: say so plainly where it is missing."""
    if have_pacman():
        return
    skip = pytest.mark.skip(reason="Debian's pacman (the oracle) is not installed; run `make test`")
    for item in items:
        if "oracle" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def pacman_root(tmp_path: Path) -> PacmanRoot:
    """An empty installation root with its own pacman.conf, for the real pacman and for us."""
    return PacmanRoot(tmp_path / "root")


@pytest.fixture(scope="session")
def arch_sync() -> Path:
    """The real Arch sync databases of September 2022 (core and extra)."""
    if not (ARCH_SYNC / "core.db.tar.gz").exists():
        pytest.skip(f"real Arch databases not found at {ARCH_SYNC}")
    return ARCH_SYNC


@pytest.fixture(params=list(Store), ids=[s.value for s in Store])
def backend(request: pytest.FixtureRequest) -> Store:
    """The local database store a test runs on: every store, one run each."""
    store: Store = request.param
    return store
