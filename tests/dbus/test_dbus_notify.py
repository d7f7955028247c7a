"""systemd-python is optional: without it (or off systemd) the daemon logs to stderr and
sd_notify is a no-op; with a notify socket, READY=1 reaches it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
if sys.argv[1] == "without":
    sys.modules["systemd"] = None          # as if the extra were not installed
from alpmd.dbus import notify
notify.setup_logging()
notify.event("transaction 7 finished", alpmd_transaction=7)
print(notify.notify("READY=1"), type(notify.log.handlers[0]).__name__)
"""


def _run(mode: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60, stdin=subprocess.DEVNULL)


def test_without_systemd_python_logs_to_stderr(tmp_path: Path) -> None:
    sock = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(sock))
        out = _run("without", {"NOTIFY_SOCKET": str(sock)})
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["False", "StreamHandler"]
        assert "alpmd: INFO: transaction 7 finished" in out.stderr
        # with systemd-python, READY=1 reaches the socket
        out = _run("with", {"NOTIFY_SOCKET": str(sock)})
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[0] == "True"
        s.settimeout(10)
        assert s.recv(4096) == b"READY=1"
