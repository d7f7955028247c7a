"""The transaction record: persistent, paged, and fed by what pacman did behind our back."""

from __future__ import annotations

from pathlib import Path

import pytest

from alpmd.engine.errors import AlpmError
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.handle import Handle, Options
from alpmd.engine.history import Change, Entry, History, changes_between, installed_versions
from alpmd.engine.trans import Transaction
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package


def pkg(out: Path, name: str, version: str) -> Path:
    return build_package(out / f"{name}-{version}", PkgMeta(name, version),
                         [FileSpec(f"usr/share/{name}/data", f"{name} {version}\n".encode())],
                         compression="gz")


def test_record_survives_a_new_instance_and_pages(tmp_path: Path) -> None:
    path = tmp_path / "state" / "history.sqlite"
    h = History(path)
    for i in range(30):
        h.record(Entry(kind="install", targets=[f"p{i}"], started=1000.0 + i, duration=0.5,
                       uid=1000 + i % 2, client=":1.42", result="success",
                       changes=[Change(f"p{i}", None, "1.0-1"), Change("common", "1", f"{i + 2}")]))
    h.record(Entry(kind="remove", targets=["p3"], started=2000.0, uid=0, result="failed",
                   error="boom", changes=[]))
    again = History(path)                      # what a restarted daemon opens
    first = again.page(0, 5)
    assert [e.started for e in first] == [2000.0, 1029.0, 1028.0, 1027.0, 1026.0]
    assert first[0].result == "failed" and first[0].error == "boom" and first[0].uid == 0
    assert first[1].changes == [Change("p29", None, "1.0-1"), Change("common", "1", "31")]
    assert first[1].changes[0].action == "installed" and first[1].changes[1].action == "upgraded"
    assert [e.started for e in again.page(5, 3)] == [1025.0, 1024.0, 1023.0]
    assert [e.targets for e in again.page(0, 10, package="p7")] == [["p7"]]
    assert len(again.page(0, 100, package="common")) == 30
    assert [e.started for e in again.page(0, 100, since=1010.0, until=1013.0)] == \
        [1012.0, 1011.0, 1010.0]
    assert again.page(100, 10) == []
    # past SQLite's integers (a client may send any uint64): nothing there, or everything
    assert again.page(2**64 - 1, 10) == []
    assert len(again.page(29, 2**64 - 1)) == 2
    with pytest.raises(AlpmError):
        again.page(-1, 10)
    # only its owner (root: the daemon) may open it, nor its -wal and -shm
    assert {f.name: f.stat().st_mode & 0o777 for f in path.parent.iterdir()} == {
        n: 0o600 for n in ("history.sqlite", "history.sqlite-wal", "history.sqlite-shm")
        if (path.parent / n).exists()}
    assert path.stat().st_mode & 0o777 == 0o600


def test_changes_between_names_every_move() -> None:
    got = changes_between({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "1", "d": "4"})
    assert got == [Change("b", "2", "1"), Change("c", "3", None), Change("d", None, "4")]
    assert [c.action for c in got] == ["downgraded", "removed", "installed"]


@pytest.mark.oracle
def test_pacman_transactions_are_imported_once(tmp_path: Path) -> None:
    root = PacmanRoot(tmp_path / "root")
    out = tmp_path / "pkgs"
    a1, a2, b1 = pkg(out, "alpha", "1.0-1"), pkg(out, "alpha", "2.0-1"), pkg(out, "beta", "1-1")
    r = root.pacman("-U", str(a1), str(b1))
    assert r.returncode == 0, r.stderr
    hist = History(tmp_path / "history.sqlite")
    assert hist.import_log(root.logfile) == 1
    assert hist.import_log(root.logfile) == 0            # nothing new: nothing read twice
    r = root.pacman("-U", str(a2))
    assert r.returncode == 0, r.stderr
    r = root.pacman("-R", "beta")
    assert r.returncode == 0, r.stderr

    # our own engine's transaction (no command line before it) is the daemon's to record
    handle = Handle(Options(root=str(root.root), dbpath=str(root.dbpath) + "/",
                            logfile=str(root.logfile), use_snapshots=False))
    before = installed_versions(handle)
    with Transaction(handle) as t:
        t.add_remove_target("alpha")
        t.prepare()
        t.commit()
    after = installed_versions(handle)
    handle.release()
    assert changes_between(before, after) == [Change("alpha", "2.0-1", None)]

    assert hist.import_log(root.logfile, chunk=64) == 2
    entries = History(tmp_path / "history.sqlite").page(0, 10)
    assert [e.changes for e in entries] == [
        [Change("beta", "1-1", None)],
        [Change("alpha", "1.0-1", "2.0-1")],
        [Change("alpha", None, "1.0-1"), Change("beta", None, "1-1")]]
    assert all(e.source == "pacman.log" and e.result == "success" and e.client == "pacman"
               for e in entries)
    assert "-R" in entries[0].targets[0] and entries[0].uid == -1
    assert [e.started for e in entries] == sorted((e.started for e in entries), reverse=True)


def test_a_transaction_still_being_logged_is_read_when_whole(tmp_path: Path) -> None:
    log = tmp_path / "pacman.log"
    head = ("[2026-01-02T03:04:05+0000] [PACMAN] Running 'pacman -S foo'\n"
            "[2026-01-02T03:04:06+0000] [ALPM] transaction started\n"
            "[2026-01-02T03:04:07+0000] [ALPM] installed foo (1.0-1)\n")
    log.write_text(head + "[2026-01-02T03:04:08+0000] [ALPM] upgr")
    hist = History(tmp_path / "h.sqlite")
    assert hist.import_log(log) == 0
    with log.open("a") as fh:
        fh.write("aded bar (1-1 -> 2-1)\n[2026-01-02T03:04:09+0000] [ALPM] transaction completed\n")
    assert hist.import_log(log) == 1
    (e,) = hist.page()
    assert e.changes == [Change("foo", None, "1.0-1"), Change("bar", "1-1", "2-1")]
    assert e.duration == 3.0 and e.targets == ["pacman -S foo"]
    # the log rotated: a new file starts from its beginning
    log.unlink()
    log.write_text(head.replace("foo", "baz") + "[2026-01-03T00:00:00+0000] [ALPM] "
                   "transaction failed\n")
    assert hist.import_log(log) == 1
    assert hist.page(0, 1)[0].result == "failed"


def test_the_daemons_own_transactions_are_not_imported(tmp_path: Path) -> None:
    """A ``pacman -Sy`` (a command, no transaction) then the daemon's commit, which it
    marks with an [ALPMD] line: nothing to import; a later pacman -S is imported."""
    log = tmp_path / "pacman.log"
    log.write_text(
        "[2026-01-02T03:00:00+0000] [PACMAN] Running 'pacman -Sy'\n"
        "[2026-01-02T03:00:01+0000] [PACMAN] synchronizing package lists\n"
        "[2026-01-02T03:05:00+0000] [ALPMD] transaction 7 (install foo) for uid 1000\n"
        "[2026-01-02T03:05:01+0000] [ALPM] transaction started\n"
        "[2026-01-02T03:05:02+0000] [ALPM] installed foo (1.0-1)\n"
        "[2026-01-02T03:05:03+0000] [ALPM] transaction completed\n"
        "[2026-01-02T03:06:00+0000] [PACMAN] Running 'pacman -S bar'\n"
        "[2026-01-02T03:06:01+0000] [ALPM] transaction started\n"
        "[2026-01-02T03:06:02+0000] [ALPM-SCRIPTLET] hello from bar\n"
        "[2026-01-02T03:06:02+0000] [ALPM] installed bar (2-1)\n"
        "[2026-01-02T03:06:03+0000] [ALPM] transaction interrupted\n")
    hist = History(tmp_path / "h.sqlite")
    assert hist.import_log(log) == 1
    (e,) = hist.page()
    assert e.targets == ["pacman -S bar"] and e.changes == [Change("bar", None, "2-1")]
    assert e.result == "cancelled"


def test_a_newer_record_is_refused_not_downgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "h.sqlite"
    History(path).record(Entry(kind="install", targets=["x"], started=1.0, result="success"))
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(AlpmError) as err:
        History(path).page()
    assert "newer" in err.value.message
