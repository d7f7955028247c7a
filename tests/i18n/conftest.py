"""The catalogs are built, not committed: build them (make mo) before these tests load.

At import, not in a fixture: the test modules read the German catalog when collected.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

subprocess.run(["make", "-s", "mo"], cwd=ROOT, check=True, capture_output=True, timeout=120)
