"""A repository tree opened for work: its config, tracking database and lock.

Every command of ``alpm-repo`` is a function here or in :mod:`.ops` taking a
:class:`Tree`; front ends (the command line, later the daemon) only translate.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from alpmd.engine.durable import fsync_dir
from alpmd.engine.errors import AlpmError, ErrorCode
from alpmd.engine.repo.config import (
    CONFIG_NAME,
    RepoSection,
    TreeConfig,
    load_tree_config,
    write_tree_config,
)
from alpmd.engine.repo.tracking import Tracking
from alpmd.engine.repo.txn import Plan, commit, current_generation, recover, tree_lock


@dataclass
class Tree:
    """An open repository tree."""

    cfg: TreeConfig
    tracking: Tracking

    def close(self) -> None:
        self.tracking.close()

    @contextmanager
    def writing(self, timeout: float | None = None) -> Iterator[str | None]:
        """Hold the tree's lock, finishing or rolling back a crashed change first.

        A tree without a database generation yet (just made, or of the earlier
        layout with the databases in the architectures' directories) gets its
        first one here, so every change after is one switch.
        """
        with tree_lock(self.cfg, timeout):
            recovered = recover(self.cfg, self.tracking)
            if current_generation(self.cfg) is None:
                ensure_layout(self.cfg)
                commit(self.cfg, self.tracking, Plan())
            yield recovered


def open_tree(root: str) -> Tree:
    """Open the tree whose ``alpm-repo.conf`` is in ``root``."""
    cfg = load_tree_config(root)
    if not os.path.isdir(cfg.state_dir):
        raise AlpmError(ErrorCode.CONFIG_INVALID,
                        f"{root} has {CONFIG_NAME} but was never initialised "
                        "(no .alpm-repo directory)", path=cfg.state_dir)
    return Tree(cfg, Tracking(cfg.state_dir))


def find_tree(start: str) -> str:
    """The directory holding ``alpm-repo.conf``: ``start`` or one of its parents."""
    d = os.path.abspath(start)
    while True:
        if os.path.isfile(os.path.join(d, CONFIG_NAME)):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            raise AlpmError(ErrorCode.CONFIG_INVALID,
                            f"no {CONFIG_NAME} in {start} or its parents (use --tree DIR)")
        d = parent


def ensure_layout(cfg: TreeConfig) -> None:
    """The directories of every configured repository (their databases come with a commit)."""
    for d in (cfg.pool, cfg.staging, cfg.generations):
        os.makedirs(d, exist_ok=True)
    for repo in cfg.repos.values():
        for arch in repo.arches:
            os.makedirs(cfg.arch_dir(repo.name, arch), exist_ok=True)
    fsync_dir(os.path.dirname(cfg.pool))


def init_tree(root: str, repos: list[str], arches: list[str], *, keyring: str | None = None,
              compression: str = "gz", siglevel: str | None = None,
              sign_key: str | None = None) -> Tree:
    """Create a tree and its ``alpm-repo.conf`` (or extend an existing one's layout).

    Signatures are required when a keyring is given; without one the tree is
    created with ``SigLevel = Never`` unless ``siglevel`` says otherwise.
    """
    root = os.path.abspath(root)
    if os.path.exists(os.path.join(root, CONFIG_NAME)):
        raise AlpmError(ErrorCode.WRONG_ARGS, f"{root} already has {CONFIG_NAME}")
    if not repos or not arches:
        raise AlpmError(ErrorCode.WRONG_ARGS, "init needs --repos and --arches")
    os.makedirs(root, exist_ok=True)
    cfg = TreeConfig(root=root, arches=list(arches),
                     repos={r: RepoSection(r, list(arches), testing=r.removesuffix(
                         "-debug").endswith(("testing", "staging"))) for r in repos},
                     compression=compression, keyring=os.path.abspath(keyring) if keyring else None,
                     siglevel=siglevel or ("Required" if keyring else "Never"),
                     staging=os.path.join(root, "staging"), sign_key=sign_key)
    with open(cfg.path, "w", encoding="utf-8") as fh:
        fh.write(write_tree_config(cfg))
    try:
        cfg = load_tree_config(root)
        os.makedirs(cfg.state_dir, exist_ok=True)
        tree = Tree(cfg, Tracking(cfg.state_dir))
    except BaseException:
        os.unlink(cfg.path)
        raise
    try:
        with tree.writing():
            pass  # the first generation: empty databases, and their links
    except BaseException:
        tree.close()
        raise
    return tree
