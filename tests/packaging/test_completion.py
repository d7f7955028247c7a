"""Shell completion: bash's completion functions run in a bash subprocess (options by
operation, package names from the real databases); the zsh functions parse."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from alpmd.cli import args as alpm_args
from alpmd.engine.formats.desc import PkgMeta
from alpmd.testing.oracle import PacmanRoot
from alpmd.testing.pkgbuild import FileSpec, build_package

ROOT = Path(__file__).resolve().parents[2]
BASH = ROOT / "completions" / "bash"
ZSH = ROOT / "completions" / "zsh"
INSTALLED = ["zeta-tool", "zeta-lib", "omega"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, arch_sync: Path) -> PacmanRoot:
    base = tmp_path_factory.mktemp("completion")
    r = PacmanRoot(base / "root")
    r.add_repo("core", arch_sync / "core.db.tar.gz")
    files = [build_package(base, PkgMeta(name, "1.0-1", arch="any", desc=name),
                           [FileSpec(f"usr/share/{name}/README", b"x\n")])
             for name in INSTALLED]
    proc = r.pacman("-U", *map(str, files))
    assert proc.returncode == 0, proc.stderr
    return r


def complete(script: str, words: list[str], *, cwd: Path | None = None) -> list[str]:
    """COMPREPLY of the completion function ``complete -p`` names for ``words[0]``,
    with the last word being completed (as bash would after <TAB>)."""
    line = " ".join(shlex.quote(w) if w else "''" for w in words)
    program = f"""
source {shlex.quote(str(BASH / script))}
COMP_WORDS=({line})
COMP_CWORD={len(words) - 1}
COMP_LINE={shlex.quote(" ".join(words))}
COMP_POINT=${{#COMP_LINE}}
func=$(complete -p {shlex.quote(words[0])} | sed -E 's/.* -F ([^ ]+) .*/\\1/')
"$func" {shlex.quote(words[0])} {shlex.quote(words[-1])} {shlex.quote(words[-2])}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "HOME": "/nonexistent"}
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True,
                          text=True, env=env, timeout=120, cwd=cwd)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def test_alpm_completes_installed_names_for_query_and_remove(root: PacmanRoot) -> None:
    for op in ("-Qi", "-R", "-Rs", "--query", "-D"):
        got = complete("alpm", ["alpm", op, *root.args(), "ze"])
        assert sorted(got) == ["zeta-lib", "zeta-tool"], op
    assert sorted(complete("alpm", ["alpm", "-Q", *root.args(), ""])) == sorted(INSTALLED)
    # -Qo and -Qp take files, not names.
    assert complete("alpm", ["alpm", "-Qo", *root.args(), "ze"]) == []


def test_alpm_completes_sync_names_for_sync(root: PacmanRoot) -> None:
    got = complete("alpm", ["alpm", "-S", *root.args(), "pacman"])
    assert "pacman" in got and "pacman-mirrorlist" in got
    assert all(name.startswith("pacman") for name in got)
    assert "zeta-tool" not in complete("alpm", ["alpm", "-S", *root.args(), "ze"])
    # The names really come from the database: the same as alpm -Slq lists.
    listed = subprocess.run([str(Path(sys.executable).parent / "alpm"), "-Slq", *root.args()],
                            capture_output=True, text=True, check=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "LC_ALL": "C"}).stdout.split()
    assert sorted(complete("alpm", ["alpm", "-Syu", *root.args(), "g"])) == sorted(
        n for n in listed if n.startswith("g"))


def test_alpm_completes_every_option_of_each_operation() -> None:
    assert set(complete("alpm", ["alpm", "-"])) >= {f"-{k}" for k in "DFQRSTUVh"}
    for letter, op in alpm_args.OPERATIONS.items():
        if op in ("version", "help"):
            continue
        shorts, longs = alpm_args.OP_FLAGS[op]
        got = set(complete("alpm", ["alpm", f"-{letter}", "-"]))
        want = ({f"--{n}" for n in longs | set(shorts.values()) | alpm_args.COMMON_LONG}
                | {f"-{c}" for c in shorts})
        assert want <= got, (op, sorted(want - got))


def test_alpm_completes_option_values(tmp_path: Path) -> None:
    (tmp_path / "rootdir").mkdir()
    (tmp_path / "rootfile").write_text("")
    assert complete("alpm", ["alpm", "-S", "--color", "a"]) == ["always", "auto"]
    assert complete("alpm", ["alpm", "-Q", "--root", "ro"], cwd=tmp_path) == ["rootdir"]
    assert complete("alpm", ["alpm", "-Q", "--root", "=", "ro"], cwd=tmp_path) == ["rootdir"]
    assert sorted(complete("alpm", ["alpm", "-U", "ro"], cwd=tmp_path)) == ["rootdir",
                                                                            "rootfile"]


def test_alpmctl_completes_commands_options_and_names(root: PacmanRoot) -> None:
    assert complete("alpmctl", ["alpmctl", "in"]) == ["info", "install"]
    assert set(complete("alpmctl", ["alpmctl", "--"])) >= {"--address", "--yes", "--version",
                                                           "--help"}
    assert complete("alpmctl", ["alpmctl", "list", "--scope", "or"]) == ["orphans"]
    # alpmctl asks the daemon's system; the names come from alpm on the default root,
    # so only the command words and options are checked against fixed answers here.
    assert complete("alpmctl", ["alpmctl", "updates", "x"]) == []


def test_alpmctl_completes_repo_commands_options_and_files(tmp_path: Path) -> None:
    from alpmd.cli.alpmctl_repo import COMMANDS

    assert set(complete("alpmctl", ["alpmctl", "repo", ""])) == set(COMMANDS)
    assert "repo" in complete("alpmctl", ["alpmctl", "re"])
    assert complete("alpmctl", ["alpmctl", "repo", "check", "--"]) == ["--verify", "--repair",
                                                                       "--help"]
    assert complete("alpmctl", ["alpmctl", "repo", "add", "--"]) == ["--arch", "--force",
                                                                     "--help"]
    (tmp_path / "foo-1.0-1-any.pkg.tar.zst").write_bytes(b"")
    assert complete("alpmctl", ["alpmctl", "repo", "add", "testing", "fo"], cwd=tmp_path) == [
        "foo-1.0-1-any.pkg.tar.zst"]
    assert complete("alpmctl", ["alpmctl", "repo", "add", "--arch", "x"]) == []


def test_alpm_repo_completes_commands_and_options() -> None:
    assert sorted(complete("alpm-repo", ["alpm-repo", ""])) == sorted(
        ["init", "add", "remove", "move", "update", "ls", "history", "check", "cleanup",
         "import"])
    assert complete("alpm-repo", ["alpm-repo", "check", "--"]) == ["--verify", "--repair",
                                                                   "--help"]
    assert complete("alpm-repo", ["alpm-repo", "init", "--compression", "z"]) == ["zst"]


@pytest.mark.parametrize("name", ["_alpm", "_alpmctl", "_alpm-repo"])
def test_zsh_functions_parse_and_name_their_command(name: str) -> None:
    path = ZSH / name
    assert path.read_text().startswith(f"#compdef {name[1:]}\n")
    proc = subprocess.run(["zsh", "-n", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
