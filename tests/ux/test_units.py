"""The systemd units: the daemon hardened as far as a package manager can be (scored by
``systemd-analyze security``), and the refresh timer's service failing when the refresh
fails (its ExecStart run against the sandbox's daemon, under MemoryDenyWriteExecute)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpmd.testing.sandbox import REPO, Sandbox, build_demo

DATA = Path(__file__).resolve().parents[2] / "data"


def settings(unit: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def exposure(unit: Path) -> float:
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
    assert m is not None, r.stdout + r.stderr
    return float(m.group(1))


def test_daemon_unit_is_hardened_but_can_still_manage_packages() -> None:
    unit = DATA / "alpmd.service"
    assert exposure(unit) <= 5.0          # 8.1 "EXPOSED" before
    s = settings(unit)
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectControlGroups", "RestrictNamespaces",
                "LockPersonality", "RestrictRealtime", "ProtectClock", "ProtectKernelLogs"):
        assert s[key] == "yes", key
    assert s["SystemCallArchitectures"] == "native"
    # what would break a package manager stays off: writing /usr, /etc, /boot and
    # /usr/lib/modules, set-uid files, device access, sysctl/udev from hooks
    for key in ("ProtectSystem", "ProtectKernelModules", "RestrictSUIDSGID", "PrivateDevices",
                "ProtectKernelTunables", "MemoryDenyWriteExecute", "PrivateNetwork"):
        assert s.get(key, "no") == "no", key
    dropped = s["CapabilityBoundingSet"].lstrip("~").split()
    assert s["CapabilityBoundingSet"].startswith("~")
    assert "CAP_SYS_MODULE" in dropped and "CAP_SYS_BOOT" in dropped
    for needed in ("CAP_CHOWN", "CAP_FOWNER", "CAP_SYS_CHROOT", "CAP_SETUID", "CAP_DAC_OVERRIDE",
                   "CAP_MKNOD", "CAP_SYS_ADMIN"):
        assert needed not in dropped, needed


def test_refresh_unit_is_a_tight_client() -> None:
    unit = DATA / "alpmd-refresh.service"
    assert exposure(unit) <= 2.0
    s = settings(unit)
    assert s["Type"] == "oneshot"
    assert shlex.split(s["ExecStart"])[:3] == ["/usr/bin/alpmctl", "refresh", "--wait"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = build_demo(tmp_path_factory.mktemp("units") / "sandbox")
    with Sandbox(root, polkit=False) as sb:
        yield sb


#: alpmctl under PR_SET_MDWE (what MemoryDenyWriteExecute=yes enforces)
_MDWE = """
import ctypes, runpy, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    raise SystemExit(f"PR_SET_MDWE failed: errno {ctypes.get_errno()}")
sys.argv = ["alpmctl", *sys.argv[1:]]
runpy.run_module("alpmd.cli.alpmctl", run_name="__main__")
"""


def run_refresh_unit(sb: Sandbox) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(settings(DATA / "alpmd-refresh.service")["ExecStart"])
    assert argv[0] == "/usr/bin/alpmctl"
    cmd = [sys.executable, "-c", _MDWE, f"--address={sb.address}", *argv[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env={**os.environ, "LC_ALL": "C"})


def test_refresh_service_succeeds_then_fails_with_the_mirror(demo: Sandbox) -> None:
    ok = run_refresh_unit(demo)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    shadow = demo.root.root / "var/lib/alpmd/shadow/sync" / f"{REPO}.db"
    assert shadow.is_file()
    db = demo.root.root / "srv" / REPO / f"{REPO}.db"
    db.rename(db.with_suffix(".gone"))
    try:
        bad = run_refresh_unit(demo)
    finally:
        db.with_suffix(".gone").rename(db)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "failed" in bad.stderr and REPO in bad.stderr
