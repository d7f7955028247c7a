"""Database refresh (-Sy, -Syy): conditional requests, atomic replacement, signatures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alpmd.engine.config import SigCheck, SigLevel, SigPolicy
from alpmd.engine.download import DatabaseUpToDate, refresh_databases
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.events import Event
from alpmd.testing.mirror import Fault, MirrorServer

from .helpers import make_handle, make_repo, run

pytestmark = pytest.mark.timeout(60)


def sync_dir(handle) -> Path:
    return Path(handle.dbpath) / "sync"


def visible(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if not p.name.startswith(".")}


@pytest.mark.parametrize("validator", ["etag", "last-modified"])
def test_refresh_then_unchanged_costs_one_conditional_request(tmp_path: Path,
                                                              validator: str) -> None:
    repo = make_repo(tmp_path, {"alpha": 1000, "beta": 2000}, write=False)
    events: list[Event] = []

    async def go() -> None:
        async with MirrorServer(files=repo.files(), etag=validator == "etag",
                                last_modified=validator == "last-modified") as m:
            handle = make_handle(tmp_path, repo, [m.url], install_db=False)
            assert await refresh_databases(handle) == {"core": True}
            db = sync_dir(handle) / "core.db"
            assert db.read_bytes() == repo.dbfile.read_bytes()
            assert handle.syncdbs[0].get("alpha") is not None
            before = os.stat(db)
            assert await refresh_databases(handle, event=events.append) == {"core": False}
            after = os.stat(db)
            assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
            assert [r.status for r in m.requests] == [200, 304]
            assert m.requests[1].conditional
            # -Syy: unconditional, rewritten
            assert await refresh_databases(handle, force=True) == {"core": True}
            assert not m.requests[2].conditional and m.requests[2].status == 200
            # the mirror publishes a new database: fetched
            newer = make_repo(tmp_path / "v2", {"alpha": 1000, "gamma": 5}, write=False)
            m.put("core.db", newer.dbfile.read_bytes())
            m._mtimes["core.db"] += 10
            assert await refresh_databases(handle) == {"core": True}
            assert db.read_bytes() == newer.dbfile.read_bytes()
            assert handle.syncdbs[0].get("gamma") is not None
            assert list(visible(sync_dir(handle))) == ["core.db"]

    run(go())
    assert [e for e in events if isinstance(e, DatabaseUpToDate)]


def test_bad_database_from_first_mirror_next_one_wins(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"alpha": 1000}, write=False)

    async def go() -> None:
        async with MirrorServer(files={"core.db": b"<html>not a database</html>"}) as bad, \
                MirrorServer(files={"core.db": b""},
                             faults={"*": Fault(status=503)}) as down, \
                MirrorServer(files=repo.files()) as good:
            handle = make_handle(tmp_path, repo, [bad.url, down.url, good.url],
                                 install_db=False)
            assert await refresh_databases(handle) == {"core": True}
            assert (sync_dir(handle) / "core.db").read_bytes() == repo.dbfile.read_bytes()
            assert list(visible(sync_dir(handle))) == ["core.db"]
            assert not [p for p in sync_dir(handle).iterdir() if "refresh" in p.name]

    run(go())


def test_failure_keeps_the_old_database(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"alpha": 1000}, write=False)

    async def go() -> None:
        async with MirrorServer(faults={"*": Fault(reset_after=10)}, files=repo.files()) as m:
            handle = make_handle(tmp_path, repo, [m.url])
            old = (sync_dir(handle) / "core.db").read_bytes()
            with pytest.raises(AlpmError) as err:
                await refresh_databases(handle, force=True)
            assert err.value.code is ErrorCode.RETRIEVE and "core" in err.value.message
            assert visible(sync_dir(handle)) == {"core.db": old}

    run(go())


def test_shadow_directory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"alpha": 1000}, write=False)
    newer = make_repo(tmp_path / "v2", {"alpha": 1000, "beta": 1}, write=False)
    shadow = tmp_path / "shadow"

    async def go() -> None:
        async with MirrorServer(files=newer.files()) as m:
            handle = make_handle(tmp_path, repo, [m.url])
            os.utime(sync_dir(handle) / "core.db", (1e9, 1e9))     # an old live database
            live = (sync_dir(handle) / "core.db").read_bytes()
            assert await refresh_databases(handle, target_dir=str(shadow)) == {"core": True}
            assert (shadow / "core.db").read_bytes() == newer.dbfile.read_bytes()
            assert (sync_dir(handle) / "core.db").read_bytes() == live

    run(go())


def test_files_databases(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"alpha": 1000}, write=False)
    files = repo.files()
    files["core.files"] = files.pop("core.db")

    async def go() -> None:
        async with MirrorServer(files=files) as m:
            handle = make_handle(tmp_path, repo, [m.url], install_db=False, dbext=".files")
            assert await refresh_databases(handle) == {"core": True}
            assert [r.path for r in m.requests] == ["core.files"]
            assert list(visible(sync_dir(handle))) == ["core.files"]

    run(go())


@pytest.mark.parametrize("check", [SigCheck.OPTIONAL, SigCheck.REQUIRED])
def test_database_signature(tmp_path: Path, check: SigCheck) -> None:
    repo = make_repo(tmp_path, {"alpha": 1000}, write=False)
    level = SigLevel(SigPolicy(SigCheck.NEVER), SigPolicy(check))
    with_sig = {**repo.files(), "core.db.sig": b"pretend signature"}

    async def go() -> None:
        async with MirrorServer(files=with_sig) as signed, \
                MirrorServer(files=repo.files()) as unsigned:
            handle = make_handle(tmp_path, repo, [signed.url], install_db=False,
                                 siglevel=level)
            try:
                import alpmd.engine.signing  # noqa: F401
                verifying = True
            except ImportError:
                verifying = False
            if verifying:   # a bogus signature: refused, nothing replaced
                with pytest.raises(AlpmError):
                    await refresh_databases(handle)
                assert visible(sync_dir(handle)) == {}
            else:           # fetched and installed beside its database
                await refresh_databases(handle)
                assert visible(sync_dir(handle)) == {"core.db": repo.dbfile.read_bytes(),
                                                      "core.db.sig": b"pretend signature"}
            assert "core.db.sig" in {r.path for r in signed.requests}
            other = make_handle(tmp_path / "b", repo, [unsigned.url], install_db=False,
                                siglevel=level)
            if check is SigCheck.OPTIONAL:
                assert await refresh_databases(other) == {"core": True}
                assert list(visible(sync_dir(other))) == ["core.db"]
            else:
                with pytest.raises(AlpmError):
                    await refresh_databases(other)
                assert visible(sync_dir(other)) == {}

    run(go())


def test_file_server_refresh(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"alpha": 1000}, write=False)
    handle = make_handle(tmp_path, repo, [f"file://{repo.srv}"], install_db=False)
    assert run(refresh_databases(handle)) == {"core": True}
    assert run(refresh_databases(handle)) == {"core": False}
    assert (sync_dir(handle) / "core.db").read_bytes() == repo.dbfile.read_bytes()
