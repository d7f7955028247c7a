"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from alpmd.engine.db.stores import Store
from alpmd.testing.oracle import PacmanRoot, have_pacman

# CI runs the property tests on a fixed sequence of examples, so a landing never depends on
# what a random draw finds that day; developers' runs keep exploring.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

#: Real Arch sync databases (September 2022), kept with the tests (1.9 MB).
ARCH_SYNC = Path(__file__).resolve().parent / "data" / "arch-sync-2022"

#: A test whose tool or data is missing fails unless the machine says skips are fine
#: (a developer's: ``ALPMD_ALLOW_SKIPS=1``); CI (``.ci/run``) sets it to 0.
ALLOW_SKIPS = os.environ.get("ALPMD_ALLOW_SKIPS", "0") == "1"

_SKIPPED_KEY = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SKIPPED_KEY] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                               call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A skip is a failure unless ``ALPMD_ALLOW_SKIPS=1``: a missing oracle never passes quietly."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    item.config.stash[_SKIPPED_KEY].append(f"{item.nodeid}: {reason}")
    if not ALLOW_SKIPS:
        report.outcome = "failed"
        report.longrepr = (f"skipped, and skips are not allowed here ({reason}); install what "
                           "`make deps` installs, or set ALPMD_ALLOW_SKIPS=1 on a developer's "
                           "machine")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many tests did not run, and why, whatever the verbosity."""
    skipped = terminalreporter.config.stash[_SKIPPED_KEY]
    verdict = "allowed: ALPMD_ALLOW_SKIPS=1" if ALLOW_SKIPS else "a skip counts as a failure"
    terminalreporter.write_line(f"skipped tests: {len(skipped)} ({verdict})")
    for line in skipped[:20]:
        terminalreporter.write_line(f"  {line}")


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
    """The real Arch sync databases of September 2022 (core and extra), part of the tests."""
    assert (ARCH_SYNC / "core.db.tar.gz").is_file(), f"test data missing: {ARCH_SYNC}"
    return ARCH_SYNC


@pytest.fixture(params=list(Store), ids=[s.value for s in Store])
def backend(request: pytest.FixtureRequest) -> Store:
    """The local database store a test runs on: every store, one run each."""
    store: Store = request.param
    return store
