"""``make run``'s demo does the whole job: install, upgrade and remove through ``alpmctl``
against the sandbox's daemon, with real package files served by its loopback mirror."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from alpmd.engine.config import load_config
from alpmd.engine.handle import Handle
from alpmd.engine.version import vercmp
from alpmd.testing.sandbox import REPO, Sandbox, build_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = build_demo(tmp_path_factory.mktemp("demo") / "sandbox")
    with Sandbox(root) as sb:
        yield sb


def alpmctl(sb: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "alpmd.cli.alpmctl", f"--address={sb.address}",
                           "--json", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "LC_ALL": "C"})


def state(sb: Sandbox) -> tuple[dict[str, str], dict[str, str]]:
    """(installed name -> version, repository name -> version) as the engine reads them now."""
    h, _ = Handle.from_config(load_config(str(sb.root.config)))
    try:
        local = {p.name: p.version for p in h.localdb.packages}
        sync = {p.name: p.version for db in h.syncdbs for p in db.packages}
    finally:
        h.release()
    return local, sync


def test_upgrade_install_remove_end_to_end(demo: Sandbox) -> None:
    local, sync = state(demo)
    outdated = sorted(n for n, v in local.items() if vercmp(v, sync[n]) < 0)
    assert len(outdated) == 4

    up = alpmctl(demo, "-y", "upgrade")
    assert up.returncode == 0, up.stdout + up.stderr
    local, _ = state(demo)
    assert all(local[n] == sync[n] for n in outdated)

    candidates = sorted(n for n in sync if n not in local)
    target = candidates[0]
    inst = alpmctl(demo, "-y", "install", target)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    local, _ = state(demo)
    assert local[target] == sync[target]
    h, _ = Handle.from_config(load_config(str(demo.root.config)))
    try:
        pkg = h.localdb.get(target)
        assert pkg is not None
        files = [f for f in pkg.files if not f.endswith("/")]
    finally:
        h.release()
    assert files and all(os.path.lexists(demo.root.root / f) for f in files)

    rm = alpmctl(demo, "-y", "remove", target)
    assert rm.returncode == 0, rm.stdout + rm.stderr
    local, _ = state(demo)
    assert target not in local
    assert not any(os.path.lexists(demo.root.root / f) for f in files)


def test_failed_downloads_are_summarised(demo: Sandbox) -> None:
    local, sync = state(demo)
    srv = Path(demo.root.root / "srv" / REPO)
    missing = sorted(n for n in sync if n not in local)[1:]
    # the packages' files vanish from the mirror; a summary names each once, capped
    moved = []
    for name in missing:
        for f in srv.glob(f"{name}-{sync[name]}-*.pkg.tar.zst"):
            f.rename(f.with_suffix(".gone"))
            moved.append(f)
    try:
        out = alpmctl(demo, "-y", "install", *missing)
    finally:
        for f in moved:
            f.with_suffix(".gone").rename(f)
    assert out.returncode == 1, out.stdout + out.stderr
    assert '"result": "failed"' in out.stdout
    message = json.loads(out.stdout.splitlines()[-1])["message"]
    lines = message.splitlines()
    assert lines[0].endswith(f"failed retrieving {len(missing)} files:"), message
    assert len(lines) <= 10, message
    assert "404 Not Found (mirrors tried: http://127.0.0.1:" in lines[1]
    assert lines[-1] == f"  ... and {len(missing) - 8} more (every cause is in the log)"
    named = [ln.split(": ")[0].strip() for ln in lines[1:-1]]
    assert len(set(named)) == 8 and all(n.endswith(".pkg.tar.zst") for n in named)
