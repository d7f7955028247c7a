"""``alpmctl`` on a pseudo-terminal against the real daemon on a private bus: progress
bars, a question answered at the terminal, Ctrl-C, ``--json`` and ``--version``."""

from __future__ import annotations

import fcntl
import json
import os
import random
import re
import select
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpmd import __version__
from alpmd.engine.formats.desc import PkgMeta
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package, sync_meta
from alpmd.testing.repogen import write_sync_db
from alpmd.testing.sandbox import REPO, Sandbox

#: the mirror's cap per connection: the 3 MiB package takes twelve seconds unless cancelled
RATE = 256 * 1024
WAIT = 60.0


def _pkg(out: Path, name: str, *, depends: tuple[str, ...] = (), provides: tuple[str, ...] = (),
         data: bytes | None = None) -> Path:
    content = data if data is not None else f"{name}\n".encode()
    meta = PkgMeta(name, "1.0-1", desc=f"{name} for the alpmctl tests", depends=list(depends),
                   provides=list(provides))
    return build_package(out, meta, [FileSpec(f"usr/share/{name}/data", content)],
                         compression="gz")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    top = tmp_path_factory.mktemp("ctl")
    root = PacmanRoot(top / "root")
    srv = root.root / "srv" / REPO
    srv.mkdir(parents=True)
    blob = random.Random(5).randbytes(3 << 20)
    paths = [_pkg(srv, "hello"), _pkg(srv, "editor", depends=("sh-provider",)),
             _pkg(srv, "prov-a", provides=("sh-provider",)),
             _pkg(srv, "prov-b", provides=("sh-provider",)), _pkg(srv, "blob", data=blob)]
    write_sync_db([sync_meta(p) for p in paths], srv / f"{REPO}.db")
    root.add_repo(REPO, srv / f"{REPO}.db")
    with Sandbox(root, polkit=False, rate=RATE) as sb:
        yield sb


def installed(sb: Sandbox) -> set[str]:
    return {d.name.rsplit("-", 2)[0] for d in (sb.root.dbpath / "local").iterdir() if d.is_dir()}


class Pty:
    """alpmctl with a pseudo-terminal as its controlling terminal (so ^C is SIGINT)."""

    def __init__(self, sb: Sandbox, *args: str) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x00\x28\x00\x78\x00\x00\x00\x00")  # 40x120

        def ctty() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        env = {**os.environ, "TERM": "xterm-256color", "LC_ALL": "C.UTF-8", "COLUMNS": "120"}
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "alpmd.cli.alpmctl", f"--address={sb.address}", *args],
            stdin=slave, stdout=slave, stderr=slave, env=env, preexec_fn=ctty)
        os.close(slave)
        self.out = b""

    def expect(self, pattern: str) -> re.Match[str]:
        """Read until ``pattern`` shows up in the output (bounded, never a timed assertion)."""
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.text)
            if m is not None:
                return m
            ready, _, _ = select.select([self.master], [], [], WAIT)
            assert ready, f"no {pattern!r} in:\n{self.text}"
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                chunk = b""
            assert chunk, f"alpmctl ended without {pattern!r}:\n{self.text}"
            self.out += chunk

    @property
    def text(self) -> str:
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.out.decode("utf-8", "replace"))

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self) -> int:
        while True:
            ready, _, _ = select.select([self.master], [], [], WAIT)
            try:
                chunk = os.read(self.master, 65536) if ready else b""
            except OSError:
                chunk = b""
            if not chunk:
                break
            self.out += chunk
        rc = self.proc.wait(timeout=WAIT)
        os.close(self.master)
        return rc


def test_version() -> None:
    out = subprocess.run([sys.executable, "-m", "alpmd.cli.alpmctl", "--version"],
                         capture_output=True, text=True, timeout=WAIT)
    assert out.returncode == 0 and out.stdout.strip() == f"alpmctl (alpmd) {__version__}"


def test_question_answered_at_the_terminal(world: Sandbox) -> None:
    t = Pty(world, "install", "editor")
    t.expect(r"providers available for sh-provider")
    t.expect(r"0\) prov-a-1\.0-1\s+1\) prov-b-1\.0-1")
    t.expect(r"Enter a number \(default 0\): ")
    t.send(b"1\n")
    assert t.wait() == 0, t.text
    assert "done" in t.text
    assert "━" in t.text                      # rich drew its bars
    got = installed(world)
    assert {"editor", "prov-b"} <= got and "prov-a" not in got, t.text


def test_download_bar_then_ctrl_c_cancels(world: Sandbox) -> None:
    t = Pty(world, "install", "blob")
    # a per-file bar: the file's name, bytes so far of its size, a speed
    m = t.expect(r"blob-1\.0-1-any\.pkg\.tar\.gz.*?([0-9.]+)/3\.1 MB.*?([0-9.]+) [kM]B/s")
    assert float(m.group(1)) < 3.1
    t.send(b"\x03")
    t.expect(r"cancelling")
    assert t.wait() == 130, t.text
    assert "cancelled" in t.text
    assert "blob" not in installed(world)


def test_json_events_for_scripts(world: Sandbox) -> None:
    out = subprocess.run([sys.executable, "-m", "alpmd.cli.alpmctl", f"--address={world.address}",
                          "--json", "install", "hello"], capture_output=True, text=True,
                         timeout=WAIT, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "finished" and events[-1]["result"] == "success"
    states = [e["state"] for e in events if e["event"] == "state"]
    assert "committing" in states
    assert any(e["event"] == "log" and "installed hello" in e["text"] or
               e["event"] == "log" and "hello" in e["text"] for e in events)
    assert "hello" in installed(world)

    q = subprocess.run([sys.executable, "-m", "alpmd.cli.alpmctl", f"--address={world.address}",
                        "--json", "search", "^hel"], capture_output=True, text=True, timeout=WAIT)
    assert q.returncode == 0, q.stderr
    rows = json.loads(q.stdout)
    assert [(r["name"], r["installed"]) for r in rows] == [("hello", True)]


def test_failure_exit_status(world: Sandbox) -> None:
    out = subprocess.run([sys.executable, "-m", "alpmd.cli.alpmctl", f"--address={world.address}",
                          "install", "no-such-package"], capture_output=True, text=True,
                         timeout=WAIT, stdin=subprocess.DEVNULL)
    assert out.returncode == 1
    assert "no-such-package" in out.stderr


def test_list_scopes_and_pacnew(world: Sandbox) -> None:
    def ctl(*args: str) -> object:
        out = subprocess.run([sys.executable, "-m", "alpmd.cli.alpmctl",
                              f"--address={world.address}", "--json", *args],
                             capture_output=True, text=True, timeout=WAIT)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    rows = ctl("list")
    assert isinstance(rows, list)
    assert sorted(r["name"] for r in rows) == sorted(installed(world)) != []
    assert all(r["installed"] for r in rows)
    available = ctl("list", "--scope", "available")
    assert isinstance(available, list) and len(available) == 5
    assert ctl("pacnew") == []


def test_history_shows_what_was_done(world: Sandbox) -> None:
    r = subprocess.run([sys.executable, "-m", "alpmd.cli.alpmctl", f"--address={world.address}",
                        "-y", "install", "prov-a"], capture_output=True, text=True, timeout=WAIT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    t = Pty(world, "history", "--package", "prov-a")
    assert t.wait() == 0, t.text
    assert re.search(r"install.*prov-a", t.text), t.text


def test_without_a_terminal_questions_take_the_default_at_once(world: Sandbox) -> None:
    gone = [n for n in ("editor", "prov-a", "prov-b") if n in installed(world)]
    if gone:
        r = subprocess.run([sys.executable, "-m", "alpmd.cli.alpmctl",
                            f"--address={world.address}", "-y", "remove", *gone],
                           capture_output=True, text=True, timeout=WAIT, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
    out = subprocess.run([sys.executable, "-m", "alpmd.cli.alpmctl", f"--address={world.address}",
                          "--json", "install", "editor"], capture_output=True, text=True,
                         timeout=WAIT, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    (q,) = [e for e in events if e["event"] == "question"]
    assert q["kind"] == "SelectProvider" and q["choices"] == ["prov-a-1.0-1", "prov-b-1.0-1"]
    got = installed(world)
    assert "prov-a" in got and "prov-b" not in got          # the engine's default: the first
