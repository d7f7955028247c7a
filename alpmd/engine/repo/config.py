"""The repository tree's configuration file (``alpm-repo.conf``).

An INI file: ``[options]`` for the tree, one section per repository::

    [options]
    Architectures = x86_64 aarch64
    Compression = gz
    Keyring = /srv/repo/gnupg
    SigLevel = Required
    Staging = staging
    # SignKey = <fingerprint>   (sign REPO.db like repo-add --sign)
    # LockTimeout = 30

    [core]
    # Architectures = x86_64    (default: the tree's)
    # Allow = alice @packagers  (who may release here; default: anyone who can write)
    [core-debug]
    [testing]
    Testing = yes               (default: yes for names ending in testing or staging)
"""

from __future__ import annotations

import configparser
import grp
import os
import pwd
from dataclasses import dataclass, field

from alpmd.engine.errors import AlpmError, ErrorCode

CONFIG_NAME = "alpm-repo.conf"

#: Database compressions repo-add knows (by the database file's extension) that we write.
COMPRESSIONS = ("gz", "bz2", "xz", "zst", "none")

#: Debug packages of REPO go to REPO + this suffix when such a repository is configured.
DEBUG_SUFFIX = "-debug"


@dataclass
class RepoSection:
    """One configured repository."""

    name: str
    arches: list[str]
    #: user names, and group names prefixed with ``@``; empty allows everyone
    allow: list[str] = field(default_factory=list)
    #: a testing (or staging) repository: a pkgbase may be here and in one stable one
    testing: bool = False


@dataclass
class TreeConfig:
    """A repository tree: where it is and what it holds."""

    root: str
    arches: list[str]
    repos: dict[str, RepoSection]
    compression: str = "gz"
    keyring: str | None = None
    siglevel: str = "Required"
    staging: str = "staging"
    sign_key: str | None = None
    lock_timeout: float = 30.0
    #: write the ``.files`` databases too (repo-add always does)
    files: bool = True

    def repo(self, name: str) -> RepoSection:
        """The section of a configured repository, or WRONG_ARGS."""
        section = self.repos.get(name)
        if section is None:
            raise AlpmError(ErrorCode.DB_NOT_FOUND,
                            f"repository '{name}' is not configured in {self.path}",
                            repo=name)
        return section

    def arches_of(self, repo: str, arch: str) -> list[str]:
        """``arch`` checked against ``repo``'s architectures; ``any`` means all of them."""
        section = self.repo(repo)
        if arch == "any":
            return list(section.arches)
        if arch not in section.arches:
            raise AlpmError(ErrorCode.PKG_INVALID_ARCH,
                            f"architecture '{arch}' is not configured for repository '{repo}'",
                            repo=repo, arch=arch)
        return [arch]

    def debug_repo(self, repo: str) -> str | None:
        """The repository debug packages of ``repo`` go to, when one is configured."""
        name = repo + DEBUG_SUFFIX
        return name if not repo.endswith(DEBUG_SUFFIX) and name in self.repos else None

    def is_testing(self, repo: str) -> bool:
        return self.repo(self.main_repo(repo)).testing

    def main_repo(self, repo: str) -> str:
        """``core`` for ``core-debug`` (when ``core`` is configured), else ``repo`` itself."""
        if repo.endswith(DEBUG_SUFFIX) and repo[: -len(DEBUG_SUFFIX)] in self.repos:
            return repo[: -len(DEBUG_SUFFIX)]
        return repo

    @property
    def path(self) -> str:
        return os.path.join(self.root, CONFIG_NAME)

    @property
    def pool(self) -> str:
        return os.path.join(self.root, "pool", "packages")

    @property
    def generations(self) -> str:
        """Where the databases live, one directory per generation (see :mod:`.txn`)."""
        return os.path.join(self.root, "pool", "db")

    @property
    def state_dir(self) -> str:
        return state_dir_of(self.root)

    def arch_dir(self, repo: str, arch: str) -> str:
        return os.path.join(self.root, repo, "os", arch)

    def db_suffix(self) -> str:
        return ".tar" if self.compression == "none" else ".tar." + self.compression

    def may_release(self, repo: str, user: str) -> bool:
        """Whether ``user`` is allowed (by the config's ``Allow``) to change ``repo``."""
        allow = self.repo(repo).allow
        if not allow:
            return True
        if user in allow:
            return True
        groups = {g[1:] for g in allow if g.startswith("@")}
        if not groups:
            return False
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            return False
        names = {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
        try:
            names.add(grp.getgrgid(pw.pw_gid).gr_name)
        except KeyError:
            pass
        return bool(groups & names)


def state_dir_of(root: str) -> str:
    """The tree's own state (tracking database, journal, work directories)."""
    return os.path.join(root, ".alpm-repo")


def _words(value: str) -> list[str]:
    return value.replace(",", " ").split()


def load_tree_config(root: str) -> TreeConfig:
    """Read ``ROOT/alpm-repo.conf``; a missing or malformed file is CONFIG_INVALID."""
    root = os.path.abspath(root)
    path = os.path.join(root, CONFIG_NAME)
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except FileNotFoundError:
        raise AlpmError(ErrorCode.CONFIG_INVALID,
                        f"no repository tree at {root} ({CONFIG_NAME} not found)",
                        path=path) from None
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        raise AlpmError(ErrorCode.CONFIG_INVALID, f"{path}: {exc}", path=path) from None
    if not parser.has_section("options"):
        raise AlpmError(ErrorCode.CONFIG_INVALID, f"{path}: no [options] section", path=path)
    opts = parser["options"]
    arches = _words(opts.get("Architectures", ""))
    if not arches or "any" in arches:
        raise AlpmError(ErrorCode.CONFIG_INVALID,
                        f"{path}: Architectures must list real architectures", path=path)
    compression = opts.get("Compression", "gz")
    if compression not in COMPRESSIONS:
        raise AlpmError(ErrorCode.CONFIG_INVALID,
                        f"{path}: Compression must be one of {', '.join(COMPRESSIONS)}",
                        path=path)
    try:
        timeout = float(opts.get("LockTimeout", "30"))
    except ValueError:
        raise AlpmError(ErrorCode.CONFIG_INVALID, f"{path}: LockTimeout is not a number",
                        path=path) from None
    repos: dict[str, RepoSection] = {}
    for name in parser.sections():
        if name == "options":
            continue
        if not name or "/" in name or name.startswith(".") or name == "pool":
            raise AlpmError(ErrorCode.CONFIG_INVALID, f"{path}: bad repository name {name!r}",
                            path=path)
        sec = parser[name]
        repo_arches = _words(sec.get("Architectures", "")) or list(arches)
        unknown = [a for a in repo_arches if a not in arches]
        if unknown:
            raise AlpmError(ErrorCode.CONFIG_INVALID,
                            f"{path}: [{name}] architecture {unknown[0]} is not in [options]",
                            path=path)
        main = name.removesuffix(DEBUG_SUFFIX)
        testing = sec.get("Testing", "yes" if main.endswith(("testing", "staging")) else "no")
        repos[name] = RepoSection(name, repo_arches, _words(sec.get("Allow", "")),
                                  testing.lower() in ("yes", "true", "1"))
    keyring = opts.get("Keyring") or None
    return TreeConfig(
        root=root, arches=arches, repos=repos, compression=compression,
        keyring=os.path.join(root, keyring) if keyring else None,
        siglevel=opts.get("SigLevel", "Required"),
        staging=os.path.join(root, opts.get("Staging", "staging")),
        sign_key=opts.get("SignKey") or None, lock_timeout=timeout,
        files=opts.get("Files", "yes").lower() in ("yes", "true", "1"))


def _relative(path: str, root: str) -> str:
    """``path`` relative to the tree when inside it (a copied tree keeps working)."""
    rel = os.path.relpath(path, root)
    return path if rel.startswith("..") else rel


def write_tree_config(cfg: TreeConfig) -> str:
    """The text of ``alpm-repo.conf`` for ``cfg``."""
    lines = ["[options]", f"Architectures = {' '.join(cfg.arches)}",
             f"Compression = {cfg.compression}", f"SigLevel = {cfg.siglevel}",
             f"Staging = {_relative(cfg.staging, cfg.root)}",
             f"LockTimeout = {cfg.lock_timeout:g}"]
    if cfg.keyring:
        lines.append(f"Keyring = {cfg.keyring}")
    if cfg.sign_key:
        lines.append(f"SignKey = {cfg.sign_key}")
    if not cfg.files:
        lines.append("Files = no")
    for section in cfg.repos.values():
        lines += ["", f"[{section.name}]"]
        if section.arches != cfg.arches:
            lines.append(f"Architectures = {' '.join(section.arches)}")
        if section.allow:
            lines.append(f"Allow = {' '.join(section.allow)}")
        lines.append(f"Testing = {'yes' if section.testing else 'no'}")
    return "\n".join(lines) + "\n"
