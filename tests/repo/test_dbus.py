"""org.alpm.Repository1 on a real daemon: a private system bus, the real polkitd with a rule
letting a group release to ``testing`` and ``staging`` but not to ``core``, a tree whose
keyring requires signatures, real signed package files passed as descriptors by an
unprivileged user. A refused or failed change must leave the tree exactly as it was."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import grp
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.signature import Variant

from alpmd import i18n
from alpmd.cli import alpmctl
from alpmd.dbus.bus import connect
from alpmd.engine import keyring
from alpmd.engine.alpmdconf import parse_alpmd_config
from alpmd.engine.errors import AlpmError
from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.repo import ops
from alpmd.engine.repo.config import write_tree_config
from alpmd.engine.repo.incoming import is_package_name
from alpmd.engine.repo.tree import Tree, init_tree, open_tree
from alpmd.engine.repo.txn import tree_lock
from alpmd.testing.dbusenv import CLIENT_USER, DBusEnv, ensure_user, have_polkit, have_tools
from alpmd.testing.mirror import MirrorServer
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.repo.conftest import ARCH, Packager, need, read_db, snapshot
from tests.security import hostile
from tests.security.secworld import as_user, send_descriptors
from tests.signing.conftest import Lab

PACKAGER = "alpmd-packager"
GROUP = "alpmd-packagers"
R = {"iface": "org.alpm.Repository1"}
NOT_AUTHORIZED = "org.alpm.Error.NotAuthorized"
INVALID = "org.alpm.Error.InvalidArgs"
LIMIT = "org.alpm.Error.LimitExceeded"
#: the daemon's caps in this module: small enough to reach with real files
FILE_BYTES, FILES_PER_CALL = 300_000, 4
CAPS = (f"file_bytes={FILE_BYTES}", f"files_per_call={FILES_PER_CALL}", "queued_per_client=1")

#: the group may change testing, staging and gated (nothing else); nobody else anything.
#: (gated's own Allow, in alpm-repo.conf, lets only root release there)
RULES = f"""\
polkit.addRule(function(action, subject) {{
    if (action.id.indexOf("org.alpm.repository.") == 0) {{
        var repo = action.lookup("org.alpm.repository");
        if (action.id != "org.alpm.repository.repair" && subject.isInGroup("{GROUP}")
                && (repo == "testing" || repo == "staging" || repo == "gated")) {{
            return polkit.Result.YES;
        }}
        return polkit.Result.NO;
    }}
}});
"""


@dataclass
class RepoWorld:
    env: DBusEnv
    proc: subprocess.Popen[bytes]
    root: Path
    public: Path
    packager: Packager
    log: Path

    def tree(self) -> Tree:
        return open_tree(str(self.root))

    def state(self) -> dict[str, object]:
        tree = self.tree()
        try:
            return snapshot(tree)
        finally:
            tree.close()

    def db(self, repo: str) -> set[str]:
        """The entries (``name-version``) of ``repo``'s database, as our reader sees them."""
        return set(read_db(self.root / repo / "os" / ARCH / f"{repo}.db.tar.gz"))

    def pacman_sees(self, repo: str, tmp: Path) -> list[str]:
        """``pacman -Sl repo`` on a fresh root whose sync database is the tree's (the real
        pacman as the oracle: the database a release wrote is one pacman reads)."""
        need("pacman")
        root = PacmanRoot(tmp)
        arch_dir = self.root / repo / "os" / ARCH
        root.add_repo(repo, arch_dir / f"{repo}.db", arch_dir / f"{repo}.files")
        out = root.pacman("-Sl", repo)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    def build(self, name: str, version: str = "1.0-1") -> Path:
        """A signed package file the unprivileged users can open."""
        path = self.packager.pkg(name, version)
        for p in (path, Path(str(path) + ".sig")):
            p.chmod(0o644)
        return path

    def call(self, user: str, calls: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send ``calls`` as ``user`` (one connection); their results."""
        address = self.env.address

        def client() -> Any:
            return asyncio.run(asyncio.wait_for(hostile.run(address, {"calls": list(calls)}),
                                                120))
        result: list[dict[str, Any]] = as_user(user, client)
        return result

    def add(self, user: str, repo: str, *pkgs: Path) -> dict[str, Any]:
        files = [[p.name, 2 * i, [2 * i + 1]] for i, p in enumerate(pkgs)]
        fds: list[dict[str, Any]] = []
        for p in pkgs:
            fds += [{"open": str(p)}, {"open": str(p) + ".sig"}]
        (r,) = self.call(user, [{**R, "member": "Add", "sig": "ssa(shah)a{sv}",
                                 "body": [repo, ARCH, files, {}], "fds": fds}])
        return r

    def healthy(self) -> None:
        assert self.proc.poll() is None, "the daemon died"
        text = self.log.read_text(errors="replace")
        assert "Traceback" not in text, text[-4000:]


def _ensure_packager() -> None:
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        subprocess.run(["groupadd", "--system", GROUP], check=True, capture_output=True)
    ensure_user(PACKAGER)
    if PACKAGER not in grp.getgrnam(GROUP).gr_mem:
        subprocess.run(["usermod", "-aG", GROUP, PACKAGER], check=True, capture_output=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RepoWorld]:
    why = have_tools() or have_polkit()
    if why:
        pytest.fail(f"these tests need a private bus with polkitd: {why}")
    need("gpg", "runuser")
    ensure_user(CLIENT_USER)
    _ensure_packager()
    tmp = tmp_path_factory.mktemp("repo-dbus")
    gpgdir = Path(tempfile.mkdtemp(prefix="alpmd-rd-", dir="/tmp"))
    gpgdir.chmod(0o700)
    public = Path(tempfile.mkdtemp(prefix="alpmd-rd-pub-"))
    public.chmod(0o755)
    lab = Lab(tmp / "lab", gpgdir, keyring.init_keyring(str(gpgdir), key_type="ed25519"))
    env = DBusEnv(rules=RULES)
    try:
        signer = lab.signer()
        lab.trust(signer)
        root = tmp / "tree"
        made = init_tree(str(root), ["core", "extra", "testing", "staging", "testing-debug",
                                     "gated"], [ARCH], keyring=str(gpgdir))
        made.cfg.repos["gated"].allow = ["root"]
        made.cfg.lock_timeout = 120
        Path(made.cfg.path).write_text(write_tree_config(made.cfg))
        made.close()
        system = PacmanRoot(tmp / "root")
        system.write_config()
        (system.root / "etc").mkdir(exist_ok=True)
        (system.root / "etc/alpmd.conf").write_text(f"[options]\nRepositoryTree = {root}\n")
        env.start()
        proc = env.spawn([sys.executable, "-m", "alpmd.dbus.service", "--config",
                          str(system.config), "--idle-timeout", "0",
                          *(f"--limit={cap}" for cap in CAPS)], log_name="alpmd.log")
        env.wait_for_name("org.alpm", proc=proc)
        w = RepoWorld(env, proc, root, public, Packager(public, signer),
                      env.workdir / "alpmd.log")
        yield w
        w.healthy()
    finally:
        env.stop()
        for home in (gpgdir, *lab.homes):
            keyring.kill_agent(str(home))
            shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(public, ignore_errors=True)


def _ok(result: dict[str, Any]) -> Any:
    assert "ok" in result, result
    return result["ok"][0]


def _error(result: dict[str, Any]) -> str:
    assert "error" in result, result
    return str(result["error"])


def _rows(value: Any) -> list[dict[str, Any]]:
    """aa{sv} as the hostile client encodes it → plain dicts."""
    return [{k: v["v"][1] for k, v in row.items()} for row in value]


def test_config_key() -> None:
    assert parse_alpmd_config("[options]\nRepositoryTree = /srv/repo/\n").repository_tree \
        == "/srv/repo"
    assert parse_alpmd_config("").repository_tree is None
    with pytest.raises(AlpmError, match="absolute path"):
        parse_alpmd_config("RepositoryTree = srv/repo\n")


def test_release_to_testing_allowed_to_core_refused(world: RepoWorld, tmp_path: Path) -> None:
    pkg = world.build("relpkg")
    got = _rows(_ok(world.add(PACKAGER, "testing", pkg)))
    assert [(r["action"], r["repo"], r["arch"], r["base"], r["version"], r["user"])
            for r in got] == [("add", "testing", ARCH, "relpkg", "1.0-1", PACKAGER)]
    assert "relpkg-1.0-1" in world.db("testing")
    assert "testing relpkg 1.0-1" in world.pacman_sees("testing", tmp_path / "a")
    assert (world.root / "pool/packages" / pkg.name).is_file()
    assert os.readlink(world.root / "testing/os" / ARCH / pkg.name).endswith(pkg.name)

    before = world.state()
    core_pkg = world.build("corepkg")
    r = world.add(PACKAGER, "core", core_pkg)
    assert _error(r) == NOT_AUTHORIZED and "org.alpm.repository.release" in r["text"], r
    # a user outside the group may not release to testing either
    r = world.add(CLIENT_USER, "testing", core_pkg)
    assert _error(r) == NOT_AUTHORIZED, r
    assert world.state() == before
    assert "corepkg-1.0-1" not in world.db("core") | world.db("testing")
    assert not any("corepkg" in line for line in world.pacman_sees("core", tmp_path / "b"))
    assert not (world.root / "pool/packages" / core_pkg.name).exists()
    world.healthy()


def test_engine_rules_hold_over_the_bus(world: RepoWorld) -> None:
    """The engine's refusals come back as named errors with the stable code first."""
    pkg = world.build("rulepkg")
    _ok(world.add(PACKAGER, "testing", pkg))
    before = world.state()
    r = world.add(PACKAGER, "testing", pkg)           # the same version again
    assert _error(r) == INVALID and r["text"].startswith("trans-dup-target: "), r
    unsigned = world.packager.pkg("rulepkg", "2.0-1", sign=False)
    unsigned.chmod(0o644)
    files = [[unsigned.name, 0, []]]
    (r,) = world.call(PACKAGER, [{**R, "member": "Add", "sig": "ssa(shah)a{sv}",
                                  "body": ["testing", ARCH, files, {}],
                                  "fds": [{"open": str(unsigned)}]}])
    assert _error(r) == "org.alpm.Error.Signature", r
    (r,) = world.call(PACKAGER, [{**R, "member": "Remove", "sig": "ssasa{sv}",
                                  "body": ["nosuchrepo", ARCH, ["rulepkg"], {}]}])
    assert _error(r) == NOT_AUTHORIZED, r    # polkit decides before the engine looks
    assert world.state() == before


def test_remove_and_move_authorised_per_repository(world: RepoWorld) -> None:
    base = world.build("basepkg")
    stage = world.build("stagepkg")
    _ok(world.add("root", "core", base))
    _ok(world.add(PACKAGER, "staging", stage))
    assert "basepkg-1.0-1" in world.db("core") and "stagepkg-1.0-1" in world.db("staging")
    before = world.state()

    def move(src: str, dst: str, what: str) -> dict[str, Any]:
        return {**R, "member": "Move", "sig": "sssasa{sv}", "body": [src, dst, ARCH, [what], {}]}
    refused = world.call(PACKAGER, [
        {**R, "member": "Remove", "sig": "ssasa{sv}", "body": ["core", ARCH, ["basepkg"], {}]},
        move("staging", "core", "stagepkg"),        # destination refused
        move("core", "testing", "basepkg"),          # source refused
    ])
    assert [_error(r) for r in refused] == [NOT_AUTHORIZED] * 3, refused
    assert "org.alpm.repository.remove" in refused[0]["text"]
    assert all("org.alpm.repository.move" in r["text"] for r in refused[1:])
    assert world.state() == before

    moved = _rows(_ok(world.call(PACKAGER, [move("staging", "testing", "stagepkg")])[0]))
    assert {(r["action"], r["repo"], r["base"], r["detail"]) for r in moved} \
        == {("move", "testing", "stagepkg", "from staging")}
    assert "stagepkg-1.0-1" in world.db("testing")
    assert "stagepkg-1.0-1" not in world.db("staging")
    (r,) = world.call(PACKAGER, [{**R, "member": "Remove", "sig": "ssasa{sv}",
                                  "body": ["testing", ARCH, ["stagepkg"], {}]}])
    assert [(x["action"], x["repo"]) for x in _rows(_ok(r))] == [("remove", "testing")]
    assert "stagepkg-1.0-1" not in world.db("testing")
    assert "basepkg-1.0-1" in world.db("core")
    world.healthy()


def test_bad_descriptors_are_invalid_args(world: RepoWorld) -> None:
    pkg = world.build("fdpkg")
    fifo = world.public / "fifo"
    os.mkfifo(fifo)
    fifo.chmod(0o666)
    writable = world.public / "w" / pkg.name
    writable.parent.mkdir()
    writable.parent.chmod(0o755)
    shutil.copy(pkg, writable)
    writable.chmod(0o666)
    sig = {"open": str(pkg) + ".sig"}

    def add(files: list[Any], fds: list[dict[str, Any]]) -> dict[str, Any]:
        return {**R, "member": "Add", "sig": "ssa(shah)a{sv}",
                "body": ["testing", ARCH, files, {}], "fds": fds}
    before = world.state()
    results = world.call(PACKAGER, [
        add([[pkg.name, 0, [1]]], [{"open": str(world.public), "flags": ["O_RDONLY",
                                                                          "O_DIRECTORY"]}, sig]),
        add([[pkg.name, 0, [1]]], [{"fifo": str(fifo)}, sig]),
        add([[pkg.name, 0, [1]]], [{"open": str(writable), "flags": ["O_WRONLY"]}, sig]),
        add([[pkg.name, 0, [1]]], [{"open": str(pkg), "flags": ["O_PATH"]}, sig]),
        add([[pkg.name, 0, [1]]], []),                              # indexes without fds
        add([[pkg.name, 0, [1]]], [{"open": str(pkg)}]),            # .sig index without fd
        add([[pkg.name, 0, [0]]], [{"open": str(pkg)}, sig]),       # one fd named twice
        add([["../" + pkg.name, 0, [1]]], [{"open": str(pkg)}, sig]),
        add([["notes.txt", 0, []]], [{"open": str(pkg)}]),
        add([[pkg.name, 0, [1, 2]]], [{"open": str(pkg)}, sig, sig]),
        add([], []),
    ])
    assert [_error(r) for r in results] == [INVALID] * len(results), results
    assert world.state() == before
    world.healthy()


def test_read_only_methods_are_open_to_everybody(world: RepoWorld) -> None:
    pkg = world.build("readpkg")
    _ok(world.add(PACKAGER, "testing", pkg))
    results = world.call(CLIENT_USER, [
        {**R, "member": "ListRepositories"},
        {**R, "member": "List", "sig": "ssa{sv}", "body": ["testing", "", {}]},
        {**R, "member": "History", "sig": "sa{sv}", "body": ["readpkg", {}]},
        {**R, "member": "Check", "sig": "a{sv}", "body": [{"verify": {"v": ["b", True]}}]},
        {"iface": "org.freedesktop.DBus.Properties", "member": "Get", "sig": "ss",
         "body": ["org.alpm.Repository1", "Tree"]},
        {**R, "member": "Check", "sig": "a{sv}", "body": [{"repair": {"v": ["b", True]}}]},
        {**R, "member": "List", "sig": "ssa{sv}", "body": ["nosuchrepo", "", {}]},
    ])
    repos = {r[0]: (r[1], r[2]) for r in _ok(results[0])}
    assert repos["core"] == ([ARCH], False) and repos["testing"] == ([ARCH], True)
    listed = _rows(_ok(results[1]))
    mine = [r for r in listed if r["name"] == "readpkg"]
    assert [(r["repo"], r["version"], r["filename"], r["released_by"]) for r in mine] \
        == [("testing", "1.0-1", pkg.name, PACKAGER)]
    assert {r["repo"] for r in listed} == {"testing"}
    assert [(h["action"], h["repo"], h["base"]) for h in _rows(_ok(results[2]))] \
        == [("add", "testing", "readpkg")]
    check = {k: v["v"][1] for k, v in _ok(results[3]).items()}
    assert check["ok"] is True and check["problems"] == [], check
    assert _ok(results[4]) == {"v": ["s", str(world.root)]}
    assert _error(results[5]) == NOT_AUTHORIZED
    assert _error(results[6]) == "org.alpm.Error.NotFound"
    assert results[6]["text"].startswith("db-not-found: ")


async def _call(bus: MessageBus, member: str, sig: str, body: list[Any],
                fds: Sequence[int] = (), iface: str = "org.alpm.Repository1") -> Message:
    return await bus.call(Message(destination="org.alpm", path="/org/alpm", interface=iface,
                                  member=member, signature=sig, body=body,
                                  unix_fds=list(fds)))


def _holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (the daemon's writer inside the lock wait)."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                return True
        except OSError:
            pass
    return False


def test_waiting_writers_do_not_stall_queries(world: RepoWorld) -> None:
    """Two releases wait for the tree's lock (held here, as another alpm-repo would hold
    it); meanwhile the daemon answers queries, and both releases go through afterwards."""
    first, second = world.build("waitone"), world.build("waittwo")
    tree = world.tree()
    try:
        async def go() -> tuple[list[Message], list[Message]]:
            buses = [await connect(world.env.address) for _ in range(3)]
            try:
                opened = [os.open(p, os.O_RDONLY) for q in (first, second)
                          for p in (q, Path(str(q) + ".sig"))]
                with tree_lock(tree.cfg):
                    def write(i: int, pkg: Path) -> asyncio.Future[Message]:
                        return asyncio.ensure_future(_call(
                            buses[i], "Add", "ssa(shah)a{sv}",
                            ["testing", ARCH, [[pkg.name, 0, [1]]], {}],
                            opened[2 * i:2 * i + 2]))
                    writes = [write(0, first)]
                    lock = world.root / ".alpm-repo" / "lock"
                    while not _holds_open(world.proc.pid, lock):  # the writer waits for it
                        await asyncio.sleep(0.05)
                    # the first client's second change is one too many (queued_per_client=1)
                    extra = await _call(buses[0], "Add", "ssa(shah)a{sv}",
                                        ["testing", ARCH, [[second.name, 0, [1]]], {}],
                                        opened[2:])
                    writes.append(write(1, second))  # waits behind the first
                    await asyncio.sleep(0)
                    answers = [await _call(buses[2], "ListRepos", "", [],
                                           iface="org.alpm.Query1"),
                               await _call(buses[2], "List", "ssa{sv}", ["", "", {}]),
                               await _call(buses[2], "ListRepositories", "", [])]
                    pending = [not w.done() for w in writes]
                    # the tree lock is still ours: neither release can have happened
                    assert pending == [True, True]
                    assert extra.message_type is MessageType.ERROR
                    assert extra.error_name == LIMIT, extra.body
                for fd in opened:
                    os.close(fd)
                return answers, list(await asyncio.gather(*writes))
            finally:
                for b in buses:
                    b.disconnect()
        answers, writes = asyncio.run(asyncio.wait_for(go(), 120))
    finally:
        tree.close()
    assert all(a.message_type is MessageType.METHOD_RETURN for a in answers), \
        [a.body for a in answers]
    assert all(w.message_type is MessageType.METHOD_RETURN for w in writes), \
        [w.body for w in writes]
    assert {"waitone-1.0-1", "waittwo-1.0-1"} <= world.db("testing")
    world.healthy()


def test_changed_signal_and_variant_options(world: RepoWorld) -> None:
    """Changed names the databases a change rewrote; force is a typed option."""
    pkg = world.build("sigpkg", "2.0-1")
    older = world.build("sigpkg", "1.0-1")

    async def go() -> tuple[list[Any], Message, Message]:
        bus = await connect(world.env.address)
        heard: list[Any] = []

        def listen(msg: Message) -> bool:
            if msg.message_type is MessageType.SIGNAL and msg.member == "Changed":
                heard.append(msg.body[0])
            return False
        bus.add_message_handler(listen)
        await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                               interface="org.freedesktop.DBus", member="AddMatch",
                               signature="s", body=["type='signal',sender='org.alpm',"
                                                    "interface='org.alpm.Repository1'"]))
        try:
            fds = [os.open(p, os.O_RDONLY) for p in (pkg, Path(str(pkg) + ".sig"))]
            added = await _call(bus, "Add", "ssa(shah)a{sv}",
                                ["extra", ARCH, [[pkg.name, 0, [1]]], {}], fds)
            fds += [os.open(p, os.O_RDONLY) for p in (older, Path(str(older) + ".sig"))]
            bad = await _call(bus, "Add", "ssa(shah)a{sv}",
                              ["extra", ARCH, [[older.name, 0, [1]]],
                               {"force": Variant("s", "yes")}], fds[2:])
            for fd in fds:
                os.close(fd)
            await _call(bus, "List", "ssa{sv}", ["", "", {}])  # the signal came before
            return heard, added, bad
        finally:
            bus.disconnect()
    heard, added, bad = asyncio.run(asyncio.wait_for(go(), 60))
    assert added.message_type is MessageType.METHOD_RETURN, added.body
    assert [[list(w) for w in h] for h in heard] == [[["extra", ARCH]]]
    assert bad.message_type is MessageType.ERROR and bad.error_name == INVALID, bad.body


def test_errors_in_the_callers_language(world: RepoWorld) -> None:
    """``locale`` in opts: the same refused (checked by the daemon) or failing (refused by
    the engine) call answers in German, in English without it or for a language with no
    catalog; the code stays first and English. A malformed locale is itself refused."""
    subprocess.run(["make", "-s", "mo"], cwd=Path(__file__).resolve().parents[2], check=True,
                   capture_output=True, timeout=120)  # the catalogs are built, not committed
    before = world.state()

    async def go() -> list[Message]:
        bus = await connect(world.env.address)
        replies: list[Message] = []
        try:
            for locale in ("de", None, "de_DE.UTF-8", "xx", "de;rm -rf"):
                opts = {} if locale is None else {"locale": Variant("s", locale)}
                replies += [
                    await _call(bus, "Remove", "ssasa{sv}", ["testing", ARCH, [], opts]),
                    await _call(bus, "List", "ssa{sv}", ["bad/repo", "", opts]),
                    await _call(bus, "Move", "sssasa{sv}", ["core", "core", ARCH, ["x"], opts]),
                ]
            return replies
        finally:
            bus.disconnect()
    replies = asyncio.run(asyncio.wait_for(go(), 60))
    assert all(r.message_type is MessageType.ERROR and r.error_name == INVALID
               for r in replies), [(r.error_name, r.body) for r in replies]
    texts = [r.body[0] for r in replies]
    german = ["wrong-args: keine pkgbase angegeben",
              "wrong-args: ungültiger Name einer Paketquelle: 'bad/repo'",
              "wrong-args: Quelle und Ziel sind dieselbe Paketquelle"]
    english = ["wrong-args: no pkgbase given",
               "wrong-args: invalid repository name: 'bad/repo'",
               "wrong-args: source and destination are the same repository"]
    assert texts[0:3] == german, texts
    assert texts[3:6] == english, texts
    assert texts[6:9] == german, texts
    assert texts[9:12] == english, texts      # a language without a catalog: English
    assert texts[12:] == ["wrong-args: not a locale name: 'de;rm -rf'"] * 3, texts
    assert world.state() == before
    # a result's text too: Check's notes (a package file in the pool no database names)
    stray = world.root / "pool/packages" / "strayed-1.0-1-any.pkg.tar.zst"
    stray.write_bytes(b"")
    # (earlier tests may have left pool files of their own: the count is what the tree has)
    tree = world.tree()
    try:
        named = {r.filename for r in ops.ls(tree, None, None)}
    finally:
        tree.close()
    unreferenced = sum(1 for p in (world.root / "pool/packages").iterdir()
                       if is_package_name(p.name) and p.name not in named)
    assert unreferenced >= 1

    async def check() -> list[Message]:
        bus = await connect(world.env.address)
        try:
            return [await _call(bus, "Check", "a{sv}", [opts]) for opts in
                    ({"locale": Variant("s", "de")}, {})]
        finally:
            bus.disconnect()
    try:
        german_check, english_check = asyncio.run(asyncio.wait_for(check(), 60))
    finally:
        stray.unlink()
    assert german_check.body[0]["notes"].value == [
        f"{unreferenced} Pool-Dateien, auf die keine Datenbank verweist (cleanup entfernt sie)"
    ], german_check
    assert english_check.body[0]["notes"].value == [
        f"{unreferenced} pool files no database references (cleanup removes them)"
    ], english_check
    assert world.state() == before
    world.healthy()


def test_tree_allow_list_applies_to_the_caller(world: RepoWorld) -> None:
    """polkit allows the group to release to gated, the tree's own Allow does not."""
    pkg = world.build("gatedpkg")
    before = world.state()
    r = world.add(PACKAGER, "gated", pkg)
    assert _error(r) == NOT_AUTHORIZED and r["text"].startswith("badperms: "), r
    assert PACKAGER in r["text"]
    assert world.state() == before
    _ok(world.add("root", "gated", pkg))
    assert "gatedpkg-1.0-1" in world.db("gated")


def test_sizes_and_counts_are_capped(world: RepoWorld) -> None:
    """Too many files, or a file over the size cap, are refused before anything is read."""
    blob = os.urandom(FILE_BYTES + 1000)
    big = build_package(world.public, PkgMeta(name="bigpkg", version="1.0-1", arch=ARCH),
                        [FileSpec("usr/share/bigpkg/blob", blob)], compression="gz")
    big.chmod(0o644)
    assert big.stat().st_size > FILE_BYTES
    small = world.build("capped")
    before = world.state()
    many = [[f"capped{i}-1.0-1-{ARCH}.pkg.tar.gz", i, []] for i in range(FILES_PER_CALL + 1)]
    results = world.call(PACKAGER, [
        {**R, "member": "Add", "sig": "ssa(shah)a{sv}", "body": ["testing", ARCH,
                                                                [[big.name, 0, []]], {}],
         "fds": [{"open": str(big)}]},
        {**R, "member": "Add", "sig": "ssa(shah)a{sv}", "body": ["testing", ARCH, many, {}],
         "fds": [{"open": str(small)}] * len(many)},
    ])
    assert [_error(r) for r in results] == [LIMIT, LIMIT], results
    assert f"at most {FILES_PER_CALL} files" in results[1]["text"]
    assert "larger than" in results[0]["text"]
    assert world.state() == before
    world.healthy()



def _open_count(pid: int, path: Path) -> int:
    """How many descriptors process ``pid`` has open on ``path``."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}") == str(path)
        except OSError:
            pass
    return n


def test_one_user_cannot_take_every_reader(world: RepoWorld) -> None:
    """One unprivileged user opening many connections gets one client's share of the
    worker pool (two slots), so another user is still served: four Check(verify) calls of
    one user over a pool file that takes long to hash (a sparse one, made short again
    here to end them) run two at a time, the other two are refused at once."""
    pkg = world.build("bigpkg")
    _ok(world.add(PACKAGER, "testing", pkg))
    tree = world.tree()
    pool = Path(tree.cfg.pool) / pkg.name
    tree.close()
    aside = pool.with_name(".aside-" + pkg.name)
    os.rename(pool, aside)
    with open(pool, "wb") as fh:
        fh.truncate(1 << 40)
    signal_r, signal_w = os.pipe()
    address = world.env.address

    def attack() -> Any:
        async def go() -> list[list[str]]:
            buses = [await connect(address) for _ in range(4)]
            try:
                calls = [asyncio.ensure_future(_call(b, "Check", "a{sv}",
                                                     [{"verify": Variant("b", True)}]))
                         for b in buses]
                order: list[list[str]] = []
                for done in asyncio.as_completed(calls):
                    m = await done
                    order.append([m.error_name or "", str(m.body[0] if m.body else "")])
                    if len(order) == 2:
                        os.write(signal_w, b"2")
                return order
            finally:
                for b in buses:
                    b.disconnect()
        return asyncio.run(asyncio.wait_for(go(), 300))
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool_:
            attacker = pool_.submit(as_user, CLIENT_USER, attack)
            try:
                # two of the user's calls hash the file, the other two were answered
                ready, _, _ = select.select([signal_r], [], [], 120)
                assert ready, "the user's four calls all run (no per-user share)"
                for _ in range(2400):  # (a hang guard: both reach the pool file)
                    if _open_count(world.proc.pid, pool) >= 2:
                        break
                    time.sleep(0.05)
                assert _open_count(world.proc.pid, pool) == 2
                (other,) = world.call(PACKAGER, [{**R, "member": "List", "sig": "ssa{sv}",
                                                  "body": ["testing", "", {}]}])
                assert "ok" in other, other
            finally:
                os.truncate(pool, 0)  # the running hashes end
            order = attacker.result(timeout=300)
    finally:
        os.close(signal_r)
        os.close(signal_w)
        os.replace(aside, pool)
    assert [name for name, _ in order[:2]] == [LIMIT, LIMIT], order
    assert all("this user" in text for _, text in order[:2]), order
    assert [name for name, _ in order[2:]] == ["", ""], order
    world.healthy()


def _wait(fd: int, what: str) -> bytes:
    """The next word on pipe ``fd`` (a hang guard, not a timing assertion)."""
    assert select.select([fd], [], [], 120)[0], f"never heard: {what}"
    return os.read(fd, 32)


def test_descriptors_of_the_tracking_database_are_not_kept(world: RepoWorld) -> None:
    """Descriptors of tracking.sqlite (world-readable) a client sends while a release has
    the tree open never reach the daemon's descriptor table (closing one there would drop
    the writer's SQLite locks): the bus relay closes them in its own table. None is open
    beside the writer's, and the release goes through. Every client stays connected
    until the check (a client leaving is a message too)."""
    pkg = world.build("trackfd")
    tracking = world.root / ".alpm-repo" / "tracking.sqlite"
    lock = world.root / ".alpm-repo" / "lock"
    assert os.stat(tracking).st_mode & 0o004
    to_parent_r, to_parent = os.pipe()
    to_child, to_child_w = os.pipe()
    address = world.env.address

    def packager() -> Any:
        async def go() -> list[Any]:
            bus = await connect(address)
            try:
                opened = [os.open(p, os.O_RDONLY) for p in (pkg, Path(f"{pkg}.sig"))]
                os.write(to_parent, b"ready")
                os.read(to_child, 32)  # the tree is locked now
                add = asyncio.ensure_future(_call(bus, "Add", "ssa(shah)a{sv}",
                                                  ["testing", ARCH, [[pkg.name, 0, [1]]], {}],
                                                  opened))
                await _call(bus, "Get", "ss", ["org.alpm.Manager1", "State"],
                            iface="org.freedesktop.DBus.Properties")
                os.write(to_parent, b"adding")
                reply = await add
                for fd in opened:
                    os.close(fd)
                os.write(to_parent, b"added")
                os.read(to_child, 32)  # stay connected until the parent looked
                return [reply.error_name, str(reply.body)]
            finally:
                bus.disconnect()
        return asyncio.run(asyncio.wait_for(go(), 300))

    sent_r, sent_w = os.pipe()
    stay_r, stay_w = os.pipe()

    def sender() -> Any:
        """(A child: the test process must never open and close descriptors of
        tracking.sqlite itself, or it would drop its own SQLite locks on it.)"""
        async def go() -> str:
            bus = await connect(address)
            try:
                os.write(sent_w, b"ready")
                os.read(stay_r, 32)  # the release waits for the tree's lock now
                for _ in range(2):
                    await send_descriptors(bus, tracking)
                await _call(bus, "Get", "ss", ["org.alpm.Manager1", "State"],
                            iface="org.freedesktop.DBus.Properties")
                os.write(sent_w, b"sent")
                os.read(stay_r, 32)  # stay connected until the parent looked
                return "ok"
            finally:
                bus.disconnect()
        return asyncio.run(asyncio.wait_for(go(), 300))
    tree = world.tree()
    cfg = tree.cfg
    tree.close()
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            # (the client is forked before the lock is taken: a child would inherit it)
            client = pool.submit(as_user, PACKAGER, packager)
            assert _wait(to_parent_r, "the client") == b"ready"
            flooder = pool.submit(as_user, "root", sender)
            assert _wait(sent_r, "the other client") == b"ready"
            with tree_lock(cfg):
                os.write(to_child_w, b"go")
                assert _wait(to_parent_r, "the release") == b"adding"
                for _ in range(2400):  # (a hang guard: the writer reaches the lock)
                    if _open_count(world.proc.pid, lock):
                        break
                    time.sleep(0.05)
                assert _open_count(world.proc.pid, tracking) == 1
                os.write(stay_w, b"go")
                assert _wait(sent_r, "the descriptors") == b"sent"
                # none kept: only the writer's own
                assert _open_count(world.proc.pid, tracking) == 1
            assert _wait(to_parent_r, "the release's answer") == b"added"
            for _ in range(1200):  # (a hang guard)
                if not _open_count(world.proc.pid, tracking):
                    break
                time.sleep(0.05)
            left = _open_count(world.proc.pid, tracking)
            os.write(to_child_w, b"done")
            os.write(stay_w, b"done")
            name, body = client.result(timeout=300)
            assert flooder.result(timeout=300) == "ok"
    finally:
        for fd in (to_parent_r, to_parent, to_child, to_child_w, sent_r, sent_w, stay_r,
                   stay_w):
            os.close(fd)
    assert name is None, body
    assert left == 0, f"{left} descriptors of tracking.sqlite still open after the release"
    assert "trackfd-1.0-1" in world.db("testing")
    world.healthy()


# -- alpmctl repo: the command line over Repository1 -------------------------------------


def _alpmctl(world: RepoWorld, user: str, *args: str, lang: str = "C.UTF-8",
             address: str | None = None) -> subprocess.CompletedProcess[str]:
    """``alpmctl ARGS`` as ``user`` on the world's bus: its main() in a forked child of
    that uid (the test interpreter is not readable by other users, so it cannot be
    exec'd as them), with its own environment, output captured."""
    def child() -> list[Any]:
        os.environ.pop("LC_ALL", None)
        os.environ.pop("LANGUAGE", None)
        os.environ.update({"LANG": lang, "DBUS_SYSTEM_BUS_ADDRESS": address or
                           world.env.address, "TZ": "UTC"})
        i18n.reset()
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = alpmctl.main(list(args))
            except SystemExit as exc:  # (argparse: bad usage)
                code = int(exc.code or 0)
        return [code, out.getvalue(), err.getvalue()]
    code, out, err = as_user(user, child)
    return subprocess.CompletedProcess(["alpmctl", *args], code, out, err)


def test_alpmctl_repo_releases_what_pacman_then_installs(world: RepoWorld,
                                                          tmp_path: Path) -> None:
    """A packager releases with ``alpmctl repo add`` (descriptors of the file and its .sig);
    the real pacman, on a root whose [testing] is the served tree over a loopback mirror,
    syncs, lists and installs it. Then the other subcommands: list, history, repos, check,
    move and remove."""
    pkg = world.build("ctlpkg")
    got = _alpmctl(world, PACKAGER, "repo", "add", "testing", str(pkg))
    assert got.returncode == 0, got.stderr
    assert got.stdout.splitlines() == [f"add testing {ARCH} ctlpkg 1.0-1"], got.stdout

    need("pacman")
    root = PacmanRoot(tmp_path / "root")
    with MirrorServer(root=world.root).threaded() as m:
        root.repos.append("testing")
        root.write_config()
        conf = root.config.read_text().replace(
            f"Server = file://{root.root}/srv/testing", f"Server = {m.url}/testing/os/{ARCH}")
        root.config.write_text(conf)
        sync = root.pacman("-Sy")
        assert sync.returncode == 0, sync.stderr
        listed = root.pacman("-Sl", "testing")
        assert listed.returncode == 0, listed.stderr
        assert "testing ctlpkg 1.0-1" in listed.stdout.splitlines(), listed.stdout
        installed = root.pacman("-S", "--noconfirm", "ctlpkg")
        assert installed.returncode == 0, installed.stderr
    assert (root.root / "usr/share/ctlpkg/1.0-1").read_bytes() == b"ctlpkg"

    listed_ctl = _alpmctl(world, CLIENT_USER, "repo", "list", "testing")
    assert listed_ctl.returncode == 0, listed_ctl.stderr
    assert f"testing {ARCH} ctlpkg 1.0-1" in listed_ctl.stdout.splitlines()
    hist = _alpmctl(world, CLIENT_USER, "repo", "history", "ctlpkg")
    assert hist.returncode == 0, hist.stderr
    assert [line.split()[2:] for line in hist.stdout.splitlines()] == [
        [PACKAGER, "add", "testing", ARCH, "ctlpkg", "1.0-1"]], hist.stdout
    repos = _alpmctl(world, CLIENT_USER, "repo", "repos")
    assert repos.returncode == 0, repos.stderr
    assert f"core {ARCH}" in repos.stdout.splitlines()
    assert f"testing {ARCH} (testing)" in repos.stdout.splitlines()
    check = _alpmctl(world, CLIENT_USER, "repo", "check")
    assert (check.returncode, check.stdout.splitlines()[-1]) == (0, "tree is consistent")
    as_json = _alpmctl(world, CLIENT_USER, "--json", "repo", "list", "testing")
    assert {"name": "ctlpkg", "repo": "testing", "version": "1.0-1"}.items() <= next(
        r for r in json.loads(as_json.stdout) if r["name"] == "ctlpkg").items()

    moved = _alpmctl(world, PACKAGER, "repo", "move", "testing", "staging", "ctlpkg")
    assert moved.returncode == 0, moved.stderr
    assert "ctlpkg-1.0-1" in world.db("staging") and "ctlpkg-1.0-1" not in world.db("testing")
    removed = _alpmctl(world, PACKAGER, "repo", "remove", "staging", "ctlpkg")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.split()[:2] == ["remove", "staging"], removed.stdout
    assert "ctlpkg-1.0-1" not in world.db("staging")
    world.healthy()


def test_alpmctl_repo_refusals_and_local_errors(world: RepoWorld) -> None:
    """polkit refuses a release to core: alpmctl prints the daemon's error and exits 1, the
    tree is byte-identical; a file that does not exist is an error before anything is
    sent (exit 2, even with no daemon to talk to); German when the user speaks it."""
    pkg = world.build("ctlcore")
    before = world.state()
    got = _alpmctl(world, PACKAGER, "repo", "add", "core", str(pkg))
    assert got.returncode == 1, (got.stdout, got.stderr)
    assert got.stderr.startswith("error: ") and f"({NOT_AUTHORIZED})" in got.stderr, got.stderr
    assert "org.alpm.repository.release" in got.stderr
    assert got.stdout == ""
    refused = _alpmctl(world, PACKAGER, "repo", "remove", "core", "anything")
    assert refused.returncode == 1 and NOT_AUTHORIZED in refused.stderr, refused.stderr
    assert world.state() == before
    assert "ctlcore-1.0-1" not in world.db("core")

    missing = str(world.public / "nothere-1.0-1-x86_64.pkg.tar.zst")
    for address in (world.env.address, "unix:path=/nonexistent/bus"):
        gone = _alpmctl(world, PACKAGER, "repo", "add", "testing", str(pkg), missing,
                        address=address)
        assert gone.returncode == 2, (gone.stdout, gone.stderr)
        assert gone.stderr == f"error: cannot open {missing}: No such file or directory\n"
    assert world.state() == before
    german = _alpmctl(world, PACKAGER, "repo", "add", "testing", missing, lang="de_DE.UTF-8")
    assert german.returncode == 2
    assert german.stderr == (f"Fehler: {missing} kann nicht geöffnet werden: "
                             "No such file or directory\n"), german.stderr
    usage = _alpmctl(world, PACKAGER, "repo", "add", "testing")
    assert usage.returncode == 2 and "FILE" in usage.stderr
    world.healthy()
