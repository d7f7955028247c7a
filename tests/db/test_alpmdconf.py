"""alpmd.conf chooses the store of a new root; an existing store decides; both is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpmd.engine.alpmdconf import AlpmdConfig, load_alpmd_config, parse_alpmd_config
from alpmd.engine.db.sqlite import STORE_NAME
from alpmd.engine.db.stores import Store, stores_present
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.trans.harness import run_alpm


def test_parse() -> None:
    assert parse_alpmd_config("") == AlpmdConfig(Store.FILES)
    text = "# alpmd\n[options]\nBackend = sqlite   # the new store\n"
    assert parse_alpmd_config(text).backend is Store.SQLITE
    for bad, where in (("Backend = xml\n", "line 1: unknown backend 'xml'"),
                       ("\nColor\n", "line 2: directive 'Color' needs a value"),
                       ("Colour = yes\n", "unknown directive 'Colour'"),
                       ("[repo]\n", "unknown section 'repo'")):
        with pytest.raises(AlpmError) as exc:
            parse_alpmd_config(bad, "/etc/alpmd.conf")
        assert exc.value.code is ErrorCode.CONFIG_INVALID
        assert where in exc.value.message and "/etc/alpmd.conf" in exc.value.message


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    assert load_alpmd_config(str(tmp_path / "none.conf")) == AlpmdConfig()


@pytest.mark.oracle
def test_new_root_follows_config_existing_store_decides(tmp_path: Path) -> None:
    pkg = build_package(tmp_path / "pkgs", PkgMeta("tool", "1.0-1", desc="a tool"),
                        [FileSpec("usr/bin/tool", b"#!/bin/sh\n", mode=0o755)])
    root = PacmanRoot(tmp_path / "root")
    (root.root / "etc/alpmd.conf").write_text("Backend = sqlite\n")
    code, _out, err = run_alpm(root, ["-U", str(pkg)])
    assert code == 0, err
    assert stores_present(str(root.dbpath)) == [Store.SQLITE]
    assert not (root.dbpath / "local/tool-1.0-1").exists()
    code, out, _err = run_alpm(root, ["-Q"])
    assert (code, out) == (0, "tool 1.0-1\n")
    # pacman, on the same root, sees an empty database (and says so by exit code).
    r = root.pacman("-Q", "tool")
    assert r.returncode == 1 and "was not found" in r.stderr

    # The configuration changing later does not move an existing store.
    (root.root / "etc/alpmd.conf").write_text("Backend = files\n")
    h = Handle(root=str(root.root), use_snapshots=False)
    try:
        assert h.store() is Store.SQLITE and list(h.localdb.versions) == ["tool"]
    finally:
        h.release()

    # Both stores: refused, with the reason, by every command.
    r = root.pacman("-U", "--overwrite", "*", str(pkg))  # pacman sees an unowned file
    assert r.returncode == 0, r.stderr
    code, _out, err = run_alpm(root, ["-Q"])
    assert code == 1 and "two local databases" in err and STORE_NAME in err
