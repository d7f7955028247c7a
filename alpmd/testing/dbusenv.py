"""A private system-role D-Bus with the real polkitd, for tests and ``make run``.

The bus is a ``dbus-daemon`` whose configuration says ``<type>system</type>``
and includes the project's ``data/org.alpm.conf`` and polkit's own bus policy,
so name ownership and send rules behave as on a real machine. polkitd reads
actions and rules only from fixed directories, so it runs in a private mount
namespace (``unshare -m``) where the caller's directories are bind-mounted over
``/usr/share/polkit-1/actions`` and ``/etc/polkit-1/rules.d``; nothing on the
host is changed. Every process started here is killed by :meth:`DBusEnv.stop`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

DATA = Path(__file__).resolve().parents[2] / "data"
POLKIT_BUS_POLICY = Path("/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf")
POLKITD = Path("/usr/lib/polkit-1/polkitd")
POLKIT_ACTIONS = "/usr/share/polkit-1/actions"
POLKIT_RULES = "/etc/polkit-1/rules.d"
CLIENT_USER = "alpmd-client"

#: A rule letting everybody do everything with org.alpm (tests narrow it per case).
ALLOW_ALL_RULES = """\
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.alpm.") == 0) { return polkit.Result.YES; }
});
"""
#: No rules: the shipped policy's defaults decide (a caller without a local session is
#: refused every action that needs an administrator).
SHIPPED_RULES = "// the shipped policy's defaults\n"
#: A rule granting root only: the unprivileged test user is refused.
ROOT_ONLY_RULES = """\
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.alpm.") == 0) {
        return subject.user == "root" ? polkit.Result.YES : polkit.Result.NO;
    }
});
"""

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <!-- test services (the EAGAIN regression test) -->
  <policy user="root"><allow own="org.alpm.Test"/></policy>
  <policy context="default"><allow send_destination="org.alpm.Test"/></policy>
  <include>{alpm_conf}</include>
  {polkit_include}
</busconfig>
"""


def have_tools() -> str | None:
    """Why a private bus cannot be started here, or ``None`` when it can."""
    for tool in ("dbus-daemon", "busctl", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def have_polkit() -> str | None:
    """Why polkitd cannot be used here, or ``None``."""
    if not POLKITD.exists():
        return f"{POLKITD} is not installed"
    if not POLKIT_BUS_POLICY.exists():
        return f"{POLKIT_BUS_POLICY} is missing"
    if os.geteuid() != 0:
        return "polkitd in a private mount namespace needs root"
    return None


def ensure_user(name: str = CLIENT_USER) -> pwd.struct_passwd:
    """The throwaway unprivileged user the tests call as (created once)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        name], check=True, capture_output=True)
        return pwd.getpwnam(name)


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    assert callable(predicate)
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


class DBusEnv:
    """A private system bus (and optionally polkitd) under ``workdir``."""

    def __init__(self, workdir: str | os.PathLike[str] | None = None, *,
                 polkit: bool = True, rules: str = ALLOW_ALL_RULES) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(workdir if workdir is not None else tempfile.mkdtemp(prefix="alpmd-bus-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)
        self.socket = self.workdir / "system_bus_socket"
        self.address = f"unix:path={self.socket}"
        self.polkit = polkit
        self.actions_dir = self.workdir / "polkit-actions"
        self.rules_dir = self.workdir / "polkit-rules"
        self.rules = rules
        self.procs: list[subprocess.Popen[bytes]] = []
        self.bus_proc: subprocess.Popen[bytes] | None = None
        self.polkit_proc: subprocess.Popen[bytes] | None = None

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> DBusEnv:
        why = have_tools()
        if why:
            raise RuntimeError(why)
        conf = self.workdir / "bus.conf"
        polkit_include = (f"<include>{POLKIT_BUS_POLICY}</include>"
                          if POLKIT_BUS_POLICY.exists() else "")
        conf.write_text(_BUS_CONFIG.format(socket=self.socket, alpm_conf=DATA / "org.alpm.conf",
                                           polkit_include=polkit_include))
        self.bus_proc = self._spawn(["dbus-daemon", f"--config-file={conf}", "--nofork",
                                     "--nopidfile", "--nosyslog"])
        _wait_for(self.socket.exists, 10, "dbus-daemon's socket")
        self.socket.chmod(0o777)
        if self.polkit:
            self.start_polkit()
        return self

    def start_polkit(self) -> None:
        why = have_polkit()
        if why:
            raise RuntimeError(why)
        for d in (self.actions_dir, self.rules_dir):
            d.mkdir(exist_ok=True)
            d.chmod(0o755)
        shutil.copy(DATA / "org.alpm.policy", self.actions_dir / "org.alpm.policy")
        self.set_rules(self.rules)
        script = (f"mount --bind {self.actions_dir} {POLKIT_ACTIONS} && "
                  f"mount --bind {self.rules_dir} {POLKIT_RULES} && exec {POLKITD} --no-debug")
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}
        self.polkit_proc = self._spawn(["unshare", "-m", "--propagation", "private",
                                        "sh", "-c", script], env=env)
        _wait_for(lambda: self.has_name("org.freedesktop.PolicyKit1"), 15, "polkitd on the bus")

    def set_rules(self, rules: str) -> None:
        """Replace the test rules (polkitd reloads its rules directory when it changes)."""
        self.rules = rules
        path = self.rules_dir / "50-alpmd-test.rules"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(rules)
        tmp.chmod(0o644)
        os.replace(tmp, path)

    def _spawn(self, argv: Sequence[str], env: dict[str, str] | None = None,
               log_name: str | None = None) -> subprocess.Popen[bytes]:
        log = open(self.workdir / (log_name or f"{Path(argv[0]).name}.log"), "ab")  # noqa: SIM115
        proc = subprocess.Popen(list(argv), stdout=log, stderr=log, env=env,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def spawn(self, argv: Sequence[str], env: dict[str, str] | None = None,
              log_name: str | None = None) -> subprocess.Popen[bytes]:
        """Start a process on this bus (its output in ``workdir/log_name``); it is killed
        by :meth:`stop`."""
        full = {**os.environ, **(env or {}), "DBUS_SYSTEM_BUS_ADDRESS": self.address}
        return self._spawn(argv, env=full, log_name=log_name)

    def run_as(self, user: str, argv: Sequence[str], *, stdin: str = "", timeout: float = 300
               ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as ``user`` (``runuser``) with this bus as its system bus."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
               "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
               "DBUS_SYSTEM_BUS_ADDRESS": self.address, "HOME": "/"}
        return subprocess.run(["runuser", "-u", user, "--", *argv], input=stdin,
                              capture_output=True, text=True, timeout=timeout, env=env)

    def stop(self) -> None:
        """Kill every process started here (their whole session) and remove the directory."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        self.procs.clear()
        if self._own_dir and not os.environ.get("ALPMD_KEEP_BUS_DIR"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DBusEnv:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- calling ----------------------------------------------------------------------

    def busctl(self, *args: str, user: str | None = None, timeout: float = 30,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``busctl --address=... ARGS`` (as ``user`` through ``runuser``)."""
        argv = ["busctl", f"--address={self.address}", *args]
        if user is not None:
            argv = ["runuser", "-u", user, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check,
                              env={**os.environ, "LC_ALL": "C", "SYSTEMD_COLORS": "0",
                                   "SYSTEMD_PAGER": ""})

    def has_name(self, name: str) -> bool:
        out = self.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "NameHasOwner", "s", name, check=False,
                          timeout=5)
        return out.returncode == 0 and out.stdout.strip() == "b true"

    def name_owner_pid(self, name: str) -> int | None:
        """The PID of the connection that owns ``name`` now, or None."""
        out = self.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", name,
                          check=False, timeout=5)
        parts = out.stdout.split() if out.returncode == 0 else []
        return int(parts[1]) if len(parts) == 2 and parts[0] == "u" else None

    def wait_for_name(self, name: str, timeout: float = 20,
                      proc: subprocess.Popen[bytes] | None = None) -> None:
        """Until ``name`` is owned (by ``proc`` when given: a killed predecessor's
        connection may still hold the name for a moment after it died)."""
        def ready() -> bool:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before owning {name}")
            if proc is not None:
                return self.name_owner_pid(name) == proc.pid
            return self.has_name(name)
        _wait_for(ready, timeout, f"{name} on the bus")
