"""The catalogs are built, not committed: build them (make mo) before these tests read them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def catalogs() -> None:
    subprocess.run(["make", "-s", "mo"], cwd=ROOT, check=True, capture_output=True, timeout=120)
