"""Hook files a hostile package can ship: loading them stays bounded and never crashes.

The loading runs in a child with a 1 GiB address-space limit: a reader that follows a
symlink to ``/dev/zero`` or swallows a huge file dies of MemoryError there instead of
taking the test machine (or a root daemon) down.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alpmd.engine.handle import Handle, Options
from alpmd.engine.hooks import _load, load_hooks

_CHILD = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from alpmd.engine.handle import Handle, Options
from alpmd.engine.hooks import _load
from alpmd.engine.errors import AlpmError
try:
    hooks, errors = _load(Handle(Options(root=sys.argv[1], hookdirs=[sys.argv[2]])))
    print(json.dumps({"hooks": [h.name for h in hooks], "errors": errors}))
except BaseException as exc:
    print(json.dumps({"crash": type(exc).__name__}))
"""

GOOD = "[Trigger]\nType = Package\nOperation = Install\nTarget = *\n\n[Action]\n" \
       "When = PostTransaction\nExec = /bin/true\n"


def _load_in_child(root: Path, hookdir: Path) -> dict[str, list[str] | str]:
    import json

    proc = subprocess.run([sys.executable, "-c", _CHILD, str(root), str(hookdir)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == 0, proc.stderr
    got: dict[str, list[str] | str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return got


@pytest.mark.parametrize("case", ["dev-zero", "huge-file", "fifo"])
def test_a_hook_that_never_ends_is_an_error_not_a_hang(tmp_path: Path, case: str) -> None:
    root = tmp_path / "root"
    hookdir = root / "usr/share/libalpm/hooks"
    hookdir.mkdir(parents=True)
    (hookdir / "10-good.hook").write_text(GOOD)
    evil = hookdir / "20-evil.hook"
    if case == "dev-zero":
        evil.symlink_to("/dev/zero")
    elif case == "fifo":
        os.mkfifo(tmp_path / "fifo")
        evil.symlink_to(tmp_path / "fifo")
    else:
        with open(evil, "wb") as fh:          # sparse: costs no disk
            fh.truncate(2 << 30)
    got = _load_in_child(root, hookdir)
    assert "crash" not in got, got
    assert got["hooks"] == ["10-good.hook"]
    assert len(got["errors"]) == 1 and str(evil) in got["errors"][0]


def test_dev_null_still_masks_a_hook(tmp_path: Path) -> None:
    """The documented mask (a symlink to /dev/null) keeps working."""
    low, high = tmp_path / "low", tmp_path / "high"
    low.mkdir()
    high.mkdir()
    (low / "10-x.hook").write_text(GOOD)
    (high / "10-x.hook").symlink_to("/dev/null")
    hooks = load_hooks(Handle(Options(root=str(tmp_path), hookdirs=[str(low), str(high)])))
    assert [h.name for h in hooks] == ["10-x.hook"]
    assert hooks[0].triggers == []


@pytest.mark.parametrize(("exec_line", "argv"), [
    ("", []), ("''", [""]), ("'unterminated", None), ("\\", ["\\"]), ("\x00", ["\x00"]),
    ("a\\'b \"c d\"", ["a'b", "c d"]), ("\udcff", ["\udcff"]),
])
def test_odd_exec_lines_parse_as_libalpm_or_are_named_errors(tmp_path: Path, exec_line: str,
                                                              argv: list[str] | None) -> None:
    """Odd ``Exec`` values from a package's hook: split as libalpm's wordsplit does, an
    unterminated quote makes the file invalid (an error, not a crash)."""
    hookdir = tmp_path / "hooks"
    hookdir.mkdir()
    text = GOOD.replace("Exec = /bin/true", f"Exec = {exec_line}")
    (hookdir / "x.hook").write_bytes(text.encode("utf-8", "surrogateescape"))
    hooks, errors = _load(Handle(Options(root=str(tmp_path), hookdirs=[str(hookdir)])))
    if argv is None:
        assert hooks == [] and len(errors) == 1 and "invalid value" in errors[0]
    else:
        assert errors == [] and [h.action.exec for h in hooks] == [argv]
