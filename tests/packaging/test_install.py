"""Installing like a package: `make install DESTDIR=... PREFIX=...` lays out the standard
tree and the installed commands run; `python -m build` gives a wheel (without the test kit)
and an sdist that install and run; declared dependencies are what the code imports."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

import alpmd

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS = sorted(PYPROJECT["project"]["scripts"])
BASE_ENV = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "LC_ALL": "C",
            "HOME": os.environ.get("HOME", "/root")}


def run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT,
        timeout: int = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**BASE_ENV, **(env or {})},
                          cwd=cwd, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def destdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("destdir")
    run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr",
         f"PYTHON={sys.executable}", f"PY={sys.executable}"])
    return dest


def site_packages(dest: Path) -> Path:
    found = sorted(dest.glob("usr/lib/python3*/site-packages"))
    assert len(found) == 1, found
    return found[0]


def test_make_install_lays_out_the_standard_tree(destdir: Path) -> None:
    usr = destdir / "usr"
    expected = [
        "lib/systemd/system/alpmd.service", "lib/systemd/system/alpmd-refresh.service",
        "lib/systemd/system/alpmd-refresh.timer",
        "share/dbus-1/system.d/org.alpm.conf", "share/dbus-1/system-services/org.alpm.service",
        "share/dbus-1/interfaces/org.alpm.xml", "share/polkit-1/actions/org.alpm.policy",
        "share/locale/de/LC_MESSAGES/alpmd.mo",
        "share/man/man8/alpm.8", "share/man/man8/alpmd.8", "share/man/man1/alpmctl.1",
        "share/man/man8/alpm-key.8", "share/man/man8/alpm-repo.8",
        "share/man/man5/alpmd.conf.5", "share/man/man7/org.alpm.7",
        "share/man/de/man8/alpm.8", "share/man/de/man1/alpmctl.1",
        "share/bash-completion/completions/alpm", "share/bash-completion/completions/alpmctl",
        "share/bash-completion/completions/alpm-repo",
        "share/zsh/site-functions/_alpm", "share/zsh/site-functions/_alpmctl",
        "share/zsh/site-functions/_alpm-repo",
        *(f"bin/{name}" for name in SCRIPTS),
    ]
    missing = [p for p in expected if not (usr / p).is_file()]
    assert missing == []
    assert "ExecStart=/usr/bin/alpmd\n" in (usr / "lib/systemd/system/alpmd.service").read_text()
    assert "Exec=/usr/bin/alpmd\n" in (
        usr / "share/dbus-1/system-services/org.alpm.service").read_text()
    # Installing elsewhere leaves the running environment's own alpmd alone.
    assert (Path(sys.executable).parent / "alpm").is_file()
    pkg = site_packages(destdir) / "alpmd"
    assert (pkg / "locale/de/LC_MESSAGES/alpmd.mo").is_file()
    assert not (pkg / "testing").exists()
    # man finds the pages where they were put, the German one for a German reader.
    manpath = str(usr / "share/man")
    where = run(["man", "-w", "alpmd"], env={"MANPATH": manpath}).stdout.strip()
    assert where == f"{manpath}/man8/alpmd.8"
    where = run(["man", "-L", "de", "-w", "alpm"], env={"MANPATH": manpath}).stdout.strip()
    assert where == f"{manpath}/de/man8/alpm.8"


def test_installed_commands_run(destdir: Path) -> None:
    env = {"PYTHONPATH": str(site_packages(destdir))}
    bindir = destdir / "usr/bin"
    out = run([str(bindir / "alpm"), "--version"], env=env).stdout
    assert out.startswith("alpm (alpmd) ") and alpmd.__version__ in out
    for name in SCRIPTS:
        if name != "alpm":
            assert alpmd.__version__ in run([str(bindir / name), "--version"], env=env).stdout
    # The installed code is what runs, with its own catalog.
    where = run([sys.executable, "-c", "import alpmd, alpmd.i18n as i; "
                 "print(alpmd.__file__); print(i.catalog(('de',)).gettext('Install Reason'))"],
                env=env, cwd=destdir).stdout.split("\n")
    assert where[0].startswith(str(destdir)) and where[1] == "Grund der Installation"
    german = run([str(bindir / "alpm-key"), "--help"], env={**env, "LC_ALL": "",
                                                            "LANG": "de_DE.UTF-8"}).stdout
    assert "die angegebenen Schlüsseldateien aufnehmen" in german


def test_build_makes_a_wheel_without_the_test_kit_and_an_sdist(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)])
    wheel = next(dist.glob("alpmd-*.whl"))
    sdist = next(dist.glob("alpmd-*.tar.gz"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "alpmd/locale/de/LC_MESSAGES/alpmd.mo" in names
    assert "alpmd/cli/alpm.py" in names and "alpmd/i18n.py" in names
    assert not [n for n in names if n.startswith(("alpmd/testing", "tests/"))]
    entry = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert all(f"{name} = " in entry for name in SCRIPTS)
    members = {m.split("/", 1)[1] for m in tarfile.open(sdist).getnames() if "/" in m}
    for needed in ("po/de.po", "setup.py", "man/alpm.8.rst", "man/de/alpm.8.rst",
                   "man/dbus_page.py", "man/build.py", "completions/bash/alpm",
                   "data/alpmd.service", "Makefile"):
        assert needed in members, needed
    assert not [m for m in members if m.endswith(".mo")]  # built, never shipped as source
    # The wheel installs and runs (dependencies from this environment).
    target = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target",
         str(target), str(wheel)])
    env = {"PYTHONPATH": str(target)}
    # (run from tmp_path: the source tree must not be on the path)
    out = run([sys.executable, "-m", "alpmd.cli.alpm", "--version"], env=env,
              cwd=tmp_path).stdout
    assert alpmd.__version__ in out
    where = run([sys.executable, "-c", "import alpmd; print(alpmd.__file__)"], env=env,
                cwd=tmp_path).stdout
    assert where.startswith(str(target))
    german = run([sys.executable, "-m", "alpmd.cli.key", "--help"], cwd=tmp_path,
                 env={**env, "LC_ALL": "", "LANG": "de_DE.UTF-8"}).stdout
    assert "Den Schlüsselbund von pacman verwalten" in german


def imported_distributions() -> set[str]:
    """Third-party distributions the shipped code (not the test kit) imports."""
    modules: set[str] = set()
    for path in (ROOT / "alpmd").rglob("*.py"):
        if "testing" in path.relative_to(ROOT / "alpmd").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    modules -= set(sys.stdlib_module_names) | {"alpmd", "__future__"}
    dists = packages_distributions()
    missing = sorted(m for m in modules if m not in dists)
    assert missing == [], f"imported but not installed: {missing}"
    return {d.lower() for m in modules for d in dists[m]}


def declared(requirements: list[str]) -> set[str]:
    return {r.split(">")[0].split("<")[0].split("=")[0].split(";")[0].strip().lower()
            for r in requirements}


def test_declared_dependencies_are_what_runs() -> None:
    project = PYPROJECT["project"]
    runtime = declared(project["dependencies"])
    optional = declared(project["optional-dependencies"]["systemd"])
    assert imported_distributions() == runtime | optional
    assert optional == {"systemd-python"}
    for req in project["dependencies"] + project["optional-dependencies"]["systemd"]:
        assert ">=" in req and "<" in req and "==" not in req, req  # ranges, not pins
    lint = declared(project["optional-dependencies"]["lint"])
    assert {"ruff", "mypy"} <= lint and not lint & runtime
    assert not {"ruff", "mypy"} & declared(project["optional-dependencies"]["test"])


COMMAND_MODULES = ["alpmd.cli.alpm", "alpmd.cli.alpmctl", "alpmd.cli.key", "alpmd.dbus.service"]
if (ROOT / "alpmd" / "cli" / "repo.py").exists():  # alpm-repo lands on its own branch
    COMMAND_MODULES.append("alpmd.cli.repo")


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_version_and_plain_help_on_every_command(module: str) -> None:
    env = {"PYTHONPATH": str(ROOT)}
    out = run([sys.executable, "-m", module, "--version"], env=env).stdout
    assert out.split("\n")[0].split(" ")[0] in ("alpm", "alpmctl", "alpm-key", "alpmd",
                                                 "alpm-repo")
    assert alpmd.__version__ in out
    helptext = run([sys.executable, "-m", module, "--help"], env=env).stdout
    assert helptext.strip() and "``" not in helptext and ":func:" not in helptext
