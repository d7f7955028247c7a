"""A bounded fuzzer: random calls of every method and property, as an unprivileged user.

Signatures right and wrong, values at the edges of their types, variants of any type,
descriptors of every kind (none, too many, closed, O_PATH, directories, FIFOs, sockets,
/dev/zero, pipes, a real package). Afterwards: the daemon is alive and answers, every
error it sent has a name of its own (never Internal, never the library's ServiceError,
never no reply), and its log holds no traceback.
"""

from __future__ import annotations

import math
import os
import random
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alpmd.engine.formats.desc import PkgMeta
from alpmd.engine.repo.ops import check
from alpmd.engine.repo.tree import init_tree, open_tree
from alpmd.testing.dbusenv import DATA
from alpmd.testing.pkgbuild import FileSpec, build_package
from tests.dbus.dbus_e2e import E2ERoot
from tests.security.secworld import World, build_world

BUDGET = float(os.environ.get("ALPMD_FUZZ_SECONDS", "60"))
SEED = int(os.environ.get("ALPMD_FUZZ_SEED", "10"))
BATCH = 150
#: more descriptors than the bus passes in one message (it drops such a sender)
TOO_MANY = 20
#: errors the bus or the library may answer for a call that never reached our code
BUS_ERRORS = {"org.freedesktop.DBus.Error." + n for n in (
    "InvalidArgs", "UnknownMethod", "UnknownObject", "UnknownInterface", "UnknownProperty",
    "PropertyReadOnly", "AccessDenied", "LimitsExceeded", "InvalidSignature")}
BAD = {"org.alpm.Error.Internal", "com.dubstepdish.dbus.next.ServiceError",
       "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Failed"}
OPTION_KEYS = ["run", "force", "allow-downgrade", "no-sysupgrade", "refresh", "asdeps",
               "needed", "cascade", "recursive", "download-only", "all", "keep-versions",
               "scope", "fields", "repos", "limit", "offset", "prefer", "interactive",
               "locale", "question-timeout", "answers", "reason", "zz-unknown"]
STRINGS = ["", "tool", "editor", "local/tool", "test/tool", "tool;2.0-1;any;local", "-rf",
           "../../etc/shadow", "/", "/usr/share/tool/data", "a" * 5000, "ä€\U0001f600",
           "((.+)+)+!", "[[:alpha:]", "sh-provider>=1", "explicit", "dependency", "installed",
           "available", "orphans", "C.UTF-8", "0123456789ABCDEF", "\x01\x7f", "tool\nx",
           "testing", "x86_64", "ok-1-1-any.pkg.tar.gz"]
INTS = [0, 1, -1, 2, 7, 255, 2**15, 2**31 - 1, -2**31, 2**32 - 1, 2**53, 2**63 - 1, -2**63,
        2**64 - 1]
BASIC = "ybnqiuxtdsogh"


def _int_for(code: str, rng: random.Random) -> int:
    lo, hi = {"y": (0, 255), "n": (-2**15, 2**15 - 1), "q": (0, 2**16 - 1),
              "i": (-2**31, 2**31 - 1), "u": (0, 2**32 - 1), "x": (-2**63, 2**63 - 1),
              "t": (0, 2**64 - 1), "h": (0, 2**32 - 1)}[code]
    return min(hi, max(lo, rng.choice(INTS)))


def _sig(rng: random.Random, depth: int = 0) -> str:
    r = rng.random()
    if depth > 2 or r < 0.55:
        return rng.choice(BASIC.replace("h", "") if rng.random() < 0.8 else BASIC)
    if r < 0.75:
        return "a" + _sig(rng, depth + 1)
    if r < 0.85:
        return "a{s" + _sig(rng, depth + 1) + "}"
    if r < 0.93:
        return "v"
    return "(" + "".join(_sig(rng, depth + 1) for _ in range(rng.randint(1, 3))) + ")"


def _split(sig: str) -> list[str]:
    """A signature's complete types."""
    out, i = [], 0
    while i < len(sig):
        j = _end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def _end(sig: str, i: int) -> int:
    c = sig[i]
    if c == "a":
        return _end(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        j = i + 1
        while sig[j] != close:
            j = _end(sig, j)
        return j + 1
    return i + 1


def _value(sig: str, rng: random.Random, depth: int = 0) -> Any:
    c = sig[0]
    if c in "ynqiuxth":
        return _int_for(c, rng)
    if c == "b":
        return rng.random() < 0.5
    if c == "d":
        return rng.choice([0.0, -1.0, 1e308, math.inf, -math.inf, 0.5, 3600.0, 1e9])
    if c == "s":
        return rng.choice(STRINGS)
    if c == "o":
        return rng.choice(["/", "/org/alpm", f"/org/alpm/transaction/{rng.randint(0, 40)}"])
    if c == "g":
        return rng.choice(["", "s", "a{sv}", "h"])
    if c == "v":
        inner = _sig(rng, depth + 1)
        return {"v": [inner, _value(inner, rng, depth + 1)]}
    if sig.startswith("a{"):
        key, val = _split(sig[2:-1])
        n = rng.choice([0, 1, 2, 5]) if depth < 2 else rng.choice([0, 1])
        keys = OPTION_KEYS if key == "s" else None
        out: dict[Any, Any] = {}
        for _ in range(n):
            k = rng.choice(keys) if keys else _value(key, rng, depth + 1)
            out[k] = _value(val, rng, depth + 1)
        return out
    if c == "a":
        n = rng.choice([0, 1, 3, 20, 300]) if depth == 0 else rng.choice([0, 1, 3])
        return [_value(sig[1:], rng, depth + 1) for _ in range(n)]
    if c == "(":
        return [_value(t, rng, depth + 1) for t in _split(sig[1:-1])]
    raise ValueError(sig)


def _methods() -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    tree = ET.parse(DATA / "org.alpm.xml")
    methods: list[tuple[str, str, str]] = []
    props: list[tuple[str, str]] = []
    for iface in tree.getroot().iter("interface"):
        name = iface.get("name", "")
        if not name.startswith("org.alpm."):
            continue
        for m in iface.iter("method"):
            sig = "".join(a.get("type", "") for a in m.iter("arg")
                          if a.get("direction", "in") == "in")
            if m.get("name") != "Quit":
                methods.append((name, m.get("name", ""), sig))
        props.extend((name, p.get("name", "")) for p in iface.iter("property"))
    return methods, props


def _fds(rng: random.Random, public: Path) -> list[dict[str, Any]]:
    kinds: list[dict[str, Any]] = [
        {"open": str(public / "ok.pkg.tar.gz")}, {"open": str(public), "flags": ["O_PATH"]},
        {"open": str(public), "flags": ["O_RDONLY", "O_DIRECTORY"]},
        {"fifo": str(public / "fifo")}, {"socket": True}, {"open": "/dev/zero"},
        {"pipe": "r"}, {"pipe": "w"}, {"closed": True},
        {"open": str(public / "ok.pkg.tar.gz"), "flags": ["O_PATH"]}]
    r = rng.random()
    if r < 0.6:
        return []
    if r < 0.95:
        return [rng.choice(kinds) for _ in range(rng.randint(1, 3))]
    return [rng.choice(kinds[:7]) for _ in range(TOO_MANY)]


def _calls(rng: random.Random, n: int, public: Path, only: str = "") -> list[dict[str, Any]]:
    methods, props = _methods()
    if only:
        methods = [m for m in methods if m[0] == only]
        props = [p for p in props if p[0] == only]
    calls: list[dict[str, Any]] = []
    for i in range(n):
        r = rng.random()
        path: Any = rng.choice(["/org/alpm", {"ref": max(0, i - rng.randint(1, 5))}])
        if r < 0.15:
            iface, prop = rng.choice(props)
            member = rng.choice(["Get", "GetAll", "Set"])
            sig, body = {"Get": ("ss", [iface, prop]), "GetAll": ("s", [iface]),
                         "Set": ("ssv", [iface, prop, _value("v", rng)])}[member]
            calls.append({"path": "/org/alpm" if iface != "org.alpm.Transaction1" else path,
                          "iface": "org.freedesktop.DBus.Properties", "member": member,
                          "sig": sig, "body": body, "timeout": 40})
            continue
        iface, member, sig = rng.choice(methods)
        if rng.random() < 0.25:
            sig = "".join(_sig(rng) for _ in range(rng.randint(0, 3)))
        body = [_value(t, rng) for t in _split(sig)]
        fds = _fds(rng, public)
        if fds and "h" in sig and rng.random() < 0.7:   # index a descriptor really sent
            body = [_reindex(t, v, len(fds)) for t, v in zip(_split(sig), body, strict=True)]
        if only and member in TREE_ARGS and rng.random() < 0.6:  # names the tree has
            good = TREE_ARGS[member]
            body[:len(good)] = [g if rng.random() < 0.8 else b
                                for g, b in zip(good, body, strict=False)]
            if member == "Add" and sig == "ssa(shah)a{sv}":  # a real package, sent
                fds = [{"open": str(public / "ok.pkg.tar.gz")}, *fds][:TOO_MANY - 1]
                body[2] = _reindex("a(shah)", body[2], len(fds))
        calls.append({"path": "/org/alpm" if iface != "org.alpm.Transaction1" else path,
                      "iface": iface if rng.random() < 0.9 else None, "member": member,
                      "sig": sig, "body": body, "fds": fds,
                      "timeout": 40 if len(fds) < TOO_MANY else 3})
    return calls


#: leading arguments of Repository1's methods that name the served tree's parts
TREE_ARGS = {"Add": ["testing", "x86_64"], "Remove": ["testing", "x86_64", ["ok"]],
             "Move": ["testing", "core", "x86_64", ["ok"]], "List": ["testing", "x86_64"],
             "History": ["ok"]}


def _reindex(sig: str, value: Any, n: int) -> Any:
    if sig == "h":
        return value % n
    if sig == "ah":
        return [v % n for v in value][:n] or [0]
    if sig == "a(shah)":  # Repository1.Add: (name, package, [signature]), each fd once
        return [[name if i else "ok-1-1-any.pkg.tar.gz", i, []]
                for i, (name, _pkg, _sigs) in enumerate(value[:n])] \
            or [["ok-1-1-any.pkg.tar.gz", 0, []]]
    return value


def _fuzz(world: World, budget: float, only: str = "") -> dict[str, int]:
    """Random batches for ``budget`` seconds; the error names seen (each checked)."""
    public = world.public
    built = build_package(public, PkgMeta(name="ok", version="1-1"),
                          [FileSpec("usr/share/ok/a", b"x")])
    built.rename(public / "ok.pkg.tar.gz")
    (public / "ok.pkg.tar.gz").chmod(0o644)
    os.mkfifo(public / "fifo")
    (public / "fifo").chmod(0o666)
    rng = random.Random(SEED)
    deadline = time.monotonic() + budget
    seen: dict[str, int] = {}
    sent = 0
    while time.monotonic() < deadline:
        calls = _calls(rng, BATCH, public, only)
        results = world.hostile(calls, timeout=600)
        assert world.proc.poll() is None, "the daemon died"
        for i, (call, res) in enumerate(zip(calls, results, strict=True)):
            if "ok" in res or "send-error" in res:
                seen["ok"] = seen.get("ok", 0) + ("ok" in res)
                continue
            if "timeout" in res and len(call["fds"]) >= TOO_MANY:
                continue  # the bus dropped the sender; the daemon never saw the call
            assert "timeout" not in res, ("no answer", i, repr(call)[:300], [
                (c["member"], c["sig"], r) for c, r in zip(calls[i - 4:i], results[i - 4:i],
                                                           strict=True)])
            name = res["error"]
            assert name not in BAD, (call, res)
            assert name.startswith("org.alpm.Error.") or name in BUS_ERRORS, (call, res)
            seen[name] = seen.get(name, 0) + 1
        sent += len(calls)
    assert sent >= BATCH
    return seen


def test_fuzz_every_method_and_property(world: World) -> None:
    seen = _fuzz(world, BUDGET)
    # the fuzzer reached our own checks, not only the bus's
    assert seen.get("org.alpm.Error.InvalidArgs", 0) > 0, seen
    world.healthy()


#: the fuzzing user may change ``testing`` of the served tree (so calls reach the engine)
TREE_RULES = """\
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.alpm.repository.") == 0
            && action.lookup("org.alpm.repository") == "testing") {
        return polkit.Result.YES;
    }
});
"""


def _serve_tree(e: E2ERoot) -> None:
    tree = e.root.root / "srv-tree"
    init_tree(str(tree), ["core", "testing"], ["x86_64"]).close()
    (e.root.root / "etc" / "alpmd.conf").write_text(f"[options]\nRepositoryTree = {tree}\n")


@pytest.fixture
def tree_world(tmp_path: Path, user: str) -> Iterator[World]:
    yield from build_world(tmp_path, user, rules=TREE_RULES, prepare=_serve_tree)


def test_fuzz_repository(tree_world: World) -> None:
    """Repository1 on a served tree, as a user polkit lets change ``testing``: every
    answer is a named error or a reply, the tree stays consistent."""
    seen = _fuzz(tree_world, max(BUDGET / 3, 10), "org.alpm.Repository1")
    assert seen.get("org.alpm.Error.InvalidArgs", 0) > 0, seen
    print(seen)
    assert seen.get("ok", 0) > 0, seen  # (the reads answer)
    tree = open_tree(str(tree_world.root.root.root / "srv-tree"))
    try:
        report = check(tree, verify=True)
    finally:
        tree.close()
    assert report.ok, report.problems
    tree_world.healthy()
