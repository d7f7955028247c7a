"""Debian's real pacman as a test oracle: a throwaway root with its own config.

Tests build the same fixture twice (or once, read by both) and compare what pacman
and our engine say. Every path lives under ``root``; nothing touches the host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PACMAN = shutil.which("pacman") or "/usr/bin/pacman"


def have_pacman() -> bool:
    """True when Debian's pacman (the oracle) is installed."""
    return os.access(PACMAN, os.X_OK)


@dataclass
class PacmanRoot:
    """An installation root with a pacman.conf of its own.

    ``repos`` maps a repository name to the sync database file to serve as
    ``<dbpath>/sync/<name>.db`` (copied in by :meth:`add_repo`).
    """

    root: Path
    repos: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        for sub in (self.dbpath / "local", self.dbpath / "sync", self.cachedir, self.hookdir,
                    self.root / "var/log", self.root / "etc"):
            sub.mkdir(parents=True, exist_ok=True)
        self.write_config()

    @property
    def dbpath(self) -> Path:
        return self.root / "var/lib/pacman"

    @property
    def cachedir(self) -> Path:
        return self.root / "var/cache/pacman/pkg"

    @property
    def hookdir(self) -> Path:
        return self.root / "etc/pacman.d/hooks"

    @property
    def logfile(self) -> Path:
        return self.root / "var/log/pacman.log"

    @property
    def config(self) -> Path:
        return self.root / "etc/pacman.conf"

    def write_config(self) -> None:
        """(Re)write pacman.conf: no signatures, this root's paths, the registered repos."""
        lines = [
            "[options]",
            f"RootDir = {self.root}",
            f"DBPath = {self.dbpath}/",
            f"CacheDir = {self.cachedir}/",
            f"HookDir = {self.hookdir}/",
            f"LogFile = {self.logfile}",
            f"GPGDir = {self.root}/etc/pacman.d/gnupg/",
            "Architecture = auto",
            "SigLevel = Never",
        ]
        lines += [f"{k} = {v}" if v else k for k, v in self.options.items()]
        for repo in self.repos:
            lines += ["", f"[{repo}]", f"Server = file://{self.root}/srv/{repo}"]
        self.config.write_text("\n".join(lines) + "\n")

    def add_repo(self, name: str, dbfile: Path, files_db: Path | None = None) -> None:
        """Serve ``dbfile`` as the sync database ``name`` (and its ``.files`` twin)."""
        shutil.copyfile(dbfile, self.dbpath / "sync" / f"{name}.db")
        if files_db is not None:
            shutil.copyfile(files_db, self.dbpath / "sync" / f"{name}.files")
        if name not in self.repos:
            self.repos.append(name)
        self.write_config()

    def args(self) -> list[str]:
        """The common arguments that point pacman (or ``alpm``) at this root."""
        return ["--config", str(self.config), "--root", str(self.root),
                "--dbpath", str(self.dbpath), "--noconfirm"]

    def pacman(self, *args: str, check: bool = False,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real pacman on this root, in the C locale, without colour."""
        env = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        cmd = [PACMAN, *args[:1], *self.args(), "--color", "never", *args[1:]]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, check=check,
                              input=input, timeout=120)
